/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The encryption layer's building blocks against published answers:
 * PBKDF2 (RFC 6070 for HMAC-SHA1, the widely published HMAC-SHA256
 * values for the same inputs), XTS-AES (IEEE 1619 vector 4), the LUKS1
 * anti-forensic splitter (round trip, and every stripe matters), and the
 * IV generators (plain, plain64, ESSIV computed by hand).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto/crypto.h"
#include "mimg.h"
#include "testutil.h"

static void unhex(const char *hex, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned v;
		ck_assert(sscanf(hex + 2 * i, "%2x", &v) == 1);
		out[i] = (uint8_t)v;
	}
}

static void check_pbkdf2(enum mimg_hash_alg hash, const char *pass,
			 const char *salt, uint32_t iters, const char *hex)
{
	uint8_t want[64], got[64];
	size_t len = strlen(hex) / 2;
	unhex(hex, want, len);
	ck_assert_int_eq(mimg_pbkdf2(hash, pass, strlen(pass),
				     (const uint8_t *)salt, strlen(salt), iters,
				     got, len),
			 0);
	ck_assert_mem_eq(got, want, len);
}

START_TEST(pbkdf2_sha1_rfc6070)
{
	check_pbkdf2(MIMG_HASH_SHA1, "password", "salt", 1,
		     "0c60c80f961f0e71f3a9b524af6012062fe037a6");
	check_pbkdf2(MIMG_HASH_SHA1, "password", "salt", 2,
		     "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
	check_pbkdf2(MIMG_HASH_SHA1, "password", "salt", 4096,
		     "4b007901b765489abead49d926f721d065a429c1");
	check_pbkdf2(MIMG_HASH_SHA1, "passwordPASSWORDpassword",
		     "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096,
		     "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038");
}
END_TEST

START_TEST(pbkdf2_sha256)
{
	check_pbkdf2(MIMG_HASH_SHA256, "password", "salt", 1,
		     "120fb6cffcf8b32c43e7225256c4f837"
		     "a86548c92ccc35480805987cb70be17b");
	check_pbkdf2(MIMG_HASH_SHA256, "password", "salt", 2,
		     "ae4d0c95af6b46d32d0adff928f06dd0"
		     "2a303f8ef3c251dfd6e2d85a95474c43");
	check_pbkdf2(MIMG_HASH_SHA256, "password", "salt", 4096,
		     "c5e478d59288c841aa530db6845c4c8d"
		     "962893a001ce4e11a4963873aa98134a");
}
END_TEST

START_TEST(pbkdf2_refuses_bad_input)
{
	uint8_t out[20];
	ck_assert_int_eq(mimg_pbkdf2(MIMG_HASH_NONE, "a", 1,
				     (const uint8_t *)"s", 1, 1, out, 20),
			 -EINVAL);
	ck_assert_int_eq(mimg_pbkdf2(MIMG_HASH_SHA1, "a", 1,
				     (const uint8_t *)"s", 1, 0, out, 20),
			 -EINVAL);
}
END_TEST

/* IEEE 1619-2007 vector 4: data unit 0, plaintext bytes 0..255 twice. */
START_TEST(xts_aes128_ieee1619_vector4)
{
	static const char key_hex[] = "27182818284590452353602874713526"
				      "31415926535897932384626433832795";
	static const char head_hex[] = "27a7479befa1d476489f308cd4cfa6e2"
				       "a96e4bbe3208ff25287dd3819616e89c"
				       "c78cf7f5e543445f8333d8fa7f560000"
				       "05279fa5d8b5e4ad40e736ddb4d35412";
	static const char tail_hex[] = "eb4a427d1923ce3ff262735779a418f2"
				       "0a282df920147beabe421ee5319d0568";
	uint8_t key[32], head[64], tail[32], buf[512], plain[512];
	struct mimg_sector_cipher sc;

	unhex(key_hex, key, sizeof(key));
	unhex(head_hex, head, sizeof(head));
	unhex(tail_hex, tail, sizeof(tail));
	for (int i = 0; i < 512; i++)
		plain[i] = (uint8_t)i;
	memcpy(buf, plain, sizeof(buf));
	ck_assert_int_eq(mimg_sector_cipher_init(&sc, MIMG_CIPHER_XTS,
						 MIMG_IVGEN_PLAIN64,
						 MIMG_HASH_NONE, key, 32),
			 0);
	ck_assert_int_eq(mimg_sector_crypt(&sc, true, 0, buf, 512), 0);
	ck_assert_mem_eq(buf, head, sizeof(head));
	ck_assert_mem_eq(buf + 512 - 32, tail, sizeof(tail));
	ck_assert_int_eq(mimg_sector_crypt(&sc, false, 0, buf, 512), 0);
	ck_assert_mem_eq(buf, plain, sizeof(plain));
	mimg_sector_cipher_wipe(&sc);
}
END_TEST

/* AES-192-XTS is built here from ECB: check it against the definition
 * computed independently with libcrypto's raw AES-192 for one sector. */
START_TEST(xts_aes192_by_hand)
{
	uint8_t key[48], buf[512], want[512], t[16], x[16];
	struct mimg_sector_cipher sc;
	EVP_CIPHER_CTX *k1 = EVP_CIPHER_CTX_new(), *k2 = EVP_CIPHER_CTX_new();
	int outl;

	tu_fill_random(key, sizeof(key), 7);
	tu_fill_random(buf, sizeof(buf), 8);
	ck_assert(EVP_EncryptInit_ex(k1, EVP_aes_192_ecb(), NULL, key, NULL));
	ck_assert(EVP_EncryptInit_ex(k2, EVP_aes_192_ecb(), NULL, key + 24,
				     NULL));
	EVP_CIPHER_CTX_set_padding(k1, 0);
	EVP_CIPHER_CTX_set_padding(k2, 0);
	memset(t, 0, sizeof(t));
	t[0] = 5; /* sector 5, plain64 */
	ck_assert(EVP_EncryptUpdate(k2, t, &outl, t, 16));
	for (int b = 0; b < 32; b++) {
		for (int i = 0; i < 16; i++)
			x[i] = buf[b * 16 + i] ^ t[i];
		ck_assert(EVP_EncryptUpdate(k1, x, &outl, x, 16));
		for (int i = 0; i < 16; i++)
			want[b * 16 + i] = x[i] ^ t[i];
		/* tweak * alpha */
		int carry = t[15] >> 7;
		for (int i = 15; i > 0; i--)
			t[i] = (uint8_t)((t[i] << 1) | (t[i - 1] >> 7));
		t[0] = (uint8_t)(t[0] << 1);
		if (carry)
			t[0] ^= 0x87;
	}
	EVP_CIPHER_CTX_free(k1);
	EVP_CIPHER_CTX_free(k2);
	ck_assert_int_eq(mimg_sector_cipher_init(&sc, MIMG_CIPHER_XTS,
						 MIMG_IVGEN_PLAIN64,
						 MIMG_HASH_NONE, key, 48),
			 0);
	uint8_t plain[512];
	memcpy(plain, buf, sizeof(buf));
	ck_assert_int_eq(mimg_sector_crypt(&sc, true, 5, buf, 512), 0);
	ck_assert_mem_eq(buf, want, sizeof(want));
	ck_assert_int_eq(mimg_sector_crypt(&sc, false, 5, buf, 512), 0);
	ck_assert_mem_eq(buf, plain, sizeof(plain));
	mimg_sector_cipher_wipe(&sc);
}
END_TEST

/* CBC with each IV generator: sector N's first block is AES(P0 ^ IV). */
static void check_cbc_iv(enum mimg_ivgen_alg ivgen, uint64_t sector,
			 const uint8_t iv[16], const uint8_t *key)
{
	uint8_t buf[512], x[16];
	struct mimg_sector_cipher sc;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int outl;

	tu_fill_random(buf, sizeof(buf), sector);
	for (int i = 0; i < 16; i++)
		x[i] = buf[i] ^ iv[i];
	ck_assert(EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL));
	EVP_CIPHER_CTX_set_padding(c, 0);
	ck_assert(EVP_EncryptUpdate(c, x, &outl, x, 16));
	EVP_CIPHER_CTX_free(c);
	ck_assert_int_eq(mimg_sector_cipher_init(&sc, MIMG_CIPHER_CBC, ivgen,
						 MIMG_HASH_SHA256, key, 16),
			 0);
	ck_assert_int_eq(mimg_sector_crypt(&sc, true, sector, buf, 512), 0);
	ck_assert_mem_eq(buf, x, 16);
	mimg_sector_cipher_wipe(&sc);
}

START_TEST(ivgens)
{
	uint8_t key[16], iv[16], salt[32];
	uint64_t sector = 0x1122334455ull;
	unsigned int n;
	int outl;

	tu_fill_random(key, sizeof(key), 3);
	/* plain: the low 32 bits, little-endian */
	memset(iv, 0, sizeof(iv));
	iv[0] = 0x55;
	iv[1] = 0x44;
	iv[2] = 0x33;
	iv[3] = 0x22;
	check_cbc_iv(MIMG_IVGEN_PLAIN, sector, iv, key);
	/* plain64: all 64 bits */
	iv[4] = 0x11;
	check_cbc_iv(MIMG_IVGEN_PLAIN64, sector, iv, key);
	/* essiv:sha256: plain64 encrypted by AES-256 keyed with
	 * SHA-256(key) */
	ck_assert(EVP_Digest(key, sizeof(key), salt, &n, EVP_sha256(), NULL));
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	ck_assert(EVP_EncryptInit_ex(c, EVP_aes_256_ecb(), NULL, salt, NULL));
	EVP_CIPHER_CTX_set_padding(c, 0);
	ck_assert(EVP_EncryptUpdate(c, iv, &outl, iv, 16));
	EVP_CIPHER_CTX_free(c);
	check_cbc_iv(MIMG_IVGEN_ESSIV, sector, iv, key);
}
END_TEST

START_TEST(essiv_needs_aes_sized_digest)
{
	ck_assert_int_eq(mimg_sector_cipher_check("t", MIMG_CIPHER_CBC,
						  MIMG_IVGEN_ESSIV,
						  MIMG_HASH_SHA1, 32),
			 -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "key size 20"));
	ck_assert_int_eq(mimg_sector_cipher_check("t", MIMG_CIPHER_XTS,
						  MIMG_IVGEN_PLAIN64,
						  MIMG_HASH_NONE, 40),
			 -ENOTSUP);
}
END_TEST

START_TEST(af_split_merge)
{
	static const enum mimg_hash_alg hashes[] = {MIMG_HASH_SHA1,
						    MIMG_HASH_SHA256,
						    MIMG_HASH_SHA512};
	static const size_t keylens[] = {16, 24, 32, 48, 64};
	for (size_t h = 0; h < 3; h++)
		for (size_t k = 0; k < 5; k++) {
			size_t kl = keylens[k];
			uint8_t key[64], back[64], *st = malloc(kl * 4000);
			ck_assert_ptr_nonnull(st);
			tu_fill_random(key, kl, h * 10 + k);
			ck_assert_int_eq(mimg_af_split(hashes[h], key, kl, 4000,
						       st),
					 0);
			ck_assert_int_eq(mimg_af_merge(hashes[h], st, kl, 4000,
						       back),
					 0);
			ck_assert_mem_eq(back, key, kl);
			/* destroying one stripe destroys the key */
			st[kl * 1234] ^= 1;
			ck_assert_int_eq(mimg_af_merge(hashes[h], st, kl, 4000,
						       back),
					 0);
			ck_assert(memcmp(back, key, kl) != 0);
			free(st);
		}
}
END_TEST

int main(void)
{
	return tu_main("luks_crypto", "crypto",
		       TU_TESTS(pbkdf2_sha1_rfc6070, pbkdf2_sha256,
				pbkdf2_refuses_bad_input,
				xts_aes128_ieee1619_vector4, xts_aes192_by_hand,
				ivgens, essiv_needs_aes_sized_digest,
				af_split_merge));
}
