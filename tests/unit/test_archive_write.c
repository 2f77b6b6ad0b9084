/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Writing appliances and compressed raw images through the library
 * (mimg_ova_write, mimg_convert_packed): argument checks, and a write
 * that fails at any point of the output fails the call with that error
 * (no crash, no success over a partial file).  Content and layout are
 * checked against independent readers in the interop tests.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file.h"
#include "mimg.h"
#include "testutil.h"

#define DISK (4u << 20)

/* A raw source with data at its start and end, opened read-only. */
static struct mimg *source(void)
{
	static uint8_t buf[128 << 10];
	struct mimg *img;
	tu_fill_random(buf, sizeof(buf), 7);
	tu_make_sparse("src.raw", DISK);
	tu_write_file("src.raw", buf, sizeof(buf), 0);
	tu_write_file("src.raw", buf, 65536, DISK - 65536);
	ck_assert_int_eq(mimg_open(&img, "src.raw", "raw", 0), 0);
	return img;
}

/* Fail the Nth write-type operation on PATH's file (counted from 1). */
struct fault {
	const char *path;
	int countdown, hits;
};

static int fault_hook(void *opaque, enum mimg_file_op op, const char *path,
		      uint64_t off, uint64_t len)
{
	struct fault *f = opaque;
	(void)op;
	(void)off;
	(void)len;
	if (strcmp(path, f->path) != 0)
		return 0;
	f->hits++;
	return --f->countdown == 0 ? -ENOSPC : 0;
}

START_TEST(ova_arguments)
{
	struct mimg *src = source();
	struct mimg_opt bad[] = {{"cpus", "0"}}, unknown[] = {{"sound", "1"}};
	struct mimg_opt ide[] = {{"controller", "ide"}};
	struct mimg *five[5] = {src, src, src, src, src};

	ck_assert_int_eq(mimg_ova_write(NULL, &src, 1, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(mimg_ova_write("a.ova", &src, 0, NULL, 0, NULL),
			 -EINVAL);
	ck_assert_int_eq(mimg_ova_write("a.ova", &src, 1, bad, 1, NULL),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "cpus=0"));
	ck_assert_int_eq(mimg_ova_write("a.ova", &src, 1, unknown, 1, NULL),
			 -EINVAL);
	ck_assert_int_eq(mimg_ova_write("a.ova", five, 5, ide, 1, NULL),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "takes 1 to 4"));
	ck_assert_int_eq(mimg_ova_write("a.ova", &src, 1, NULL, 0, NULL), 0);
	struct mimg *back;
	ck_assert_int_eq(mimg_open(&back, "a.ova", NULL, 0), 0);
	ck_assert_str_eq(mimg_format(back), "vmdk");
	ck_assert_uint_eq(mimg_size(back), DISK);
	mimg_close(back);
	mimg_close(src);
}
END_TEST

START_TEST(packed_arguments)
{
	struct mimg *src = source();
	struct mimg_convert_opts o = {.size = sizeof(o),
				      .compression_level = 20};
	ck_assert_int_eq(mimg_convert_packed(&src, 1, "a.bz2", "bzip2", NULL),
			 -EINVAL);
	ck_assert_int_eq(mimg_convert_packed(&src, 1, "a.xz", "xz", &o),
			 -EINVAL);
	ck_assert_int_eq(mimg_convert_packed(&src, 1, NULL, "xz", NULL),
			 -EINVAL);
	for (const char *const *c =
		     (const char *const[]){"xz", "zstd", "gzip", NULL};
	     *c; c++) {
		struct mimg *back;
		ck_assert_int_eq(mimg_convert_packed(&src, 1, "a.out", *c,
						     NULL),
				 0);
		/* read back through the archive layer */
		ck_assert_int_eq(mimg_open(&back, "a.out", NULL, 0), 0);
		ck_assert_uint_eq(mimg_size(back), DISK);
		mimg_close(back);
	}
	mimg_close(src);
}
END_TEST

/* A write of the output failing (the first, the last, some between)
 * fails the call with its error. */
static void fail_each_write(int (*write)(struct mimg *src, const char *out),
			    const char *out)
{
	struct mimg *src = source();
	char path[4096];
	struct fault f;

	snprintf(path, sizeof(path), "%s", out);
	f = (struct fault){.path = path, .countdown = -1};
	mimg_file_set_fault_hook(fault_hook, &f);
	ck_assert_int_eq(write(src, out), 0);
	int total = f.hits;
	ck_assert_int_gt(total, 0);
	/* the first, the last and a few between */
	for (int n = 1, step = total / 4 + 1; n <= total;
	     n = n < total && n + step > total ? total : n + step) {
		f = (struct fault){.path = path, .countdown = n};
		ck_assert_int_eq(write(src, out), -ENOSPC);
	}
	mimg_file_set_fault_hook(NULL, NULL);
	mimg_close(src);
}

static int ova(struct mimg *src, const char *out)
{
	return mimg_ova_write(out, &src, 1, NULL, 0, NULL);
}

static int xz(struct mimg *src, const char *out)
{
	return mimg_convert_packed(&src, 1, out, "xz", NULL);
}

static int zstd(struct mimg *src, const char *out)
{
	return mimg_convert_packed(&src, 1, out, "zstd", NULL);
}

START_TEST(ova_write_faults)
{
	fail_each_write(ova, "f.ova");
}
END_TEST

START_TEST(packed_write_faults)
{
	fail_each_write(xz, "f.raw.xz");
	fail_each_write(zstd, "f.raw.zst");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("archive_write");
	TCase *tc = tu_tcase_of(s, "archive_write",
				TU_TESTS(ova_arguments, packed_arguments,
					 ova_write_faults,
					 packed_write_faults));
	tcase_set_timeout(tc, 60);
	return tu_run_suite(s);
}
