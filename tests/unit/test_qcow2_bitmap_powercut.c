/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Persistent bitmaps under the power-cut model of powercut.h: an image
 * opened for writing, written, its bitmaps added, cleared, merged and
 * removed, then closed, cut at any flush.  qemu-img check finds leaks at
 * worst; qemu-nbd serves every bitmap that is not in use; an enabled
 * bitmap that is not in use covers every write made while it was open
 * (never clean where data changed); a disabled one is as it was.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "powercut.h"
#include "testutil.h"

#define IMG_SIZE (8u << 20)
#define NWRITES 6

static uint64_t w_off(int i)
{
	return ((uint64_t)i * 1234567) % (IMG_SIZE - 200000);
}

static size_t w_len(int i)
{
	return 1000 + (size_t)(i * 40990) % 190000;
}

static void write_some(struct mimg *img, int from, int to)
{
	uint8_t *b = malloc(200000);
	ck_assert_ptr_nonnull(b);
	for (int i = from; i < to && !pc_crashed(); i++) {
		tu_fill_random(b, w_len(i), (uint64_t)i);
		(void)mimg_pwrite(img, b, w_len(i), w_off(i), 0);
		if (i % 2)
			(void)mimg_flush(img, 0);
	}
	free(b);
}

static void workload(struct mimg *img)
{
	write_some(img, 0, 2);
	if (!pc_crashed())
		(void)mimg_bitmap_add(img, "new", 4096, 0);
	write_some(img, 2, 4);
	if (!pc_crashed())
		(void)mimg_bitmap_clear(img, "fine");
	if (!pc_crashed())
		(void)mimg_bitmap_merge(img, "new", NULL, "b");
	if (!pc_crashed())
		(void)mimg_bitmap_remove(img, "gone");
	write_some(img, 4, NWRITES);
}

static bool all_dirty(struct mimg *img, const char *name, uint64_t off,
		      uint64_t len)
{
	while (len) {
		uint64_t pnum;
		bool dirty;
		ck_assert_int_eq(mimg_bitmap_status(img, name, off, len, &pnum,
						    &dirty),
				 0);
		if (!dirty)
			return false;
		off += pnum;
		len -= pnum;
	}
	return true;
}

static void check_crash(int at, const char *disabled_before)
{
	int st = pc_qemu_check();
	ck_assert_msg(st == 0 || st == 3,
		      "cut at flush %d: qemu-img check "
		      "exit %d",
		      at, st);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "crash.img", "qcow2", 0), 0);
	char buf[4096];
	int r = tu_dirty_runs(img, "b", buf, sizeof(buf));
	ck_assert_msg(r == 0 || r == -EBUSY, "cut at %d: b: %s", at,
		      mimg_errmsg());
	if (r == 0) {
		/* consistent: the cut came after the final store */
		for (int i = 0; i < NWRITES; i++)
			ck_assert_msg(all_dirty(img, "b", w_off(i), w_len(i)),
				      "cut at %d: write %d clean in b", at, i);
		tu_sh("nbdinfo --map=qemu:dirty-bitmap:b -- [ qemu-nbd -r -B b "
		      "-f qcow2 crash.img ] > /dev/null");
	}
	ck_assert_int_eq(tu_dirty_runs(img, "d", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, disabled_before);
	mimg_close(img);
}

START_TEST(power_cut_bitmaps)
{
	if (!tu_have_program("qemu-img") || !tu_have_program("qemu-io") ||
	    !tu_have_program("qemu-nbd") || !tu_have_program("nbdinfo")) {
		tu_mark_skipped();
		return;
	}
	tu_sh("qemu-img create -q -f qcow2 t.qcow2 8M && qemu-img bitmap --add "
	      "t.qcow2 d && qemu-io -c 'write 2M 100k' t.qcow2 >/dev/null && "
	      "qemu-img bitmap --disable t.qcow2 d && qemu-img bitmap --add "
	      "t.qcow2 b && qemu-img bitmap --add -g 512 t.qcow2 fine && "
	      "qemu-img bitmap --add t.qcow2 gone && cp t.qcow2 base.qcow2");
	struct mimg *img;
	char before[256];
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", "qcow2", 0), 0);
	ck_assert_int_eq(tu_dirty_runs(img, "d", before, sizeof(before)), 0);
	ck_assert_str_eq(before, "2097152+131072,");
	mimg_close(img);
	for (int at = _i; at < 40; at += 3) {
		tu_sh("cp base.qcow2 t.qcow2");
		pc_begin("t.qcow2", at);
		ck_assert_int_eq(mimg_open(&img, "t.qcow2", "qcow2",
					   MIMG_OPEN_RDWR),
				 0);
		workload(img);
		mimg_close(img);
		bool cut = pc_crashed();
		pc_end();
		check_crash(at, before);
		if (!cut)
			break; /* later cuts change nothing */
	}
}
END_TEST

int main(void)
{
	if (!tu_have_format("qcow2"))
		return 77;
	return tu_main_loops("qcow2_bitmap_powercut", "powercut", NULL, 0,
			     TU_LOOPS({power_cut_bitmaps, 3}));
}
