/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Damaged and hostile VMDKs give clear errors and never crash: damaged
 * grain directories (the redundant copy takes over), truncated grain
 * tables, grain-table entries past the end of the file or overlapping,
 * bad header fields, absurd or escaping extents, delta-link loops and
 * parent CID mismatches.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimg.h"
#include "testutil.h"

#define SECTOR 512u
/* Layout of a 4 MiB monolithicSparse image as created (qemu's layout). */
#define RGD_SECTOR 21u
#define RGT_SECTOR 22u
#define GD_SECTOR 26u
#define GT_SECTOR 27u

static void put_le32(const char *path, uint64_t off, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)(v >> 24)};
	tu_write_file(path, b, 4, off);
}

static void put_le64(const char *path, uint64_t off, uint64_t v)
{
	put_le32(path, off, (uint32_t)v);
	put_le32(path, off + 4, (uint32_t)(v >> 32));
}

static uint8_t grain0[65536], grain3[65536];

/* d.vmdk: 4 MiB with data in grains 0 and 3. */
static void make_image(void)
{
	struct mimg *img;
	ck_assert_int_eq(mimg_create("d.vmdk", "vmdk", 4 << 20, NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&img, "d.vmdk", NULL, MIMG_OPEN_RDWR), 0);
	tu_fill_random(grain0, sizeof(grain0), 1);
	tu_fill_random(grain3, sizeof(grain3), 2);
	ck_assert_int_eq(mimg_pwrite(img, grain0, 65536, 0, 0), 65536);
	ck_assert_int_eq(mimg_pwrite(img, grain3, 65536, 3 * 65536, 0), 65536);
	ck_assert_int_eq(mimg_close(img), 0);
}

static int open_err(const char *path, unsigned flags, const char *needle)
{
	struct mimg *img = NULL;
	int r = mimg_open(&img, path, NULL, flags);
	if (r == 0) {
		mimg_close(img);
		return 0;
	}
	ck_assert_msg(strstr(mimg_errmsg(), needle), "message '%s' lacks '%s'",
		      mimg_errmsg(), needle);
	return r;
}

static struct mimg_check_result run_check(struct mimg *img)
{
	struct mimg_check_result res = {.size = sizeof(res)};
	ck_assert_int_eq(mimg_check(img, 0, &res), 0);
	return res;
}

static bool has_message(struct mimg_check_result *res, const char *needle)
{
	for (char **m = res->messages; m && *m; m++)
		if (strstr(*m, needle))
			return true;
	return false;
}

START_TEST(test_primary_gd_damaged_uses_redundant)
{
	struct mimg *img;
	uint8_t buf[65536];
	make_image();
	put_le32("d.vmdk", GD_SECTOR * SECTOR, 0x7fffffff);
	ck_assert_int_eq(mimg_open(&img, "d.vmdk", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pread(img, buf, 65536, 3 * 65536, 0), 65536);
	ck_assert_int_eq(memcmp(buf, grain3, 65536), 0);
	struct mimg_check_result res = run_check(img);
	ck_assert_uint_ge(res.corruptions, 1);
	ck_assert(has_message(&res, "redundant"));
	mimg_check_result_free(&res);
	ck_assert_int_eq(mimg_pwrite(img, buf, 512, 0, 0), -EIO);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "damaged"));
	mimg_close(img);
}
END_TEST

START_TEST(test_both_gds_damaged)
{
	make_image();
	put_le32("d.vmdk", GD_SECTOR * SECTOR, 0x7fffffff);
	put_le32("d.vmdk", RGD_SECTOR * SECTOR, 0x7ffffff0);
	ck_assert_int_eq(open_err("d.vmdk", 0, "past the end"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "d.vmdk"));
}
END_TEST

START_TEST(test_truncated_grain_tables)
{
	make_image();
	ck_assert_int_eq(truncate("d.vmdk", RGT_SECTOR * SECTOR + 100), 0);
	ck_assert_int_eq(open_err("d.vmdk", 0, "grain directory"), -EINVAL);
}
END_TEST

START_TEST(test_gte_past_eof)
{
	struct mimg *img;
	uint8_t buf[4096];
	make_image();
	put_le32("d.vmdk", GT_SECTOR * SECTOR + 3 * 4, 0x100000);
	put_le32("d.vmdk", RGT_SECTOR * SECTOR + 3 * 4, 0x100000);
	ck_assert_int_eq(mimg_open(&img, "d.vmdk", NULL, 0), 0);
	ck_assert_int_eq(mimg_pread(img, buf, sizeof(buf), 0, 0), 4096);
	ck_assert_int_eq(mimg_pread(img, buf, sizeof(buf), 3 * 65536, 0),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "past the end"));
	struct mimg_check_result res = run_check(img);
	ck_assert_uint_eq(res.corruptions, 1);
	ck_assert(has_message(&res, "points after EOF"));
	mimg_check_result_free(&res);
	mimg_close(img);
}
END_TEST

START_TEST(test_overlapping_grains_and_copy_mismatch)
{
	struct mimg *img;
	make_image();
	/* Grain 5 points at grain 0's data in both tables. */
	put_le32("d.vmdk", GT_SECTOR * SECTOR + 5 * 4, 128);
	put_le32("d.vmdk", RGT_SECTOR * SECTOR + 5 * 4, 128);
	/* Grain 7 differs between the two tables. */
	put_le32("d.vmdk", GT_SECTOR * SECTOR + 7 * 4, 128 + 128);
	ck_assert_int_eq(mimg_open(&img, "d.vmdk", NULL, 0), 0);
	struct mimg_check_result res = run_check(img);
	ck_assert(has_message(&res, "overlap"));
	ck_assert(has_message(&res, "in the redundant grain table"));
	ck_assert_uint_eq(res.corruptions, 2);
	ck_assert_uint_eq(res.leaks, 1);
	mimg_check_result_free(&res);
	mimg_close(img);
	/* Repairing leaks brings the redundant table in line. */
	ck_assert_int_eq(mimg_open(&img, "d.vmdk", NULL,
				   MIMG_OPEN_RDWR | MIMG_OPEN_CHECK),
			 0);
	ck_assert_int_eq(mimg_check(img, MIMG_CHECK_REPAIR_LEAKS, &res), 0);
	ck_assert_uint_eq(res.leaks_fixed, 1);
	ck_assert_uint_eq(res.leaks, 0);
	mimg_check_result_free(&res);
	mimg_close(img);
	ck_assert_int_eq(mimg_open(&img, "d.vmdk", NULL, 0), 0);
	tu_assert_check(img, 0, 2, 0, NULL);
	mimg_close(img);
}
END_TEST

START_TEST(test_bad_header_fields)
{
	make_image();
	put_le32("d.vmdk", 4, 4);
	ck_assert_int_eq(open_err("d.vmdk", 0, "version 4"), -ENOTSUP);
	make_image();
	put_le64("d.vmdk", 20, 0);
	ck_assert_int_eq(open_err("d.vmdk", 0, "grain size"), -EINVAL);
	make_image();
	put_le64("d.vmdk", 20, 1ull << 40);
	ck_assert_int_eq(open_err("d.vmdk", 0, "grain size"), -EINVAL);
	make_image();
	put_le32("d.vmdk", 44, 1u << 30);
	ck_assert_int_eq(open_err("d.vmdk", 0, "grain table entries"), -EINVAL);
	make_image();
	put_le64("d.vmdk", 12, 1ull << 62);
	ck_assert_int_eq(open_err("d.vmdk", 0, "capacity"), -EINVAL);
	make_image();
	put_le64("d.vmdk", 12, 1ull << 50); /* GD would be 2^27 entries */
	ck_assert_int_eq(open_err("d.vmdk", 0, "grain directory"), -EINVAL);
	make_image();
	put_le64("d.vmdk", 56, ~0ull);
	ck_assert_int_eq(open_err("d.vmdk", 0, "footer"), -EINVAL);
	make_image();
	put_le32("d.vmdk", 8, 3u | (1u << 16));
	put_le32("d.vmdk", 77, 2);
	ck_assert_int_eq(open_err("d.vmdk", 0, "compression algorithm"),
			 -ENOTSUP);
	make_image();
	put_le64("d.vmdk", 36, 100000);
	ck_assert_int_eq(open_err("d.vmdk", 0, "descriptor"), -EINVAL);
}
END_TEST

START_TEST(test_truncated_header)
{
	uint8_t h[200] = {'K', 'D', 'M', 'V', 1};
	tu_write_file("t.vmdk", h, sizeof(h), 0);
	ck_assert_int_lt(open_err("t.vmdk", 0, "t.vmdk"), 0);
}
END_TEST

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

/* Descriptors that must not open, with the error and a word of its
 * message. */
static const struct bad_descriptor {
	const char *name, *text, *word;
	int err;
} bad_descriptors[] = {
	{"huge.vmdk",
	 "# Disk DescriptorFile\nCID=1\n"
	 "RW 18014398509481983 ZERO\nRW 18014398509481983 ZERO\n",
	 "too large", -EINVAL},
	{"abs.vmdk", "# Disk DescriptorFile\nRW 8 FLAT \"/etc/passwd\" 0\n",
	 "outside", -EPERM},
	{"up.vmdk",
	 "# Disk DescriptorFile\n"
	 "RW 8 FLAT \"../x/../../etc/passwd\" 0\n",
	 "outside", -EPERM},
	{"missing.vmdk", "# Disk DescriptorFile\nRW 8 FLAT \"nope.img\" 0\n",
	 "extent", -ENOENT},
	{"json.vmdk", "# Disk DescriptorFile\nRW 8 FLAT \"json:{}\" 0\n",
	 "json", -EPERM},
};

START_TEST(test_absurd_and_escaping_extents)
{
	const struct bad_descriptor *d = &bad_descriptors[_i];
	write_text(d->name, d->text);
	ck_assert_int_eq(open_err(d->name, 0, d->word), d->err);
}
END_TEST

START_TEST(test_flat_extent_trust)
{
	tu_make_sparse("ok.img", 4096);
	write_text("ok.vmdk",
		   "# Disk DescriptorFile\nRW 8 FLAT \"ok.img\" 0\n");
	ck_assert_int_eq(open_err("ok.vmdk", 0, ""), 0);
	ck_assert_int_eq(open_err("ok.vmdk", MIMG_OPEN_UNTRUSTED, "untrusted"),
			 -EPERM);
}
END_TEST

START_TEST(test_huge_descriptor)
{
	/* A descriptor of more than 1 MiB is not a descriptor. */
	char *big = malloc(2 << 20);
	memset(big, '#', 2 << 20);
	memcpy(big, "# Disk DescriptorFile\n", 22);
	tu_write_file("big.vmdk", big, 2 << 20, 0);
	free(big);
	ck_assert_int_eq(open_err("big.vmdk", 0, "too large"), -EINVAL);
}
END_TEST

/* A descriptor claiming more sectors than the sparse extent has: the
 * rest reads as zeroes and cannot be written. */
START_TEST(test_extent_larger_than_capacity)
{
	struct mimg *img;
	uint8_t b[4096];
	ck_assert_int_eq(mimg_create("s.vmdk", "vmdk", 1 << 20, NULL, 0), 0);
	write_text("big.vmdk",
		   "# Disk DescriptorFile\nCID=1\n"
		   "# Extent description\nRW 4096 SPARSE \"s.vmdk\"\n");
	ck_assert_int_eq(mimg_open(&img, "big.vmdk", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_uint_eq(mimg_size(img), 2 << 20);
	memset(b, 0x77, sizeof(b));
	ck_assert_int_eq(mimg_pwrite(img, b, sizeof(b), 1 << 20, 0), -ENOSPC);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "capacity"));
	ck_assert_int_eq(mimg_pwrite(img, b, sizeof(b), 0, 0), 4096);
	ck_assert_int_eq(mimg_pread(img, b, sizeof(b), (2 << 20) - 4096, 0),
			 4096);
	for (size_t i = 0; i < sizeof(b); i++)
		ck_assert_uint_eq(b[i], 0);
	mimg_close(img);
}
END_TEST

/* One sparse file with a 16 MiB grain directory named five times: the
 * directories of an image share a memory budget. */
START_TEST(test_directory_budget)
{
	uint8_t h[512] = {'K', 'D', 'M', 'V'};
	h[4] = 1; /* version */
	put_le32("big.bin", 0, 0);
	tu_write_file("big.bin", h, sizeof(h), 0);
	put_le32("big.bin", 8, 1);	     /* flags */
	put_le64("big.bin", 12, 1ull << 38); /* capacity */
	put_le64("big.bin", 20, 128);	     /* grain */
	put_le32("big.bin", 44, 512);	     /* GT entries */
	put_le64("big.bin", 56, 1);	     /* GD sector */
	ck_assert_int_eq(truncate("big.bin", 512 + (16 << 20)), 0);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "big.bin", "vmdk", 0), 0);
	mimg_close(img);
	char d[1024];
	int n = snprintf(d, sizeof(d), "# Disk DescriptorFile\n# Extents\n");
	for (int i = 0; i < 5; i++)
		n += snprintf(d + n, sizeof(d) - (size_t)n,
			      "RW 1000 SPARSE \"big.bin\"\n");
	write_text("five.vmdk", d);
	ck_assert_int_eq(open_err("five.vmdk", 0, "exceed"), -EINVAL);
}
END_TEST

/* Grain directories whose entries are 0 (grain tables not allocated, as
 * other writers may leave them): writes allocate the tables. */
START_TEST(test_unallocated_grain_tables)
{
	struct mimg *img;
	static uint8_t buf[3 * 65536], got[3 * 65536];
	ck_assert_int_eq(mimg_create("d.vmdk", "vmdk", 64 << 20, NULL, 0), 0);
	/* 64 MiB: two grain tables; drop both from both directories. */
	for (int i = 0; i < 2; i++) {
		put_le32("d.vmdk", GD_SECTOR * SECTOR + 4 * i, 0);
		put_le32("d.vmdk", RGD_SECTOR * SECTOR + 4 * i, 0);
	}
	ck_assert_int_eq(mimg_open(&img, "d.vmdk", NULL, MIMG_OPEN_RDWR), 0);
	tu_fill_random(buf, sizeof(buf), 5);
	/* Straddles the boundary between the two tables (32 MiB). */
	uint64_t off = (32 << 20) - 65536 - 100;
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), off, 0),
			 (ssize_t)sizeof(buf));
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, "d.vmdk", NULL, 0), 0);
	ck_assert_int_eq(mimg_pread(img, got, sizeof(got), off, 0),
			 (ssize_t)sizeof(got));
	ck_assert_int_eq(memcmp(got, buf, sizeof(buf)), 0);
	struct mimg_check_result res = run_check(img);
	ck_assert_uint_eq(res.corruptions, 0);
	ck_assert_uint_eq(res.leaks, 0);
	mimg_check_result_free(&res);
	mimg_close(img);
	if (tu_have_program("qemu-img")) {
		tu_sh("qemu-img check -q d.vmdk");
		tu_make_sparse("want.raw", 64 << 20);
		tu_write_file("want.raw", buf, sizeof(buf), off);
		tu_sh("qemu-img compare -q -f raw want.raw d.vmdk");
	}
}
END_TEST

START_TEST(test_delta_link_loops)
{
	write_text("a.vmdk",
		   "# Disk DescriptorFile\nCID=1\nparentCID=2\n"
		   "parentFileNameHint=\"b.vmdk\"\n# Extents\nRW 8 ZERO\n");
	write_text("b.vmdk",
		   "# Disk DescriptorFile\nCID=2\nparentCID=1\n"
		   "parentFileNameHint=\"a.vmdk\"\n# Extents\nRW 8 ZERO\n");
	ck_assert_int_eq(open_err("a.vmdk", 0, "loop"), -ELOOP);
	write_text(
		"self.vmdk",
		"# Disk DescriptorFile\nCID=1\nparentCID=1\n"
		"parentFileNameHint=\"./self.vmdk\"\n# Extents\nRW 8 ZERO\n");
	ck_assert_int_eq(open_err("self.vmdk", 0, "loop"), -ELOOP);
}
END_TEST

START_TEST(test_parent_cid_mismatch)
{
	struct mimg *img;
	uint8_t buf[512] = {0};
	ck_assert_int_eq(mimg_create("base.vmdk", "vmdk", 1 << 20, NULL, 0), 0);
	struct mimg_opt o[] = {{"backing_file", "base.vmdk"},
			       {"backing_fmt", "vmdk"}};
	ck_assert_int_eq(mimg_create("top.vmdk", "vmdk", 0, o, 2), 0);
	ck_assert_int_eq(mimg_open(&img, "top.vmdk", NULL, 0), 0);
	ck_assert_int_eq(mimg_pread(img, buf, 512, 0, 0), 512);
	mimg_close(img);
	/* Modifying the parent gives it a new CID. */
	ck_assert_int_eq(mimg_open(&img, "base.vmdk", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, buf, 512, 0, 0), 512);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, "top.vmdk", NULL, 0), 0);
	ck_assert_int_eq(mimg_pread(img, buf, 512, 0, 0), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "parentCID"));
	mimg_close(img);
}
END_TEST

int main(void)
{
	return tu_main_loops(
		"vmdk_malformed", "malformed",
		TU_TESTS(test_primary_gd_damaged_uses_redundant,
			 test_both_gds_damaged, test_truncated_grain_tables,
			 test_gte_past_eof,
			 test_overlapping_grains_and_copy_mismatch,
			 test_bad_header_fields, test_truncated_header,
			 test_flat_extent_trust, test_huge_descriptor,
			 test_extent_larger_than_capacity,
			 test_directory_budget, test_unallocated_grain_tables,
			 test_delta_link_loops, test_parent_cid_mismatch),
		TU_LOOPS({test_absurd_and_escaping_extents,
			  TU_NELEM(bad_descriptors)}));
}
