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

#include "fuzz_util.h"
#include "mimg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mimg *img = NULL;
	int ret = mimg_open_memory(&img, data, size, NULL, MIMG_OPEN_UNTRUSTED);
	if (ret == -EPERM)
		ret = mimg_open_memory(&img, data, size, NULL,
				       MIMG_OPEN_NO_BACKING);
	if (ret != 0)
		return 0;
	uint64_t vsize = mimg_size(img);
	fuzz_read_range(img, 0, 65536);
	fuzz_read_range(img, vsize / 2, 4096);
	if (vsize > 4096)
		fuzz_read_range(img, vsize - 4096, 4096);
	fuzz_walk_block_status(img);
	fuzz_describe(img);
	mimg_close(img);
	return 0;
}
