/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Encrypted qcow2 (encrypt.format=luks) through the public API: unaligned
 * writes and copy-on-write from a backing file checked against a shadow
 * copy, concurrent writers sharing sectors, wrong and missing secrets,
 * and hostile encryption headers (each a clear error, no crash).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endian.h"
#include "mimg.h"
#include "testutil.h"

#define MIB (1024 * 1024)
#define PASS "open sesame"

static void create_enc(const char *path, uint64_t size, const char *extra)
{
	char text[256];
	struct mimg_secret s = tu_secret(PASS);
	snprintf(text, sizeof(text),
		 "encrypt.format=luks,encrypt.key-secret="
		 "s,encrypt.iter-time=5%s%s",
		 extra ? "," : "", extra ? extra : "");
	tu_create(path, "qcow2", size, text, &s);
}

static void check_content(const char *path, const uint8_t *want, size_t size)
{
	struct mimg *img = tu_open_secret(path, 0, PASS);
	uint8_t *got = malloc(size);
	ck_assert_int_eq(mimg_pread(img, got, size, 0, 0), (ssize_t)size);
	if (memcmp(got, want, size) != 0) {
		size_t i = 0;
		while (got[i] == want[i])
			i++;
		ck_abort_msg("byte %zu: %02x, want %02x", i, got[i], want[i]);
	}
	/* and in unaligned pieces */
	for (size_t off = 3; off + 777 < size; off += 65536 + 333) {
		ck_assert_int_eq(mimg_pread(img, got, 777, off, 0), 777);
		ck_assert(memcmp(got, want + off, 777) == 0);
	}
	free(got);
	ck_assert_int_eq(mimg_close(img), 0);
}

/* Writes at awkward offsets over a backing file with data everywhere:
 * every partial cluster copies the rest from below, encrypted. */
START_TEST(unaligned_writes_over_backing)
{
	static const struct tu_range w[] = {
		TU_AWKWARD_RANGES,
		{6 * MIB - 512, 512},
		{65536 + 10, 3},
	};
	const size_t size = 8 * MIB;
	uint8_t *shadow = tu_random_file("base.raw", size, 7);
	struct mimg *img;
	create_enc("e.qcow2", size, "backing_file=base.raw,backing_fmt=raw");
	img = tu_open_secret("e.qcow2", MIMG_OPEN_RDWR, PASS);
	tu_write_ranges(img, shadow, size, w, TU_NELEM(w), 100);
	/* zeroes over whole and partial clusters */
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 3 * MIB + 100, MIB, 0), 0);
	memset(shadow + 3 * MIB + 100, 0, MIB);
	ck_assert_int_eq(mimg_close(img), 0);
	check_content("e.qcow2", shadow, size);
	free(shadow);
}
END_TEST

struct writer {
	const char *path;
	struct mimg *img;
	int id;
};

/* Thread ID writes bytes [k*512 + id*128, +128) for every sector k of
 * the first 2 MiB: four writers share every sector. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t b[128];
	for (uint64_t k = 0; k < 2 * MIB / 512; k++) {
		memset(b, (int)(0x10 * (w->id + 1) + (k & 15)), sizeof(b));
		if (mimg_pwrite(w->img, b, sizeof(b),
				k * 512 + (uint64_t)w->id * 128, 0) != 128)
			return (void *)1;
	}
	return NULL;
}

START_TEST(concurrent_writers_share_sectors)
{
	const size_t size = 4 * MIB;
	pthread_t t[4];
	struct writer w[4];
	uint8_t *want = calloc(1, size);
	create_enc("c.qcow2", size, NULL);
	struct mimg *img = tu_open_secret("c.qcow2", MIMG_OPEN_RDWR, PASS);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct writer){.img = img, .id = i};
		ck_assert_int_eq(pthread_create(&t[i], NULL, writer_main,
						&w[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		ck_assert(ret == NULL);
	}
	ck_assert_int_eq(mimg_close(img), 0);
	for (uint64_t k = 0; k < 2 * MIB / 512; k++)
		for (int i = 0; i < 4; i++)
			memset(want + k * 512 + i * 128,
			       (int)(0x10 * (i + 1) + (k & 15)), 128);
	check_content("c.qcow2", want, size);
	free(want);
}
END_TEST

START_TEST(secrets)
{
	struct mimg *img;
	struct mimg_secret bad = tu_secret("not it");
	uint8_t b[512];
	create_enc("s.qcow2", MIB,
		   "encrypt.cipher-alg=aes-128,"
		   "encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv");
	ck_assert_int_eq(mimg_open_secret(&img, "s.qcow2", NULL, 0, &bad),
			 -EACCES);
	ck_assert(strstr(mimg_errmsg(), "Invalid password") != NULL);
	ck_assert_int_eq(mimg_open(&img, "s.qcow2", NULL, 0), 0);
	ck_assert(mimg_needs_secret(img));
	ck_assert_int_eq(mimg_pread(img, b, sizeof(b), 0, 0), -EACCES);
	ck_assert(strstr(mimg_errmsg(), "encrypt.key-secret") != NULL);
	mimg_close(img);
	/* a secret without encrypt.format, encryption without a secret */
	struct mimg_secret s = tu_secret(PASS);
	ck_assert_int_eq(mimg_create_secret("p.qcow2", "qcow2", MIB, NULL, 0,
					    &s),
			 -EINVAL);
	struct mimg_opt o = {"encrypt.format", "luks"};
	ck_assert_int_eq(mimg_create("p.qcow2", "qcow2", MIB, &o, 1), -EINVAL);
	ck_assert(strstr(mimg_errmsg(), "encrypt.key-secret") != NULL);
}
END_TEST

/* The crypto extension's offset field (found by its type). */
static uint64_t ext_pos(const char *path)
{
	uint8_t h[4096];
	tu_read_at(path, h, sizeof(h), 0);
	for (size_t off = 112; off + 8 <= sizeof(h);) {
		uint32_t type = ld_be32(h + off), len = ld_be32(h + off + 4);
		if (type == 0x0537be77u)
			return off + 8;
		ck_assert_uint_ne(type, 0);
		off += 8 + ((len + 7) & ~7u);
	}
	ck_abort_msg("no encryption header extension");
	return 0;
}

static void put64(const char *path, uint64_t off, uint64_t v)
{
	uint8_t b[8];
	st_be64(b, v);
	tu_write_file(path, b, 8, off);
}

static void put32(const char *path, uint64_t off, uint32_t v)
{
	uint8_t b[4];
	st_be32(b, v);
	tu_write_file(path, b, 4, off);
}

static void expect_refused(const char *path, int err, const char *word)
{
	struct mimg *img = NULL;
	struct mimg_secret s = tu_secret(PASS);
	int r = mimg_open_secret(&img, path, NULL, 0, &s);
	ck_assert_msg(r == err, "got %d (%s), want %d", r, mimg_errmsg(), err);
	ck_assert_msg(strstr(mimg_errmsg(), word) != NULL,
		      "message '%s' lacks '%s'", mimg_errmsg(), word);
}

START_TEST(hostile_headers)
{
	uint8_t luks[592];
	create_enc("h.qcow2", MIB, NULL);
	uint64_t e = ext_pos("h.qcow2");
	uint8_t eb[16];
	tu_read_at("h.qcow2", eb, 16, e);
	uint64_t hoff = ld_be64(eb), hlen = ld_be64(eb + 8);
	tu_read_at("h.qcow2", luks, sizeof(luks), hoff);

	put64("h.qcow2", e, hoff + 512);
	expect_refused("h.qcow2", -EINVAL, "not a cluster boundary");
	put64("h.qcow2", e, 1ull << 40);
	expect_refused("h.qcow2", -EINVAL, "past the end of the file");
	put64("h.qcow2", e, hoff);
	put64("h.qcow2", e + 8, 100);
	expect_refused("h.qcow2", -EINVAL, "encryption header length 100");
	/* key material or payload outside the extension's area */
	put64("h.qcow2", e + 8, 4096);
	expect_refused("h.qcow2", -EINVAL, "payload offset");
	put64("h.qcow2", e + 8, hlen);
	put32("h.qcow2", hoff + 104, 3); /* payload offset, sectors */
	expect_refused("h.qcow2", -EINVAL, "overlaps the payload");
	put32("h.qcow2", hoff + 104, ld_be32(luks + 104));
	/* hours of PBKDF2 */
	put32("h.qcow2", hoff + 208 + 4, 4000000000u);
	expect_refused("h.qcow2", -EINVAL, "above the limit");
	tu_write_file("h.qcow2", luks, sizeof(luks), hoff);
	/* an unterminated cipher name */
	memset(luks + 8, 'a', 32);
	tu_write_file("h.qcow2", luks + 8, 32, hoff + 8);
	expect_refused("h.qcow2", -EINVAL, "NUL-terminated");
}
END_TEST

START_TEST(truncated_ciphertext)
{
	uint8_t b[4096];
	create_enc("t.qcow2", 4 * MIB, NULL);
	struct mimg *img = tu_open_secret("t.qcow2", MIMG_OPEN_RDWR, PASS);
	memset(b, 0x42, sizeof(b));
	ck_assert_int_eq(mimg_pwrite(img, b, sizeof(b), 3 * MIB, 0), 4096);
	ck_assert_int_eq(mimg_close(img), 0);
	uint64_t size = tu_file_size("t.qcow2");
	/* cut inside the data cluster, the file's last */
	ck_assert_int_eq(truncate("t.qcow2", (off_t)(size - 65536 + 2048)), 0);
	img = tu_open_secret("t.qcow2", 0, PASS);
	ck_assert_int_eq(mimg_pread(img, b, sizeof(b), 3 * MIB, 0), -EIO);
	ck_assert(strstr(mimg_errmsg(), "encrypted data cluster") != NULL);
	mimg_close(img);
}
END_TEST

int main(void)
{
	return tu_main("qcow2_luks", "qcow2_luks",
		       TU_TESTS(unaligned_writes_over_backing,
				concurrent_writers_share_sectors, secrets,
				hostile_headers, truncated_ciphertext));
}
