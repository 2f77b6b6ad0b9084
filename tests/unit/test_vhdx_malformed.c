/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Hostile VHDX structures: each bad header, region table entry, metadata
 * item and BAT entry is refused at open with a message naming it, the
 * checksums made right so that the field itself is judged; a damaged
 * first copy of the header or region table falls back on the second.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "endian.h"
#include "mimg.h"
#include "testutil.h"

#define FILE_NAME "bad.vhdx"
#define MIB (1ull << 20)
/* Where mimg lays out an 8 MiB image with 1 MiB blocks. */
#define HEADER1 0x10000u
#define HEADER2 0x20000u
#define REGION1 0x30000u
#define REGION2 0x40000u
#define BAT (2 * MIB)
#define META (3 * MIB)
#define ITEMS (META + 0x10000)

/* Blocks 0 and 3 written. */
static void make_image(void)
{
	struct mimg_opt o = {"block_size", "1M"};
	struct mimg *img;
	ck_assert_int_eq(mimg_create(FILE_NAME, "vhdx", 8 * MIB, &o, 1), 0);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vhdx", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, "data", 4, 0, 0), 4);
	ck_assert_int_eq(mimg_pwrite(img, "more", 4, 3 * MIB, 0), 4);
	ck_assert_int_eq(mimg_close(img), 0);
}

/* Make the checksum of the LEN-byte structure at OFF right again. */
static void fix_crc(uint64_t off, size_t len)
{
	size_t n;
	uint8_t *f = tu_read_file(FILE_NAME, &n);
	uint8_t ck[4];
	st_le32(ck, mimg__crc32c_without(f + off, len, 4));
	free(f);
	tu_write_file(FILE_NAME, ck, 4, off + 4);
}

/* Write the WIDTH low bytes of V at OFF; in a header or region table,
 * in both copies, with their checksums made right. */
static void patch(uint64_t off, uint64_t v, int width)
{
	uint8_t b[8];
	st_le64(b, v);
	if (off >= HEADER1 && off < HEADER2 + 4096) {
		uint64_t at = off % 0x10000;
		tu_write_file(FILE_NAME, b, (size_t)width, HEADER1 + at);
		tu_write_file(FILE_NAME, b, (size_t)width, HEADER2 + at);
		fix_crc(HEADER1, 4096);
		fix_crc(HEADER2, 4096);
	} else if (off >= REGION1 && off < REGION2 + 0x10000) {
		uint64_t at = off % 0x10000;
		tu_write_file(FILE_NAME, b, (size_t)width, REGION1 + at);
		tu_write_file(FILE_NAME, b, (size_t)width, REGION2 + at);
		fix_crc(REGION1, 0x10000);
		fix_crc(REGION2, 0x10000);
	} else {
		tu_write_file(FILE_NAME, b, (size_t)width, off);
	}
}

/* Copy the 16-byte GUID at FROM over the one at TO. */
static void copy_guid(uint64_t from, uint64_t to)
{
	size_t n;
	uint8_t *f = tu_read_file(FILE_NAME, &n);
	patch(to, ld_le64(f + from), 8);
	patch(to + 8, ld_le64(f + from + 8), 8);
	free(f);
}

struct field_case {
	uint64_t off, value;
	int width, err;
	const char *what;
};

static const struct field_case fields[] = {
	{ITEMS, 3 * MIB, 4, -EINVAL, "block size 3145728"},
	{ITEMS, 512 * MIB, 4, -EINVAL, "block size 536870912"},
	{ITEMS + 4, 2, 4, -ENOTSUP, "differencing images"},
	{ITEMS + 8, 65ull << 40, 8, -EINVAL, "virtual disk size"},
	{ITEMS + 8, 1000, 8, -EINVAL, "virtual disk size 1000"},
	{ITEMS + 32, 1024, 4, -EINVAL, "sector sizes 1024"},
	{ITEMS + 36, 0, 4, -EINVAL, "sector sizes"},
	{META, 0, 8, -EINVAL, "no metadata table"},
	{META + 10, 2048, 2, -EINVAL, "no metadata table"},
	{META + 10, 4, 2, -EINVAL, "the metadata has no physical sector"},
	{META + 32 + 16, 2 * MIB, 4, -EINVAL, "file parameters at 0x200000"},
	{META + 32 + 20, 16, 4, -EINVAL, "file parameters"},
	{BAT, (1ull << 40) | 6, 8, -EINVAL, "past the end of the file"},
	{BAT, (2 * MIB) | 6, 8, -EINVAL, "inside the headers, log, BAT"},
	{BAT + 8, 7, 8, -EINVAL, "block 1 is partially present"},
	{BAT + 8, 5, 8, -EINVAL, "unknown state 5"},
	{REGION1 + 8, 2048, 4, -EINVAL, "no valid region table"},
	{REGION1 + 8, 1, 4, -EINVAL, "the region table has no metadata"},
	{REGION1 + 16 + 16, 0x1234, 8, -EINVAL, "BAT region at 0x1234"},
	{REGION1 + 16 + 24, 0, 4, -EINVAL, "too small for 8 blocks"},
	{REGION1 + 48 + 16, 2 * MIB, 8, -EINVAL, "overlap"},
	{REGION1 + 48, 0x55, 1, -ENOTSUP, "required region of an unknown kind"},
	{HEADER1 + 72, 0x1234, 8, -EINVAL, "log at 0x1234"},
	{HEADER1 + 68, 64 * MIB, 4, -EINVAL, "log at 0x100000"},
	{HEADER1 + 66, 2, 2, -EINVAL, "no valid header"},
	{HEADER1, 0, 4, -EINVAL, "no valid header"},
	{0, 0, 8, -EINVAL, "no file type identifier"},
};

START_TEST(bad_field)
{
	const struct field_case *c = &fields[_i];
	make_image();
	patch(c->off, c->value, c->width);
	tu_expect_open_refused(FILE_NAME, "vhdx", c->err, c->what);
}
END_TEST

START_TEST(unknown_and_twice)
{
	make_image();
	/* a metadata item of another kind, required */
	patch(META + 32 + 2 * 32, 0x55, 1);
	tu_expect_open_refused(FILE_NAME, "vhdx", -ENOTSUP,
			       "required item of an unknown kind");
	/* the same, not required: left alone, but then the disk id is
	 * missing */
	patch(META + 32 + 2 * 32 + 24, 0, 4);
	tu_expect_open_refused(FILE_NAME, "vhdx", -EINVAL,
			       "the metadata has no page 83 data");
	make_image();
	copy_guid(META + 32, META + 64);
	tu_expect_open_refused(FILE_NAME, "vhdx", -EINVAL,
			       "names the file parameters twice");
	make_image();
	copy_guid(REGION1 + 16, REGION1 + 48);
	tu_expect_open_refused(FILE_NAME, "vhdx", -EINVAL,
			       "names the BAT region twice");
}
END_TEST

START_TEST(damaged_copies)
{
	struct mimg *img;
	char buf[4];
	make_image();
	/* the first region table's checksum, and the first header's: the
	 * second copies are read */
	tu_write_file(FILE_NAME, "\xde\xad", 2, REGION1 + 4);
	tu_write_file(FILE_NAME, "\xde\xad", 2, HEADER1 + 4);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vhdx", 0), 0);
	ck_assert_int_eq(mimg_pread(img, buf, 4, 3 * MIB, 0), 4);
	ck_assert_int_eq(memcmp(buf, "more", 4), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	/* both headers: nothing to go by */
	tu_write_file(FILE_NAME, "\xde\xad", 2, HEADER2 + 4);
	tu_expect_open_refused(FILE_NAME, "vhdx", -EINVAL, "no valid header");
}
END_TEST

/* Two valid headers with one sequence number: the same header twice is
 * fine, two different ones are refused (which would be current?). */
START_TEST(headers_of_one_sequence)
{
	struct mimg *img;
	size_t n;
	make_image();
	uint8_t *f = tu_read_file(FILE_NAME, &n);
	uint8_t seq[8];
	memcpy(seq, f + HEADER1 + 8, 8);
	free(f);
	tu_write_file(FILE_NAME, seq, 8, HEADER2 + 8);
	fix_crc(HEADER2, 4096);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vhdx", 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	tu_write_file(FILE_NAME, "\1", 1, HEADER2 + 48); /* a log GUID */
	fix_crc(HEADER2, 4096);
	tu_expect_open_refused(FILE_NAME, "vhdx", -EINVAL,
			       "the two headers differ but have the same "
			       "sequence number");
}
END_TEST

/* A last block reaching past the end of the file (a fixed image whose
 * size is not whole blocks): a block allocated later goes after all of
 * it, not into its tail. */
START_TEST(new_block_after_a_last_block_past_the_end)
{
	struct mimg_opt o[] = {{"subformat", "fixed"}, {"block_size", "8M"}};
	struct mimg_check_result res = {.size = sizeof(res)};
	struct mimg *img;
	char buf[4];
	ck_assert_int_eq(mimg_create(FILE_NAME, "vhdx", 13 * MIB, o, 2), 0);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vhdx", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, "last", 4, 12 * MIB, 0), 4);
	ck_assert_int_eq(mimg_close(img), 0);
	patch(BAT, 0, 8); /* block 0 not present */
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vhdx", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, "new!", 4, 0, 0), 4);
	ck_assert_int_eq(mimg_check(img, 0, &res), 0);
	ck_assert_uint_eq(res.corruptions, 0);
	mimg_check_result_free(&res);
	ck_assert_int_eq(mimg_pread(img, buf, 4, 12 * MIB, 0), 4);
	ck_assert_int_eq(memcmp(buf, "last", 4), 0);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

/* Two blocks in one place: reads go on, check reports it. */
START_TEST(blocks_sharing_space)
{
	struct mimg *img;
	struct mimg_check_result res = {.size = sizeof(res)};
	make_image();
	patch(BAT + 3 * 8, (8 * MIB) | 6, 8);
	ck_assert_int_eq(mimg_open(&img, FILE_NAME, "vhdx", 0), 0);
	ck_assert_int_eq(mimg_check(img, 0, &res), 0);
	ck_assert_uint_eq(res.corruptions, 1);
	mimg_check_result_free(&res);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

int main(void)
{
	return tu_main_loops(
		"vhdx_malformed", "vhdx_malformed", NULL, 0,
		TU_LOOPS({bad_field, sizeof(fields) / sizeof(fields[0])},
			 {unknown_and_twice, 1}, {damaged_copies, 1},
			 {headers_of_one_sequence, 1},
			 {new_block_after_a_last_block_past_the_end, 1},
			 {blocks_sharing_space, 1}));
}
