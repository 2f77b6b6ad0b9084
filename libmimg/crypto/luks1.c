/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * LUKS1 header parsing and validation, key slot unlocking and header
 * creation.  Every field of a header read from a file is checked before
 * use: names must be NUL-terminated and known, iteration counts are
 * capped (work bounded by the caller's limit), key material and the
 * payload must lie inside the file without overlapping the header or
 * each other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "file.h"
#include "luks1.h"
#include "mimg.h"
#include "uuid.h"

static const uint8_t luks1_magic[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};

#define HEADER_SECTORS 2 /* 592 bytes, in 512-byte sectors */

uint64_t luks1_material_size(uint32_t key_bytes, uint32_t stripes)
{
	uint64_t n = (uint64_t)key_bytes * stripes;
	return div_round_up_u64(n, MIMG_CRYPTO_SECTOR) * MIMG_CRYPTO_SECTOR;
}

static int copy_name(const uint8_t *field, char *out, const char *what,
		     const char *path)
{
	if (!memchr(field, 0, LUKS1_NAME_LEN))
		return mimg_err(-EINVAL,
				"%s: LUKS %s field is not "
				"NUL-terminated",
				path, what);
	memcpy(out, field, LUKS1_NAME_LEN);
	return 0;
}

static int parse_cipher(struct luks1_header *h, const char *path)
{
	static const char *const others[] = {"serpent", "twofish", "cast5",
					     NULL};
	char spec[LUKS1_NAME_LEN], *iv, *ivhash;

	if (strcmp(h->cipher_name, "aes") != 0) {
		for (const char *const *o = others; *o; o++)
			if (strcmp(h->cipher_name, *o) == 0)
				return mimg_err(-ENOTSUP,
						"%s: LUKS cipher "
						"'%s' is not supported (only "
						"aes)",
						path, h->cipher_name);
		return mimg_err(-ENOTSUP,
				"%s: LUKS cipher '%.31s' is not "
				"supported",
				path, h->cipher_name);
	}
	memcpy(spec, h->cipher_mode, sizeof(spec));
	if (!(iv = strchr(spec, '-')))
		return mimg_err(-EINVAL,
				"%s: Unexpected cipher mode string "
				"format '%s'",
				path, h->cipher_mode);
	*iv++ = 0;
	if ((ivhash = strchr(iv, ':')))
		*ivhash++ = 0;
	if (!(h->mode = mimg_cipher_mode_lookup(spec)))
		return mimg_err(-ENOTSUP, "%s: Cipher mode %s not supported",
				path, spec);
	if (!(h->ivgen = mimg_ivgen_lookup(iv)))
		return mimg_err(-ENOTSUP, "%s: IV generator %s not supported",
				path, iv);
	h->ivhash = MIMG_HASH_NONE;
	if (ivhash && !(h->ivhash = mimg_hash_lookup(ivhash)))
		return mimg_err(-ENOTSUP,
				"%s: Hash algorithm %s not "
				"supported",
				path, ivhash);
	if (!(h->hash = mimg_hash_lookup(h->hash_spec)))
		return mimg_err(-ENOTSUP,
				"%s: Hash algorithm %s not "
				"supported",
				path, h->hash_spec);
	if (h->key_bytes == 0 || h->key_bytes > MIMG_CRYPTO_MAX_KEY)
		return mimg_err(-EINVAL, "%s: LUKS key_bytes %u is invalid",
				path, h->key_bytes);
	int r = mimg_sector_cipher_check(path, h->mode, h->ivgen, h->ivhash,
					 h->key_bytes);
	if (r < 0)
		return r;
	h->aes_bits = (h->mode == MIMG_CIPHER_XTS ? h->key_bytes / 2
						  : h->key_bytes) *
		      8;
	return 0;
}

static int check_iters(uint32_t iters, uint64_t max, const char *what,
		       const char *path)
{
	if (iters == 0)
		return mimg_err(-EINVAL, "%s: LUKS %s iteration count is 0",
				path, what);
	if (iters > max)
		return mimg_err(-EINVAL,
				"%s: LUKS %s iteration count %u is "
				"above the limit of %llu (raise it to open "
				"this image)",
				path, what, iters, (unsigned long long)max);
	return 0;
}

static int check_slot(const struct luks1_header *h, int i, uint64_t file_size,
		      uint64_t max_iters, const char *path)
{
	const struct luks1_slot *s = &h->slots[i];
	uint64_t start = (uint64_t)s->key_offset * MIMG_CRYPTO_SECTOR;
	uint64_t len = luks1_material_size(h->key_bytes, s->stripes);
	uint64_t payload = (uint64_t)h->payload_offset * MIMG_CRYPTO_SECTOR;
	char what[32];
	int r;

	snprintf(what, sizeof(what), "key slot %d", i);
	if ((r = check_iters(s->iters, max_iters, what, path)) < 0)
		return r;
	if (s->stripes != LUKS1_STRIPES)
		return mimg_err(-EINVAL,
				"%s: LUKS key slot %d has %u stripes "
				"(expected %u)",
				path, i, s->stripes, LUKS1_STRIPES);
	if (s->key_offset < HEADER_SECTORS)
		return mimg_err(-EINVAL,
				"%s: LUKS key slot %d material at "
				"sector %u overlaps the header",
				path, i, s->key_offset);
	if (start + len > payload)
		return mimg_err(-EINVAL,
				"%s: LUKS key slot %d material at "
				"sector %u overlaps the payload at sector %u",
				path, i, s->key_offset, h->payload_offset);
	if (start + len > file_size)
		return mimg_err(-EINVAL,
				"%s: LUKS key slot %d material at "
				"offset %llu is past the end of the file "
				"(%llu bytes)",
				path, i, (unsigned long long)start,
				(unsigned long long)file_size);
	for (int j = 0; j < i; j++) {
		const struct luks1_slot *o = &h->slots[j];
		uint64_t ostart = (uint64_t)o->key_offset * MIMG_CRYPTO_SECTOR;
		if (!o->active)
			continue;
		if (start < ostart + luks1_material_size(h->key_bytes,
							 o->stripes) &&
		    ostart < start + len)
			return mimg_err(-EINVAL,
					"%s: LUKS key slots %d and %d "
					"have overlapping key material",
					path, j, i);
	}
	return 0;
}

static void parse_fields(const uint8_t *buf, struct luks1_header *h)
{
	h->payload_offset = ld_be32(buf + 104);
	h->key_bytes = ld_be32(buf + 108);
	memcpy(h->mk_digest, buf + 112, LUKS1_DIGEST_LEN);
	memcpy(h->mk_salt, buf + 132, LUKS1_SALT_LEN);
	h->mk_iters = ld_be32(buf + 164);
	for (int i = 0; i < LUKS1_UUID_LEN; i++) {
		uint8_t c = buf[168 + i];
		h->uuid[i] = c == 0		      ? 0
			     : (c < 0x20 || c > 0x7e) ? '?'
						      : (char)c;
	}
	h->uuid[LUKS1_UUID_LEN] = 0;
}

int luks1_parse(const uint8_t *buf, uint64_t file_size, uint64_t max_iters,
		const char *path, struct luks1_header *h)
{
	uint32_t state[LUKS1_NUM_SLOTS];
	int r;

	memset(h, 0, sizeof(*h));
	if (memcmp(buf, luks1_magic, sizeof(luks1_magic)) != 0)
		return mimg_err(-EINVAL, "%s: Volume is not in LUKS format",
				path);
	if (ld_be16(buf + 6) != 1)
		return mimg_err(-ENOTSUP,
				"%s: LUKS version %u is not "
				"supported",
				path, ld_be16(buf + 6));
	if ((r = copy_name(buf + 8, h->cipher_name, "cipher name", path)) ||
	    (r = copy_name(buf + 40, h->cipher_mode, "cipher mode", path)) ||
	    (r = copy_name(buf + 72, h->hash_spec, "hash spec", path)))
		return r;
	parse_fields(buf, h);
	if ((r = parse_cipher(h, path)) < 0)
		return r;
	if ((r = check_iters(h->mk_iters, max_iters, "master key digest",
			     path)) < 0)
		return r;
	if (h->payload_offset < HEADER_SECTORS)
		return mimg_err(-EINVAL,
				"%s: LUKS payload offset %u sectors "
				"overlaps the header",
				path, h->payload_offset);
	if ((uint64_t)h->payload_offset * MIMG_CRYPTO_SECTOR > file_size)
		return mimg_err(-EINVAL,
				"%s: LUKS payload offset %llu is "
				"past the end of the file (%llu bytes)",
				path,
				(unsigned long long)h->payload_offset *
					MIMG_CRYPTO_SECTOR,
				(unsigned long long)file_size);
	for (int i = 0; i < LUKS1_NUM_SLOTS; i++) {
		const uint8_t *s = buf + 208 + 48 * i;
		struct luks1_slot *slot = &h->slots[i];
		state[i] = ld_be32(s);
		if (state[i] != LUKS1_SLOT_ENABLED &&
		    state[i] != LUKS1_SLOT_DISABLED)
			return mimg_err(-EINVAL,
					"%s: LUKS key slot %d state "
					"0x%08x is invalid",
					path, i, state[i]);
		slot->active = state[i] == LUKS1_SLOT_ENABLED;
		slot->iters = ld_be32(s + 4);
		memcpy(slot->salt, s + 8, LUKS1_SALT_LEN);
		slot->key_offset = ld_be32(s + 40);
		slot->stripes = ld_be32(s + 44);
		if (slot->active &&
		    (r = check_slot(h, i, file_size, max_iters, path)) < 0)
			return r;
	}
	return 0;
}

/* Encrypt (ENCRYPT) or decrypt the LEN bytes of key MATERIAL of slot S
 * with the key PASS derives for it. */
/* A == B over N bytes, in a time that does not depend on where they
 * differ (a digest of a key candidate is compared). */
static bool same_secret(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

static int crypt_material(const struct luks1_header *h,
			  const struct luks1_slot *s, const void *pass,
			  size_t passlen, bool encrypt, uint8_t *material,
			  uint64_t len)
{
	uint8_t slotkey[MIMG_CRYPTO_MAX_KEY];
	struct mimg_sector_cipher sc;
	int r = mimg_pbkdf2(h->hash, pass, passlen, s->salt, LUKS1_SALT_LEN,
			    s->iters, slotkey, h->key_bytes);
	if (r == 0)
		r = mimg_sector_cipher_init(&sc, h->mode, h->ivgen, h->ivhash,
					    slotkey, h->key_bytes);
	if (r == 0) {
		r = mimg_sector_crypt(&sc, encrypt, 0, material, len);
		mimg_sector_cipher_wipe(&sc);
	}
	explicit_bzero(slotkey, sizeof(slotkey));
	return r;
}

/* Try one slot: 1 when PASS opens it (MK filled), 0 when not. */
static int try_slot(const struct luks1_header *h, int i, struct mimg_file *f,
		    uint64_t base, const void *pass, size_t passlen,
		    uint8_t *mk)
{
	const struct luks1_slot *s = &h->slots[i];
	uint64_t len = luks1_material_size(h->key_bytes, s->stripes);
	uint8_t digest[LUKS1_DIGEST_LEN];
	uint8_t *material;
	int r;

	if (!(material = malloc(len)))
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg_file_pread_exact(f, material, len,
				  base + (uint64_t)s->key_offset *
						  MIMG_CRYPTO_SECTOR,
				  "LUKS key material");
	if (r == 0)
		r = crypt_material(h, s, pass, passlen, false, material, len);
	if (r == 0)
		r = mimg_af_merge(h->hash, material, h->key_bytes, s->stripes,
				  mk);
	if (r == 0)
		r = mimg_pbkdf2(h->hash, mk, h->key_bytes, h->mk_salt,
				LUKS1_SALT_LEN, h->mk_iters, digest,
				sizeof(digest));
	if (r == 0)
		r = same_secret(digest, h->mk_digest, sizeof(digest));
	explicit_bzero(material, len);
	free(material);
	if (r != 1)
		explicit_bzero(mk, h->key_bytes);
	return r;
}

int luks1_unlock_slot(const struct luks1_header *h, struct mimg_file *f,
		      uint64_t base, const char *path, const void *pass,
		      size_t passlen, uint8_t *mk, int *slotp)
{
	for (int i = 0; i < LUKS1_NUM_SLOTS; i++) {
		if (!h->slots[i].active)
			continue;
		int r = try_slot(h, i, f, base, pass, passlen, mk);
		if (r != 0) {
			if (r > 0 && slotp)
				*slotp = i;
			return r < 0 ? r : 0;
		}
	}
	return mimg_err(-EACCES,
			"%s: Invalid password, cannot unlock any "
			"keyslot",
			path);
}

int luks1_unlock(const struct luks1_header *h, struct mimg_file *f,
		 uint64_t base, const char *path, const void *pass,
		 size_t passlen, uint8_t *mk)
{
	return luks1_unlock_slot(h, f, base, path, pass, passlen, mk, NULL);
}

/* ---------------------------------------------------------------------- */
/* Creation                                                                */

static void encode(const struct luks1_header *h, uint8_t *buf)
{
	memset(buf, 0, LUKS1_HEADER_SIZE);
	memcpy(buf, luks1_magic, sizeof(luks1_magic));
	st_be16(buf + 6, 1);
	memcpy(buf + 8, h->cipher_name, LUKS1_NAME_LEN);
	memcpy(buf + 40, h->cipher_mode, LUKS1_NAME_LEN);
	memcpy(buf + 72, h->hash_spec, LUKS1_NAME_LEN);
	st_be32(buf + 104, h->payload_offset);
	st_be32(buf + 108, h->key_bytes);
	memcpy(buf + 112, h->mk_digest, LUKS1_DIGEST_LEN);
	memcpy(buf + 132, h->mk_salt, LUKS1_SALT_LEN);
	st_be32(buf + 164, h->mk_iters);
	memcpy(buf + 168, h->uuid, LUKS1_UUID_LEN);
	for (int i = 0; i < LUKS1_NUM_SLOTS; i++) {
		uint8_t *s = buf + 208 + 48 * i;
		const struct luks1_slot *slot = &h->slots[i];
		st_be32(s, slot->active ? LUKS1_SLOT_ENABLED
					: LUKS1_SLOT_DISABLED);
		st_be32(s + 4, slot->iters);
		memcpy(s + 8, slot->salt, LUKS1_SALT_LEN);
		st_be32(s + 40, slot->key_offset);
		st_be32(s + 44, slot->stripes);
	}
}

static void make_uuid(char *out)
{
	uint8_t u[16];
	mimg__uuid_random(u);
	snprintf(out, LUKS1_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* Iterations for ITER_TIME ms, divided by DIV, at least the minimum,
 * at most the cap. */
static int pick_iters(const struct luks1_create_params *p, size_t keylen,
		      unsigned div, uint32_t *out)
{
	uint64_t n;
	int r = mimg_pbkdf2_count_iters(p->hash, keylen, p->iter_time_ms, &n);
	if (r < 0)
		return r;
	n /= div;
	n = max_u64(n, LUKS1_MIN_ITERS);
	n = min_u64(n, min_u64(p->max_iters, UINT32_MAX));
	*out = (uint32_t)n;
	return 0;
}

int luks1_layout(const struct luks1_create_params *p, struct luks1_header *h)
{
	uint32_t area;
	int r;

	memset(h, 0, sizeof(*h));
	snprintf(h->cipher_name, LUKS1_NAME_LEN, "aes");
	if (p->ivhash != MIMG_HASH_NONE)
		snprintf(h->cipher_mode, LUKS1_NAME_LEN, "%s-%s:%s",
			 mimg_cipher_mode_name(p->mode),
			 mimg_ivgen_name(p->ivgen), mimg_hash_name(p->ivhash));
	else
		snprintf(h->cipher_mode, LUKS1_NAME_LEN, "%s-%s",
			 mimg_cipher_mode_name(p->mode),
			 mimg_ivgen_name(p->ivgen));
	snprintf(h->hash_spec, LUKS1_NAME_LEN, "%s", mimg_hash_name(p->hash));
	h->aes_bits = p->aes_bits;
	h->mode = p->mode;
	h->ivgen = p->ivgen;
	h->ivhash = p->ivhash;
	h->hash = p->hash;
	h->key_bytes = p->aes_bits / 8 * (p->mode == MIMG_CIPHER_XTS ? 2 : 1);
	if ((r = mimg_sector_cipher_check("LUKS", p->mode, p->ivgen, p->ivhash,
					  h->key_bytes)) < 0)
		return r;
	area = (uint32_t)(luks1_material_size(h->key_bytes, LUKS1_STRIPES) /
			  MIMG_CRYPTO_SECTOR);
	area = (area + LUKS1_KEY_ALIGN_SECTORS - 1) / LUKS1_KEY_ALIGN_SECTORS *
	       LUKS1_KEY_ALIGN_SECTORS;
	for (int i = 0; i < LUKS1_NUM_SLOTS; i++) {
		h->slots[i].stripes = LUKS1_STRIPES;
		h->slots[i].key_offset = LUKS1_KEY_ALIGN_SECTORS +
					 (uint32_t)i * area;
	}
	h->payload_offset = LUKS1_KEY_ALIGN_SECTORS + LUKS1_NUM_SLOTS * area;
	return 0;
}

int luks1_prepare(const struct luks1_create_params *p, struct luks1_header *h)
{
	int r = luks1_layout(p, h);
	if (r < 0)
		return r;
	make_uuid(h->uuid);
	if ((r = mimg_random_bytes(h->mk_salt, LUKS1_SALT_LEN)) < 0 ||
	    (r = mimg_random_bytes(h->slots[0].salt, LUKS1_SALT_LEN)) < 0)
		return r;
	h->slots[0].active = true;
	return 0;
}

/* Split MK and encrypt it with the key PASS derives for slot I (its
 * salt already random); the iteration count is picked here. */
static int seal_slot(struct luks1_header *h, int i,
		     const struct luks1_create_params *p, const uint8_t *mk,
		     const void *pass, size_t passlen, uint8_t *material)
{
	struct luks1_slot *s = &h->slots[i];
	uint64_t len = luks1_material_size(h->key_bytes, s->stripes);
	int r;

	if ((r = pick_iters(p, h->key_bytes, 1, &s->iters)) < 0)
		return r;
	memset(material, 0, len);
	r = mimg_af_split(h->hash, mk, h->key_bytes, s->stripes, material);
	if (r == 0)
		r = crypt_material(h, s, pass, passlen, true, material, len);
	return r;
}

int luks1_write_header(struct mimg_file *f, uint64_t base,
		       const struct luks1_header *h)
{
	uint8_t hdr[LUKS1_HEADER_SIZE];
	encode(h, hdr);
	return mimg_file_pwrite(f, hdr, sizeof(hdr), base);
}

/* Seal MK into slot I of H with PASS and write the slot's material (the
 * header is the caller's to write). */
static int write_slot(struct mimg_file *f, uint64_t base,
		      struct luks1_header *h, int i,
		      const struct luks1_create_params *p, const uint8_t *mk,
		      const void *pass, size_t passlen)
{
	uint64_t len = luks1_material_size(h->key_bytes, h->slots[i].stripes);
	uint8_t *material = malloc(len);
	int r;
	if (!material)
		return mimg_err(-ENOMEM, "out of memory");
	r = seal_slot(h, i, p, mk, pass, passlen, material);
	if (r == 0)
		r = mimg_file_pwrite(f, material, len,
				     base + (uint64_t)h->slots[i].key_offset *
						     MIMG_CRYPTO_SECTOR);
	explicit_bzero(material, len);
	free(material);
	return r;
}

int luks1_format(struct mimg_file *f, uint64_t base,
		 const struct luks1_create_params *p, const void *pass,
		 size_t passlen, struct luks1_header *h, uint8_t *mk)
{
	int r;
	if ((r = mimg_random_bytes(mk, h->key_bytes)) < 0 ||
	    (r = pick_iters(p, LUKS1_DIGEST_LEN, 8, &h->mk_iters)) < 0 ||
	    (r = mimg_pbkdf2(h->hash, mk, h->key_bytes, h->mk_salt,
			     LUKS1_SALT_LEN, h->mk_iters, h->mk_digest,
			     LUKS1_DIGEST_LEN)) < 0 ||
	    (r = write_slot(f, base, h, 0, p, mk, pass, passlen)) < 0 ||
	    (r = luks1_write_header(f, base, h)) < 0)
		explicit_bzero(mk, MIMG_CRYPTO_MAX_KEY);
	return r;
}

/* ---------------------------------------------------------------------- */
/* Key slots of an existing header                                        */

static bool slot_area_ok(const struct luks1_header *h, int i)
{
	uint64_t start = (uint64_t)h->slots[i].key_offset * MIMG_CRYPTO_SECTOR;
	uint64_t len = luks1_material_size(h->key_bytes, h->slots[i].stripes);
	if (h->slots[i].key_offset < HEADER_SECTORS ||
	    start + len > (uint64_t)h->payload_offset * MIMG_CRYPTO_SECTOR)
		return false;
	for (int j = 0; j < LUKS1_NUM_SLOTS; j++) {
		const struct luks1_slot *o = &h->slots[j];
		uint64_t ostart = (uint64_t)o->key_offset * MIMG_CRYPTO_SECTOR;
		if (j != i && o->active &&
		    start < ostart + luks1_material_size(h->key_bytes,
							 o->stripes) &&
		    ostart < start + len)
			return false;
	}
	return true;
}

int luks1_slot_add(struct mimg_file *f, uint64_t base, const char *path,
		   struct luks1_header *h, const uint8_t *mk, int slot,
		   const void *pass, size_t passlen, uint64_t iter_time_ms,
		   uint64_t max_iters, int *slotp)
{
	struct luks1_create_params p = {
		.hash = h->hash,
		.iter_time_ms = iter_time_ms ? iter_time_ms : 2000,
		.max_iters = max_iters ? max_iters
				       : MIMG_MAX_PBKDF2_ITERS_DEFAULT,
	};
	struct luks1_header nh = *h;
	int r;

	if (slot < 0) {
		for (slot = 0; slot < LUKS1_NUM_SLOTS; slot++)
			if (!h->slots[slot].active)
				break;
		if (slot == LUKS1_NUM_SLOTS)
			return mimg_err(-ENOSPC,
					"%s: Can't add a keyslot - all "
					"keyslots are in use",
					path);
	} else if (slot >= LUKS1_NUM_SLOTS) {
		return mimg_err(-EINVAL,
				"%s: Invalid keyslot %d specified, "
				"must be between 0 and %d",
				path, slot, LUKS1_NUM_SLOTS - 1);
	} else if (h->slots[slot].active) {
		return mimg_err(-EBUSY,
				"%s: Refusing to overwrite active "
				"keyslot %d - please erase it first",
				path, slot);
	}
	/* The slot's area is the one the header gives it: check that it
	 * lies between the header and the payload, clear of the others
	 * (luks1_parse checked only the active ones). */
	nh.slots[slot].stripes = LUKS1_STRIPES;
	if (!slot_area_ok(&nh, slot))
		return mimg_err(-EINVAL,
				"%s: LUKS key slot %d material at "
				"sector %u has no room",
				path, slot, nh.slots[slot].key_offset);
	if ((r = mimg_random_bytes(nh.slots[slot].salt, LUKS1_SALT_LEN)) < 0)
		return r;
	nh.slots[slot].active = true;
	/* Material first, then the header that makes it a slot: a crash
	 * in between leaves the old header. */
	if ((r = write_slot(f, base, &nh, slot, &p, mk, pass, passlen)) < 0 ||
	    (r = mimg_file_flush(f)) < 0 ||
	    (r = luks1_write_header(f, base, &nh)) < 0)
		return r;
	*h = nh;
	if (slotp)
		*slotp = slot;
	return 0;
}

int luks1_slot_erase(struct mimg_file *f, uint64_t base, const char *path,
		     struct luks1_header *h, int slot, bool force)
{
	struct luks1_header nh = *h;
	uint64_t len;
	uint8_t *junk;
	int active = 0, r;

	if (slot < 0 || slot >= LUKS1_NUM_SLOTS)
		return mimg_err(-EINVAL,
				"%s: Invalid keyslot %d specified, "
				"must be between 0 and %d",
				path, slot, LUKS1_NUM_SLOTS - 1);
	if (!h->slots[slot].active)
		return mimg_err(-EINVAL,
				"%s: Given keyslot %d is already "
				"erased (inactive)",
				path, slot);
	for (int i = 0; i < LUKS1_NUM_SLOTS; i++)
		active += h->slots[i].active;
	if (active == 1 && !force)
		return mimg_err(-EBUSY,
				"%s: Attempt to erase the only active "
				"keyslot %d which will erase all the data in "
				"the image irreversibly - refusing operation",
				path, slot);
	/* The header first: once the slot is inactive its material is
	 * garbage; overwrite it with random bytes then. */
	nh.slots[slot].active = false;
	nh.slots[slot].iters = 0;
	memset(nh.slots[slot].salt, 0, LUKS1_SALT_LEN);
	if ((r = luks1_write_header(f, base, &nh)) < 0 ||
	    (r = mimg_file_flush(f)) < 0)
		return r;
	*h = nh;
	len = luks1_material_size(h->key_bytes, h->slots[slot].stripes);
	if (!(junk = malloc(len)))
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg_random_bytes(junk, len);
	if (r == 0)
		r = mimg_file_pwrite(f, junk, len,
				     base + (uint64_t)h->slots[slot]
							     .key_offset *
						     MIMG_CRYPTO_SECTOR);
	free(junk);
	return r;
}

int luks1_slots_opened_by(const struct luks1_header *h, struct mimg_file *f,
			  uint64_t base, const void *pass, size_t passlen,
			  unsigned *maskp)
{
	uint8_t mk[MIMG_CRYPTO_MAX_KEY];
	*maskp = 0;
	for (int i = 0; i < LUKS1_NUM_SLOTS; i++) {
		if (!h->slots[i].active)
			continue;
		int r = try_slot(h, i, f, base, pass, passlen, mk);
		if (r < 0)
			return r;
		if (r)
			*maskp |= 1u << i;
	}
	explicit_bzero(mk, sizeof(mk));
	return 0;
}

int luks1_keyslot_change(struct mimg_file *f, uint64_t base, const char *path,
			 struct luks1_header *h, const uint8_t *mk,
			 const struct luks1_keyslot_change *c, int *slotp)
{
	uint8_t key[MIMG_CRYPTO_MAX_KEY];
	unsigned mask;
	int r;

	if (!c->activate && c->slot >= 0)
		return luks1_slot_erase(f, base, path, h, c->slot, c->force);
	if (!c->activate) {
		if (!c->old_pass)
			return mimg_err(-EINVAL,
					"%s: erasing key slots needs "
					"encrypt.keyslot or encrypt.old-secret",
					path);
		if ((r = luks1_slots_opened_by(h, f, base, c->old_pass,
					       c->old_len, &mask)) < 0)
			return r;
		if (!mask)
			return mimg_err(-EACCES,
					"%s: No keyslots match given "
					"(old) password for erase operation",
					path);
		for (int i = 0; i < LUKS1_NUM_SLOTS && r == 0; i++)
			if (mask & (1u << i))
				r = luks1_slot_erase(f, base, path, h, i,
						     c->force);
		return r;
	}
	if (!c->new_pass)
		return mimg_err(-EINVAL,
				"%s: adding a key slot needs "
				"encrypt.new-secret",
				path);
	if (c->old_pass) {
		if ((r = luks1_unlock(h, f, base, path, c->old_pass, c->old_len,
				      key)) < 0)
			return r;
		mk = key;
	} else if (!mk) {
		return mimg_err(-EACCES,
				"%s: no secret unlocks the master key "
				"(give encrypt.old-secret)",
				path);
	}
	r = luks1_slot_add(f, base, path, h, mk, c->slot, c->new_pass,
			   c->new_len, c->iter_time_ms, c->max_iters, slotp);
	explicit_bzero(key, sizeof(key));
	return r;
}
