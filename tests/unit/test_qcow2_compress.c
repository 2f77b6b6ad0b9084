/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Compressed qcow2 output (deflate and zstd) through mimg_convert's
 * parallel compressors, read back by qemu-img; incompressible clusters
 * are stored plain.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "image.h"
#include "mimg.h"
#include "../../formats/qcow2/qcow2.h"
#include "testutil.h"

#define SIZE (6u << 20)

static void make_source(void)
{
	/* Compressible text-like data, random data and holes. */
	uint8_t *b = calloc(1, SIZE);
	for (size_t i = 0; i < (2u << 20); i++)
		b[i] = (uint8_t)("qcow2 compressed cluster "[i % 25]);
	tu_fill_random(b + (3u << 20), 1u << 20, 7);
	memset(b + (5u << 20) + 12345, 0x42, 5000);
	tu_write_file("src.raw", b, SIZE, 0);
	free(b);
}

START_TEST(convert_compressed)
{
	if (!tu_have_program("qemu-img"))
		return;
	const char *ct = _i ? "zstd" : "zlib";
	make_source();
	struct mimg_opt o[] = {{"compression_type", ct}};
	ck_assert_int_eq(mimg_create("t.qcow2", "qcow2", SIZE, o, 1), 0);
	struct mimg *src, *dst;
	ck_assert_int_eq(mimg_open(&src, "src.raw", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&dst, "t.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	struct mimg_convert_opts co = {.size = sizeof(co), .compress = 1};
	int r = mimg_convert(src, dst, &co);
	ck_assert_msg(r == 0, "%s", mimg_errmsg());
	mimg_close(src);
	ck_assert_int_eq(mimg_close(dst), 0);
	tu_sh("qemu-img check -q t.qcow2");
	tu_sh("qemu-img compare -q src.raw t.qcow2");
	/* The compressible part is stored compressed, the random part not. */
	tu_sh("qemu-img map --output=json t.qcow2 > map.json && grep -q "
	      "'\"compressed\": true' map.json || qemu-img check t.qcow2 | "
	      "grep -q '[1-9][0-9.]*%% compressed'");

	/* Reading back through libmimg. */
	uint8_t *a = malloc(SIZE), *b = malloc(SIZE);
	ck_assert(a && b);
	tu_read_at("src.raw", a, SIZE, 0);
	ck_assert_int_eq(mimg_open(&dst, "t.qcow2", NULL, 0), 0);
	ck_assert_int_eq(mimg_pread(dst, b, SIZE, 0, 0), (ssize_t)SIZE);
	ck_assert(memcmp(a, b, SIZE) == 0);
	mimg_close(dst);
	free(a);
	free(b);
}
END_TEST

START_TEST(compress_callbacks)
{
	ck_assert_int_eq(mimg_create("t.qcow2", "qcow2", 1 << 20, NULL, 0), 0);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_uint_eq(img->drv->compress_unit(img), 65536);
	uint8_t *in = malloc(65536), *out = malloc(65536);
	tu_fill_random(in, 65536, 3);
	ck_assert_int_eq(img->drv->compress(img, in, 65536, out, 65536),
			 -ENOSPC);
	memset(in, 'x', 65536);
	ssize_t n = img->drv->compress(img, in, 65536, out, 65536);
	ck_assert(n > 0 && n < 1000);
	ck_assert_int_eq(img->drv->write_compressed(img, 65536, out, (size_t)n,
						    true),
			 0);
	uint8_t *back = malloc(65536);
	ck_assert_int_eq(mimg_pread(img, back, 65536, 65536, 0), 65536);
	ck_assert(memcmp(back, in, 65536) == 0);
	ck_assert_int_eq(mimg_close(img), 0);
	free(in);
	free(out);
	free(back);
}
END_TEST

/* A zstd frame must end exactly at one cluster of output: shorter or
 * longer frames are damaged clusters (EIO), as qemu reads them. */
START_TEST(zstd_frame_must_end_at_cluster)
{
	enum { CS = 65536 };
	uint8_t *src = malloc(2 * CS), *out = malloc(CS);
	size_t cap = ZSTD_compressBound(2 * CS);
	uint8_t *z = malloc(cap);
	struct qcow2 s;
	memset(&s, 0, sizeof(s));
	s.compression = QCOW2_COMPRESS_ZSTD;
	for (size_t i = 0; i < 2 * CS; i++)
		src[i] = (uint8_t)(i * 7 / 13);
	for (size_t len = CS - 512; len <= CS + 512; len += 512) {
		size_t n = ZSTD_compress(z, cap, src, len, 3);
		ck_assert(!ZSTD_isError(n));
		int r = qcow2_decompress(&s, z, n, out, CS);
		if (len == CS) {
			ck_assert_int_eq(r, 0);
			ck_assert_int_eq(memcmp(out, src, CS), 0);
		} else {
			ck_assert_msg(r == -EIO, "a %zu-byte frame gave %d",
				      len, r);
		}
	}
	free(src);
	free(out);
	free(z);
}
END_TEST

int main(void)
{
	return tu_main_loops("qcow2_compress", "compress",
			     TU_TESTS(compress_callbacks,
				      zstd_frame_must_end_at_cluster),
			     TU_LOOPS({convert_compressed, 2}));
}
