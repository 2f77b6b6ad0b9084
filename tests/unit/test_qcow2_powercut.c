/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 metadata ordering under the power-cut model of powercut.h (any
 * subset of the writes since the last flush lost).  qemu-img check must
 * never find corruption
 * (leaks are allowed), with L2 updates deferred to the flush and in
 * exit-safe mode, where they reach the file before each write returns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimg.h"
#include "powercut.h"
#include "testutil.h"

#define IMG_SIZE (8u << 20)
/* Allocating writes, COW over a backing file, overwrites of compressed
 * clusters, zeroes and discards, with flushes in between. */
static void workload(struct mimg *img, void *arg)
{
	(void)arg;
	uint8_t *b = malloc(300000);
	for (int i = 0; i < 60 && !pc_crashed(); i++) {
		uint64_t off = ((uint64_t)i * 1234567) % (IMG_SIZE - 300000);
		size_t len = 1000 + (size_t)(i * 4099) % 200000;
		tu_fill_random(b, len, (uint64_t)i);
		(void)mimg_pwrite(img, b, len, off, 0);
		if (i % 7 == 3)
			(void)mimg_discard(img, off & ~0xffffull, 131072, 0);
		if (i % 5 == 1)
			(void)mimg_pwrite_zeroes(img, off, 70000,
						 MIMG_ZERO_MAY_UNMAP);
		if (i % 4 == 0)
			(void)mimg_flush(img, 0);
	}
	free(b);
}

/* t.qcow2 (options O) and b.raw as every case starts: made by qemu-img
 * and qemu-io once a test (most of the test's CPU time when made for each
 * cut point), copied after. */
static void make_images(const char *o, bool backing)
{
	const char *start = backing ? "start-b.qcow2" : "start.qcow2";
	if (access(start, F_OK) != 0)
		tu_sh("{ [ -e b.raw ] || { qemu-img create -q -f raw b.raw 8M "
		      "&& qemu-io -f raw -c 'write -P 0x5a 0 8M' b.raw "
		      ">/dev/null; }; } && qemu-img create -q -f qcow2 %s%s %s "
		      "8M && qemu-io -c 'write -c -P 1 0 1M' %s >/dev/null",
		      *o ? "-o " : "", o, start, start);
	tu_sh("cp %s t.qcow2", start);
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
	make_images(o, backing);
	pc_run("t.qcow2", flags, at_flush, workload, NULL);
	int st = pc_qemu_check();
	ck_assert_msg(st == 0 || st == 3,
		      "%s%s%s, crash at flush %d: qemu-img check exit %d", opts,
		      backing ? " backing" : "", flags ? " exit-safe" : "",
		      at_flush, st);
}

static const char *const layouts[] = {"", "cluster_size=512", "extended_l2=on",
				      "compat=0.10"};

#define NLAYOUTS (int)(sizeof(layouts) / sizeof(layouts[0]))

START_TEST(power_cut)
{
	for (int at = 1; at < 16; at += 2 * tu_scaled_step())
		run_case(layouts[_i], true, 0, at);
}
END_TEST

START_TEST(power_cut_exit_safe)
{
	for (int at = 1; at < 16; at += 2 * tu_scaled_step()) {
		if (at % 4 == 1)
			run_case(layouts[_i], true, MIMG_OPEN_EXIT_SAFE, at);
		run_case(layouts[_i], false, MIMG_OPEN_EXIT_SAFE, at);
	}
}
END_TEST

int main(void)
{
	return tu_main_qemu("qcow2_powercut", "powercut", NULL, 0,
			    TU_LOOPS({power_cut, NLAYOUTS},
				     {power_cut_exit_safe, NLAYOUTS}));
}
