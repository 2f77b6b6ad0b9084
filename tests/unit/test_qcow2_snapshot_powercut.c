/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Internal snapshots, shrinking and emptying under the power-cut model
 * of powercut.h.  After a cut at any flush, qemu-img check finds no
 * corruption but leaks and one kind of OFLAG_COPIED mismatch: an entry
 * whose refcount dropped to 1 before its flag was set (the safe
 * direction, a later write only copies once more; qemu's own snapshot
 * apply and delete leave the same window, and check -r all repairs it).
 * An image emptied part-way (dirty bit set) is repaired by its next
 * read-write open and then reads either as before or as its backing
 * file.  Also the library's own view: a
 * snapshot keeps its content through writes, apply brings it back,
 * and the API's errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "powercut.h"
#include "testutil.h"

#define IMG_SIZE (8u << 20)

static void write_some(struct mimg *img, int seed)
{
	uint8_t *b = malloc(200000);
	ck_assert_ptr_nonnull(b);
	for (int i = 0; i < 6 && !pc_crashed(); i++) {
		uint64_t off = ((uint64_t)(i + seed) * 1234567) %
			       (IMG_SIZE - 200000);
		size_t len = 1000 + (size_t)((i + seed) * 4099) % 190000;
		tu_fill_random(b, len, (uint64_t)(i + seed));
		(void)mimg_pwrite(img, b, len, off, 0);
		if (i % 3 == 2)
			(void)mimg_flush(img, 0);
	}
	free(b);
}

/* Snapshots taken, applied and deleted between writes, then a shrink:
 * each step writes (from seed WRITES; 0: none), then does OP. */
enum snap_op { SNAP_CREATE, SNAP_APPLY, SNAP_DELETE, SHRINK };
static const struct snap_step {
	int writes;
	enum snap_op op;
	const char *name;
} workload[] = {
	{1, SNAP_CREATE, "a"},	{20, SNAP_CREATE, "b"}, {40, SNAP_APPLY, "a"},
	{60, SNAP_DELETE, "b"}, {0, SHRINK, NULL},	{0, SNAP_APPLY, "a"},
	{0, SNAP_DELETE, "a"},
};

static void snapshot_workload(struct mimg *img, void *arg)
{
	(void)arg;
	for (int i = 0; i < TU_NELEM(workload); i++) {
		const struct snap_step *st = &workload[i];
		if (st->writes)
			write_some(img, st->writes);
		if (pc_crashed())
			continue;
		switch (st->op) {
		case SNAP_CREATE:
			(void)mimg_snapshot_create(img, st->name);
			break;
		case SNAP_APPLY:
			(void)mimg_snapshot_apply(img, st->name);
			break;
		case SNAP_DELETE:
			(void)mimg_snapshot_delete(img, st->name);
			break;
		case SHRINK:
			(void)mimg_truncate(img, IMG_SIZE / 2,
					    MIMG_PREALLOC_OFF);
			break;
		}
	}
	(void)mimg_flush(img, 0);
}

static void make_image(const char *opts)
{
	tu_sh("qemu-img create -q -f qcow2 %s%s t.qcow2 8M && qemu-io -c "
	      "'write -c -P 1 0 1M' t.qcow2 >/dev/null",
	      *opts ? "-o " : "", opts);
}

/* qemu-img check of crash.img: clean, leaks, or flags missing only
 * where the refcount is 1 (which check -r all then repairs). */
static void check_crash(const char *opts, int at_flush)
{
	int st = tu_system("qemu-img check crash.img > check.txt 2>&1");
	if (st == 2)
		st = tu_system("! grep -v -e '^Leaked cluster' -e '^ERROR "
			       "OFLAG_COPIED .* refcount=1$' check.txt | grep "
			       "-q -e '^ERROR' -e '^Warning' && qemu-img "
			       "check -q -r all crash.img > /dev/null 2>&1 && "
			       "qemu-img check -q crash.img") == 0
			     ? 0
			     : 2;
	ck_assert_msg(st == 0 || st == 3,
		      "%s, cut at flush %d: qemu-img check exit %d", opts,
		      at_flush, st);
}

static void snapshot_case(const char *opts, int at_flush)
{
	make_image(opts);
	pc_run("t.qcow2", 0, at_flush, snapshot_workload, NULL);
	check_crash(opts, at_flush);
}

static const char *const layouts[] = {"", "cluster_size=512", "extended_l2=on",
				      "compat=0.10", "refcount_bits=2"};
#define NLAYOUTS (int)(sizeof(layouts) / sizeof(layouts[0]))

START_TEST(power_cut_snapshots)
{
	for (int at = 1 + _i * 3; at < 60; at += 16 * tu_scaled_step())
		snapshot_case(layouts[_i], at);
}
END_TEST

static void make_empty(struct mimg *img, void *arg)
{
	(void)arg;
	(void)mimg_make_empty(img);
}

/* Emptying: the result reads as before or as the backing file. */
static void empty_case(const char *opts, int at_flush)
{
	struct mimg *img;
	tu_sh("qemu-img create -q -f raw b.raw 8M && qemu-io -f raw -c "
	      "'write -P 0x5a 0 8M' b.raw >/dev/null && qemu-img create -q -f "
	      "qcow2 -o backing_file=b.raw,backing_fmt=raw%s%s t.qcow2 && "
	      "qemu-io -c 'write -P 2 1M 3M' -c 'write -c -P 3 6M 64k' t.qcow2 "
	      ">/dev/null && qemu-img convert -O raw t.qcow2 old.raw",
	      *opts ? "," : "", opts);
	pc_run("t.qcow2", MIMG_OPEN_NO_BACKING, at_flush, make_empty, NULL);
	/* The next read-write open repairs a dirty image. */
	ck_assert_int_eq(mimg_open(&img, "crash.img", "qcow2",
				   MIMG_OPEN_RDWR | MIMG_OPEN_NO_BACKING),
			 0);
	ck_assert_int_eq(mimg_close(img), 0);
	int st = pc_qemu_check();
	ck_assert_msg(st == 0 || st == 3,
		      "%s, cut at flush %d: qemu-img check exit %d", opts,
		      at_flush, st);
	st = tu_system("qemu-img compare -q -f raw -F qcow2 old.raw crash.img"
		       " || qemu-img compare -q -f raw -F qcow2 b.raw "
		       "crash.img");
	ck_assert_msg(st == 0,
		      "%s, cut at flush %d: content is neither the "
		      "old one nor the backing file's",
		      opts, at_flush);
}

START_TEST(power_cut_make_empty)
{
	for (int at = 1 + _i % 4; at < 10; at += 4 * tu_scaled_step())
		empty_case(layouts[_i], at);
}
END_TEST

static void read_at(struct mimg *img, uint64_t off, size_t len, uint8_t v)
{
	uint8_t *b = malloc(len);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(mimg_pread(img, b, len, off, 0), (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		if (b[i] != v) /* a passing check costs a write(2) */
			ck_abort_msg("byte %zu at %llu is %u, not %u", i,
				     (unsigned long long)off, b[i], v);
	free(b);
}

static void fill_at(struct mimg *img, uint64_t off, size_t len, uint8_t v)
{
	uint8_t *b = malloc(len);
	ck_assert_ptr_nonnull(b);
	memset(b, v, len);
	ck_assert_int_eq(mimg_pwrite(img, b, len, off, 0), (ssize_t)len);
	free(b);
}

START_TEST(snapshot_keeps_content)
{
	struct mimg *img;
	make_image("");
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	fill_at(img, 2u << 20, 1u << 20, 7);
	ck_assert_int_eq(mimg_snapshot_create(img, "one"), 0);
	fill_at(img, 1000, 3000, 8);		 /* into a compressed cluster */
	fill_at(img, (2u << 20) + 4096, 512, 9); /* part of a shared one */
	read_at(img, (2u << 20) + 4096, 512, 9);
	read_at(img, 2u << 20, 4096, 7);
	ck_assert_int_eq(mimg_snapshot_apply(img, "one"), 0);
	read_at(img, 0, 1u << 20, 1);
	read_at(img, 2u << 20, 1u << 20, 7);
	ck_assert_int_eq(mimg_snapshot_apply(img, "nope"), -ENOENT);
	ck_assert_int_eq(mimg_snapshot_delete(img, "1"), -ENOENT);
	ck_assert_int_eq(mimg_snapshot_delete(img, "one"), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	tu_sh("qemu-img check -q t.qcow2");

	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	ck_assert_int_eq(mimg_snapshot_create(img, "ro"), -EROFS);
	ck_assert_int_eq(mimg_make_empty(img), -EROFS);
	mimg_close(img);
	tu_sh("qemu-img create -q -f raw r.raw 1M");
	ck_assert_int_eq(mimg_open(&img, "r.raw", "raw", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_snapshot_create(img, "x"), -ENOTSUP);
	ck_assert_int_eq(mimg_make_empty(img), -ENOTSUP);
	mimg_close(img);
}
END_TEST

int main(void)
{
	return tu_main_qemu("qcow2_snapshot_powercut", "snapshot",
			    TU_TESTS(snapshot_keeps_content),
			    TU_LOOPS({power_cut_snapshots, NLAYOUTS},
				     {power_cut_make_empty, NLAYOUTS}));
}
