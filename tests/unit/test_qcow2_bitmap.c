/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Persistent qcow2 bitmaps through the library: writes set the bits of
 * enabled bitmaps and are stored at close; a process that dies with the
 * image open leaves them in use; refusals as qemu's; and hostile bitmap
 * directories and tables (offsets past the file, huge granularity, bad
 * names, sizes that disagree) give a clear error, never a crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mimg.h"
#include "testutil.h"

#define SIZE (8u << 20)

static uint64_t get_be(const char *path, uint64_t off, unsigned n)
{
	uint8_t b[8];
	tu_read_at(path, b, n, off);
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | b[i];
	return v;
}

static void put_be(const char *path, uint64_t off, uint64_t v, unsigned n)
{
	uint8_t b[8];
	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	tu_write_file(path, b, n, off);
}

/* Offset of the bitmap directory of t.qcow2 (its first entry). */
static uint64_t dir_offset(void)
{
	uint64_t p = get_be("t.qcow2", 100, 4);
	for (;;) {
		uint32_t type = (uint32_t)get_be("t.qcow2", p, 4);
		uint32_t len = (uint32_t)get_be("t.qcow2", p + 4, 4);
		ck_assert_uint_ne(type, 0);
		if (type == 0x23852875u)
			return get_be("t.qcow2", p + 24, 8);
		p += 8 + ((len + 7u) & ~7u);
	}
}

static struct mimg *open_rw(void)
{
	struct mimg *img = NULL;
	int r = mimg_open(&img, "t.qcow2", "qcow2", MIMG_OPEN_RDWR);
	ck_assert_msg(r == 0, "open: %s", mimg_errmsg());
	return img;
}

/* t.qcow2 with bitmap "b" (512-byte granularity) holding writes. */
static void image_with_bitmap(void)
{
	ck_assert_int_eq(mimg_create("t.qcow2", "qcow2", SIZE, NULL, 0), 0);
	struct mimg *img = open_rw();
	ck_assert_int_eq(mimg_bitmap_add(img, "b", 512, 0), 0);
	char buf[4096] = {1};
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), 1 << 20, 0),
			 (ssize_t)sizeof(buf));
	ck_assert_int_eq(mimg_close(img), 0);
}

START_TEST(writes_are_recorded)
{
	ck_assert_int_eq(mimg_create("t.qcow2", "qcow2", SIZE, NULL, 0), 0);
	struct mimg *img = open_rw();
	ck_assert_int_eq(mimg_bitmap_add(img, "coarse", 0, 0), 0);
	ck_assert_int_eq(mimg_bitmap_add(img, "fine", 512, 0), 0);
	ck_assert_int_eq(mimg_bitmap_add(img, "off", 0, MIMG_BITMAP_DISABLED),
			 0);
	char buf[1000];
	memset(buf, 7, sizeof(buf));
	ck_assert_int_eq(mimg_pwrite(img, buf, 1000, 70000, 0), 1000);
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 3 << 20, 131072, 0), 0);
	ck_assert_int_eq(mimg_discard(img, 5 << 20, 65536, 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);

	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	char runs[512];
	ck_assert_int_eq(tu_dirty_runs(img, "fine", runs, sizeof(runs)), 0);
	ck_assert_str_eq(runs, "69632+1536,3145728+131072,5242880+65536,");
	ck_assert_int_eq(tu_dirty_runs(img, "coarse", runs, sizeof(runs)), 0);
	ck_assert_str_eq(runs, "65536+65536,3145728+131072,5242880+65536,");
	ck_assert_int_eq(tu_dirty_runs(img, "off", runs, sizeof(runs)), 0);
	ck_assert_str_eq(runs, "");
	tu_assert_check(img, 0, 0, 0, NULL);
	/* changes need a writable image */
	ck_assert_int_eq(mimg_bitmap_clear(img, "fine"), -EROFS);
	mimg_close(img);

	img = open_rw();
	ck_assert_int_eq(mimg_bitmap_clear(img, "fine"), 0);
	ck_assert_int_eq(mimg_bitmap_merge(img, "off", NULL, "coarse"), 0);
	ck_assert_int_eq(mimg_bitmap_remove(img, "coarse"), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	ck_assert_int_eq(tu_dirty_runs(img, "fine", runs, sizeof(runs)), 0);
	ck_assert_str_eq(runs, "");
	ck_assert_int_eq(tu_dirty_runs(img, "off", runs, sizeof(runs)), 0);
	ck_assert_str_eq(runs, "65536+65536,3145728+131072,5242880+65536,");
	ck_assert_int_eq(tu_dirty_runs(img, "coarse", runs, sizeof(runs)),
			 -ENOENT);
	tu_assert_check(img, 0, 0, 0, NULL);
	mimg_close(img);
}
END_TEST

START_TEST(death_leaves_in_use)
{
	image_with_bitmap();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mimg *img = NULL;
		char buf[512] = {0};
		if (mimg_open(&img, "t.qcow2", "qcow2", MIMG_OPEN_RDWR) < 0 ||
		    mimg_pwrite(img, buf, 512, 0, 0) != 512)
			_exit(1);
		_exit(0); /* no close */
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	struct mimg *img = open_rw();
	uint64_t pnum;
	bool dirty;
	ck_assert_int_eq(mimg_bitmap_status(img, "b", 0, 512, &pnum, &dirty),
			 -EBUSY);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "inconsistent"));
	ck_assert_int_eq(mimg_bitmap_clear(img, "b"), -EBUSY);
	ck_assert_int_eq(mimg_bitmap_enable(img, "b", false), -EBUSY);
	ck_assert_int_eq(mimg_bitmap_remove(img, "b"), 0);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(refusals)
{
	ck_assert_int_eq(mimg_create("t.qcow2", "qcow2", SIZE, NULL, 0), 0);
	struct mimg *img = open_rw();
	ck_assert_int_eq(mimg_bitmap_add(img, "a", 0, 0), 0);
	ck_assert_int_eq(mimg_bitmap_add(img, "a", 0, 0), -EEXIST);
	ck_assert_str_eq(mimg_errmsg(), "Bitmap already exists: a");
	ck_assert_int_eq(mimg_bitmap_add(img, "x", 1000, 0), -EINVAL);
	ck_assert_int_eq(mimg_bitmap_add(img, "x", 256, 0), -EINVAL);
	ck_assert_int_eq(mimg_bitmap_add(img, "x", 4ull << 30, 0), -EINVAL);
	ck_assert_int_eq(mimg_bitmap_add(img, "", 0, 0), -EINVAL);
	ck_assert_int_eq(mimg_bitmap_add(img, "x", 0, 2), -EINVAL);
	char name[1025];
	memset(name, 'n', 1024);
	name[1024] = 0;
	ck_assert_int_eq(mimg_bitmap_add(img, name, 0, 0), -EINVAL);
	name[1023] = 0;
	ck_assert_int_eq(mimg_bitmap_add(img, name, 0, 0), 0);
	ck_assert_int_eq(mimg_bitmap_remove(img, "nope"), -ENOENT);
	ck_assert_str_eq(mimg_errmsg(), "Dirty bitmap 'nope' not found");
	ck_assert_int_eq(mimg_bitmap_merge(img, "a", NULL, "nope"), -ENOENT);
	uint64_t pnum;
	bool dirty;
	ck_assert_int_eq(mimg_bitmap_status(img, "a", SIZE, 1, &pnum, &dirty),
			 -EINVAL);
	ck_assert_int_eq(mimg_close(img), 0);

	struct mimg_opt v2[] = {{"compat", "0.10"}};
	ck_assert_int_eq(mimg_create("v2.qcow2", "qcow2", SIZE, v2, 1), 0);
	ck_assert_int_eq(mimg_open(&img, "v2.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_bitmap_add(img, "a", 0, 0), -ENOTSUP);
	mimg_close(img);
	ck_assert_int_eq(mimg_create("r.img", "raw", SIZE, NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&img, "r.img", "raw", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_bitmap_add(img, "a", 0, 0), -ENOTSUP);
	ck_assert_int_eq(mimg_bitmap_remove(img, "a"), -ENOENT);
	mimg_close(img);
}
END_TEST

/* Opening t.qcow2 (read-only) fails with -EINVAL naming WORD. */
static void expect_bad(const char *word)
{
	struct mimg *img = NULL;
	int r = mimg_open(&img, "t.qcow2", "qcow2", 0);
	ck_assert_msg(r == -EINVAL, "got %d (%s)", r, mimg_errmsg());
	ck_assert_msg(strstr(mimg_errmsg(), word) != NULL,
		      "message '%s' lacks '%s'", mimg_errmsg(), word);
}

/* Set the N-byte big-endian field at OFF of t.qcow2 to V: the image is
 * then refused with WORD in the message. */
static void expect_bad_field(uint64_t off, uint64_t v, unsigned n,
			     const char *word)
{
	put_be("t.qcow2", off, v, n);
	expect_bad(word);
}

START_TEST(table_past_end_of_file)
{
	image_with_bitmap();
	expect_bad_field(dir_offset(), 1ull << 40, 8, "bitmap_table_offset");
}
END_TEST

START_TEST(table_entry_past_end_of_file)
{
	image_with_bitmap();
	uint64_t table = get_be("t.qcow2", dir_offset(), 8);
	put_be("t.qcow2", table, 1ull << 40, 8);
	/* the directory is sound: info works, the content is refused */
	struct mimg *img = NULL;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", "qcow2", 0), 0);
	uint64_t pnum;
	bool dirty;
	ck_assert_int_eq(mimg_bitmap_status(img, "b", 0, 512, &pnum, &dirty),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "table entry"));
	mimg_close(img);
	/* a writable open must load it, and refuses the image */
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", "qcow2", MIMG_OPEN_RDWR),
			 -EINVAL);
	/* an unaligned data offset too */
	put_be("t.qcow2", table, 0x10200, 8);
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", "qcow2", MIMG_OPEN_RDWR),
			 -EINVAL);
}
END_TEST

START_TEST(huge_granularity)
{
	image_with_bitmap();
	tu_write_file("t.qcow2", "\x3f", 1, dir_offset() + 17);
	expect_bad("granularity_bits");
}
END_TEST

START_TEST(table_size_disagrees)
{
	image_with_bitmap();
	uint64_t d = dir_offset();
	expect_bad_field(d + 8, 0, 4, "bitmap_table_size");
	expect_bad_field(d + 8, 0x8000001u, 4, "bitmap_table_size");
	/* a table of 2 entries for an image that needs 1 */
	put_be("t.qcow2", d + 8, 2, 4);
	struct mimg *img = NULL;
	int r = mimg_open(&img, "t.qcow2", "qcow2", MIMG_OPEN_RDWR);
	ck_assert_msg(r == -EINVAL, "got %d (%s)", r, mimg_errmsg());
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "needs"));
}
END_TEST

START_TEST(bad_names_and_flags)
{
	image_with_bitmap();
	uint64_t d = dir_offset();
	expect_bad_field(d + 18, 0, 2, "name of 0 bytes");
	expect_bad_field(d + 18, 0xffff, 2, "is invalid");
	put_be("t.qcow2", d + 18, 1, 2);
	expect_bad_field(d + 20, 0xffffffffu, 4, "is invalid");
	put_be("t.qcow2", d + 20, 0, 4);
	expect_bad_field(d + 12, 0x80000002u, 4, "flags");
	put_be("t.qcow2", d + 12, 2, 4);
	tu_write_file("t.qcow2", "\x02", 1, d + 16);
	expect_bad("type");
}
END_TEST

START_TEST(directory_bounds)
{
	image_with_bitmap();
	uint64_t p = get_be("t.qcow2", 100, 4);
	while (get_be("t.qcow2", p, 4) != 0x23852875u)
		p += 8 + ((get_be("t.qcow2", p + 4, 4) + 7) & ~7ull);
	/* nb_bitmaps; then two, only one there */
	expect_bad_field(p + 8, 70000, 4, "bitmap directory");
	expect_bad_field(p + 8, 2, 4, "bitmap directory");
	put_be("t.qcow2", p + 8, 1, 4);
	/* dir size */
	expect_bad_field(p + 16, 1ull << 30, 8, "bitmap directory");
	put_be("t.qcow2", p + 16, 32, 8);
	/* dir offset */
	expect_bad_field(p + 24, 1ull << 40, 8, "bitmap directory");
}
END_TEST

int main(void)
{
	if (!tu_have_format("qcow2"))
		return 77;
	return tu_main("qcow2_bitmap", "bitmap",
		       TU_TESTS(writes_are_recorded, death_leaves_in_use,
				refusals, table_past_end_of_file,
				table_entry_past_end_of_file, huge_granularity,
				table_size_disagrees, bad_names_and_flags,
				directory_bounds));
}
