/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The shared body of the VHD, VDI and VHDX fuzz targets (see fuzz_image.h).
 * Work is bounded whatever the declared size: a few reads, at most 256
 * block-status runs, three small writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_image.h"
#include "fuzz_input.h"
#include "fuzz_util.h"
#include "mimg.h"

static void read_pass(const char *path, const char *format)
{
	struct mimg *img = NULL;
	if (mimg_open(&img, path, format, 0) != 0)
		return;
	fuzz_read_spread(img);
	fuzz_walk_block_status(img);
	fuzz_describe(img);
	fuzz_check(img, 0);
	mimg_close(img);
}

/* What is written must read back: a write that "succeeds" into metadata
 * or another block would show up here or under the sanitizers. */
static void write_one(struct mimg *img, uint64_t off, size_t len, int v)
{
	static uint8_t want[4096], got[4096];
	uint64_t size = mimg_size(img);
	if (off >= size)
		return;
	if (len > size - off)
		len = (size_t)(size - off);
	memset(want, v, len);
	if (mimg_pwrite(img, want, len, off, 0) != (ssize_t)len)
		return;
	if (mimg_pread(img, got, len, off, 0) != (ssize_t)len)
		return;
	if (memcmp(want, got, len) != 0) {
		fprintf(stderr, "written data does not read back at %llu\n",
			(unsigned long long)off);
		abort();
	}
}

static void write_pass(const char *path, const char *format)
{
	struct mimg *img = NULL;
	if (mimg_open(&img, path, format, MIMG_OPEN_RDWR) != 0)
		return;
	uint64_t size = mimg_size(img);
	write_one(img, 0, 700, 0x5a);
	write_one(img, size / 2, 4096, 0xa5);
	if (size > 100)
		write_one(img, size - 100, 100, 0x3c);
	write_one(img, 100, 200, 0x77);
	mimg_close(img);
	read_pass(path, format);
}

void fuzz_image_run_file(const char *path, const char *format)
{
	read_pass(path, format);
	write_pass(path, format);
}

void fuzz_image_run(const uint8_t *data, size_t size, const char *format,
		    const char *name)
{
	const char *path = fuzz_input_write(data, size, name);
	if (path)
		fuzz_image_run_file(path, format);
}
