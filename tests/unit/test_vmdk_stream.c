/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * streamOptimized: one-pass writing through mimg_convert in qemu-img's and
 * open-vmdk's layout (header naming the grain directory, tables
 * preallocated at the front, grain markers, end-of-stream marker), an
 * empty stream in VMware's footer layout filled with that layout, plain
 * sequential writes, reading it back, images cut short, in-place writes
 * refused, compressed grains without markers, corrupt grains, and a
 * write failing in the thread that writes the stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "file.h"
#include "mimg.h"
#include "testutil.h"

#define GRAIN 65536u

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void st32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void st64(uint8_t *p, uint64_t v)
{
	st32(p, (uint32_t)v);
	st32(p + 4, (uint32_t)(v >> 32));
}

/* A source with data, zero grains and a partial last grain. */
static uint8_t *make_source(uint64_t size)
{
	uint8_t *d = calloc(1, size);
	for (uint64_t off = 0; off < size; off += GRAIN) {
		uint64_t g = off / GRAIN;
		uint64_t n = size - off < GRAIN ? size - off : GRAIN;
		if (g % 5 == 2)
			continue; /* zero grain: not stored */
		if (g % 3 == 0)
			memset(d + off, (int)g + 1, n); /* compressible */
		else
			tu_fill_random(d + off, n, g);
	}
	tu_write_file("src.raw", d, size, 0);
	return d;
}

static void convert_to_stream(const char *dst, uint64_t size)
{
	struct mimg *s, *d;
	struct mimg_opt o[] = {{"subformat", "streamOptimized"},
			       {"adapter_type", "lsilogic"}};
	ck_assert_int_eq(mimg_create(dst, "vmdk", size, o, 2), 0);
	ck_assert_int_eq(mimg_open(&s, "src.raw", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&d, dst, "vmdk", MIMG_OPEN_RDWR), 0);
	int r = mimg_convert(s, d, NULL);
	ck_assert_msg(r == 0, "convert: %s", mimg_errmsg());
	ck_assert_int_eq(mimg_close(d), 0);
	mimg_close(s);
}

static void verify(const char *path, const uint8_t *want, uint64_t size)
{
	struct mimg *img;
	uint8_t *buf = malloc(size);
	ck_assert_int_eq(mimg_open(&img, path, NULL, 0), 0);
	ck_assert_uint_eq(mimg_size(img), size);
	ck_assert_int_eq(mimg_pread(img, buf, size, 0, 0), (ssize_t)size);
	ck_assert_int_eq(memcmp(buf, want, size), 0);
	tu_assert_check(img, 0, 0, TU_ANY, NULL);
	mimg_close(img);
	free(buf);
}

/* The stream ending at END closes with an end-of-stream marker (a
 * zero sector). */
static void assert_eos(const uint8_t *end)
{
	for (int i = 0; i < 512; i++)
		ck_assert_uint_eq(end[-512 + i], 0);
}

/* Where qemu-img is there, it finds s.vmdk clean and reads it as
 * src.raw. */
static void qemu_reads_source(void)
{
	if (!tu_have_program("qemu-img"))
		return;
	tu_sh("qemu-img check -q s.vmdk");
	tu_sh("qemu-img compare -q -f raw src.raw s.vmdk");
}

START_TEST(test_convert_layout_and_read)
{
	const uint64_t size = 3 * 1024 * 1024 + 4608;
	uint8_t *src = make_source(size);
	convert_to_stream("s.vmdk", size);
	verify("s.vmdk", src, size);

	/* The header names the grain directory (sector 21, after the
	 * descriptor), which points at tables preallocated before the
	 * grains; the stream ends with an end-of-stream marker. */
	size_t fsize;
	uint8_t *f = tu_read_file("s.vmdk", &fsize);
	ck_assert_uint_eq(fsize % 512, 0);
	ck_assert_int_eq(memcmp(f, "KDMV", 4), 0);
	ck_assert_uint_eq(le32(f + 4), 3);
	ck_assert_uint_eq(le32(f + 8), 0x30001);
	ck_assert_uint_eq(le64(f + 28), 1); /* descriptor */
	ck_assert_uint_eq(le64(f + 36), 20);
	ck_assert_uint_eq(le64(f + 48), 0); /* no redundant GD */
	ck_assert_uint_eq(le64(f + 56), 21);
	ck_assert_uint_eq(le64(f + 64), 128); /* overhead */
	ck_assert_uint_eq(f[77], 1);
	ck_assert_uint_eq(le32(f + 21 * 512), 22);  /* the one GT */
	ck_assert_uint_eq(le32(f + 22 * 512), 128); /* grain 0 */
	const uint8_t *end = f + fsize;
	assert_eos(end);
	/* The first grain's marker holds LBA 0 and the compressed size. */
	ck_assert_uint_eq(le64(f + 65536), 0);
	ck_assert_uint_gt(le32(f + 65536 + 8), 0);
	ck_assert_ptr_nonnull(
		memmem(f + 512, 4096, "ddb.toolsInstallType", 20));
	ck_assert_ptr_nonnull(
		memmem(f + 512, 4096, "ddb.adapterType = \"lsilogic\"", 28));
	free(f);

	qemu_reads_source();
	free(src);
}
END_TEST

START_TEST(test_empty_stream)
{
	struct mimg_opt o = {"subformat", "streamOptimized"};
	ck_assert_int_eq(mimg_create("e.vmdk", "vmdk", 5 << 20, &o, 1), 0);
	uint8_t *zero = calloc(1, 5 << 20);
	verify("e.vmdk", zero, 5 << 20);
	free(zero);
	/* Opening read-write and closing without writing changes nothing. */
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "e.vmdk", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	if (tu_have_program("qemu-img"))
		tu_sh("qemu-img check -q e.vmdk");
}
END_TEST

/* A stream cut short opens (its header is at the front), but reading a
 * grain past the end fails and check reports it. */
START_TEST(test_cut_short)
{
	const uint64_t size = 1 << 20;
	uint8_t *src = make_source(size), *buf = malloc(size);
	convert_to_stream("s.vmdk", size);
	ck_assert_int_eq(truncate("s.vmdk",
				  (off_t)(tu_file_size("s.vmdk") / 2)),
			 0);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "s.vmdk", NULL, 0), 0);
	ck_assert_int_lt(mimg_pread(img, buf, size, 0, 0), 0);
	tu_assert_check(img, 0, TU_SOME, TU_ANY, NULL);
	mimg_close(img);
	free(buf);
	free(src);
}
END_TEST

/* An empty stream in VMware's footer layout, made from a fresh one: the
 * header's directory offset all ones, then at the overhead the GD marker
 * and an empty GD, the footer and the end-of-stream marker. */
static void make_footer_layout(const char *path, uint64_t size)
{
	struct mimg_opt o = {"subformat", "streamOptimized"};
	uint8_t h[512], m[512];
	ck_assert_int_eq(mimg_create(path, "vmdk", size, &o, 1), 0);
	int fd = open(path, O_RDWR);
	ck_assert_int_eq(pread(fd, h, 512, 0), 512);
	ck_assert_int_eq(ftruncate(fd, 128 * 512), 0);
	st64(h + 56, ~0ull);
	ck_assert_int_eq(pwrite(fd, h, 512, 0), 512);
	memset(m, 0, 512);
	ck_assert_int_eq(pwrite(fd, m, 512, 21 * 512), 512); /* no GD here */
	st64(m, 1);
	st32(m + 12, 2);
	ck_assert_int_eq(pwrite(fd, m, 512, 128 * 512), 512);
	memset(m, 0, 512);
	ck_assert_int_eq(pwrite(fd, m, 512, 129 * 512), 512);
	st64(m, 1);
	st32(m + 12, 3);
	ck_assert_int_eq(pwrite(fd, m, 512, 130 * 512), 512);
	st64(h + 56, 129);
	ck_assert_int_eq(pwrite(fd, h, 512, 131 * 512), 512);
	memset(m, 0, 512);
	ck_assert_int_eq(pwrite(fd, m, 512, 132 * 512), 512);
	close(fd);
}

START_TEST(test_footer_layout_kept)
{
	const uint64_t size = 3 * 1024 * 1024 + 4608;
	uint8_t *src = make_source(size);
	make_footer_layout("s.vmdk", size);
	uint8_t *zero = calloc(1, size);
	verify("s.vmdk", zero, size);
	free(zero);
	struct mimg *s, *d;
	ck_assert_int_eq(mimg_open(&s, "src.raw", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&d, "s.vmdk", "vmdk", MIMG_OPEN_RDWR), 0);
	struct mimg_convert_opts co = {.size = sizeof(co),
				       .existing_target = 1,
				       .target_is_zero = 1};
	ck_assert_msg(mimg_convert(s, d, &co) == 0, "%s", mimg_errmsg());
	ck_assert_int_eq(mimg_close(d), 0);
	mimg_close(s);
	verify("s.vmdk", src, size);

	size_t fsize;
	uint8_t *f = tu_read_file("s.vmdk", &fsize);
	ck_assert_uint_eq(le64(f + 56), ~0ull);
	const uint8_t *end = f + fsize;
	ck_assert_uint_eq(le32(end - 1536 + 12), 3); /* footer marker */
	ck_assert_int_eq(memcmp(end - 1024, "KDMV", 4), 0);
	uint64_t gd = le64(end - 1024 + 56);
	ck_assert_uint_lt(gd * 512, (uint64_t)fsize);
	ck_assert_uint_eq(le32(f + (gd - 1) * 512 + 12), 2); /* GD marker */
	assert_eos(end);
	free(f);
	qemu_reads_source();
	free(src);
}
END_TEST

/* Plain writes into a fresh stream: ascending, unaligned, with gaps;
 * going back is refused.  A finished stream is not modified in place. */
START_TEST(test_sequential_writes_and_refusals)
{
	const uint64_t size = (1 << 20) + 1536;
	uint8_t *want = calloc(1, size), b[512] = {0};
	uint8_t *chunk = malloc(200000);
	struct mimg *img;
	struct mimg_opt o = {"subformat", "streamOptimized"};
	ck_assert_int_eq(mimg_create("e.vmdk", "vmdk", size, &o, 1), 0);
	ck_assert_int_eq(mimg_open(&img, "e.vmdk", NULL, MIMG_OPEN_RDWR), 0);
	static const struct {
		uint64_t off, len;
	} w[] = {
		{100, 1000},	 {1100, 200000},      {300000, 7},
		{400000, 70000}, {65536 * 12, 65536}, {size - 1000, 1000},
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		tu_fill_random(chunk, w[i].len, i + 1);
		ck_assert_int_eq(mimg_pwrite(img, chunk, w[i].len, w[i].off, 0),
				 (ssize_t)w[i].len);
		memcpy(want + w[i].off, chunk, w[i].len);
		if (i == 2) {
			ck_assert_int_eq(mimg_pwrite(img, b, 512, 0, 0),
					 -EINVAL);
			ck_assert_ptr_nonnull(
				strstr(mimg_errmsg(), "sequentially"));
		}
	}
	ck_assert_int_eq(mimg_close(img), 0);
	verify("e.vmdk", want, size);
	tu_write_file("want.raw", want, size, 0);
	if (tu_have_program("qemu-img")) {
		tu_sh("qemu-img check -q e.vmdk");
		tu_sh("qemu-img compare -q -f raw want.raw e.vmdk");
	}
	ck_assert_int_eq(mimg_open(&img, "e.vmdk", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, b, 512, 0, 0), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "compressed"));
	mimg_close(img);
	verify("e.vmdk", want, size);
	free(want);
	free(chunk);
}
END_TEST

/* A compressed extent without markers: the GT entry points straight at a
 * zlib stream.  Grain 1 is corrupt. */
static void make_unmarked(uint8_t *pattern)
{
	uint8_t h[512] = {0}, z[GRAIN * 2];
	uLongf zl = sizeof(z);
	memcpy(h, "KDMV", 4);
	st32(h + 4, 1);
	st32(h + 8, 1u | (1u << 16));
	st64(h + 12, 384); /* 3 grains */
	st64(h + 20, 128);
	st32(h + 44, 512);
	st64(h + 56, 1); /* GD at sector 1 */
	st64(h + 64, 6);
	h[73] = '\n';
	h[74] = ' ';
	h[75] = '\r';
	h[76] = '\n';
	h[77] = 1;
	tu_write_file("u.vmdk", h, 512, 0);
	uint8_t gd[4];
	st32(gd, 2);
	tu_write_file("u.vmdk", gd, 4, 512);
	uint8_t gt[12];
	st32(gt, 6);
	st32(gt + 4, 0);
	tu_fill_random(pattern, GRAIN, 9);
	memset(pattern + 1000, 0, 30000);
	ck_assert_int_eq(compress2(z, &zl, pattern, GRAIN, 6), Z_OK);
	tu_write_file("u.vmdk", z, zl, 6 * 512);
	uint64_t next = (6 * 512 + zl + 511) / 512;
	st32(gt + 8, (uint32_t)next);
	tu_write_file("u.vmdk", gt, 12, 2 * 512);
	memset(z, 0x5a, 4096);
	tu_write_file("u.vmdk", z, 4096, next * 512);
}

START_TEST(test_compressed_without_markers)
{
	static uint8_t pattern[GRAIN], buf[3 * GRAIN];
	struct mimg *img;
	make_unmarked(pattern);
	ck_assert_int_eq(mimg_open(&img, "u.vmdk", NULL, 0), 0);
	ck_assert_int_eq(mimg_pread(img, buf, 2 * GRAIN, 0, 0), 2 * GRAIN);
	ck_assert_int_eq(memcmp(buf, pattern, GRAIN), 0);
	for (size_t i = GRAIN; i < 2 * GRAIN; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_int_eq(mimg_pread(img, buf, 512, 2 * GRAIN, 0), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "corrupt"));
	mimg_close(img);
}
END_TEST

START_TEST(test_bad_marker_size)
{
	const uint64_t size = 1 << 20;
	uint8_t *src = make_source(size), b[4096];
	convert_to_stream("s.vmdk", size);
	uint8_t m[4];
	st32(m, 0x7fffffff);
	tu_write_file("s.vmdk", m, 4, 65536 + 8);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "s.vmdk", NULL, 0), 0);
	ck_assert_int_eq(mimg_pread(img, b, sizeof(b), 0, 0), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "compressed size"));
	mimg_close(img);
	free(src);
}
END_TEST

/* Writes of the stream's data (past the 64 KiB of metadata) fail. */
static int fail_data_writes(void *opaque, enum mimg_file_op op,
			    const char *path, uint64_t off, uint64_t len)
{
	int *hits = opaque;
	(void)len;
	if (op != MIMG_FILE_OP_WRITE || strcmp(path, "s.vmdk") != 0 ||
	    off < 65536)
		return 0;
	(*hits)++;
	return -ENOSPC;
}

/* The grains are written by a thread of the stream's own: its failure
 * fails the conversion with its error and message, and nothing waits
 * for it forever. */
START_TEST(test_write_error_in_writer_thread)
{
	const uint64_t size = 16u << 20; /* output past a 2 MiB buffer */
	uint8_t *src = make_source(size);
	struct mimg *s, *d;
	struct mimg_opt o[] = {{"subformat", "streamOptimized"}};
	int hits = 0;
	ck_assert_int_eq(mimg_create("s.vmdk", "vmdk", size, o, 1), 0);
	ck_assert_int_eq(mimg_open(&s, "src.raw", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&d, "s.vmdk", "vmdk", MIMG_OPEN_RDWR), 0);
	mimg_file_set_fault_hook(fail_data_writes, &hits);
	int r = mimg_convert(s, d, NULL);
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "s.vmdk"));
	ck_assert_int_eq(mimg_close(d), -ENOSPC);
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_int_eq(hits, 1); /* nothing written after the failure */
	mimg_close(s);
	free(src);
}
END_TEST

int main(void)
{
	return tu_main("vmdk_stream", "stream",
		       TU_TESTS(test_convert_layout_and_read, test_empty_stream,
				test_cut_short, test_footer_layout_kept,
				test_sequential_writes_and_refusals,
				test_compressed_without_markers,
				test_bad_marker_size,
				test_write_error_in_writer_thread));
}
