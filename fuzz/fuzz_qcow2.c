/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz target for the qcow2 driver: header, header extensions, L1/L2
 * tables, refcount structures, snapshot table, compressed clusters and
 * subclusters.  The input is opened as qcow2 (no probing) and
 *   1. read-only: reads, block status, info, check, and reads of the first
 *      snapshot's content;
 *   2. read-write in check mode: a full repair;
 *   3. read-write: allocating, partial, zero and discard writes, then a
 *      read back and a final check.
 * Every step must either work or fail cleanly; crashes, sanitizer reports
 * and hangs are the bugs this looks for.
 *
 * Each pass opens its own copy of the input from memory, so the writes
 * meet the image as it was given and references inside the image never
 * reach the file system.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "mimg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *input;
static size_t input_size;

static int open_input(struct mimg **img, unsigned flags)
{
	return mimg_open_memory(img, input, input_size, "qcow2", flags);
}

static uint8_t iobuf[65536];

/* Copies the first snapshot's id out of the info tree, if there is one. */
static int first_snapshot_id(const struct mimg_value *info, char *id,
			     size_t idlen)
{
	const struct mimg_value *snaps = mimg_value_get(info, "snapshots");
	if (!snaps || snaps->type != MIMG_VALUE_ARRAY || snaps->v.list.n == 0)
		return -1;
	const struct mimg_value *sid = mimg_value_get(&snaps->v.list.items[0],
						      "id");
	if (!sid || sid->type != MIMG_VALUE_STRING)
		return -1;
	snprintf(id, idlen, "%s", sid->v.s);
	return 0;
}

static void read_only_pass(void)
{
	struct mimg *img = NULL;
	if (open_input(&img, MIMG_OPEN_NO_BACKING) != 0)
		return;
	fuzz_read_spread(img);
	fuzz_walk_block_status(img);
	char snap[256] = "";
	struct mimg_value *info = NULL;
	if (mimg_info(img, &info) == 0) {
		free(mimg_value_to_json(info));
		if (first_snapshot_id(info, snap, sizeof(snap)) != 0)
			snap[0] = 0;
		mimg_value_free(info);
	}
	fuzz_check(img, 0);
	if (snap[0] && mimg_select_snapshot(img, snap) == 0) {
		fuzz_read_spread(img);
		fuzz_walk_block_status(img);
	}
	mimg_close(img);
}

static void repair_pass(void)
{
	struct mimg *img = NULL;
	if (open_input(&img, MIMG_OPEN_RDWR | MIMG_OPEN_UNTRUSTED |
				     MIMG_OPEN_CHECK) != 0)
		return;
	fuzz_check(img, MIMG_CHECK_REPAIR_LEAKS | MIMG_CHECK_REPAIR_ERRORS);
	mimg_close(img);
}

static void write_pass(void)
{
	struct mimg *img = NULL;
	if (open_input(&img, MIMG_OPEN_RDWR | MIMG_OPEN_UNTRUSTED) != 0)
		return;
	uint64_t size = mimg_size(img);
	uint32_t cs = mimg_cluster_size(img);
	if (cs == 0 || cs > sizeof(iobuf))
		cs = 4096;
	memset(iobuf, 0xa5, sizeof(iobuf));
	/* A whole cluster, an unaligned write straddling a cluster boundary
	 * (copy-on-write of both neighbours), zeroes and a discard. */
	if (size >= cs)
		mimg_pwrite(img, iobuf, cs, 0, 0);
	if (size > 2 * (uint64_t)cs + 700) {
		mimg_pwrite(img, iobuf, 700, (uint64_t)cs * 2 - 300, 0);
		mimg_pwrite_zeroes(img, cs, cs, MIMG_ZERO_MAY_UNMAP);
		mimg_discard(img, 0, cs, 0);
	}
	if (size > (1u << 20))
		mimg_pwrite(img, iobuf, 4096, size / 2 & ~4095ull, 0);
	mimg_flush(img, 0);
	fuzz_read_spread(img);
	fuzz_check(img, 0);
	mimg_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	input = data;
	input_size = size;
	read_only_pass();
	repair_pass();
	write_pass();
	return 0;
}
