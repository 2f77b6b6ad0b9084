/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * LUKS1 (the LUKS on-disk format specification 1.2): the 592-byte
 * big-endian header, its eight key slots, unlocking the master key with a
 * passphrase, writing a new header with one key slot, laid out as
 * qemu-img and cryptsetup lay it out, and adding or erasing key slots.
 * The header starts at byte BASE of its file: 0 for a raw LUKS image,
 * the encryption header's clusters inside a qcow2 image.  Key material
 * offsets are sectors from BASE.
 *
 *   0   magic "LUKS\xba\xbe"        6
 *   6   version (1)                 u16
 *   8   cipher name ("aes")         char[32], NUL-terminated
 *   40  cipher mode ("xts-plain64") char[32]
 *   72  hash spec ("sha256")        char[32]
 *   104 payload offset (sectors)    u32
 *   108 key bytes                   u32
 *   112 master key digest           20 bytes
 *   132 master key digest salt      32 bytes
 *   164 master key digest iters     u32
 *   168 uuid                        char[40]
 *   208 8 key slots of 48 bytes: active (0x00AC71F3 / 0x0000DEAD) u32,
 *       iterations u32, salt[32], key material offset (sectors) u32,
 *       stripes u32
 */
#ifndef MIMG_LUKS1_H
#define MIMG_LUKS1_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"

struct mimg_file;
struct mimg_value;

#define LUKS1_HEADER_SIZE 592
#define LUKS1_NUM_SLOTS 8
#define LUKS1_STRIPES 4000
#define LUKS1_SALT_LEN 32
#define LUKS1_DIGEST_LEN 20
#define LUKS1_NAME_LEN 32
#define LUKS1_UUID_LEN 40
#define LUKS1_SLOT_ENABLED 0x00AC71F3u
#define LUKS1_SLOT_DISABLED 0x0000DEADu
/* Key material starts at 4 KiB and each slot's area is 4 KiB-aligned. */
#define LUKS1_KEY_ALIGN_SECTORS 8
#define LUKS1_MIN_ITERS 1000

struct luks1_slot {
	bool active;
	uint32_t iters;
	uint8_t salt[LUKS1_SALT_LEN];
	uint32_t key_offset; /* sectors */
	uint32_t stripes;
};

struct luks1_header {
	char cipher_name[LUKS1_NAME_LEN];
	char cipher_mode
		[LUKS1_NAME_LEN]; /* "xts-plain64", "cbc-essiv:sha256" */
	char hash_spec[LUKS1_NAME_LEN];
	uint32_t payload_offset; /* sectors */
	uint32_t key_bytes;
	uint8_t mk_digest[LUKS1_DIGEST_LEN];
	uint8_t mk_salt[LUKS1_SALT_LEN];
	uint32_t mk_iters;
	char uuid[LUKS1_UUID_LEN + 1]; /* non-printable bytes as '?' */
	struct luks1_slot slots[LUKS1_NUM_SLOTS];

	/* Parsed from the names. */
	unsigned aes_bits; /* 128, 192, 256 */
	enum mimg_cipher_mode mode;
	enum mimg_ivgen_alg ivgen;
	enum mimg_hash_alg ivhash; /* MIMG_HASH_NONE unless given */
	enum mimg_hash_alg hash;
};

/*
 * Parse and validate BUF (LUKS1_HEADER_SIZE bytes) of the file PATH of
 * FILE_SIZE bytes.  Iteration counts above MAX_ITERS are refused.
 * Errors name the field and value: -EINVAL (corrupt), -ENOTSUP
 * (unsupported cipher, mode, hash or version).
 */
int luks1_parse(const uint8_t *buf, uint64_t file_size, uint64_t max_iters,
		const char *path, struct luks1_header *h);

/* Bytes of one key slot's material (key_bytes * stripes, whole sectors). */
uint64_t luks1_material_size(uint32_t key_bytes, uint32_t stripes);

/* Try PASS on every active key slot of the header at byte BASE of F; on
 * success the master key (h->key_bytes bytes) is in MK.  -EACCES "Invalid
 * password, cannot unlock any keyslot" when none opens. */
int luks1_unlock(const struct luks1_header *h, struct mimg_file *f,
		 uint64_t base, const char *path, const void *pass,
		 size_t passlen, uint8_t *mk);
/* luks1_unlock, also telling which slot opened (*SLOTP, may be NULL). */
int luks1_unlock_slot(const struct luks1_header *h, struct mimg_file *f,
		      uint64_t base, const char *path, const void *pass,
		      size_t passlen, uint8_t *mk, int *slotp);
/* Set bit I of *MASKP for every active slot I that PASS opens. */
int luks1_slots_opened_by(const struct luks1_header *h, struct mimg_file *f,
			  uint64_t base, const void *pass, size_t passlen,
			  unsigned *maskp);

struct luks1_create_params {
	unsigned aes_bits;
	enum mimg_cipher_mode mode;
	enum mimg_ivgen_alg ivgen;
	enum mimg_hash_alg ivhash; /* MIMG_HASH_NONE: not written */
	enum mimg_hash_alg hash;
	uint64_t iter_time_ms;
	uint64_t max_iters; /* iteration counts are capped to this */
};

/* Parse qemu-img's LUKS creation options named PREFIX + "cipher-alg"
 * etc. from OPTS into *P (defaults: aes-256, xts, plain64, sha256, 2000
 * ms).  Errors name the option and value: -EINVAL, -ENOTSUP (a cipher,
 * mode, IV generator or hash this layer cannot run). */
struct mimg_opt;
int luks1_create_opts(const char *path, const struct mimg_opt *opts,
		      size_t nopts, const char *prefix,
		      struct luks1_create_params *p);

/* Lay out a new header for P in *H (names, key slot areas, payload
 * offset), nothing written yet: the header and key material need
 * h->payload_offset sectors.  -ENOTSUP for a cipher this layer cannot
 * run. */
int luks1_layout(const struct luks1_create_params *p, struct luks1_header *h);
/* luks1_layout, and the random salts and uuid. */
int luks1_prepare(const struct luks1_create_params *p, struct luks1_header *h);
/*
 * Make a master key (into MK), its digest, and key slot 0 unlocked by
 * PASS for the header *H from luks1_prepare, and write the header and the
 * slot's material at byte BASE of F (which must have room for them).
 */
int luks1_format(struct mimg_file *f, uint64_t base,
		 const struct luks1_create_params *p, const void *pass,
		 size_t passlen, struct luks1_header *h, uint8_t *mk);
/* Encode *H and write it at byte BASE of F. */
int luks1_write_header(struct mimg_file *f, uint64_t base,
		       const struct luks1_header *h);

/*
 * Key slot changes (what qemu-img amend does to LUKS headers).
 *
 * luks1_slot_add seals the master key MK (h->key_bytes bytes, which the
 * caller unlocked) into key slot SLOT (-1: the first inactive one) with
 * PASS, PBKDF2 iterations measured for ITER_TIME_MS (0: 2000) and capped
 * at MAX_ITERS (0: the library default), writes the material, flushes,
 * then writes the header; *H is updated and *SLOTP (may be NULL) names
 * the slot.  Errors: -ENOSPC (every slot active), -EBUSY (SLOT active),
 * -EINVAL (SLOT out of range or without room), I/O errors.
 *
 * luks1_slot_erase marks SLOT inactive (header written and flushed
 * first), then overwrites its key material with random bytes.  Refuses
 * (-EBUSY) the only active slot unless FORCE; -EINVAL for a slot out of
 * range or already inactive.
 */
int luks1_slot_add(struct mimg_file *f, uint64_t base, const char *path,
		   struct luks1_header *h, const uint8_t *mk, int slot,
		   const void *pass, size_t passlen, uint64_t iter_time_ms,
		   uint64_t max_iters, int *slotp);
int luks1_slot_erase(struct mimg_file *f, uint64_t base, const char *path,
		     struct luks1_header *h, int slot, bool force);
/*
 * What qemu-img amend's encrypt.* options ask of a LUKS header:
 * ACTIVATE (encrypt.state=active) seals the master key into key slot
 * SLOT (encrypt.keyslot; -1: the first inactive one) with NEW_PASS
 * (encrypt.new-secret), the master key unlocked with OLD_PASS
 * (encrypt.old-secret) or, when OLD_PASS is NULL, taken from the open
 * image; !ACTIVATE (encrypt.state=inactive) erases SLOT, or when SLOT
 * is -1 every slot OLD_PASS opens.  ITER_TIME_MS (encrypt.iter-time, 0:
 * 2000) and MAX_ITERS (0: the library default) bound the new slot's
 * PBKDF2 work.  Erasing the last active slot needs FORCE.
 */
struct luks1_keyslot_change {
	bool activate;
	int slot;
	const void *old_pass;
	size_t old_len;
	const void *new_pass;
	size_t new_len;
	uint64_t iter_time_ms;
	uint64_t max_iters;
	bool force;
};

/* Apply C to the header *H at byte BASE of F (the file PATH); MK is the
 * master key the image is open with (NULL when it was opened without a
 * secret).  *SLOTP (may be NULL) receives the slot added.  Errors: those
 * of luks1_slot_add/luks1_slot_erase, -EACCES (OLD_PASS opens no slot,
 * or no key to seal), -EINVAL (a change without the passphrase it
 * needs). */
int luks1_keyslot_change(struct mimg_file *f, uint64_t base, const char *path,
			 struct luks1_header *h, const uint8_t *mk,
			 const struct luks1_keyslot_change *c, int *slotp);

struct mimg;
/* luks1_keyslot_change on an image open for writing: the raw luks
 * driver's header (formats/luks.c) and qcow2's encryption header
 * (formats/qcow2/qcow2-crypt.c).  -EROFS read-only, -EINVAL for an image
 * of another format or without LUKS encryption. */
int luks_keyslot_change(struct mimg *img, const struct luks1_keyslot_change *c,
			int *slotp);
int qcow2_keyslot_change(struct mimg *img, const struct luks1_keyslot_change *c,
			 int *slotp);

/* Add the header's members to DATA as qemu-img's info prints them, with
 * "format": FORMAT where FORMAT is not NULL (qcow2's "encrypt").  False
 * when out of memory. */
bool luks1_info(struct mimg_value *data, const struct luks1_header *h,
		const char *format);

#endif
