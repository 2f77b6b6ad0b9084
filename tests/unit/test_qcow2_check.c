/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 check and repair: leaks and refcount errors made by editing
 * qemu-made images, compared with what qemu-img check finds; refcounts of
 * a dirty image with lazy refcounts are rebuilt when opened read-write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"

/* Default layout of a fresh 64 KiB-cluster image after one write at 0:
 * header, refcount table, refcount block, L1, L2, data. */
#define RB_OFF 0x20000
#define L2_OFF 0x40000
#define DATA_CLUSTER 5
/* An L2 entry for a cluster at OFF whose refcount is 1. */
#define QCOW2_COPIED_AT(off) ((off) | 0x8000000000000000ull)

static void put_be16(const char *path, uint64_t off, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	tu_write_file(path, b, 2, off);
}

static void put_be64(const char *path, uint64_t off, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	tu_write_file(path, b, 8, off);
}

static void make_image(const char *opts)
{
	tu_sh("qemu-img create -q -f qcow2 %s t.qcow2 4M && qemu-io -c "
	      "'write -P 0x11 0 64k' -c 'write -P 0x12 1M 128k' t.qcow2 "
	      ">/dev/null",
	      opts);
}

static int run_check(unsigned open_flags, unsigned flags,
		     struct mimg_check_result *res)
{
	struct mimg *img;
	int r = mimg_open(&img, "t.qcow2", NULL, open_flags);
	ck_assert_msg(r == 0, "open: %s", mimg_errmsg());
	memset(res, 0, sizeof(*res));
	res->size = sizeof(*res);
	r = mimg_check(img, flags, res);
	ck_assert_int_eq(mimg_close(img), 0);
	return r;
}

/* The check of t.qcow2 (read-only) finds CORRUPTIONS and LEAKS, and its
 * first message holds MSG (as tu_assert_check). */
static void check_finds(long corruptions, long leaks, const char *msg)
{
	struct mimg *img;
	int r = mimg_open(&img, "t.qcow2", NULL, 0);
	ck_assert_msg(r == 0, "open: %s", mimg_errmsg());
	tu_assert_check(img, 0, corruptions, leaks, msg);
	ck_assert_int_eq(mimg_close(img), 0);
}

/* Repair with FLAGS (MIMG_CHECK_REPAIR_*) through a read-write open: it
 * leaves CORRUPTIONS, having fixed CORRUPTIONS_FIXED, and leaves LEAKS,
 * having fixed LEAKS_FIXED (numbers, TU_ANY or TU_SOME). */
static void repair(unsigned flags, long corruptions, long corruptions_fixed,
		   long leaks, long leaks_fixed)
{
	struct mimg_check_result res;
	ck_assert_int_eq(run_check(MIMG_OPEN_RDWR | MIMG_OPEN_CHECK, flags,
				   &res),
			 0);
	ck_assert_msg(tu_count_is(res.corruptions, corruptions) &&
			      tu_count_is(res.corruptions_fixed,
					  corruptions_fixed) &&
			      tu_count_is(res.leaks, leaks) &&
			      tu_count_is(res.leaks_fixed, leaks_fixed),
		      "repair 0x%x: %llu corruptions (%llu fixed), %llu leaks "
		      "(%llu fixed)",
		      flags, (unsigned long long)res.corruptions,
		      (unsigned long long)res.corruptions_fixed,
		      (unsigned long long)res.leaks,
		      (unsigned long long)res.leaks_fixed);
	mimg_check_result_free(&res);
}

/* qemu-img check -q of t.qcow2 exits with STATUS (0 clean, 2 errors,
 * 3 leaks only). */
static void qemu_check_exits(int status)
{
	ck_assert_int_eq(tu_system("qemu-img check -q t.qcow2 2>/dev/null"),
			 status);
}

START_TEST(check_clean_matches_qemu)
{
	make_image("");
	tu_sh("qemu-io -c 'write -c -P 3 2M 64k' t.qcow2 >/dev/null && "
	      "qemu-img snapshot -c s t.qcow2 && qemu-io -c 'write -P 4 0 4k' "
	      "t.qcow2 >/dev/null");
	struct mimg_check_result res = {.size = sizeof(res)};
	ck_assert_int_eq(run_check(0, 0, &res), 0);
	ck_assert(res.supported);
	ck_assert_uint_eq(res.corruptions, 0);
	ck_assert_uint_eq(res.leaks, 0);
	ck_assert_uint_eq(res.total_clusters, 64);
	ck_assert_uint_eq(res.allocated_clusters, 4);
	ck_assert_uint_eq(res.compressed_clusters, 1);
	/* qemu agrees on the end offset. */
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
		 "qemu-img check --output=json t.qcow2 | grep -q "
		 "'\"image-end-offset\": %llu,'",
		 (unsigned long long)res.image_end_offset);
	tu_sh("%s", cmd);
	mimg_check_result_free(&res);
}
END_TEST

/* Repair t.qcow2 with FLAGS and a copy of it with qemu-img check -r
 * (leaks or all): the two files end up byte for byte the same.  The
 * repair's result goes to RES when not NULL (the caller frees it). */
static void repairs_like_qemu(unsigned flags, struct mimg_check_result *res)
{
	bool all = flags & MIMG_CHECK_REPAIR_ERRORS;
	struct mimg_check_result mine;
	tu_sh("cp t.qcow2 q.qcow2 && { qemu-img check -q -r %s q.qcow2 "
	      ">/dev/null 2>&1; true; }",
	      all ? "all" : "leaks");
	(void)run_check(MIMG_OPEN_RDWR | MIMG_OPEN_CHECK, flags, &mine);
	if (res)
		*res = mine;
	else
		mimg_check_result_free(&mine);
	tu_sh("cmp t.qcow2 q.qcow2");
}

/* The check's last message is MSG. */
static void last_message_is(const struct mimg_check_result *res,
			    const char *msg)
{
	const char *last = NULL;
	for (char **m = res->messages; m && *m; m++)
		last = *m;
	ck_assert_msg(last && strcmp(last, msg) == 0, "last message: %s",
		      last ? last : "(none)");
}

START_TEST(leak_found_and_repaired)
{
	make_image("");
	put_be64("t.qcow2", L2_OFF, 0); /* drop guest cluster 0 */
	qemu_check_exits(3);
	check_finds(0, 1, "Leaked cluster 5");
	tu_sh("cp t.qcow2 before.qcow2");
	repair(MIMG_CHECK_REPAIR_LEAKS, TU_ANY, TU_ANY, 0, 1);
	qemu_check_exits(0);
	/* The leaked cluster is given back to the file, as qemu-img does. */
	tu_sh("cp before.qcow2 t.qcow2");
	repairs_like_qemu(MIMG_CHECK_REPAIR_LEAKS, NULL);
}
END_TEST

/* A used cluster whose refcount is 0: a leak repair cannot fix it and
 * fails the check (qemu-img's "Check failed: Input/output error"),
 * leaving the file as it was; -r all rebuilds the refcount structure
 * and frees the old one, as qemu-img does (the same bytes). */
START_TEST(refcount_error_repaired)
{
	make_image("");
	put_be16("t.qcow2", RB_OFF + 2 * DATA_CLUSTER, 0);
	qemu_check_exits(2);
	check_finds(TU_SOME, TU_ANY, NULL);
	tu_sh("cp t.qcow2 before.qcow2");
	struct mimg_check_result res;
	ck_assert_int_eq(run_check(MIMG_OPEN_RDWR | MIMG_OPEN_CHECK,
				   MIMG_CHECK_REPAIR_LEAKS, &res),
			 -EIO);
	last_message_is(&res, "ERROR need to rebuild refcount structures");
	ck_assert_uint_eq(res.check_errors, 1);
	mimg_check_result_free(&res);
	tu_sh("cmp t.qcow2 before.qcow2");
	repairs_like_qemu(MIMG_CHECK_REPAIR_LEAKS | MIMG_CHECK_REPAIR_ERRORS,
			  NULL);
	qemu_check_exits(0);
	repair(0, 0, 0, 0, 0);
	tu_sh("qemu-io -c 'read -P 0x11 0 64k' -c 'read -P 0x12 1M 128k' "
	      "t.qcow2 | grep -c '^read' | grep -q 2");
}
END_TEST

/* A cluster two L2 entries name, with refcount 1: too small but not 0,
 * so raised in place (no rebuild: the refcount table stays where it
 * is), and both entries lose OFLAG_COPIED; a leak repair leaves it. */
START_TEST(refcount_too_small_raised_in_place)
{
	make_image("");
	put_be64("t.qcow2", L2_OFF + 8,
		 QCOW2_COPIED_AT((uint64_t)DATA_CLUSTER << 16));
	qemu_check_exits(2);
	check_finds(1, 0, "ERROR cluster 5 refcount=1 reference=2");
	repair(MIMG_CHECK_REPAIR_LEAKS, 1, 0, 0, 0);
	repairs_like_qemu(MIMG_CHECK_REPAIR_LEAKS, NULL);
	struct mimg_check_result res;
	repairs_like_qemu(MIMG_CHECK_REPAIR_LEAKS | MIMG_CHECK_REPAIR_ERRORS,
			  &res);
	/* The refcount, then the flag of each entry. */
	ck_assert_uint_eq(res.corruptions, 0);
	ck_assert_uint_eq(res.corruptions_fixed, 3);
	last_message_is(&res, "Repairing OFLAG_COPIED data cluster: "
			      "l2_entry=8000000000050000 refcount=2");
	mimg_check_result_free(&res);
	qemu_check_exits(0);
	tu_sh("qemu-img info --output=json t.qcow2 >/dev/null && "
	      "qemu-io -c 'read -P 0x11 64k 64k' t.qcow2 | grep -q '^read'");
}
END_TEST

static uint64_t get_be64(const char *path, uint64_t off)
{
	uint8_t b[8];
	uint64_t v = 0;
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, (long)off, SEEK_SET), 0);
	ck_assert_uint_eq(fread(b, 1, 8, f), 8);
	fclose(f);
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

/* Every refcount block zeroed: a line for each of the ~2,100 clusters in
 * use.  The report keeps the first 1,000 (the first as qemu-img words
 * it); the counts take them all. */
START_TEST(report_keeps_first_thousand_lines)
{
	static const uint8_t zeroes[512];
	tu_sh("qemu-img create -q -f qcow2 -o cluster_size=512 t.qcow2 4M "
	      "&& qemu-io -c 'write -P 1 0 1M' t.qcow2 >/dev/null");
	uint64_t table = get_be64("t.qcow2", 48);
	for (uint64_t i = 0; i < 64; i++) {
		uint64_t block = get_be64("t.qcow2", table + 8 * i);
		if (block)
			tu_write_file("t.qcow2", zeroes, sizeof(zeroes), block);
	}
	struct mimg_check_result res;
	ck_assert_int_eq(run_check(0, 0, &res), 0);
	size_t n = 0;
	while (res.messages && res.messages[n])
		n++;
	ck_assert_uint_eq(n, 1000);
	ck_assert_uint_gt(res.corruptions, 2000);
	tu_sh("qemu-img check t.qcow2 2>&1 | head -1 | grep -qx '%s'",
	      res.messages[0]);
	mimg_check_result_free(&res);
}
END_TEST

/* Every L1 entry naming the same table off its alignment (qemu reads
 * it once per entry): what the check reads outside the L2 cache stays
 * within 16 bytes per byte of the file (plus 64 MiB), the rest is said
 * unread and counted as an error of the check. */
START_TEST(table_reads_bounded_by_the_file)
{
	tu_sh("qemu-img create -q -f qcow2 -o cluster_size=2M t.qcow2 64T");
	uint64_t l1 = get_be64("t.qcow2", 40);
	uint8_t e[8];
	for (int k = 0; k < 8; k++)
		e[k] = (uint8_t)(0x200200ull >> (56 - 8 * k));
	for (uint64_t i = 0; i < 128; i++)
		tu_write_file("t.qcow2", e, 8, l1 + 8 * i);
	struct mimg_check_result res;
	ck_assert_int_eq(run_check(0, 0, &res), 0);
	ck_assert_uint_gt(res.check_errors, 0);
	bool said = false;
	for (char **m = res.messages; m && *m; m++)
		said = said || strstr(*m, "the tables named exceed 16 bytes");
	ck_assert(said);
	mimg_check_result_free(&res);
}
END_TEST

START_TEST(copied_flag_error_repaired)
{
	make_image("");
	/* Clear OFLAG_COPIED on the L2 entry of guest cluster 0. */
	put_be64("t.qcow2", L2_OFF, (uint64_t)DATA_CLUSTER << 16);
	qemu_check_exits(2);
	check_finds(1, TU_ANY, NULL);
	repair(MIMG_CHECK_REPAIR_ERRORS, 0, 1, TU_ANY, TU_ANY);
	qemu_check_exits(0);
}
END_TEST

/* Extended L2: subclusters marked allocated in an entry with no host
 * cluster.  qemu-img check calls it an error; so must we, and reading
 * the cluster must fail rather than return the header as data. */
START_TEST(extl2_allocated_without_host)
{
	make_image("-o extended_l2=on");
	/* Entry 2 (guest cluster 2, unallocated): bitmap bit 0 set. */
	put_be64("t.qcow2", L2_OFF + 2 * 16 + 8, 1);
	qemu_check_exits(2);
	check_finds(1, TU_ANY, NULL);
	struct mimg *img;
	uint8_t b[512];
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	ck_assert_int_lt(mimg_pread(img, b, sizeof(b), 2 * 65536, 0), 0);
	mimg_close(img);
}
END_TEST

START_TEST(dirty_image_rebuilt_on_open)
{
	make_image("-o lazy_refcounts=on");
	/* Dirty bit set and a refcount lost, as after a crash with lazy
	 * refcounts. */
	put_be64("t.qcow2", 72, 1);
	put_be16("t.qcow2", RB_OFF + 2 * DATA_CLUSTER, 0);

	struct mimg *img;
	struct mimg_value *info;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	ck_assert_int_eq(mimg_info(img, &info), 0);
	const struct mimg_value *d = mimg_value_get(info, "dirty-flag");
	ck_assert(d && d->type == MIMG_VALUE_BOOL && d->v.b);
	mimg_value_free(info);
	mimg_close(img);

	int r = mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR);
	ck_assert_msg(r == 0, "%s", mimg_errmsg());
	uint8_t b[4096];
	memset(b, 0x55, sizeof(b));
	ck_assert_int_eq(mimg_pwrite(img, b, sizeof(b), 3 << 20, 0),
			 (ssize_t)sizeof(b));
	ck_assert_int_eq(mimg_close(img), 0);
	qemu_check_exits(0);
	tu_sh("qemu-img info t.qcow2 | grep -q 'lazy refcounts: true'");
	tu_sh("qemu-io -c 'read -P 0x11 0 64k' -c 'read -P 0x55 3M 4k' t.qcow2 "
	      "| grep -c '^read' | grep -q 2");
}
END_TEST

/* A refcount claiming the L1 table is free: the allocation that would
 * overwrite it is refused, the image is flagged corrupt, and check -r all
 * repairs it and clears the flag. */
START_TEST(overlap_marks_corrupt_until_repaired)
{
	make_image("");
	put_be16("t.qcow2", RB_OFF + 2 * 3, 0); /* L1 table: cluster 3 */
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	uint8_t b[512] = {1};
	ck_assert_int_eq(mimg_pwrite(img, b, sizeof(b), 3 << 20, 0), -EIO);
	ck_assert(strstr(mimg_errmsg(), "L1 table") != NULL);
	mimg_close(img);
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR),
			 -EACCES);

	repair(MIMG_CHECK_REPAIR_LEAKS | MIMG_CHECK_REPAIR_ERRORS, 0, TU_ANY,
	       TU_ANY, TU_ANY);
	qemu_check_exits(0);
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, b, sizeof(b), 3 << 20, 0),
			 (ssize_t)sizeof(b));
	ck_assert_int_eq(mimg_close(img), 0);
	qemu_check_exits(0);
}
END_TEST

START_TEST(repair_needs_writable_image)
{
	make_image("");
	struct mimg_check_result res = {.size = sizeof(res)};
	ck_assert_int_eq(run_check(0, MIMG_CHECK_REPAIR_LEAKS, &res), -EROFS);
	mimg_check_result_free(&res);
}
END_TEST

int main(void)
{
	return tu_main_qemu("qcow2_check", "check",
			    TU_TESTS(check_clean_matches_qemu,
				     leak_found_and_repaired,
				     refcount_error_repaired,
				     refcount_too_small_raised_in_place,
				     copied_flag_error_repaired,
				     report_keeps_first_thousand_lines,
				     table_reads_bounded_by_the_file,
				     dirty_image_rebuilt_on_open,
				     extl2_allocated_without_host,
				     overlap_marks_corrupt_until_repaired,
				     repair_needs_writable_image),
			    NULL, 0);
}
