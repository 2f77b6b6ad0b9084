/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The encryption layer's building blocks (libcrypto underneath): hash
 * names, PBKDF2, the anti-forensic splitter of LUKS1, and sector ciphers
 * (AES in XTS or CBC mode with the plain, plain64 or ESSIV IV generator).
 *
 * A sector cipher holds only key material; every call that encrypts or
 * decrypts makes its own EVP context, so one cipher may be used from many
 * threads at once.  Key material is wiped with explicit_bzero when the
 * cipher is released.
 */
#ifndef MIMG_CRYPTO_H
#define MIMG_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define MIMG_CRYPTO_SECTOR 512
#define MIMG_CRYPTO_MAX_KEY 64	  /* AES-256-XTS: two 256-bit keys */
#define MIMG_CRYPTO_MAX_DIGEST 64 /* SHA-512 */

enum mimg_hash_alg {
	MIMG_HASH_NONE = 0,
	MIMG_HASH_SHA1,
	MIMG_HASH_SHA256,
	MIMG_HASH_SHA512,
};

enum mimg_cipher_mode {
	MIMG_CIPHER_XTS = 1,
	MIMG_CIPHER_CBC,
};

enum mimg_ivgen_alg {
	MIMG_IVGEN_PLAIN = 1, /* little-endian sector number, 32 bits */
	MIMG_IVGEN_PLAIN64,   /* little-endian sector number, 64 bits */
	MIMG_IVGEN_ESSIV,     /* sector number encrypted with H(key) */
};

/* Name <-> value ("sha256", "xts", "plain64"); 0 for an unknown name. */
enum mimg_hash_alg mimg_hash_lookup(const char *name);
const char *mimg_hash_name(enum mimg_hash_alg alg);
size_t mimg_hash_len(enum mimg_hash_alg alg);
/* libcrypto's digest for ALG, NULL for MIMG_HASH_NONE. */
const EVP_MD *mimg_hash_md(enum mimg_hash_alg alg);
enum mimg_cipher_mode mimg_cipher_mode_lookup(const char *name);
const char *mimg_cipher_mode_name(enum mimg_cipher_mode mode);
enum mimg_ivgen_alg mimg_ivgen_lookup(const char *name);
const char *mimg_ivgen_name(enum mimg_ivgen_alg alg);

/* PBKDF2-HMAC with HASH.  -EINVAL for an unknown hash, -EIO when libcrypto
 * fails.  Thread-safe. */
int mimg_pbkdf2(enum mimg_hash_alg hash, const void *pass, size_t passlen,
		const uint8_t *salt, size_t saltlen, uint32_t iters,
		uint8_t *out, size_t outlen);
/* Iterations of PBKDF2 with HASH that take about MS milliseconds here
 * for a key of KEYLEN bytes (measured).  At least 1. */
int mimg_pbkdf2_count_iters(enum mimg_hash_alg hash, size_t keylen, uint64_t ms,
			    uint64_t *iters);

/* Cryptographically strong random bytes; -EIO when none are available. */
int mimg_random_bytes(void *buf, size_t len);

/*
 * LUKS1 anti-forensic split: KEY (KEYLEN bytes) becomes STRIPES blocks of
 * KEYLEN bytes in OUT (KEYLEN * STRIPES bytes), all but the last random,
 * diffused with HASH.  Merge recovers KEY from the blocks.  Thread-safe.
 */
int mimg_af_split(enum mimg_hash_alg hash, const uint8_t *key, size_t keylen,
		  uint32_t stripes, uint8_t *out);
int mimg_af_merge(enum mimg_hash_alg hash, const uint8_t *in, size_t keylen,
		  uint32_t stripes, uint8_t *key);

/* A sector cipher: AES-(KEYLEN*8 or KEYLEN*4 for XTS) in MODE, with IVs
 * from IVGEN (IVHASH for ESSIV). */
struct mimg_sector_cipher {
	enum mimg_cipher_mode mode;
	enum mimg_ivgen_alg ivgen;
	enum mimg_hash_alg ivhash;
	size_t key_len;
	uint8_t key[MIMG_CRYPTO_MAX_KEY];
	size_t essiv_key_len;
	uint8_t essiv_key[MIMG_CRYPTO_MAX_DIGEST];
	/* Fetched once by init: libcrypto's implicit fetch would otherwise
	 * look the algorithm up (under a lock) on every call. */
	EVP_CIPHER *data_cipher;  /* AES-XTS, AES-CBC, or AES-ECB for XTS
				   * made here (AES-192) */
	EVP_CIPHER *essiv_cipher; /* AES-ECB keyed by the digest, or NULL */
	bool xts_by_hand;
};

/* Check that the combination is one this layer can run: AES key of
 * 16/24/32 bytes (twice that for XTS), ESSIV with a hash whose digest
 * is an AES key size.  -ENOTSUP with a message naming what is wrong;
 * WHAT prefixes the message (the file name). */
int mimg_sector_cipher_check(const char *what, enum mimg_cipher_mode mode,
			     enum mimg_ivgen_alg ivgen,
			     enum mimg_hash_alg ivhash, size_t key_len);
int mimg_sector_cipher_init(struct mimg_sector_cipher *sc,
			    enum mimg_cipher_mode mode,
			    enum mimg_ivgen_alg ivgen,
			    enum mimg_hash_alg ivhash, const uint8_t *key,
			    size_t key_len);
void mimg_sector_cipher_wipe(struct mimg_sector_cipher *sc);
/* Encrypt or decrypt LEN bytes (whole 512-byte sectors) of BUF in place;
 * the first sector is number SECTOR.  Thread-safe. */
int mimg_sector_crypt(const struct mimg_sector_cipher *sc, bool encrypt,
		      uint64_t sector, uint8_t *buf, size_t len);

#endif
