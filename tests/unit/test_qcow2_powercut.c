/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Power-cut model for qcow2 metadata ordering: after a flush everything
 * written before it is durable; writes since the last flush may each be
 * lost or kept, in any combination (disks reorder).  The file-layer hook
 * snapshots the image at every flush and records the later writes; a
 * "crashed" image keeps a random subset of them and reverts the rest to
 * the last flushed content.  qemu-img check must never find corruption
 * (leaks are allowed), with L2 updates deferred to the flush and in
 * exit-safe mode, where they reach the file before each write returns.
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

/* Build crash.qcow2 from the current image: a random subset of the
 * writes since the last flush is reverted to durable.qcow2's content. */
static void make_crash_image(uint64_t seed)
{
	copy_file("t.qcow2", "crash.qcow2");
	FILE *cur = fopen("crash.qcow2", "r+b");
	FILE *dur = fopen("durable.qcow2", "rb");
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
	if (crashed || !strstr(path, "t.qcow2"))
		return 0;
	if (op == MIMG_FILE_OP_FLUSH) {
		if (flushes++ == crash_at_flush) {
			/* Crash just before this flush completes. */
			make_crash_image((uint64_t)flushes * 7919);
			crashed = true;
			return 0;
		}
		copy_file("t.qcow2", "durable.qcow2");
		nrec = 0;
		return 0;
	}
	if (op == MIMG_FILE_OP_WRITE && nrec < MAX_REC)
		recs[nrec++] = (struct rec){ off, len };
	return 0;
}

/* Allocating writes, COW over a backing file, overwrites of compressed
 * clusters, zeroes and discards, with flushes in between. */
static void workload(struct mimg *img)
{
	uint8_t *b = malloc(300000);
	for (int i = 0; i < 60 && !crashed; i++) {
		uint64_t off = ((uint64_t)i * 1234567) % (IMG_SIZE - 300000);
		size_t len = 1000 + (size_t)(i * 4099) % 200000;
		tu_fill_random(b, len, (uint64_t)i);
		(void)mimg_pwrite(img, b, len, off);
		if (i % 7 == 3)
			(void)mimg_discard(img, off & ~0xffffull, 131072);
		if (i % 5 == 1)
			(void)mimg_pwrite_zeroes(img, off, 70000,
						 MIMG_ZERO_MAY_UNMAP);
		if (i % 4 == 0)
			(void)mimg_flush(img);
	}
	free(b);
}

/* Without a backing file, exit-safe writes into empty clusters publish
 * their L2 entries with no flush of their own: only the reservation's
 * ordering protects them. */
static void run_case(const char *opts, bool backing, unsigned flags,
		     int at_flush)
{
	char o[160];
	snprintf(o, sizeof(o), "%s%s%s", opts, *opts && backing ? "," : "",
		 backing ? "backing_file=b.raw,backing_fmt=raw" : "");
	ck_assert_int_eq(tu_system("qemu-img create -q -f raw b.raw 8M && "
				   "qemu-io -f raw -c 'write -P 0x5a 0 8M' "
				   "b.raw >/dev/null && qemu-img create -q -f "
				   "qcow2 %s%s t.qcow2 8M && qemu-io -c "
				   "'write -c -P 1 0 1M' t.qcow2 >/dev/null",
				   *o ? "-o " : "", o),
			 0);
	copy_file("t.qcow2", "durable.qcow2");
	nrec = 0;
	flushes = 0;
	crash_at_flush = at_flush;
	crashed = false;
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL,
				   MIMG_OPEN_RDWR | flags), 0);
	mimg_file_set_fault_hook(hook, NULL);
	workload(img);
	mimg_close(img);
	if (!crashed)
		make_crash_image(99);
	mimg_file_set_fault_hook(NULL, NULL);
	int st = tu_system("qemu-img check -q crash.qcow2 >/dev/null 2>&1");
	ck_assert_msg(st == 0 || st == 3,
		      "%s%s%s, crash at flush %d: qemu-img check exit %d",
		      opts, backing ? " backing" : "",
		      flags ? " exit-safe" : "", at_flush, st);
}

static const char *const layouts[] = { "", "cluster_size=512",
				       "extended_l2=on", "compat=0.10" };

#define NLAYOUTS (int)(sizeof(layouts) / sizeof(layouts[0]))

START_TEST(power_cut)
{
	for (int at = 1; at < 16; at += 2)
		run_case(layouts[_i], true, 0, at);
}
END_TEST

START_TEST(power_cut_exit_safe)
{
	for (int at = 1; at < 16; at += 2) {
		if (at % 4 == 1)
			run_case(layouts[_i], true, MIMG_OPEN_EXIT_SAFE, at);
		run_case(layouts[_i], false, MIMG_OPEN_EXIT_SAFE, at);
	}
}
END_TEST

int main(void)
{
	if (!tu_have_program("qemu-img") || !tu_have_program("qemu-io"))
		return 77; /* the oracle is missing: skipped */
	Suite *s = suite_create("qcow2_powercut");
	TCase *tc = tu_tcase(s, "powercut");
	tcase_add_loop_test(tc, power_cut, 0, NLAYOUTS);
	tcase_add_loop_test(tc, power_cut_exit_safe, 0, NLAYOUTS);
	return tu_run_suite(s);
}
