/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Hostile Parallels headers: every bad field is refused at open with a
 * message naming it, without a crash or a huge allocation; BAT entries
 * outside the data area fail the I/O that reaches them and are found by
 * check; the in-use mark and a format extension keep writers out; a BAT
 * entry that cannot reach a new cluster fails the write that needs it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "mimg.h"
#include "testutil.h"

#define FILE_NAME "bad.hdd"
#define MIB (1u << 20)

/* A fresh 5 MiB image of 1 MiB clusters: header, five BAT entries, data
 * at 1 MiB; clusters 0 and 2 allocated (at 1 and 2 MiB). */
static void make_image(void)
{
	struct mimg *img;
	ck_assert_int_eq(mimg_create(FILE_NAME, "parallels", 5 * MIB, NULL, 0),
			 0);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "parallels",
				   MIMG_OPEN_RDWR),
			 0);
	ck_assert_int_eq(mimg_pwrite(img, "data", 4, 0, 0), 4);
	ck_assert_int_eq(mimg_pwrite(img, "more", 4, 2 * MIB, 0), 4);
	ck_assert_int_eq(mimg_close(img), 0);
}

static const struct tu_field_case fields[] = {
	{16, 3, -ENOTSUP, "unsupported version 3"},
	{28, 0, -EINVAL, "cluster size of 0 sectors"},
	{28, 0x7fffffff, -EINVAL, "cluster size of 2147483647 sectors"},
	{32, 0xffffffff, -EFBIG, "BAT of 4294967295 entries is larger"},
	{32, 0x1fffffff, -EINVAL, "BAT of 536870911 entries ends at"},
	{32, 2, -EINVAL, "does not fit in the 2 BAT entries"},
	{48, 2049, -EINVAL, "not a multiple of the cluster size"},
	{28, 1, -EINVAL, "does not fit in the 5 BAT entries"},
};

START_TEST(bad_field)
{
	tu_expect_field_refused(FILE_NAME, "parallels", make_image,
				&fields[_i]);
}
END_TEST

START_TEST(bad_magic)
{
	make_image();
	tu_write_file(FILE_NAME, "WithoutSpaceExt!", 16, 0);
	tu_expect_open_refused(FILE_NAME, "parallels", -EINVAL,
			       "Image not in Parallels format");
}
END_TEST

START_TEST(disk_size_huge)
{
	make_image();
	tu_patch_le64(FILE_NAME, 36, UINT64_MAX);
	tu_expect_open_refused(FILE_NAME, "parallels", -EINVAL, "does not fit");
}
END_TEST

/* A data area that starts inside the BAT (of 200 entries here). */
START_TEST(data_inside_bat)
{
	make_image();
	tu_patch_le32(FILE_NAME, 32, 200);
	tu_patch_le32(FILE_NAME, 48, 1);
	tu_expect_open_refused(FILE_NAME, "parallels", -EINVAL,
			       "data offset 512 is inside the header or BAT "
			       "(which ends at 864)");
}
END_TEST

/* Files shorter than the header, which probe as Parallels. */
START_TEST(short_files)
{
	struct mimg *img;
	tu_write_file(FILE_NAME, "WithouFreSpacExt\2\0\0\0", 20, 0);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, 0), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "shorter than the header"));
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), FILE_NAME));
}
END_TEST

/* Entries before the data area (here: in the header and BAT) or past the
 * file's end. */
START_TEST(entry_outside)
{
	static const uint32_t bad[] = {0, 9, 0x40000000};
	for (size_t i = 0; i < TU_NELEM(bad); i++) {
		struct mimg *img;
		uint8_t buf[16];
		make_image();
		/* old images count in sectors: entry 0 would be unallocated */
		if (bad[i] == 0) {
			tu_write_file(FILE_NAME, "WithoutFreeSpace", 16, 0);
			tu_patch_le32(FILE_NAME, 64,
				      2048); /* cluster 0, in sectors */
			tu_patch_le32(FILE_NAME, 64 + 2 * 4,
				      1); /* sector 1: the BAT */
		} else {
			tu_patch_le32(FILE_NAME, 64 + 2 * 4, bad[i]);
		}
		ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL,
					   MIMG_OPEN_RDWR),
				 0);
		ck_assert_int_eq(mimg_pread(img, buf, 4, 2 * MIB, 0), -EIO);
		ck_assert_ptr_nonnull(
			strstr(mimg_errmsg(), "outside the data area"));
		ck_assert_int_eq(mimg_pwrite(img, buf, 4, 2 * MIB, 0), -EIO);
		uint64_t pnum;
		unsigned st;
		ck_assert_int_eq(mimg_block_status(img, 2 * MIB, MIB, &pnum,
						   &st, NULL, 0),
				 -EIO);
		ck_assert_int_eq(mimg_close(img), 0);
		ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, 0), 0);
		tu_assert_check(img, 0, 1, TU_ANY, "cluster 2 is outside");
		ck_assert_int_eq(mimg_close(img), 0);
	}
}
END_TEST

/* In use: read, not written, repaired by check. */
START_TEST(in_use)
{
	struct mimg *img;
	uint8_t b[4];
	make_image();
	tu_write_file(FILE_NAME, "Ynot", 4, 44);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, MIMG_OPEN_RDWR),
			 -EBUSY);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "not closed correctly"));
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, 0), 0);
	ck_assert_int_eq(mimg_pread(img, b, 4, 2 * MIB, 0), 4);
	ck_assert_mem_eq(b, "more", 4);
	tu_assert_check(img, 0, 1, 0, "image was not closed correctly");
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL,
				   MIMG_OPEN_RDWR | MIMG_OPEN_CHECK),
			 0);
	struct mimg_check_result res = {.size = sizeof(res)};
	ck_assert_int_eq(mimg_check(img, MIMG_CHECK_REPAIR_ERRORS, &res), 0);
	ck_assert_uint_eq(res.corruptions, 0);
	ck_assert_uint_eq(res.corruptions_fixed, 1);
	mimg_check_result_free(&res);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

/* Dirty bitmaps in a format extension: read-only. */
START_TEST(format_extension)
{
	struct mimg *img;
	make_image();
	tu_patch_le64(FILE_NAME, 56, 2048);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, MIMG_OPEN_RDWR),
			 -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "format extension"));
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

/* Old images count only the low half of the sector count. */
START_TEST(old_size_low_half)
{
	struct mimg *img;
	make_image();
	tu_write_file(FILE_NAME, "WithoutFreeSpace", 16, 0);
	for (uint32_t i = 0; i < 5; i++) /* clusters to sectors */
		tu_patch_le32(FILE_NAME, 64 + 4 * i,
			      i == 0   ? 2048
			      : i == 2 ? 4096
				       : 0);
	tu_patch_le64(FILE_NAME, 36, (7ull << 32) | (5 * MIB / 512));
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, 0), 0);
	ck_assert_uint_eq(mimg_size(img), 5 * MIB);
	uint8_t b[4];
	ck_assert_int_eq(mimg_pread(img, b, 4, 2 * MIB, 0), 4);
	ck_assert_mem_eq(b, "more", 4);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

/* 512-byte clusters counted in clusters reach 2 TiB at most: a new
 * cluster past that cannot be named and its write fails. */
START_TEST(entry_cannot_reach)
{
	struct mimg *img;
	uint8_t h[72] = {0};
	memcpy(h, "WithouFreSpacExt", 16);
	st_le32(h + 16, 2);
	st_le32(h + 28, 1);	     /* 512-byte clusters */
	st_le32(h + 32, 2);	     /* two of them */
	st_le64(h + 36, 2);	     /* sectors */
	st_le32(h + 48, 1);	     /* data at 512 */
	st_le32(h + 64, 0xffffffff); /* the last cluster a entry names */
	tu_make_sparse(FILE_NAME, 1ull << 41);
	tu_write_file(FILE_NAME, h, sizeof(h), 0);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, "x", 1, 0, 0), 1);
	ck_assert_int_eq(mimg_pwrite(img, "x", 1, 512, 0), -ENOSPC);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "no room"));
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

int main(void)
{
	return tu_main_loops("parallels_malformed", "parallels_malformed",
			     TU_TESTS(bad_magic, disk_size_huge,
				      data_inside_bat, short_files,
				      entry_outside, in_use, format_extension,
				      old_size_low_half, entry_cannot_reach),
			     TU_LOOPS({bad_field, TU_NELEM(fields)}));
}
