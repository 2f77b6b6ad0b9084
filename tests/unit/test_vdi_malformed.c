/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Hostile VDI headers: every bad field is refused at open with a message
 * naming it, without a crash or a huge allocation; bad block map entries
 * fail the I/O that reaches them and are found by check.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "mimg.h"
#include "testutil.h"

#define FILE_NAME "bad.vdi"
#define MIB (1u << 20)

/* A fresh dynamic 5 MiB VDI: header, block map of five entries at 512,
 * data at 1024; blocks 0 and 2 allocated (data indexes 0 and 1). */
static void make_image(void)
{
	struct mimg *img;
	ck_assert_int_eq(mimg_create(FILE_NAME, "vdi", 5 * MIB, NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vdi", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, "data", 4, 0, 0), 4);
	ck_assert_int_eq(mimg_pwrite(img, "more", 4, 2 * MIB, 0), 4);
	ck_assert_int_eq(mimg_close(img), 0);
}

static const struct tu_field_case fields[] = {
	{0x40, 0x12345678, -EINVAL, "bad signature 12345678"},
	{0x44, 0x00010000, -ENOTSUP, "version 1.0"},
	{0x4c, 3, -ENOTSUP, "image type 3"},
	{0x168, 4096, -ENOTSUP, "sector size 4096"},
	{0x178, 2 * MIB, -ENOTSUP, "block size 2097152"},
	{0x178, 3000, -ENOTSUP, "block size 3000"},
	{0x17c, 16, -ENOTSUP, "block extra"},
	{0x154, 513, -ENOTSUP, "unaligned block map offset 0x201"},
	{0x158, 1000, -ENOTSUP, "data offset 0x3e8"},
	{0x1a8, 1, -ENOTSUP, "link or parent UUID"},
	{0x1b8, 7, -ENOTSUP, "link or parent UUID"},
	{0x180, 0x40000000, -EINVAL, "too many blocks 1073741824"},
	{0x180, 0x1fffff81, -EINVAL, "too many blocks 536870785"},
	{0x180, 0x1fffff80, -EINVAL, "outside the file"},
	{0x180, 2, -EINVAL, "does not fit"},
	{0x154, 0xfffffe00, -EINVAL, "outside the file"},
	{0x154, 0, -EINVAL, "outside the file"},
	{0x158, 512, -EINVAL, "inside the header or block map"},
};

START_TEST(bad_field)
{
	tu_expect_field_refused(FILE_NAME, "vdi", make_image, &fields[_i]);
}
END_TEST

START_TEST(disk_size_huge)
{
	make_image();
	tu_patch_le64(FILE_NAME, 0x170, UINT64_MAX);
	tu_expect_open_refused(FILE_NAME, "vdi", -EINVAL, "does not fit");
}
END_TEST

START_TEST(entry_past_blocks)
{
	struct mimg *img;
	uint8_t buf[16];
	make_image();
	tu_patch_le32(FILE_NAME, 512 + 2 * 4, 0x3ffffff0); /* block 2 */
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pread(img, buf, 4, 0, 0), 4);
	ck_assert_int_eq(mimg_pread(img, buf, 4, 2 * MIB, 0), -EIO);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "block map entry 2"));
	ck_assert_int_eq(mimg_pwrite(img, buf, 4, 2 * MIB, 0), -EIO);
	uint64_t pnum;
	unsigned st;
	ck_assert_int_eq(mimg_block_status(img, 2 * MIB, MIB, &pnum, &st, NULL,
					   0),
			 -EIO);
	tu_assert_check(img, 0, TU_SOME, TU_ANY, "too large");
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(entry_used_twice)
{
	struct mimg *img;
	make_image();
	tu_patch_le32(FILE_NAME, 512 + 3 * 4,
		      0); /* block 3 shares block 0's data */
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, 0), 0);
	/* and the count mismatch */
	tu_assert_check(img, 0, 2, TU_ANY, "also used by");
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(allocated_count)
{
	struct mimg *img;
	make_image();
	tu_patch_le32(FILE_NAME, 0x184, 1); /* two in the map */
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, MIMG_OPEN_RDWR), 0);
	tu_assert_check(img, 0, 1, TU_ANY, NULL);
	/* a new block still goes after both blocks in use */
	ck_assert_int_eq(mimg_pwrite(img, "new!", 4, 4 * MIB, 0), 4);
	uint8_t b[4];
	ck_assert_int_eq(mimg_pread(img, b, 4, 2 * MIB, 0), 4);
	ck_assert_mem_eq(b, "more", 4);
	ck_assert_int_eq(mimg_close(img), 0);

	make_image();
	/* An interrupted allocation: a leak (qemu-img says a corruption). */
	tu_patch_le32(FILE_NAME, 0x184, 3);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, 0), 0);
	tu_assert_check(img, 0, 0, 1, "Leak: allocated blocks mismatch");
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(truncated)
{
	struct mimg *img;
	tu_write_file(FILE_NAME, "<<< x >>>", 9, 0);
	ck_assert_int_lt(mimg_open(&img, FILE_NAME, "vdi", 0), 0);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "vdi header"));
}
END_TEST

int main(void)
{
	return tu_main_loops("vdi_malformed", "vdi_malformed",
			     TU_TESTS(disk_size_huge, entry_past_blocks,
				      entry_used_twice, allocated_count,
				      truncated),
			     TU_LOOPS({bad_field, TU_NELEM(fields)}));
}
