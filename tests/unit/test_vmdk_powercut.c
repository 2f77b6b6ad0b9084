/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Power-cut model for sparse VMDK writes: after a flush everything
 * written before it is durable; writes since the last flush may each be
 * lost or kept, in any combination (disks reorder).  The file-layer hook
 * snapshots the image at every flush and records the later writes; a
 * "crashed" image keeps a random subset of them and reverts the rest to
 * the last flushed content.  qemu-img check must never find corruption
 * and qemu reads every grain: a grain table entry may reach the disk
 * before the grain it points at only where a lost grain reads as the
 * zeroes it replaced.  Images are opened exit-safe, as vmm-blk does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "mimg.h"
#include "testutil.h"

#define IMG_SIZE (8u << 20)
#define MAX_REC 4096

struct rec {
	uint64_t off, len;
};

static struct rec recs[MAX_REC];
static int nrec;
static int flushes;
static int crash_at_flush; /* take the crash image at this flush */
static bool crashed;

static void copy_file(const char *from, const char *to)
{
	ck_assert_int_eq(tu_system("cp --sparse=always %s %s", from, to), 0);
}

/* Build crash.vmdk from the current image: a random subset of the
 * writes since the last flush is reverted to durable.vmdk's content. */
static void make_crash_image(uint64_t seed)
{
	copy_file("t.vmdk", "crash.vmdk");
	FILE *cur = fopen("crash.vmdk", "r+b");
	FILE *dur = fopen("durable.vmdk", "rb");
	ck_assert(cur && dur);
	fseek(dur, 0, SEEK_END);
	uint64_t dsize = (uint64_t)ftell(dur);
	uint8_t *buf = malloc(1 << 21);
	for (int i = 0; i < nrec; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		if ((seed >> 33) % 2)
			continue; /* this write reached the disk */
		uint64_t off = recs[i].off, len = recs[i].len;
		while (len) {
			size_t n = len > (1u << 21) ? 1u << 21 : (size_t)len;
			memset(buf, 0, n);
			if (off < dsize) {
				fseek(dur, (long)off, SEEK_SET);
				size_t got = fread(buf, 1, n, dur);
				(void)got;
			}
			fseek(cur, (long)off, SEEK_SET);
			ck_assert_int_eq(fwrite(buf, 1, n, cur), n);
			off += n;
			len -= n;
		}
	}
	free(buf);
	fclose(cur);
	fclose(dur);
}

static int hook(void *opaque, enum mimg_file_op op, const char *path,
		uint64_t off, uint64_t len)
{
	(void)opaque;
	if (crashed || !strstr(path, "t.vmdk"))
		return 0;
	if (op == MIMG_FILE_OP_FLUSH) {
		if (flushes++ == crash_at_flush) {
			/* Crash just before this flush completes. */
			make_crash_image((uint64_t)flushes * 7919);
			crashed = true;
			return 0;
		}
		copy_file("t.vmdk", "durable.vmdk");
		nrec = 0;
		return 0;
	}
	if (op == MIMG_FILE_OP_WRITE && nrec < MAX_REC)
		recs[nrec++] = (struct rec){ off, len };
	return 0;
}

/* Allocating writes, partial grains copied from the parent, zeroes and
 * discards, with flushes in between. */
static uint8_t touched[IMG_SIZE]; /* bytes the workload changed */

static void touch(uint64_t off, uint64_t len)
{
	memset(touched + off, 1, len);
}

static void workload(struct mimg *img)
{
	uint8_t *b = malloc(300000);
	memset(touched, 0, sizeof(touched));
	for (int i = 0; i < 60 && !crashed; i++) {
		uint64_t off = ((uint64_t)i * 1234567) % (IMG_SIZE - 300000);
		size_t len = 1000 + (size_t)(i * 4099) % 200000;
		tu_fill_random(b, len, (uint64_t)i);
		touch(off, len);
		(void)mimg_pwrite(img, b, len, off);
		if (i % 7 == 3) {
			touch(off & ~0xffffull, 131072);
			(void)mimg_discard(img, off & ~0xffffull, 131072);
		}
		if (i % 5 == 1) {
			touch(off, 70000);
			(void)mimg_pwrite_zeroes(img, off, 70000,
						 MIMG_ZERO_MAY_UNMAP);
		}
		if (i % 4 == 0)
			(void)mimg_flush(img);
	}
	free(b);
}

/* Bytes the workload never touched still read as before: the parent's
 * 0x5a, or zeroes without one -- also inside grains that a partial write
 * allocated (copying the rest from the parent) just before the cut. */
static void check_untouched(bool parent)
{
	FILE *f = fopen("crash.raw", "rb");
	uint8_t *b = malloc(IMG_SIZE);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(b, 1, IMG_SIZE, f), IMG_SIZE);
	fclose(f);
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
	ck_assert_int_eq(mimg_open(&img, "crash.vmdk", NULL, 0), 0);
	for (uint64_t off = 0; off < IMG_SIZE; off += 1 << 20)
		ck_assert_msg(mimg_pread(img, b, 1 << 20, off) == 1 << 20,
			      "%s", mimg_errmsg());
	mimg_close(img);
	free(b);
}

/* A sparse VMDK, over a parent VMDK full of data or alone; the layouts
 * qemu-img writes: monolithicSparse, with zeroed grains, and split into
 * 2 GB extents (extent files next to the descriptor). */
static void run_case(const char *opts, bool parent, int at_flush)
{
	ck_assert_int_eq(tu_system("rm -f t*.vmdk && qemu-img create -q -f "
				   "vmdk b.vmdk 8M && qemu-io -f vmdk -c "
				   "'write -P 0x5a 0 8M' b.vmdk >/dev/null && "
				   "qemu-img create -q -f vmdk %s%s %s t.vmdk 8M",
				   *opts ? "-o " : "", opts,
				   parent ? "-b b.vmdk -F vmdk" : ""),
			 0);
	copy_file("t.vmdk", "durable.vmdk");
	nrec = 0;
	flushes = 0;
	crash_at_flush = at_flush;
	crashed = false;
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.vmdk", NULL,
				   MIMG_OPEN_RDWR | MIMG_OPEN_EXIT_SAFE), 0);
	mimg_file_set_fault_hook(hook, NULL);
	workload(img);
	mimg_close(img);
	if (!crashed)
		make_crash_image(99);
	mimg_file_set_fault_hook(NULL, NULL);
	int st = tu_system("qemu-img check -q crash.vmdk >/dev/null 2>&1");
	ck_assert_msg(st == 0 || st == 3,
		      "%s%s, crash at flush %d: qemu-img check exit %d", opts,
		      parent ? " parent" : "", at_flush, st);
	/* Every grain qemu reads is readable: no entry points past the end
	 * of the file or at a grain that never reached it. */
	ck_assert_int_eq(tu_system("rm -f crash.raw && qemu-img convert -O "
				   "raw crash.vmdk crash.raw 2>/dev/null"),
			 0);
	check_untouched(parent);
	mimg_reads_all();
}

static const char *const layouts[] = { "", "zeroed_grain=on" };
#define NLAYOUTS (int)(sizeof(layouts) / sizeof(layouts[0]))

START_TEST(power_cut)
{
	for (int at = 1; at < 16; at += 2) {
		run_case(layouts[_i], false, at);
		if (at % 4 == 1)
			run_case(layouts[_i], true, at);
	}
}
END_TEST

int main(void)
{
	if (!tu_have_program("qemu-img") || !tu_have_program("qemu-io"))
		return 77; /* the oracle is missing: skipped */
	Suite *s = suite_create("vmdk_powercut");
	TCase *tc = tu_tcase(s, "powercut");
	tcase_add_loop_test(tc, power_cut, 0, NLAYOUTS);
	return tu_run_suite(s);
}
