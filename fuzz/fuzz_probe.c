/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz target for format probing and the open path of every driver: the
 * input is opened from memory with no format given, so whichever driver
 * claims it parses it (a compressed stream or tar is unpacked first).  A
 * few ranges are read, block status is walked and the info tree is built,
 * which reaches most metadata parsing.
 *
 * An image in memory may not name other files, so references inside it
 * (backing files, extents, data files) never reach the file system.
 * Images are opened in untrusted mode first and without backing files
 * when they refer to other files.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "mimg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_range(struct mimg *img, uint64_t off, size_t len)
{
	static uint8_t buf[65536];
	uint64_t size = mimg_size(img);
	if (off >= size)
		return;
	if (len > size - off)
		len = (size_t)(size - off);
	if (len > sizeof(buf))
		len = sizeof(buf);
	mimg_pread(img, buf, len, off);
}

/* Walk at most a bounded number of block-status runs: a hostile virtual
 * size must not turn one input into minutes of work. */
static void walk_block_status(struct mimg *img)
{
	uint64_t size = mimg_size(img), off = 0;
	for (int i = 0; i < 256 && off < size; i++) {
		uint64_t pnum = 0, host = 0;
		unsigned status = 0;
		if (mimg_block_status(img, off, size - off, &pnum, &status,
				      &host) != 0 || pnum == 0)
			break;
		off += pnum;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mimg *img = NULL;
	int ret = mimg_open_memory(&img, data, size, NULL,
				   MIMG_OPEN_UNTRUSTED);
	if (ret == -EPERM)
		ret = mimg_open_memory(&img, data, size, NULL,
				       MIMG_OPEN_NO_BACKING);
	if (ret != 0)
		return 0;
	uint64_t vsize = mimg_size(img);
	read_range(img, 0, 65536);
	read_range(img, vsize / 2, 4096);
	if (vsize > 4096)
		read_range(img, vsize - 4096, 4096);
	walk_block_status(img);
	struct mimg_value *info = NULL;
	if (mimg_info(img, &info) == 0) {
		free(mimg_value_to_json(info));
		mimg_value_free(info);
	}
	mimg_close(img);
	return 0;
}
