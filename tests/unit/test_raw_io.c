/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * raw I/O through the public API: scatter-gather reads and writes, the
 * image-end rules (short reads, -ENOSPC writes), read-only handles,
 * write-zeroes, discard, truncate and create with each preallocation mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "iov.h"
#include "mimg.h"
#include "testutil.h"

#define MIB (1u << 20)

static struct mimg *open_rw(const char *path)
{
	struct mimg *img;
	int r = mimg_open(&img, path, "raw", MIMG_OPEN_RDWR);
	ck_assert_msg(r == 0, "open %s: %s", path, mimg_errmsg());
	return img;
}

/* Read the whole file with plain read() into a new buffer. */
static uint8_t *slurp(const char *path, size_t len)
{
	uint8_t *b = malloc(len);
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, b, len, 0), (ssize_t)len);
	close(fd);
	return b;
}

static bool all_zero(const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

START_TEST(many_iovecs_round_trip)
{
	/* 1500 iovecs of odd sizes: more than IOV_MAX (1024) in one call */
	enum { N = 1500 };
	struct iovec iov[N], riov[N];
	size_t total = 0;
	for (int i = 0; i < N; i++)
		total += (size_t)(i % 7) * 3 + 1;
	uint8_t *src = malloc(total), *dst = malloc(total);
	tu_fill_random(src, total, 42);
	size_t pos = 0;
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)(i % 7) * 3 + 1;
		iov[i] = (struct iovec){src + pos, n};
		pos += n;
	}
	/* read back with a different split: the sizes in reverse order */
	pos = 0;
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)((N - 1 - i) % 7) * 3 + 1;
		riov[i] = (struct iovec){dst + pos, n};
		pos += n;
	}
	/* an empty entry in the middle: its bytes go to the one before */
	riov[9].iov_len += riov[10].iov_len;
	riov[10].iov_len = 0;

	tu_make_sparse("a.img", 1 * MIB);
	struct mimg *img = open_rw("a.img");
	ck_assert_int_eq(mimg_pwritev(img, iov, N, 12345, 0), (ssize_t)total);
	memset(dst, 0, total);
	ck_assert_int_eq(mimg_preadv(img, riov, N, 12345, 0), (ssize_t)total);
	ck_assert_mem_eq(dst, src, total);
	ck_assert_int_eq(mimg_close(img), 0);

	uint8_t *f = slurp("a.img", 1 * MIB);
	ck_assert_mem_eq(f + 12345, src, total);
	ck_assert(all_zero(f, 12345));
	ck_assert(all_zero(f + 12345 + total, 1 * MIB - 12345 - total));
	free(f);
	free(src);
	free(dst);
}
END_TEST

START_TEST(reads_past_end_are_short)
{
	uint8_t data[1000], buf[4096];
	tu_fill_random(data, sizeof(data), 7);
	tu_write_file("a.img", data, sizeof(data), 0);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.img", NULL, 0), 0);
	/* whole sectors, as qemu sees a raw file: the partial last sector
	 * reads as zeroes to its end */
	ck_assert_uint_eq(mimg_size(img), 1024);
	memset(buf, 0xEE, sizeof(buf));
	ck_assert_int_eq(mimg_pread(img, buf, sizeof(buf), 900, 0), 124);
	ck_assert_mem_eq(buf, data + 900, 100);
	for (int i = 100; i < 124; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_uint_eq(buf[124], 0xEE); /* the rest is not touched */
	ck_assert_int_eq(mimg_pread(img, buf, 10, 1024, 0), 0);
	ck_assert_int_eq(mimg_pread(img, buf, 10, UINT64_MAX - 2, 0), 0);
	ck_assert_int_eq(mimg_pread(img, buf, 0, 0, 0), 0);
	/* a short read split over iovecs */
	struct iovec iov[3] = {{buf, 50}, {buf + 50, 100}, {buf + 150, 100}};
	memset(buf, 0xEE, sizeof(buf));
	ck_assert_int_eq(mimg_preadv(img, iov, 3, 880, 0), 144);
	ck_assert_mem_eq(buf, data + 880, 120);
	ck_assert_uint_eq(buf[143], 0);
	ck_assert_uint_eq(buf[144], 0xEE);
	ck_assert_int_eq(mimg_close(img), 0);

	/* writing the rest of the last sector extends the file to it */
	img = open_rw("a.img");
	ck_assert_int_eq(mimg_pwrite(img, data, 24, 1000, 0), 24);
	ck_assert_int_eq(mimg_pwrite(img, data, 1, 1024, 0), -ENOSPC);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_uint_eq(tu_file_size("a.img"), 1024);
}
END_TEST

START_TEST(writes_past_end_fail)
{
	uint8_t buf[1024];
	memset(buf, 0x5A, sizeof(buf));
	tu_make_sparse("a.img", 65536);
	struct mimg *img = open_rw("a.img");
	ck_assert_int_eq(mimg_pwrite(img, buf, 1024, 65536 - 1024, 0), 1024);
	ck_assert_int_eq(mimg_pwrite(img, buf, 1024, 65536 - 1023, 0), -ENOSPC);
	ck_assert_int_eq(mimg_pwrite(img, buf, 1, 65536, 0), -ENOSPC);
	ck_assert_int_eq(mimg_pwrite(img, buf, 2, UINT64_MAX, 0), -ENOSPC);
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 65000, 1000, 0), -ENOSPC);
	ck_assert_int_eq(mimg_discard(img, 65000, 1000, 0), -ENOSPC);
	ck_assert_int_eq(mimg_pwrite(img, buf, 0, 65536, 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	/* the image did not grow */
	ck_assert_uint_eq(tu_file_size("a.img"), 65536);
}
END_TEST

START_TEST(read_only_refuses_writes)
{
	uint8_t buf[512] = {1};
	tu_make_sparse("a.img", 65536);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.img", NULL, 0), 0);
	ck_assert(mimg_is_read_only(img));
	ck_assert(!mimg_can_discard(img));
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), 0, 0), -EROFS);
	struct iovec iov = {buf, 512};
	ck_assert_int_eq(mimg_pwritev(img, &iov, 1, 512, 0), -EROFS);
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 0, 512, 0), -EROFS);
	ck_assert_int_eq(mimg_discard(img, 0, 512, 0), -EROFS);
	ck_assert_int_eq(mimg_truncate(img, 4096, MIMG_PREALLOC_OFF), -EROFS);
	ck_assert_int_eq(mimg_flush(img, 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_uint_eq(tu_file_size("a.img"), 65536);
	ck_assert_uint_eq(tu_allocated("a.img"), 0);
}
END_TEST

START_TEST(write_zeroes)
{
	uint8_t *buf = malloc(4 * MIB);
	tu_fill_random(buf, 4 * MIB, 3);
	tu_write_file("a.img", buf, 4 * MIB, 0);
	struct mimg *img = open_rw("a.img");
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 100, 1000, 0), 0);
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 1 * MIB, 1 * MIB,
					    MIMG_ZERO_MAY_UNMAP),
			 0);
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 0, 0, 0), 0);
	ck_assert_int_eq(mimg_flush(img, 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	uint8_t *f = slurp("a.img", 4 * MIB);
	ck_assert_mem_eq(f, buf, 100);
	ck_assert(all_zero(f + 100, 1000));
	ck_assert_mem_eq(f + 1100, buf + 1100, 1 * MIB - 1100);
	ck_assert(all_zero(f + MIB, MIB));
	ck_assert_mem_eq(f + 2 * MIB, buf + 2 * MIB, 2 * MIB);
	/* MAY_UNMAP on a regular file frees the space */
	ck_assert_uint_le(tu_allocated("a.img"), 3 * MIB + 65536);
	ck_assert_uint_eq(tu_file_size("a.img"), 4 * MIB);
	free(f);
	free(buf);
}
END_TEST

START_TEST(discard_keeps_size_reads_zeroes)
{
	uint8_t *buf = malloc(2 * MIB), *got = malloc(2 * MIB);
	tu_fill_random(buf, 2 * MIB, 9);
	tu_write_file("a.img", buf, 2 * MIB, 0);
	struct mimg *img = open_rw("a.img");
	ck_assert(mimg_can_discard(img));
	uint64_t before = tu_allocated("a.img");
	ck_assert_int_eq(mimg_discard(img, 512 * 1024, 1 * MIB, 0), 0);
	ck_assert_uint_eq(mimg_size(img), 2 * MIB);
	ck_assert_int_eq(mimg_pread(img, got, 2 * MIB, 0, 0),
			 (ssize_t)(2 * MIB));
	ck_assert_mem_eq(got, buf, 512 * 1024);
	ck_assert(all_zero(got + 512 * 1024, MIB));
	ck_assert_mem_eq(got + 1536 * 1024, buf + 1536 * 1024, 512 * 1024);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_uint_eq(tu_file_size("a.img"), 2 * MIB);
	ck_assert_uint_le(tu_allocated("a.img"), before - MIB);
	free(buf);
	free(got);
}
END_TEST

START_TEST(truncate_modes)
{
	uint8_t data[4096];
	tu_fill_random(data, sizeof(data), 5);
	tu_write_file("a.img", data, sizeof(data), 0);
	struct mimg *img = open_rw("a.img");

	/* off: grows sparse, the new range reads as zeroes */
	ck_assert_int_eq(mimg_truncate(img, 8 * MIB, MIMG_PREALLOC_OFF), 0);
	ck_assert_uint_eq(mimg_size(img), 8 * MIB);
	ck_assert_uint_eq(tu_file_size("a.img"), 8 * MIB);
	ck_assert_uint_le(tu_allocated("a.img"), 65536);
	uint8_t got[4096];
	ck_assert_int_eq(mimg_pread(img, got, 4096, 8 * MIB - 4096, 0), 4096);
	ck_assert(all_zero(got, 4096));
	ck_assert_int_eq(mimg_pread(img, got, 4096, 0, 0), 4096);
	ck_assert_mem_eq(got, data, 4096);

	/* falloc: the new range is reserved */
	ck_assert_int_eq(mimg_truncate(img, 12 * MIB, MIMG_PREALLOC_FALLOC), 0);
	ck_assert_uint_eq(tu_file_size("a.img"), 12 * MIB);
	ck_assert_uint_ge(tu_allocated("a.img"), 4 * MIB);
	ck_assert_uint_le(tu_allocated("a.img"), 4 * MIB + 65536);

	/* full: the new range is written */
	ck_assert_int_eq(mimg_truncate(img, 16 * MIB, MIMG_PREALLOC_FULL), 0);
	ck_assert_uint_eq(tu_file_size("a.img"), 16 * MIB);
	ck_assert_uint_ge(tu_allocated("a.img"), 8 * MIB);
	ck_assert_int_eq(mimg_pread(img, got, 4096, 14 * MIB, 0), 4096);
	ck_assert(all_zero(got, 4096));

	/* metadata makes no sense for raw */
	ck_assert_int_eq(mimg_truncate(img, 20 * MIB, MIMG_PREALLOC_METADATA),
			 -ENOTSUP);
	ck_assert_uint_eq(mimg_size(img), 16 * MIB);

	/* shrinking drops the tail, whatever the mode */
	ck_assert_int_eq(mimg_truncate(img, 2048, MIMG_PREALLOC_FULL), 0);
	ck_assert_uint_eq(mimg_size(img), 2048);
	ck_assert_uint_eq(tu_file_size("a.img"), 2048);
	ck_assert_int_eq(mimg_pread(img, got, 4096, 0, 0), 2048);
	ck_assert_mem_eq(got, data, 2048);
	ck_assert_int_eq(mimg_pwrite(img, data, 1, 2048, 0), -ENOSPC);
	ck_assert_int_eq(mimg_truncate(img, 1ull << 63, MIMG_PREALLOC_OFF),
			 -EFBIG);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(create_preallocation)
{
	struct mimg_opt off = {"preallocation", "off"};
	struct mimg_opt fal = {"preallocation", "falloc"};
	struct mimg_opt full = {"preallocation", "full"};
	struct mimg_opt meta = {"preallocation", "metadata"};
	struct mimg_opt bogus = {"preallocation", "sometimes"};

	ck_assert_int_eq(mimg_create("off.img", "raw", 3 * MIB, &off, 1), 0);
	ck_assert_uint_eq(tu_file_size("off.img"), 3 * MIB);
	ck_assert_uint_eq(tu_allocated("off.img"), 0);

	ck_assert_int_eq(mimg_create("falloc.img", "raw", 3 * MIB, &fal, 1), 0);
	ck_assert_uint_eq(tu_file_size("falloc.img"), 3 * MIB);
	ck_assert_uint_ge(tu_allocated("falloc.img"), 3 * MIB);

	ck_assert_int_eq(mimg_create("full.img", "raw", 3 * MIB, &full, 1), 0);
	ck_assert_uint_eq(tu_file_size("full.img"), 3 * MIB);
	ck_assert_uint_ge(tu_allocated("full.img"), 3 * MIB);
	uint8_t *f = slurp("full.img", 3 * MIB);
	ck_assert(all_zero(f, 3 * MIB));
	free(f);

	ck_assert_int_eq(mimg_create("meta.img", "raw", MIB, &meta, 1),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "metadata"));
	ck_assert_int_eq(mimg_create("b.img", "raw", MIB, &bogus, 1), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "sometimes"));

	/* create truncates an existing file */
	uint8_t junk[8192];
	memset(junk, 0x77, sizeof(junk));
	tu_write_file("old.img", junk, sizeof(junk), 0);
	ck_assert_int_eq(mimg_create("old.img", "raw", 4096, NULL, 0), 0);
	ck_assert_uint_eq(tu_file_size("old.img"), 4096);
	f = slurp("old.img", 4096);
	ck_assert(all_zero(f, 4096));
	free(f);

	/* raw has no backing files */
	struct mimg_opt bk[2] = {{"backing_file", "off.img"},
				 {"backing_fmt", "raw"}};
	ck_assert_int_eq(mimg_create("ov.img", "raw", MIB, bk, 2), -ENOTSUP);
}
END_TEST

START_TEST(properties)
{
	tu_make_sparse("a.img", 3 * MIB);
	struct mimg *img = open_rw("a.img");
	ck_assert_str_eq(mimg_format(img), "raw");
	ck_assert(!mimg_is_read_only(img));
	ck_assert_uint_eq(mimg_cluster_size(img), 0);
	ck_assert(mimg_has_zero_init(img));
	ck_assert(mimg_can_discard(img));
	ck_assert_int_eq(mimg_select_snapshot(img, "x"), -EBUSY);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, "a.img", NULL, 0), 0);
	ck_assert_int_eq(mimg_select_snapshot(img, "x"), -ENOTSUP);
	struct mimg_check_result res = {.size = sizeof(res)};
	ck_assert_int_eq(mimg_check(img, 0, &res), 0);
	ck_assert(!res.supported);
	mimg_check_result_free(&res);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_close(NULL), 0);
}
END_TEST

START_TEST(info_of_raw)
{
	uint8_t data[8192];
	tu_fill_random(data, sizeof(data), 1);
	tu_make_sparse("a.img", 5 * MIB);
	tu_write_file("a.img", data, sizeof(data), MIB);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.img", NULL, 0), 0);
	struct mimg_value *info;
	ck_assert_int_eq(mimg_info(img, &info), 0);
	ck_assert_uint_eq(mimg_value_get(info, "virtual-size")->v.u, 5 * MIB);
	ck_assert_str_eq(mimg_value_get(info, "filename")->v.s, "a.img");
	ck_assert_str_eq(mimg_value_get(info, "format")->v.s, "raw");
	ck_assert_uint_eq(mimg_value_get(info, "actual-size")->v.u,
			  tu_allocated("a.img"));
	ck_assert_int_eq(mimg_value_get(info, "dirty-flag")->v.b, false);
	ck_assert_ptr_null(mimg_value_get(info, "cluster-size"));
	ck_assert_ptr_null(mimg_value_get(info, "backing-filename"));
	/* rendered exactly as qemu-img info --output=json prints it */
	char want[512], *json = mimg_value_to_json(info);
	snprintf(want, sizeof(want),
		 "{\n    \"virtual-size\": 5242880,\n"
		 "    \"filename\": \"a.img\",\n"
		 "    \"format\": \"raw\",\n"
		 "    \"actual-size\": %llu,\n"
		 "    \"dirty-flag\": false\n}",
		 (unsigned long long)tu_allocated("a.img"));
	ck_assert_str_eq(json, want);
	free(json);
	mimg_value_free(info);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

/* The scatter-gather helpers the core and drivers share (iov.h). */
START_TEST(scatter_gather_helpers)
{
	uint8_t a[5], b[1], c[7], d[40]; /* b stays an empty entry */
	struct iovec v[5] = {{a, 5}, {b, 0}, {c, 7}, {d, 40}, {NULL, 0}};
	ck_assert_uint_eq(iov_total(v, 5), 52);

	/* bytes [3, 3+20) of 52: 2 of a, none of b, 7 of c, 11 of d */
	struct iovec st[2], *out;
	int n = iov_slice(v, 5, 3, 20, st, 2, &out);
	ck_assert_int_eq(n, 4);
	ck_assert_ptr_ne(out, st); /* more than the storage: allocated */
	ck_assert_ptr_eq(out[0].iov_base, a + 3);
	ck_assert_uint_eq(out[0].iov_len, 2);
	ck_assert_uint_eq(out[1].iov_len, 0);
	ck_assert_ptr_eq(out[2].iov_base, c);
	ck_assert_uint_eq(out[2].iov_len, 7);
	ck_assert_ptr_eq(out[3].iov_base, d);
	ck_assert_uint_eq(out[3].iov_len, 11);
	ck_assert_uint_eq(iov_total(out, n), 20);
	iov_slice_free(out, st);
	/* a slice inside one entry fits the storage */
	n = iov_slice(v, 5, 15, 4, st, 2, &out);
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_eq(out, st);
	ck_assert_ptr_eq(out[0].iov_base, d + 3);
	ck_assert_uint_eq(out[0].iov_len, 4);
	iov_slice_free(out, st);
	n = iov_slice(v, 5, 52, 0, st, 2, &out);
	ck_assert_int_eq(n, 0);

	/* copies and fills across entry boundaries */
	uint8_t src[52], back[52];
	tu_fill_random(src, sizeof(src), 12);
	iov_from_buf(v, 5, 0, src, 52);
	ck_assert_mem_eq(a, src, 5);
	ck_assert_mem_eq(c, src + 5, 7);
	ck_assert_mem_eq(d, src + 12, 40);
	memset(back, 0, sizeof(back));
	iov_to_buf(v, 5, 4, back, 10);
	ck_assert_mem_eq(back, src + 4, 10);
	iov_memset(v, 5, 4, 0xEE, 10);
	ck_assert_uint_eq(a[3], src[3]);
	ck_assert_uint_eq(a[4], 0xEE);
	for (int i = 0; i < 7; i++)
		ck_assert_uint_eq(c[i], 0xEE);
	ck_assert_uint_eq(d[1], 0xEE);
	ck_assert_uint_eq(d[2], src[14]);

	/* zero detection at every alignment and length */
	uint8_t z[200];
	memset(z, 0, sizeof(z));
	for (size_t off = 0; off < 17; off++)
		for (size_t len = 0; off + len <= sizeof(z); len += 7) {
			ck_assert(buf_is_zero(z + off, len));
			if (!len)
				continue;
			z[off + len - 1] = 1;
			ck_assert(!buf_is_zero(z + off, len));
			z[off + len - 1] = 0;
			z[off] = 1;
			ck_assert(!buf_is_zero(z + off, len));
			z[off] = 0;
		}
}
END_TEST

/* The host-file layer under the raw driver (file.h). */
START_TEST(host_file_layer)
{
	struct mimg_file *f;
	uint8_t buf[8192];
	bool data;
	uint64_t n, size;

	ck_assert_int_eq(mimg_file_open(&f, "none.img", 0), -ENOENT);
	ck_assert_ptr_null(f);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "none.img"));
	ck_assert_int_eq(mkdir("d", 0755), 0);
	ck_assert_int_eq(mimg_file_open(&f, "d", 0), -EISDIR);

	ck_assert_int_eq(mimg_file_open(&f, "f.img",
					MIMG_FILE_RDWR | MIMG_FILE_CREATE),
			 0);
	ck_assert(mimg_file_is_regular(f));
	ck_assert_str_eq(mimg_file_path(f), "f.img");
	ck_assert_int_eq(mimg_file_truncate(f, 1 * MIB), 0);
	ck_assert_int_eq(mimg_file_size(f, &size), 0);
	ck_assert_uint_eq(size, 1 * MIB);
	tu_fill_random(buf, sizeof(buf), 4);
	ck_assert_int_eq(mimg_file_pwrite(f, buf, 8192, 256 * 1024), 0);

	/* data/hole map */
	ck_assert_int_eq(mimg_file_extent(f, 0, MIB, &data, &n), 0);
	ck_assert(!data);
	ck_assert_uint_eq(n, 256 * 1024);
	ck_assert_int_eq(mimg_file_extent(f, 256 * 1024, MIB, &data, &n), 0);
	ck_assert(data);
	ck_assert_uint_eq(n, 8192);
	ck_assert_int_eq(mimg_file_extent(f, 256 * 1024, 100, &data, &n), 0);
	ck_assert_uint_eq(n, 100); /* capped */
	ck_assert_int_eq(mimg_file_extent(f, 512 * 1024, 4096, &data, &n), 0);
	ck_assert(!data);
	ck_assert_uint_eq(n, 4096);

	/* reads past the end: zeroes, or -EIO for the exact variant */
	memset(buf, 0xEE, sizeof(buf));
	ck_assert_int_eq(mimg_file_pread(f, buf, 4096, MIB - 10), 0);
	for (int i = 10; i < 4096; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_int_eq(mimg_file_pread_exact(f, buf, 4096, MIB - 10,
					       "L2 table"),
			 -EIO);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "L2 table"));
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "f.img"));
	ck_assert_int_eq(mimg_file_pread_exact(f, buf, 10, MIB - 10, "x"), 0);
	ck_assert_int_eq(mimg_file_pread_exact(f, buf, 1, UINT64_MAX, "x"),
			 -EIO);

	/* space management */
	uint64_t before, after;
	ck_assert_int_eq(mimg_file_allocated(f, &before), 0);
	ck_assert_int_eq(mimg_file_allocate(f, 0, 64 * 1024), 0);
	ck_assert_int_eq(mimg_file_allocated(f, &after), 0);
	ck_assert_uint_ge(after, before + 64 * 1024);
	ck_assert_int_eq(mimg_file_punch_hole(f, 256 * 1024, 4096), 0);
	ck_assert_int_eq(mimg_file_pread(f, buf, 4096, 256 * 1024), 0);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_int_eq(mimg_file_zero_range(f, 260 * 1024, 4096, false), 0);
	ck_assert_int_eq(mimg_file_pread(f, buf, 4096, 260 * 1024), 0);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_int_eq(mimg_file_size(f, &size), 0);
	ck_assert_uint_eq(size, 1 * MIB);
	ck_assert_int_eq(mimg_file_flush(f), 0);
	ck_assert_int_eq(mimg_file_close(f), 0);
	ck_assert_int_eq(mimg_file_close(NULL), 0);

	/* read-only files refuse writes from the kernel itself */
	ck_assert_int_eq(mimg_file_open(&f, "f.img", 0), 0);
	ck_assert_int_eq(mimg_file_pwrite(f, buf, 1, 0), -EBADF);
	ck_assert_int_eq(mimg_file_flush(f), 0);
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

/* mimg_open_opts with raw's offset and size: the disk is that window of
 * the file; reads, writes, zeroing and discard stay inside it. */
START_TEST(window_of_the_file)
{
	enum { FILE_SIZE = 4 * MIB, OFF = 1 * MIB, LEN = 2 * MIB };
	const struct mimg_opt opts[] = {{"offset", "1M"}, {"size", "2M"}};
	uint8_t *disk = tu_random_file("w.img", FILE_SIZE, 9);
	uint8_t *buf = malloc(LEN), *after;
	struct mimg *img;
	uint64_t pnum, host;
	unsigned st;

	ck_assert_int_eq(mimg_open_opts(&img, "w.img", "raw", MIMG_OPEN_RDWR,
					NULL, opts, 2),
			 0);
	ck_assert_uint_eq(mimg_size(img), LEN);
	ck_assert_int_eq(mimg_has_zero_init(img), false);
	ck_assert_int_eq(mimg_pread(img, buf, LEN, 0, 0), LEN);
	ck_assert_mem_eq(buf, disk + OFF, LEN);
	ck_assert_int_eq(mimg_block_status(img, 4096, LEN - 4096, &pnum, &st,
					   &host, 0),
			 0);
	ck_assert_uint_eq(host, OFF + 4096);
	/* writes, zeroes and discards land in the window, not past it */
	memset(buf, 0x5a, 4096);
	ck_assert_int_eq(mimg_pwrite(img, buf, 4096, LEN - 4096, 0), 4096);
	ck_assert_int_eq(mimg_pwrite(img, buf, 1, LEN, 0), -ENOSPC);
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 0, 64 * 1024, 0), 0);
	ck_assert_int_eq(mimg_discard(img, 64 * 1024, 64 * 1024, 0), 0);
	ck_assert_int_eq(mimg_truncate(img, 3 * MIB, MIMG_PREALLOC_OFF),
			 -ENOTSUP);
	ck_assert_int_eq(mimg_close(img), 0);
	after = slurp("w.img", FILE_SIZE);
	ck_assert_mem_eq(after, disk, OFF);
	ck_assert(all_zero(after + OFF, 128 * 1024));
	ck_assert_mem_eq(after + OFF + 128 * 1024, disk + OFF + 128 * 1024,
			 LEN - 128 * 1024 - 4096);
	ck_assert(memcmp(after + OFF + LEN - 4096, buf, 4096) == 0);
	ck_assert_mem_eq(after + OFF + LEN, disk + OFF + LEN,
			 FILE_SIZE - OFF - LEN);
	free(after);
	free(buf);
	free(disk);
}
END_TEST

/* Options are checked: the format's own only, values that parse, a
 * window inside the file; the image's backing files take none. */
START_TEST(window_options_refused)
{
	struct mimg *img = NULL;
	tu_make_sparse("w.img", 1 * MIB);
	const struct mimg_opt past[] = {{"offset", "2M"}};
	ck_assert_int_eq(mimg_open_opts(&img, "w.img", "raw", 0, NULL, past, 1),
			 -EINVAL);
	ck_assert_ptr_null(img);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "Offset (2097152) cannot"));
	const struct mimg_opt odd[] = {{"size", "1000"}};
	ck_assert_int_eq(mimg_open_opts(&img, "w.img", "raw", 0, NULL, odd, 1),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "not multiple of 512"));
	const struct mimg_opt bad[] = {{"offset", "x"}};
	ck_assert_int_eq(mimg_open_opts(&img, "w.img", "raw", 0, NULL, bad, 1),
			 -EINVAL);
	const struct mimg_opt other[] = {{"cluster_size", "64k"}};
	ck_assert_int_eq(mimg_open_opts(&img, "w.img", "raw", 0, NULL, other,
					1),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(
		mimg_errmsg(),
		"Block format 'raw' does not support the option 'cluster_size'"));
	const struct mimg_opt nokey[] = {{NULL, "1"}};
	ck_assert_int_eq(mimg_open_opts(&img, "w.img", "raw", 0, NULL, nokey,
					1),
			 -EINVAL);
	ck_assert_int_eq(mimg_open_opts(&img, "w.img", "raw", 0, NULL, NULL, 1),
			 -EINVAL);
	/* without options: the whole file, as mimg_open */
	ck_assert_int_eq(mimg_open_opts(&img, "w.img", "raw", 0, NULL, NULL, 0),
			 0);
	ck_assert_uint_eq(mimg_size(img), 1 * MIB);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

int main(void)
{
	return tu_main("raw_io", "raw_io",
		       TU_TESTS(many_iovecs_round_trip,
				reads_past_end_are_short, writes_past_end_fail,
				read_only_refuses_writes, write_zeroes,
				discard_keeps_size_reads_zeroes, truncate_modes,
				create_preallocation, properties, info_of_raw,
				scatter_gather_helpers, host_file_layer,
				window_of_the_file, window_options_refused));
}
