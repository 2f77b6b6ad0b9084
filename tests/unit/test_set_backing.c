/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_set_backing (what rebase -u does) and mimg_create_flags with an
 * unsafe backing file: the header names the new backing file, other
 * header extensions survive, errors are the documented ones, and
 * qemu-img check finds the result clean when it is installed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"

static void make(const char *path, uint64_t size)
{
	ck_assert_int_eq(mimg_create(path, "qcow2", size, NULL, 0), 0);
}

static struct mimg *open_rw(const char *path)
{
	struct mimg *img = NULL;
	ck_assert_msg(mimg_open(&img, path, "qcow2",
				MIMG_OPEN_RDWR | MIMG_OPEN_NO_BACKING) == 0,
		      "%s", mimg_errmsg());
	return img;
}

/* Backing name and format as a fresh open reads them. */
static void expect_backing(const char *path, const char *name, const char *fmt)
{
	struct mimg *img = NULL;
	struct mimg_value *info = NULL;
	ck_assert_int_eq(mimg_open(&img, path, NULL, MIMG_OPEN_NO_BACKING), 0);
	ck_assert_int_eq(mimg_info(img, &info), 0);
	const struct mimg_value *n = mimg_value_get(info, "backing-filename");
	const struct mimg_value *f = mimg_value_get(info,
						    "backing-filename-format");
	if (name) {
		ck_assert_ptr_nonnull(n);
		ck_assert_str_eq(n->v.s, name);
	} else {
		ck_assert_ptr_null(n);
	}
	if (fmt) {
		ck_assert_ptr_nonnull(f);
		ck_assert_str_eq(f->v.s, fmt);
	} else {
		ck_assert_ptr_null(f);
	}
	mimg_value_free(info);
	mimg_close(img);
}

START_TEST(set_change_remove)
{
	uint8_t buf[4096], back[4096];
	make("a.qcow2", 4 << 20);
	make("b.qcow2", 4 << 20);
	make("t.qcow2", 4 << 20);
	struct mimg *img = open_rw("t.qcow2");
	tu_fill_random(buf, sizeof(buf), 7);
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), 65536, 0), 4096);
	ck_assert_int_eq(mimg_set_backing(img, "a.qcow2", "qcow2"), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	expect_backing("t.qcow2", "a.qcow2", "qcow2");

	img = open_rw("t.qcow2");
	ck_assert_int_eq(mimg_set_backing(img, "sub/longer-name.img", "raw"),
			 0);
	ck_assert_int_eq(mimg_close(img), 0);
	expect_backing("t.qcow2", "sub/longer-name.img", "raw");

	img = open_rw("t.qcow2");
	ck_assert_int_eq(mimg_set_backing(img, "b.qcow2", NULL), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	expect_backing("t.qcow2", "b.qcow2", NULL);

	img = open_rw("t.qcow2");
	ck_assert_int_eq(mimg_set_backing(img, "", NULL), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	expect_backing("t.qcow2", NULL, NULL);

	/* The data is untouched. */
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	ck_assert_int_eq(mimg_pread(img, back, sizeof(back), 65536, 0), 4096);
	ck_assert_mem_eq(buf, back, sizeof(buf));
	mimg_close(img);
	if (!tu_have_program("qemu-img"))
		return;
	tu_sh("qemu-img check -q t.qcow2");
}
END_TEST

START_TEST(errors)
{
	char name[1100];
	struct mimg *img;
	make("t.qcow2", 1 << 20);
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	ck_assert_int_eq(mimg_set_backing(img, "a", "qcow2"), -EROFS);
	mimg_close(img);

	img = open_rw("t.qcow2");
	ck_assert_int_eq(mimg_set_backing(img, NULL, "qcow2"), -EINVAL);
	ck_assert_int_eq(mimg_set_backing(img, "json:{}", "qcow2"), -EINVAL);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	ck_assert_int_eq(mimg_set_backing(img, name, "qcow2"), -EINVAL);
	mimg_close(img);
	expect_backing("t.qcow2", NULL, NULL);

	/* 512-byte clusters: a name that fits the limit but not the header
	 * cluster is refused, and the header is left as it was. */
	struct mimg_opt small[] = {{"cluster_size", "512"}};
	ck_assert_int_eq(mimg_create("s.qcow2", "qcow2", 1 << 20, small, 1), 0);
	img = open_rw("s.qcow2");
	name[600] = 0;
	ck_assert_int_eq(mimg_set_backing(img, name, "qcow2"), -ENOSPC);
	mimg_close(img);
	expect_backing("s.qcow2", NULL, NULL);

	ck_assert_int_eq(mimg_create("r.raw", "raw", 1 << 20, NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&img, "r.raw", "raw", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_set_backing(img, "a", "raw"), -ENOTSUP);
	mimg_close(img);
}
END_TEST

START_TEST(create_unsafe_backing)
{
	struct mimg_opt o[] = {{"backing_file", "missing.qcow2"},
			       {"backing_fmt", "qcow2"}};
	ck_assert_int_eq(mimg_create("t.qcow2", "qcow2", 1 << 20, o, 2),
			 -ENOENT);
	ck_assert_int_eq(mimg_create_flags("t.qcow2", "qcow2", 1 << 20, o, 2,
					   MIMG_CREATE_UNSAFE_BACKING),
			 0);
	expect_backing("t.qcow2", "missing.qcow2", "qcow2");
	ck_assert_int_eq(mimg_create_flags("u.qcow2", "qcow2", 0, o, 2,
					   MIMG_CREATE_UNSAFE_BACKING),
			 -EINVAL);
	ck_assert_int_eq(mimg_create_flags("u.qcow2", "qcow2", 1 << 20, o, 1,
					   MIMG_CREATE_UNSAFE_BACKING),
			 -EINVAL);
	ck_assert_int_eq(mimg_create_flags("u.qcow2", "qcow2", 1 << 20, NULL, 0,
					   0x80),
			 -EINVAL);
}
END_TEST

int main(void)
{
	return tu_main("set_backing", "set_backing",
		       TU_TESTS(set_change_remove, errors,
				create_unsafe_backing));
}
