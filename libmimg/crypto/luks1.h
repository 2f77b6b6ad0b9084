/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * LUKS1 (the LUKS on-disk format specification 1.2): the 592-byte
 * big-endian header, its eight key slots, unlocking the master key with a
 * passphrase, and writing a new header with one key slot, laid out as
 * qemu-img and cryptsetup lay it out.
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
	char cipher_mode[LUKS1_NAME_LEN]; /* "xts-plain64", "cbc-essiv:sha256" */
	char hash_spec[LUKS1_NAME_LEN];
	uint32_t payload_offset; /* sectors */
	uint32_t key_bytes;
	uint8_t mk_digest[LUKS1_DIGEST_LEN];
	uint8_t mk_salt[LUKS1_SALT_LEN];
	uint32_t mk_iters;
	char uuid[LUKS1_UUID_LEN + 1]; /* non-printable bytes as '?' */
	struct luks1_slot slots[LUKS1_NUM_SLOTS];

	/* Parsed from the names. */
	unsigned aes_bits;	/* 128, 192, 256 */
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

/* Try PASS on every active key slot; on success the master key
 * (h->key_bytes bytes) is in MK.  -EACCES "Invalid password, cannot unlock
 * any keyslot" when none opens. */
int luks1_unlock(const struct luks1_header *h, struct mimg_file *f,
		 const char *path, const void *pass, size_t passlen,
		 uint8_t *mk);

struct luks1_create_params {
	unsigned aes_bits;
	enum mimg_cipher_mode mode;
	enum mimg_ivgen_alg ivgen;
	enum mimg_hash_alg ivhash; /* MIMG_HASH_NONE: not written */
	enum mimg_hash_alg hash;
	uint64_t iter_time_ms;
	uint64_t max_iters; /* iteration counts are capped to this */
};

/*
 * Write a LUKS1 header and key slot 0 (unlocked by PASS) into F, which
 * must be empty, and size it to hold SIZE bytes of payload.  The new
 * header is in *H and the master key in MK on success.
 */
int luks1_format(struct mimg_file *f, const char *path,
		 const struct luks1_create_params *p, uint64_t size,
		 const void *pass, size_t passlen, struct luks1_header *h,
		 uint8_t *mk);

#endif
