/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Hostile VHD headers: every bad field is refused at open with a message
 * naming it, without a crash or a huge allocation, and without writing
 * to the file; overlapping blocks that open are found by check.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "mimg.h"
#include "testutil.h"

#define FILE_NAME "bad.vhd"

/* A fresh dynamic 5 MiB VHD: footer at 0, dynamic header at 512, BAT of
 * three entries at 1536, first block allocated. */
static void make_image(void)
{
	struct mimg *img;
	ck_assert_int_eq(mimg_create(FILE_NAME, "vpc", 5u << 20, NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vpc", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, "data", 4, 0, 0), 4);
	ck_assert_int_eq(mimg_close(img), 0);
}

static void patch(uint64_t off, const void *bytes, size_t len)
{
	tu_write_file(FILE_NAME, bytes, len, off);
}

/* Recompute the footer copy's checksum at offset 0, so that only the
 * field under test is wrong. */
static void fix_footer_checksum(void)
{
	uint8_t f[512];
	tu_read_at(FILE_NAME, f, 512, 0);
	uint32_t sum = 0;
	for (int i = 0; i < 512; i++)
		if (i < 64 || i >= 68)
			sum += f[i];
	tu_patch_be32(FILE_NAME, 64, ~sum);
}

START_TEST(footer_checksum)
{
	make_image();
	tu_patch_be32(FILE_NAME, 64, 0x12345678);
	tu_expect_open_refused(FILE_NAME, NULL, -EINVAL,
			       "footer checksum 0x12345678");
}
END_TEST

START_TEST(block_size_not_power_of_two)
{
	static const uint32_t sizes[] = {3000, 0, 256, 0x80000001u};
	for (int i = 0; i < 4; i++) {
		make_image();
		tu_patch_be32(FILE_NAME, 512 + 32, sizes[i]);
		char want[64];
		snprintf(want, sizeof(want), "block size %u", sizes[i]);
		tu_expect_open_refused(FILE_NAME, NULL, -EINVAL, want);
	}
}
END_TEST

START_TEST(bat_past_end)
{
	make_image();
	tu_patch_be32(FILE_NAME, 512 + 28, 0xffffffffu); /* max_table_entries */
	tu_expect_open_refused(FILE_NAME, NULL, -EINVAL,
			       "BAT at 0x600 with 4294967295 entries");
	make_image();
	tu_patch_be64(FILE_NAME, 512 + 16, 1ull << 40); /* table offset */
	tu_expect_open_refused(FILE_NAME, NULL, -EINVAL,
			       "is past the end of the file");
	make_image();
	tu_patch_be64(FILE_NAME, 512 + 16, UINT64_MAX - 3);
	tu_expect_open_refused(FILE_NAME, NULL, -EINVAL,
			       "is past the end of the file");
}
END_TEST

START_TEST(bat_too_small)
{
	make_image();
	tu_patch_be32(FILE_NAME, 512 + 28, 1);
	tu_expect_open_refused(FILE_NAME, NULL, -EINVAL, "too small");
}
END_TEST

START_TEST(bat_entry_into_metadata)
{
	static const uint32_t entries[] = {0, 1, 3};
	for (int i = 0; i < 3; i++) {
		make_image();
		tu_patch_be32(FILE_NAME, 1536, entries[i]);
		tu_expect_open_refused(FILE_NAME, NULL, -EINVAL,
				       "inside the image's headers or BAT");
	}
}
END_TEST

START_TEST(bat_entry_past_end)
{
	make_image();
	tu_patch_be32(FILE_NAME, 1536 + 4, 0x7fffffffu);
	tu_expect_open_refused(FILE_NAME, NULL, -EINVAL,
			       "past the end of the file");
}
END_TEST

START_TEST(dynamic_header)
{
	make_image();
	tu_patch_be64(FILE_NAME, 16, 1ull << 50);
	fix_footer_checksum();
	tu_expect_open_refused(FILE_NAME, NULL, -EINVAL,
			       "dynamic header offset");
	make_image();
	patch(512, "cxsparsX", 8);
	tu_expect_open_refused(FILE_NAME, NULL, -EINVAL, "cxsparse");
}
END_TEST

START_TEST(disk_types)
{
	make_image();
	tu_patch_be32(FILE_NAME, 60, 4);
	fix_footer_checksum();
	tu_expect_open_refused(FILE_NAME, NULL, -ENOTSUP, "differencing");
	make_image();
	tu_patch_be32(FILE_NAME, 60, 77);
	fix_footer_checksum();
	tu_expect_open_refused(FILE_NAME, NULL, -EINVAL, "disk type 77");
}
END_TEST

START_TEST(size_too_large)
{
	make_image();
	patch(28, "qem2", 4); /* sized by the footer's current size */
	tu_patch_be64(FILE_NAME, 48, 1ull << 50);
	fix_footer_checksum();
	tu_expect_open_refused(FILE_NAME, NULL, -EFBIG, "2040 GiB");
	make_image();
	patch(28, "qem2", 4);
	tu_patch_be64(FILE_NAME, 48, UINT64_MAX);
	fix_footer_checksum();
	tu_expect_open_refused(FILE_NAME, NULL, -EFBIG, "too large");
}
END_TEST

START_TEST(no_footer)
{
	tu_write_file(FILE_NAME, "conectix", 8, 0);
	tu_expect_open_refused(FILE_NAME, NULL, -EINVAL, "checksum");
	remove(FILE_NAME);
	tu_write_file(FILE_NAME, "abc", 3, 0);
	struct mimg *img;
	ck_assert_int_lt(mimg_open(&img, FILE_NAME, "vpc", 0), 0);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "too small"));
	tu_make_sparse("zero.vhd", 4096);
	ck_assert_int_eq(mimg_open(&img, "zero.vhd", "vpc", 0), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "invalid VPC image"));
}
END_TEST

START_TEST(fixed_larger_than_file)
{
	struct mimg_opt o = {"subformat", "fixed"};
	struct mimg *img;
	ck_assert_int_eq(mimg_create(FILE_NAME, "vpc", 1u << 20, &o, 1), 0);
	/* claim 100 MiB in the end footer */
	uint8_t f[512];
	FILE *fp = fopen(FILE_NAME, "r+b");
	fseek(fp, -512, SEEK_END);
	ck_assert_int_eq(fread(f, 1, 512, fp), 512);
	memcpy(f + 28, "qem2", 4);
	st_be64(f + 48, 100u << 20);
	uint32_t sum = 0;
	for (int i = 0; i < 512; i++)
		if (i < 64 || i >= 68)
			sum += f[i];
	st_be32(f + 64, ~sum);
	fseek(fp, -512, SEEK_END);
	fwrite(f, 1, 512, fp);
	fclose(fp);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vpc", MIMG_OPEN_RDWR),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "does not fit"));
	/* read-only, the missing tail reads as zeroes */
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vpc", 0), 0);
	uint8_t b[512];
	ck_assert_int_eq(mimg_pread(img, b, 512, 50u << 20, 0), 512);
	ck_assert_uint_eq(b[0], 0);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(overlapping_blocks_found_by_check)
{
	struct mimg *img;
	make_image();
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vpc", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, "more", 4, 2u << 20, 0), 4);
	ck_assert_int_eq(mimg_close(img), 0);
	/* entry 1 := entry 0 + 1 sector */
	uint8_t e[4];
	tu_read_at(FILE_NAME, e, 4, 1536);
	tu_patch_be32(FILE_NAME, 1536 + 4, ld_be32(e) + 1);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, NULL, 0), 0);
	tu_assert_check(img, 0, TU_SOME, TU_ANY, "overlap");
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

int main(void)
{
	return tu_main("vpc_malformed", "vpc_malformed",
		       TU_TESTS(footer_checksum, block_size_not_power_of_two,
				bat_past_end, bat_too_small,
				bat_entry_into_metadata, bat_entry_past_end,
				dynamic_header, disk_types, size_too_large,
				no_footer, fixed_larger_than_file,
				overlapping_blocks_found_by_check));
}
