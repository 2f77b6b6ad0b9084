/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The luks driver through the public API: create and open with a secret,
 * aligned and unaligned I/O, concurrent I/O, every cipher combination,
 * opening without a secret (info only), a wrong passphrase, the secret
 * struct's size check, and hostile headers (each refused with a message
 * naming the field, the file left untouched).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "mimg.h"
#include "testutil.h"

#define MIB (1024 * 1024)
#define PASS "correct horse"

static void create_luks(const char *path, uint64_t size, const char *extra)
{
	char text[256];
	struct mimg_secret s = tu_secret(PASS);
	snprintf(text, sizeof(text), "key-secret=sec0,iter-time=5%s%s",
		 extra ? "," : "", extra ? extra : "");
	tu_create(path, "luks", size, text, &s);
}

static struct mimg *open_luks(const char *path, unsigned flags)
{
	struct mimg *img = tu_open_secret(path, flags, PASS);
	ck_assert_str_eq(mimg_format(img), "luks");
	return img;
}

/* Writes at awkward offsets, checked against a shadow copy. */
static void rw_roundtrip(const char *extra)
{
	static const struct tu_range w[] = {
		TU_AWKWARD_RANGES,
		{4 * MIB - 512, 512},
	};
	const size_t size = 4 * MIB;
	uint8_t *shadow = calloc(1, size), *buf = malloc(size);
	struct mimg *img;

	create_luks("t.luks", size, extra);
	img = open_luks("t.luks", MIMG_OPEN_RDWR);
	ck_assert_uint_eq(mimg_size(img), size);
	/* a fresh LUKS image reads as noise, not zeroes: start known */
	ck_assert_int_eq(mimg_pwrite(img, shadow, size, 0, 0), (ssize_t)size);
	tu_write_ranges(img, shadow, size, w, TU_NELEM(w), 1);
	ck_assert_int_eq(mimg_close(img), 0);
	img = open_luks("t.luks", 0);
	ck_assert_int_eq(mimg_pread(img, buf, size, 0, 0), (ssize_t)size);
	ck_assert(memcmp(buf, shadow, size) == 0);
	ck_assert_int_eq(mimg_pread(img, buf, 777, 12345, 0), 777);
	ck_assert(memcmp(buf, shadow + 12345, 777) == 0);
	mimg_close(img);
	free(shadow);
	free(buf);
}

START_TEST(roundtrip_default)
{
	rw_roundtrip(NULL);
}
END_TEST

START_TEST(roundtrip_every_combination)
{
	static const char *const combos[] = {
		"cipher-alg=aes-128",
		"cipher-alg=aes-192",
		"cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=plain",
		"cipher-alg=aes-192,cipher-mode=cbc,ivgen-alg=plain64",
		"cipher-mode=cbc,ivgen-alg=essiv",
		("cipher-alg=aes-128,cipher-mode=xts,ivgen-alg=essiv,"
		 "ivgen-hash-alg=sha256"),
		"hash-alg=sha1",
		"hash-alg=sha512",
	};
	for (size_t i = 0; i < sizeof(combos) / sizeof(combos[0]); i++)
		rw_roundtrip(combos[i]);
}
END_TEST

START_TEST(create_refusals)
{
	struct mimg_secret s = tu_secret(PASS);
	struct mimg_opt serpent[] = {{"cipher-alg", "serpent-256"}};
	struct mimg_opt twofish[] = {{"cipher-alg", "twofish-128"}};
	struct mimg_opt sha1essiv[] = {{"ivgen-alg", "essiv"},
				       {"ivgen-hash-alg", "sha1"}};
	ck_assert_int_lt(mimg_create("a.luks", "luks", MIB, NULL, 0), 0);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "key-secret"));
	ck_assert_int_eq(mimg_create_secret("a.luks", "luks", MIB, serpent, 1,
					    &s),
			 -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "serpent"));
	ck_assert_int_eq(mimg_create_secret("a.luks", "luks", MIB, twofish, 1,
					    &s),
			 -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "twofish"));
	ck_assert_int_eq(mimg_create_secret("a.luks", "luks", MIB, sha1essiv, 2,
					    &s),
			 -ENOTSUP);
	/* formats without encryption take no secret */
	ck_assert_int_eq(mimg_create_secret("a.raw", "raw", MIB, NULL, 0, &s),
			 -ENOTSUP);
}
END_TEST

START_TEST(wrong_passphrase)
{
	struct mimg *img;
	struct mimg_secret s = tu_secret("wrong");
	create_luks("t.luks", MIB, NULL);
	ck_assert_int_eq(mimg_open_secret(&img, "t.luks", NULL, 0, &s),
			 -EACCES);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(),
				     "Invalid password, "
				     "cannot unlock any keyslot"));
	ck_assert_ptr_null(strstr(mimg_errmsg(), "wrong"));
}
END_TEST

START_TEST(no_secret_info_only)
{
	struct mimg *img;
	struct mimg_value *info;
	uint8_t buf[512];
	create_luks("t.luks", MIB, NULL);
	ck_assert_int_eq(mimg_open(&img, "t.luks", NULL, 0), 0);
	ck_assert_str_eq(mimg_format(img), "luks");
	ck_assert_int_eq(mimg_info(img, &info), 0);
	const struct mimg_value *fs = mimg_value_get(info, "format-specific");
	ck_assert_ptr_nonnull(fs);
	ck_assert_str_eq(mimg_value_get(fs, "type")->v.s, "luks");
	const struct mimg_value *d = mimg_value_get(fs, "data");
	ck_assert_str_eq(mimg_value_get(d, "cipher-alg")->v.s, "aes-256");
	ck_assert_str_eq(mimg_value_get(d, "cipher-mode")->v.s, "xts");
	ck_assert_str_eq(mimg_value_get(d, "ivgen-alg")->v.s, "plain64");
	ck_assert_uint_eq(mimg_value_get(d, "payload-offset")->v.u, 2068480);
	ck_assert(mimg_value_get(info, "encrypted")->v.b);
	char *json = mimg_value_to_json(info);
	ck_assert_ptr_null(strstr(json, PASS));
	free(json);
	mimg_value_free(info);
	ck_assert_int_eq(mimg_pread(img, buf, sizeof(buf), 0, 0), -EACCES);
	mimg_close(img);
}
END_TEST

/* Opening t.luks with secret S gives ERR (0: it opens), with WANT in the
 * message (NULL: not looked at). */
static void expect_open(const struct mimg_secret *s, int err, const char *want)
{
	struct mimg *img = NULL;
	int r = mimg_open_secret(&img, "t.luks", NULL, 0, s);
	ck_assert_msg(r == err, "got %d (%s), want %d", r, mimg_errmsg(), err);
	ck_assert_msg(!want || strstr(mimg_errmsg(), want),
		      "message '%s' lacks '%s'", mimg_errmsg(), want);
	if (r == 0)
		mimg_close(img);
}

START_TEST(secret_struct_size)
{
	struct mimg_secret s = tu_secret(PASS);
	create_luks("t.luks", MIB, NULL);
	s.size = 4;
	expect_open(&s, -EINVAL, NULL);
	/* an older caller's struct without max_pbkdf2_iters */
	s.size = offsetof(struct mimg_secret, max_pbkdf2_iters);
	s.max_pbkdf2_iters = 1; /* not covered by size: ignored */
	expect_open(&s, 0, NULL);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Hostile headers                                                         */

#define SLOT0 208

/* A change to a fresh image's header: the LEN bytes at OFF become BE
 * (big-endian, LEN 2 or 4), or BYTES, or (FROM_SLOT0) a copy of key slot
 * 0; opening the image must then fail with ERR, WANT in the message. */
struct hostile {
	unsigned off, len;
	uint32_t be;
	const char *bytes;
	bool from_slot0;
	int err;
	const char *want;
};

static const struct hostile hostile[] = {
	{SLOT0 + 4, 4, 20000000, NULL, false, -EINVAL,
	 "iteration count 20000000"},
	{164, 4, 0xffffffffu, NULL, false, -EINVAL, "above the limit"},
	{164, 4, 0, NULL, false, -EINVAL, "iteration count is 0"},
	{SLOT0 + 44, 4, 0x7fffffff, NULL, false, -EINVAL, "stripes"},
	{SLOT0 + 40, 4, 0xfffffff0u, NULL, false, -EINVAL,
	 "key slot 0 material"},
	{SLOT0 + 40, 4, 1, NULL, false, -EINVAL, "overlaps the header"},
	{SLOT0 + 40, 4, 4000, NULL, false, -EINVAL, "overlaps the payload"},
	{104, 4, 0x10000000, NULL, false, -EINVAL, "past the end of the file"},
	{104, 4, 1, NULL, false, -EINVAL, "overlaps the header"},
	{104, 4, 100, NULL, false, -EINVAL, "overlaps the payload"},
	{8, 32, 0, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, -EINVAL,
	 "cipher name field is not NUL-terminated"},
	{40, 32, 0, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", false, -EINVAL,
	 "cipher mode field"},
	{72, 32, 0, "ssssssssssssssssssssssssssssssss", false, -EINVAL,
	 "hash spec field"},
	{108, 4, 0, NULL, false, -EINVAL, "key_bytes 0"},
	{108, 4, 0x40000000, NULL, false, -EINVAL, "key_bytes 1073741824"},
	{108, 4, 40, NULL, false, -ENOTSUP, "key size 40"},
	{8, 8, 0, "serpent", false, -ENOTSUP, "serpent"},
	{72, 6, 0, "md5\0\0\0", false, -ENOTSUP, "md5"},
	{40, 11, 0, "xtsplain64", false, -EINVAL, "cipher mode string"},
	{SLOT0, 4, 0x12345678, NULL, false, -EINVAL, "state 0x12345678"},
	{6, 2, 2, NULL, false, -ENOTSUP, "version 2"},
	/* slot 1 active on top of slot 0's material */
	{SLOT0 + 48, 48, 0, NULL, true, -EINVAL, "overlapping key material"},
};

static void apply(const struct hostile *c, uint8_t *h)
{
	if (c->from_slot0)
		memcpy(h + c->off, h + SLOT0, c->len);
	else if (c->bytes)
		memcpy(h + c->off, c->bytes, c->len);
	else if (c->len == 2)
		st_be16(h + c->off, (uint16_t)c->be);
	else
		st_be32(h + c->off, c->be);
}

/* Apply change _I to a fresh image's header, open it (read-write, with
 * the right secret) and expect its error and message; the file must not
 * change. */
START_TEST(hostile_headers)
{
	const struct hostile *c = &hostile[_i];
	uint8_t hdr[592];
	size_t n1, n2;
	struct mimg *img = NULL;
	struct mimg_secret s = tu_secret(PASS);

	create_luks("h.luks", MIB, NULL);
	FILE *f = fopen("h.luks", "r+b");
	ck_assert_uint_eq(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	apply(c, hdr);
	rewind(f);
	ck_assert_uint_eq(fwrite(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	fclose(f);
	uint8_t *before = tu_read_file("h.luks", &n1);
	int r = mimg_open_secret(&img, "h.luks", "luks", MIMG_OPEN_RDWR, &s);
	ck_assert_msg(r == c->err, "got %d (%s), want %d", r, mimg_errmsg(),
		      c->err);
	ck_assert_msg(strstr(mimg_errmsg(), c->want), "message '%s' lacks '%s'",
		      mimg_errmsg(), c->want);
	uint8_t *after = tu_read_file("h.luks", &n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert(memcmp(before, after, n1) == 0);
	free(before);
	free(after);
}
END_TEST

/* The iteration cap is the caller's: lowering it refuses an image that
 * the default accepts. */
START_TEST(iteration_cap_option)
{
	struct mimg_secret s = tu_secret(PASS);
	create_luks("t.luks", MIB, NULL);
	s.max_pbkdf2_iters = 999;
	expect_open(&s, -EINVAL, "above the limit of 999");
	s.max_pbkdf2_iters = 0;
	expect_open(&s, 0, NULL);
}
END_TEST

START_TEST(truncated_file)
{
	struct mimg *img;
	struct mimg_secret s = tu_secret(PASS);
	uint8_t hdr[592];
	create_luks("t.luks", MIB, NULL);
	tu_read_at("t.luks", hdr, sizeof(hdr), 0);
	tu_write_file("short.luks", hdr, 300, 0);
	ck_assert_int_lt(mimg_open_secret(&img, "short.luks", "luks", 0, &s),
			 0);
	tu_write_file("hdronly.luks", hdr, sizeof(hdr), 0);
	ck_assert_int_eq(mimg_open_secret(&img, "hdronly.luks", "luks", 0, &s),
			 -EINVAL);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Concurrency                                                             */

struct worker {
	struct mimg *img;
	int id;
	int errors;
};

#define NTHREADS 8
#define REGION (256 * 1024)

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = malloc(REGION), *back = malloc(REGION);
	for (int round = 0; round < 4; round++) {
		uint64_t off = (uint64_t)w->id * REGION;
		tu_fill_random(buf, REGION, (uint64_t)w->id * 100 + round);
		if (mimg_pwrite(w->img, buf, REGION, off, 0) != REGION ||
		    mimg_pread(w->img, back, REGION, off, 0) != REGION ||
		    memcmp(buf, back, REGION) != 0)
			w->errors++;
	}
	free(buf);
	free(back);
	return NULL;
}

START_TEST(concurrent_io)
{
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];
	create_luks("t.luks", NTHREADS * REGION, NULL);
	struct mimg *img = open_luks("t.luks", MIMG_OPEN_RDWR);
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){.img = img, .id = i};
		pthread_create(&th[i], NULL, worker_run, &w[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].errors, 0);
	}
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

/* mimg_luks_header_size gives the payload offset create writes, for
 * "luks" and for qcow2's "encrypt." options alike. */
START_TEST(header_size_matches_create)
{
	static const char *const extra[] = {NULL, "cipher-alg=aes-128",
					    "cipher-alg=aes-192",
					    "cipher-mode=cbc,ivgen-alg=essiv",
					    "hash-alg=sha512"};
	for (size_t i = 0; i < TU_NELEM(extra); i++) {
		char text[256];
		struct mimg_opt *o, *qo;
		uint8_t hdr[112];
		uint64_t bytes = 0, qbytes = 0;
		FILE *f;

		create_luks("h.luks", MIB, extra[i]);
		ck_assert_ptr_nonnull(f = fopen("h.luks", "rb"));
		ck_assert_uint_eq(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
		fclose(f);
		snprintf(text, sizeof(text), "%s", extra[i] ? extra[i] : "");
		int n = mimg_opts_parse(text, &o);
		ck_assert_int_ge(n, 0);
		ck_assert_int_eq(mimg_luks_header_size("luks", o, (size_t)n,
						       &bytes),
				 0);
		ck_assert_uint_eq(bytes, (uint64_t)ld_be32(hdr + 104) * 512);
		/* the same options under qcow2's names */
		snprintf(text, sizeof(text), "%s%s", extra[i] ? "encrypt." : "",
			 extra[i] ? extra[i] : "");
		for (char *c = text; (c = strchr(c, ',')); c++) {
			memmove(c + 9, c + 1, strlen(c + 1) + 1);
			memcpy(c + 1, "encrypt.", 8);
		}
		int qn = mimg_opts_parse(text, &qo);
		ck_assert_int_ge(qn, 0);
		ck_assert_int_eq(mimg_luks_header_size("qcow2", qo, (size_t)qn,
						       &qbytes),
				 0);
		ck_assert_uint_eq(qbytes, bytes);
		mimg_opts_free(o, (size_t)n);
		mimg_opts_free(qo, (size_t)qn);
	}
	/* the default: aes-256-xts, 64-byte keys, 4000 stripes each */
	uint64_t bytes;
	ck_assert_int_eq(mimg_luks_header_size("luks", NULL, 0, &bytes), 0);
	ck_assert_uint_eq(bytes, 4096 + 8 * 258048);
	struct mimg_opt bad = {"cipher-alg", "rot13"};
	ck_assert_int_eq(mimg_luks_header_size("luks", &bad, 1, &bytes),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "rot13"));
	ck_assert_int_eq(mimg_luks_header_size("raw", NULL, 0, &bytes),
			 -ENOTSUP);
	ck_assert_int_eq(mimg_luks_header_size(NULL, NULL, 0, &bytes), -EINVAL);
	ck_assert_int_eq(mimg_luks_header_size("luks", NULL, 0, NULL), -EINVAL);
}
END_TEST

int main(void)
{
	return tu_main_loops("luks", "luks",
			     TU_TESTS(roundtrip_default,
				      roundtrip_every_combination,
				      create_refusals, wrong_passphrase,
				      no_secret_info_only, secret_struct_size,
				      iteration_cap_option, truncated_file,
				      concurrent_io,
				      header_size_matches_create),
			     TU_LOOPS({hostile_headers, TU_NELEM(hostile)}));
}
