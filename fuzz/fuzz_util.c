/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Bounded steps shared by the fuzz targets (see fuzz_util.h).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "mimg.h"

void fuzz_read_range(struct mimg *img, uint64_t off, size_t len)
{
	static uint8_t buf[65536];
	uint64_t size = mimg_size(img);
	if (off >= size)
		return;
	if (len > size - off)
		len = (size_t)(size - off);
	if (len > sizeof(buf))
		len = sizeof(buf);
	mimg_pread(img, buf, len, off, 0);
}

void fuzz_read_spread(struct mimg *img)
{
	uint64_t size = mimg_size(img);
	fuzz_read_range(img, 0, 65536);
	fuzz_read_range(img, size / 3 + 1, 3000);
	if (size > 4096)
		fuzz_read_range(img, size - 4096, 4096);
}

void fuzz_walk_block_status(struct mimg *img)
{
	uint64_t size = mimg_size(img), off = 0;
	for (int i = 0; i < 256 && off < size; i++) {
		uint64_t pnum = 0, host = 0;
		unsigned status = 0;
		if (mimg_block_status(img, off, size - off, &pnum, &status,
				      &host, 0) != 0 ||
		    pnum == 0)
			break;
		off += pnum;
	}
}

void fuzz_describe(struct mimg *img)
{
	struct mimg_value *info = NULL;
	if (mimg_info(img, &info) == 0) {
		free(mimg_value_to_json(info));
		mimg_value_free(info);
	}
}

void fuzz_check(struct mimg *img, unsigned flags)
{
	struct mimg_check_result res = {.size = sizeof(res)};
	if (mimg_check(img, flags, &res) == 0)
		mimg_check_result_free(&res);
}
