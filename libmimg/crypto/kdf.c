/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Hash, cipher-mode and IV-generator names; PBKDF2 and its iteration
 * benchmark; random bytes.  All through libcrypto.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crypto.h"
#include "dynlib.h"
#include "error.h"

struct name_map {
	const char *name;
	int value;
};

static int map_lookup(const struct name_map *m, const char *name)
{
	for (; m->name; m++)
		if (strcmp(m->name, name) == 0)
			return m->value;
	return 0;
}

static const char *map_name(const struct name_map *m, int value)
{
	for (; m->name; m++)
		if (m->value == value)
			return m->name;
	return "unknown";
}

static const struct name_map hashes[] = {
	{"sha1", MIMG_HASH_SHA1},
	{"sha256", MIMG_HASH_SHA256},
	{"sha512", MIMG_HASH_SHA512},
	{NULL, 0},
};

static const struct name_map modes[] = {
	{"xts", MIMG_CIPHER_XTS},
	{"cbc", MIMG_CIPHER_CBC},
	{NULL, 0},
};

static const struct name_map ivgens[] = {
	{"plain", MIMG_IVGEN_PLAIN},
	{"plain64", MIMG_IVGEN_PLAIN64},
	{"essiv", MIMG_IVGEN_ESSIV},
	{NULL, 0},
};

enum mimg_hash_alg mimg_hash_lookup(const char *name)
{
	return (enum mimg_hash_alg)map_lookup(hashes, name);
}

const char *mimg_hash_name(enum mimg_hash_alg alg)
{
	return map_name(hashes, alg);
}

enum mimg_cipher_mode mimg_cipher_mode_lookup(const char *name)
{
	return (enum mimg_cipher_mode)map_lookup(modes, name);
}

const char *mimg_cipher_mode_name(enum mimg_cipher_mode mode)
{
	return map_name(modes, mode);
}

enum mimg_ivgen_alg mimg_ivgen_lookup(const char *name)
{
	return (enum mimg_ivgen_alg)map_lookup(ivgens, name);
}

const char *mimg_ivgen_name(enum mimg_ivgen_alg alg)
{
	return map_name(ivgens, alg);
}

const EVP_MD *mimg_hash_md(enum mimg_hash_alg alg)
{
	if (mimg__crypto_lib_load("hash") < 0)
		return NULL;
	switch (alg) {
	case MIMG_HASH_SHA1: return mimg__libcrypto.EVP_sha1();
	case MIMG_HASH_SHA256: return mimg__libcrypto.EVP_sha256();
	case MIMG_HASH_SHA512: return mimg__libcrypto.EVP_sha512();
	default: return NULL;
	}
}

size_t mimg_hash_len(enum mimg_hash_alg alg)
{
	const EVP_MD *md = mimg_hash_md(alg);
	return md ? (size_t)mimg__libcrypto.EVP_MD_get_size(md) : 0;
}

int mimg_pbkdf2(enum mimg_hash_alg hash, const void *pass, size_t passlen,
		const uint8_t *salt, size_t saltlen, uint32_t iters,
		uint8_t *out, size_t outlen)
{
	int r = mimg__crypto_lib_load("PBKDF2");
	if (r < 0)
		return r;
	const EVP_MD *md = mimg_hash_md(hash);
	if (!md)
		return mimg_err(-EINVAL, "PBKDF2: unknown hash");
	if (iters == 0 || iters > INT32_MAX || passlen > INT32_MAX ||
	    saltlen > INT32_MAX || outlen > INT32_MAX)
		return mimg_err(-EINVAL,
				"PBKDF2: iteration count %u or "
				"length out of range",
				iters);
	/* An empty passphrase is valid; libcrypto wants a non-NULL pointer */
	if (!pass)
		pass = "";
	if (!mimg__libcrypto.PKCS5_PBKDF2_HMAC(pass, (int)passlen, salt,
					       (int)saltlen, (int)iters, md,
					       (int)outlen, out))
		return mimg_err(-EIO, "PBKDF2 with %s failed",
				mimg_hash_name(hash));
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mimg_pbkdf2_count_iters(enum mimg_hash_alg hash, size_t keylen, uint64_t ms,
			    uint64_t *iters)
{
	static const char pass[] = "benchmark passphrase";
	uint8_t salt[32] = {0}, out[MIMG_CRYPTO_MAX_KEY];
	uint32_t n = 1 << 10;
	uint64_t elapsed = 0;
	int r;

	if (keylen > sizeof(out))
		keylen = sizeof(out);
	/* Double the work until one run takes long enough to time. */
	for (;;) {
		uint64_t t0 = now_ns();
		if ((r = mimg_pbkdf2(hash, pass, sizeof(pass) - 1, salt,
				     sizeof(salt), n, out, keylen)) < 0)
			return r;
		elapsed = now_ns() - t0;
		if (elapsed >= 20000000u || n >= (1u << 30))
			break;
		n *= 2;
	}
	explicit_bzero(out, sizeof(out));
	if (elapsed == 0)
		elapsed = 1;
	/* n per elapsed ns, scaled to MS milliseconds; saturating */
	long double v = (long double)n * (long double)ms * 1e6L /
			(long double)elapsed;
	*iters = v < 1				   ? 1
		 : v > (long double)UINT64_MAX / 2 ? UINT64_MAX / 2
						   : (uint64_t)v;
	return 0;
}

int mimg_random_bytes(void *buf, size_t len)
{
	int r = mimg__crypto_lib_load("random bytes");
	if (r < 0)
		return r;
	if (len > INT32_MAX || mimg__libcrypto.RAND_bytes(buf, (int)len) != 1)
		return mimg_err(-EIO, "no random bytes available from "
				      "libcrypto");
	return 0;
}
