/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Sparse VMDK writes under the power-cut model of powercut.h (any subset
 * of the writes since the last flush lost).  qemu-img check must never
 * find corruption and qemu reads every grain: a grain table entry may
 * reach the disk before the grain it points at only where a lost grain
 * reads as the zeroes it replaced.  Images are opened exit-safe, as
 * vmm-blk does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "powercut.h"
#include "testutil.h"

#define IMG_SIZE (8u << 20)
/* Allocating writes, partial grains copied from the parent, zeroes and
 * discards, with flushes in between. */
static uint8_t touched[IMG_SIZE]; /* bytes the workload changed */

static void touch(uint64_t off, uint64_t len)
{
	memset(touched + off, 1, len);
}

static void workload(struct mimg *img, void *arg)
{
	(void)arg;
	uint8_t *b = malloc(300000);
	memset(touched, 0, sizeof(touched));
	for (int i = 0; i < 60 && !pc_crashed(); i++) {
		uint64_t off = ((uint64_t)i * 1234567) % (IMG_SIZE - 300000);
		size_t len = 1000 + (size_t)(i * 4099) % 200000;
		tu_fill_random(b, len, (uint64_t)i);
		touch(off, len);
		(void)mimg_pwrite(img, b, len, off, 0);
		if (i % 7 == 3) {
			touch(off & ~0xffffull, 131072);
			(void)mimg_discard(img, off & ~0xffffull, 131072, 0);
		}
		if (i % 5 == 1) {
			touch(off, 70000);
			(void)mimg_pwrite_zeroes(img, off, 70000,
						 MIMG_ZERO_MAY_UNMAP);
		}
		if (i % 4 == 0)
			(void)mimg_flush(img, 0);
	}
	free(b);
}

/* Bytes the workload never touched still read as before: the parent's
 * 0x5a, or zeroes without one -- also inside grains that a partial write
 * allocated (copying the rest from the parent) just before the cut. */
static void check_untouched(bool parent)
{
	uint8_t *b = malloc(IMG_SIZE);
	ck_assert_ptr_nonnull(b);
	tu_read_at("crash.raw", b, IMG_SIZE, 0);
	for (uint64_t i = 0; i < IMG_SIZE; i++)
		if (!touched[i] && b[i] != (parent ? 0x5a : 0))
			ck_abort_msg("byte %llu, never written, reads 0x%02x "
				     "after the power cut",
				     (unsigned long long)i, b[i]);
	free(b);
}

/* mimg reads the whole crashed image too. */
static void mimg_reads_all(void)
{
	struct mimg *img;
	uint8_t *b = malloc(1 << 20);
	ck_assert_int_eq(mimg_open(&img, "crash.img", NULL, 0), 0);
	for (uint64_t off = 0; off < IMG_SIZE; off += 1 << 20)
		ck_assert_msg(mimg_pread(img, b, 1 << 20, off, 0) == 1 << 20,
			      "%s", mimg_errmsg());
	mimg_close(img);
	free(b);
}

/* A sparse VMDK, over a parent VMDK full of data or alone; the layouts
 * qemu-img writes: monolithicSparse, with zeroed grains, and split into
 * 2 GB extents (extent files next to the descriptor). */
static void run_case(const char *opts, bool parent, int at_flush)
{
	tu_sh("rm -f t*.vmdk && qemu-img create -q -f vmdk b.vmdk 8M && "
	      "qemu-io -f vmdk -c 'write -P 0x5a 0 8M' b.vmdk >/dev/null && "
	      "qemu-img create -q -f vmdk %s%s %s t.vmdk 8M",
	      *opts ? "-o " : "", opts, parent ? "-b b.vmdk -F vmdk" : "");
	pc_run("t.vmdk", MIMG_OPEN_EXIT_SAFE, at_flush, workload, NULL);
	int st = pc_qemu_check();
	ck_assert_msg(st == 0 || st == 3,
		      "%s%s, crash at flush %d: qemu-img check exit %d", opts,
		      parent ? " parent" : "", at_flush, st);
	/* Every grain qemu reads is readable: no entry points past the end
	 * of the file or at a grain that never reached it. */
	tu_sh("rm -f crash.raw && qemu-img convert -O raw crash.img crash.raw "
	      "2>/dev/null");
	check_untouched(parent);
	mimg_reads_all();
}

static const char *const layouts[] = {"", "zeroed_grain=on"};
#define NLAYOUTS (int)(sizeof(layouts) / sizeof(layouts[0]))

START_TEST(power_cut)
{
	for (int at = 1; at < 16; at += 2 * tu_scaled_step()) {
		run_case(layouts[_i], false, at);
		if (at % 4 == 1)
			run_case(layouts[_i], true, at);
	}
}
END_TEST

int main(void)
{
	return tu_main_qemu("vmdk_powercut", "powercut", NULL, 0,
			    TU_LOOPS({power_cut, NLAYOUTS}));
}
