/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz target for the luks driver and the LUKS1 layer: header fields,
 * key slots, anti-forensic material, unlocking and sector I/O.  The input
 * is opened as luks (no probing):
 *   1. without a secret: info only (the header alone);
 *   2. with the passphrase the corpus images were made with ("fuzz"):
 *      reads, block status, info;
 *   3. read-write with it: aligned and unaligned writes, read back.
 * PBKDF2 iterations are capped low so a header cannot make one input
 * cost seconds; what the cap refuses is an error like any other.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "fuzz_util.h"
#include "mimg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PASS "fuzz"
#define FUZZ_MAX_ITERS 5000

static uint8_t iobuf[65536];

static struct mimg_secret fuzz_secret(void)
{
	struct mimg_secret s = {.size = sizeof(s),
				.data = FUZZ_PASS,
				.len = strlen(FUZZ_PASS),
				.max_pbkdf2_iters = FUZZ_MAX_ITERS};
	return s;
}

static void header_pass(const char *path)
{
	struct mimg *img = NULL;
	if (mimg_open(&img, path, "luks", 0) != 0)
		return;
	fuzz_describe(img);
	fuzz_read_range(img, 0, 512); /* must fail cleanly: no key */
	mimg_close(img);
}

static void read_pass(const char *path)
{
	struct mimg *img = NULL;
	struct mimg_secret s = fuzz_secret();
	if (mimg_open_secret(&img, path, "luks", 0, &s) != 0)
		return;
	uint64_t size = mimg_size(img), pnum = 0, host = 0;
	unsigned status = 0;
	fuzz_read_range(img, 0, sizeof(iobuf));
	fuzz_read_range(img, size / 3 + 1, 3000);
	if (size > 4096)
		fuzz_read_range(img, size - 4096, 4096);
	if (size)
		mimg_block_status(img, 0, size, &pnum, &status, &host, 0);
	fuzz_describe(img);
	mimg_close(img);
}

static void write_pass(const char *path)
{
	struct mimg *img = NULL;
	struct mimg_secret s = fuzz_secret();
	if (mimg_open_secret(&img, path, "luks", MIMG_OPEN_RDWR, &s) != 0)
		return;
	uint64_t size = mimg_size(img);
	memset(iobuf, 0xa5, sizeof(iobuf));
	if (size >= 4096)
		mimg_pwrite(img, iobuf, 4096, 0, 0);
	if (size > 2000)
		mimg_pwrite(img, iobuf, 1000, size / 2, 0);
	if (size > 600)
		mimg_pwrite(img, iobuf, 100, size - 300, 0);
	mimg_flush(img, 0);
	fuzz_read_range(img, 0, 8192);
	mimg_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_input_write(data, size, "input.luks");
	if (!path)
		return 0;
	header_pass(path);
	read_pass(path);
	write_pass(path);
	return 0;
}
