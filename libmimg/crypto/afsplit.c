/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The LUKS1 anti-forensic information splitter (the LUKS on-disk format
 * specification, section "AF-Splitter"): the key is spread over STRIPES
 * blocks so that destroying any one of them on disk destroys the key.
 *
 * diffuse(d): the block is cut into digest-sized pieces; piece i becomes
 * H(be32(i) || piece i), cut to the piece's length.
 * split: d = 0; for each of the first STRIPES-1 random blocks s,
 * d = diffuse(d ^ s); the last block is d ^ key.  Merge repeats the chain.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "dynlib.h"
#include "endian.h"
#include "error.h"

static int diffuse(EVP_MD_CTX *ctx, const EVP_MD *md, uint8_t *block,
		   size_t len)
{
	size_t dlen = (size_t)mimg__libcrypto.EVP_MD_get_size(md);
	uint8_t digest[EVP_MAX_MD_SIZE], idx[4];
	unsigned int outl;

	for (size_t off = 0, i = 0; off < len; off += dlen, i++) {
		size_t n = len - off < dlen ? len - off : dlen;
		st_be32(idx, (uint32_t)i);
		if (!mimg__libcrypto.EVP_DigestInit_ex(ctx, md, NULL) ||
		    !mimg__libcrypto.EVP_DigestUpdate(ctx, idx, sizeof(idx)) ||
		    !mimg__libcrypto.EVP_DigestUpdate(ctx, block + off, n) ||
		    !mimg__libcrypto.EVP_DigestFinal_ex(ctx, digest, &outl))
			return mimg_err(-EIO, "AF diffuse: hash failed");
		memcpy(block + off, digest, n);
	}
	explicit_bzero(digest, sizeof(digest));
	return 0;
}

static void xor_into(uint8_t *dst, const uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] ^= src[i];
}

/* d = chain over the first STRIPES-1 blocks of STRIPED. */
static int af_chain(enum mimg_hash_alg hash, const uint8_t *striped,
		    size_t keylen, uint32_t stripes, uint8_t *d)
{
	int r = mimg__crypto_lib_load("AF splitter");
	if (r < 0)
		return r;
	const EVP_MD *md = mimg_hash_md(hash);
	EVP_MD_CTX *ctx;

	if (!md)
		return mimg_err(-EINVAL, "AF splitter: unknown hash");
	if (stripes == 0 || keylen == 0)
		return mimg_err(-EINVAL,
				"AF splitter: %u stripes of %zu "
				"bytes",
				stripes, keylen);
	if (!(ctx = mimg__libcrypto.EVP_MD_CTX_new()))
		return mimg_err(-ENOMEM, "out of memory");
	memset(d, 0, keylen);
	for (uint32_t i = 0; i + 1 < stripes && r == 0; i++) {
		xor_into(d, striped + (size_t)i * keylen, keylen);
		r = diffuse(ctx, md, d, keylen);
	}
	mimg__libcrypto.EVP_MD_CTX_free(ctx);
	return r;
}

int mimg_af_split(enum mimg_hash_alg hash, const uint8_t *key, size_t keylen,
		  uint32_t stripes, uint8_t *out)
{
	uint8_t *last;
	int r;

	if (stripes == 0)
		return mimg_err(-EINVAL, "AF splitter: 0 stripes");
	last = out + (size_t)(stripes - 1) * keylen;
	if ((r = mimg_random_bytes(out, (size_t)(stripes - 1) * keylen)) < 0)
		return r;
	if ((r = af_chain(hash, out, keylen, stripes, last)) < 0)
		return r;
	xor_into(last, key, keylen);
	return 0;
}

int mimg_af_merge(enum mimg_hash_alg hash, const uint8_t *in, size_t keylen,
		  uint32_t stripes, uint8_t *key)
{
	int r = af_chain(hash, in, keylen, stripes, key);
	if (r < 0) {
		explicit_bzero(key, keylen);
		return r;
	}
	xor_into(key, in + (size_t)(stripes - 1) * keylen, keylen);
	return 0;
}
