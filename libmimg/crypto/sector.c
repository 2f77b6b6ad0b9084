/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Sector ciphers as dm-crypt and LUKS1 define them: each 512-byte sector
 * is encrypted on its own, AES in XTS or CBC mode, with an IV made from
 * the sector number by the plain, plain64 or ESSIV generator.
 *
 * libcrypto has no AES-192-XTS, which qemu and dm-crypt allow: that one is
 * built here from AES-192-ECB (XTS over whole 16-byte blocks needs no
 * ciphertext stealing, and a sector is 32 blocks).
 *
 * Every call makes its own EVP contexts, so a cipher is shared by threads
 * without locks.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "dynlib.h"
#include "endian.h"
#include "error.h"

#define AES_BLOCK 16

/* AES-128, -192 or -256. */
static bool aes_key_len(size_t key_len)
{
	return key_len == 16 || key_len == 24 || key_len == 32;
}

/* Fetch "AES-<BITS>-<MODE>" from the default library context. */
static EVP_CIPHER *fetch_aes(size_t bits, const char *mode)
{
	char name[32];
	snprintf(name, sizeof(name), "AES-%zu-%s", bits, mode);
	return mimg__libcrypto.EVP_CIPHER_fetch(NULL, name, NULL);
}

static int fetch_ciphers(struct mimg_sector_cipher *sc)
{
	if (sc->mode == MIMG_CIPHER_XTS && sc->key_len == 48) {
		/* libcrypto has no AES-192-XTS */
		sc->xts_by_hand = true;
		sc->data_cipher = fetch_aes(192, "ECB");
	} else if (sc->mode == MIMG_CIPHER_XTS) {
		sc->data_cipher = fetch_aes(sc->key_len * 4, "XTS");
	} else {
		sc->data_cipher = fetch_aes(sc->key_len * 8, "CBC");
	}
	if (sc->ivgen == MIMG_IVGEN_ESSIV)
		sc->essiv_cipher = fetch_aes(sc->essiv_key_len * 8, "ECB");
	if (!sc->data_cipher ||
	    (sc->ivgen == MIMG_IVGEN_ESSIV && !sc->essiv_cipher))
		return mimg_err(-ENOTSUP,
				"libcrypto has no AES cipher for "
				"%s with a %zu-byte key",
				mimg_cipher_mode_name(sc->mode), sc->key_len);
	return 0;
}

int mimg_sector_cipher_check(const char *what, enum mimg_cipher_mode mode,
			     enum mimg_ivgen_alg ivgen,
			     enum mimg_hash_alg ivhash, size_t key_len)
{
	size_t aes_len = mode == MIMG_CIPHER_XTS ? key_len / 2 : key_len;
	/* Every cipher is checked first: libcrypto is loaded here. */
	int r = mimg__crypto_lib_load(what);
	if (r < 0)
		return r;
	if (mode != MIMG_CIPHER_XTS && mode != MIMG_CIPHER_CBC)
		return mimg_err(-ENOTSUP, "%s: unsupported cipher mode", what);
	if ((mode == MIMG_CIPHER_XTS && key_len % 2) || !aes_key_len(aes_len))
		return mimg_err(-ENOTSUP,
				"%s: Algorithm aes with key size %zu "
				"bytes not supported in %s mode",
				what, key_len, mimg_cipher_mode_name(mode));
	if (ivgen != MIMG_IVGEN_PLAIN && ivgen != MIMG_IVGEN_PLAIN64 &&
	    ivgen != MIMG_IVGEN_ESSIV)
		return mimg_err(-ENOTSUP, "%s: unsupported IV generator", what);
	if (ivgen == MIMG_IVGEN_ESSIV) {
		if (ivhash == MIMG_HASH_NONE)
			return mimg_err(-EINVAL,
					"%s: Missing IV generator "
					"hash specification",
					what);
		/* ESSIV's key is a digest: AES needs it 16/24/32 bytes */
		if (!aes_key_len(mimg_hash_len(ivhash)))
			return mimg_err(-ENOTSUP,
					"%s: No AES cipher with key "
					"size %zu available for essiv:%s",
					what, mimg_hash_len(ivhash),
					mimg_hash_name(ivhash));
	}
	return 0;
}

int mimg_sector_cipher_init(struct mimg_sector_cipher *sc,
			    enum mimg_cipher_mode mode,
			    enum mimg_ivgen_alg ivgen,
			    enum mimg_hash_alg ivhash, const uint8_t *key,
			    size_t key_len)
{
	int r = mimg_sector_cipher_check("cipher", mode, ivgen, ivhash,
					 key_len);
	if (r < 0)
		return r;
	memset(sc, 0, sizeof(*sc));
	sc->mode = mode;
	sc->ivgen = ivgen;
	sc->ivhash = ivgen == MIMG_IVGEN_ESSIV ? ivhash : MIMG_HASH_NONE;
	sc->key_len = key_len;
	memcpy(sc->key, key, key_len);
	if (ivgen == MIMG_IVGEN_ESSIV) {
		unsigned int n = 0;
		if (!mimg__libcrypto.EVP_Digest(key, key_len, sc->essiv_key, &n,
						mimg_hash_md(ivhash), NULL)) {
			mimg_sector_cipher_wipe(sc);
			return mimg_err(-EIO, "ESSIV: hashing the key failed");
		}
		sc->essiv_key_len = n;
	}
	if ((r = fetch_ciphers(sc)) < 0) {
		mimg_sector_cipher_wipe(sc);
		return r;
	}
	return 0;
}

void mimg_sector_cipher_wipe(struct mimg_sector_cipher *sc)
{
	/* Ciphers are only fetched once libcrypto is loaded. */
	if (sc->data_cipher)
		mimg__libcrypto.EVP_CIPHER_free(sc->data_cipher);
	if (sc->essiv_cipher)
		mimg__libcrypto.EVP_CIPHER_free(sc->essiv_cipher);
	explicit_bzero(sc, sizeof(*sc));
}

/* The contexts one call needs: the data cipher (or, for hand-made XTS,
 * the data and tweak ECB ciphers) and the ESSIV cipher. */
struct crypt_ctx {
	EVP_CIPHER_CTX *data;
	EVP_CIPHER_CTX *tweak;
	EVP_CIPHER_CTX *essiv;
};

static void ctx_free(struct crypt_ctx *c)
{
	mimg__libcrypto.EVP_CIPHER_CTX_free(c->data);
	mimg__libcrypto.EVP_CIPHER_CTX_free(c->tweak);
	mimg__libcrypto.EVP_CIPHER_CTX_free(c->essiv);
}

static bool new_ctx(EVP_CIPHER_CTX **ctx, const EVP_CIPHER *cipher,
		    const uint8_t *key, int enc)
{
	return (*ctx = mimg__libcrypto.EVP_CIPHER_CTX_new()) &&
	       mimg__libcrypto.EVP_CipherInit_ex2(*ctx, cipher, key, NULL, enc,
						  NULL) &&
	       mimg__libcrypto.EVP_CIPHER_CTX_set_padding(*ctx, 0);
}

static int ctx_init(struct crypt_ctx *c, const struct mimg_sector_cipher *sc,
		    int enc)
{
	bool ok;
	memset(c, 0, sizeof(*c));
	if (sc->xts_by_hand)
		ok = new_ctx(&c->data, sc->data_cipher, sc->key, enc) &&
		     new_ctx(&c->tweak, sc->data_cipher,
			     sc->key + sc->key_len / 2, 1);
	else
		ok = new_ctx(&c->data, sc->data_cipher, sc->key, enc);
	if (ok && sc->ivgen == MIMG_IVGEN_ESSIV)
		ok = new_ctx(&c->essiv, sc->essiv_cipher, sc->essiv_key, 1);
	if (!ok) {
		ctx_free(c);
		return mimg_err(-EIO, "libcrypto could not set up the "
				      "sector cipher");
	}
	return 0;
}

static bool make_iv(const struct crypt_ctx *c,
		    const struct mimg_sector_cipher *sc, uint64_t sector,
		    uint8_t iv[AES_BLOCK])
{
	int outl;
	memset(iv, 0, AES_BLOCK);
	if (sc->ivgen == MIMG_IVGEN_PLAIN) {
		st_le32(iv, (uint32_t)sector);
		return true;
	}
	st_le64(iv, sector);
	if (sc->ivgen == MIMG_IVGEN_PLAIN64)
		return true;
	return mimg__libcrypto.EVP_EncryptUpdate(c->essiv, iv, &outl, iv,
						 AES_BLOCK) &&
	       outl == AES_BLOCK;
}

/* Multiply the tweak by x in GF(2^128), little-endian as XTS does. */
static void xts_next_tweak(uint8_t t[AES_BLOCK])
{
	unsigned carry = 0;
	for (int i = 0; i < AES_BLOCK; i++) {
		unsigned b = t[i];
		t[i] = (uint8_t)((b << 1) | carry);
		carry = b >> 7;
	}
	if (carry)
		t[0] ^= 0x87;
}

static bool xts_sector_by_hand(const struct crypt_ctx *c, uint8_t *p,
			       const uint8_t iv[AES_BLOCK])
{
	uint8_t tweaks[MIMG_CRYPTO_SECTOR], t[AES_BLOCK];
	int outl;
	bool ok = mimg__libcrypto.EVP_EncryptUpdate(c->tweak, t, &outl, iv,
						    AES_BLOCK) &&
		  outl == AES_BLOCK;
	for (int b = 0; ok && b < MIMG_CRYPTO_SECTOR / AES_BLOCK; b++) {
		memcpy(tweaks + b * AES_BLOCK, t, AES_BLOCK);
		xts_next_tweak(t);
	}
	for (int i = 0; ok && i < MIMG_CRYPTO_SECTOR; i++)
		p[i] ^= tweaks[i];
	ok = ok &&
	     mimg__libcrypto.EVP_CipherUpdate(c->data, p, &outl, p,
					      MIMG_CRYPTO_SECTOR) &&
	     outl == MIMG_CRYPTO_SECTOR;
	for (int i = 0; ok && i < MIMG_CRYPTO_SECTOR; i++)
		p[i] ^= tweaks[i];
	explicit_bzero(tweaks, sizeof(tweaks));
	explicit_bzero(t, sizeof(t));
	return ok;
}

int mimg_sector_crypt(const struct mimg_sector_cipher *sc, bool encrypt,
		      uint64_t sector, uint8_t *buf, size_t len)
{
	struct crypt_ctx c;
	uint8_t iv[AES_BLOCK];
	bool ok = true;
	int r;

	if (len % MIMG_CRYPTO_SECTOR)
		return mimg_err(-EINVAL,
				"sector cipher: length %zu is not "
				"whole sectors",
				len);
	if ((r = ctx_init(&c, sc, encrypt ? 1 : 0)) < 0)
		return r;
	for (size_t off = 0; ok && off < len;
	     off += MIMG_CRYPTO_SECTOR, sector++) {
		uint8_t *p = buf + off;
		int outl = 0;
		ok = make_iv(&c, sc, sector, iv);
		if (ok && c.tweak) {
			ok = xts_sector_by_hand(&c, p, iv);
			continue;
		}
		ok = ok &&
		     mimg__libcrypto.EVP_CipherInit_ex2(c.data, NULL, NULL, iv,
							-1, NULL) &&
		     mimg__libcrypto.EVP_CipherUpdate(c.data, p, &outl, p,
						      MIMG_CRYPTO_SECTOR) &&
		     outl == MIMG_CRYPTO_SECTOR;
	}
	explicit_bzero(iv, sizeof(iv));
	ctx_free(&c);
	if (!ok)
		return mimg_err(-EIO, "libcrypto failed to %s sector %llu",
				encrypt ? "encrypt" : "decrypt",
				(unsigned long long)sector);
	return 0;
}
