/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz target for the VMDK driver: the sparse header and footer, grain
 * directories and tables, stream markers and compressed grains, and the
 * descriptor parser.  Each input is
 *   1. parsed as descriptor text directly;
 *   2. opened as a VMDK (untrusted: no other file is ever opened): reads,
 *      block status, info and check;
 *   3. opened as the one SPARSE extent of a fixed descriptor (the path a
 *      multi-extent image takes);
 *   4. opened read-write: allocating, partial and zero writes, read back,
 *      check.
 * Work is bounded whatever virtual size the input claims.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_input.h"
#include "fuzz_util.h"
#include "mimg.h"
#include "../formats/vmdk/vmdk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *input_path, *desc_path;

/* A fixed descriptor whose one SPARSE extent is the input. */
static int setup(void)
{
	static const char desc[] =
		"# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\n"
		"createType=\"twoGbMaxExtentSparse\"\n# Extent description\n"
		"RW 2048 SPARSE \"in.vmdk\"\nRW 64 ZERO\n";
	if (!desc_path)
		desc_path = fuzz_input_write((const uint8_t *)desc,
					     sizeof(desc) - 1, "desc.vmdk");
	return desc_path ? 0 : -1;
}

static uint8_t buf[1 << 17];

static void read_at(struct mimg *img, uint64_t off, size_t len)
{
	uint64_t size = mimg_size(img);
	if (off >= size)
		return;
	if (len > size - off)
		len = (size_t)(size - off);
	mimg_pread(img, buf, len < sizeof(buf) ? len : sizeof(buf), off, 0);
}

static void exercise_reads(struct mimg *img)
{
	uint64_t size = mimg_size(img);
	read_at(img, 0, sizeof(buf));
	read_at(img, size / 2 + 511, 70000);
	if (size > 65536)
		read_at(img, size - 65536, 65536);
	fuzz_walk_block_status(img);
	fuzz_describe(img);
	fuzz_check(img, 0);
}

static void read_pass(const char *path, unsigned flags)
{
	struct mimg *img = NULL;
	if (mimg_open(&img, path, "vmdk", flags | MIMG_OPEN_NO_BACKING) == 0) {
		exercise_reads(img);
		mimg_close(img);
	}
}

static void write_pass(void)
{
	struct mimg *img = NULL;
	if (mimg_open(&img, input_path, "vmdk",
		      MIMG_OPEN_RDWR | MIMG_OPEN_UNTRUSTED) != 0)
		return;
	uint64_t size = mimg_size(img);
	uint32_t g = mimg_cluster_size(img);
	if (g == 0 || g > 65536)
		g = 4096;
	memset(buf, 0x5a, sizeof(buf));
	if (size >= g)
		mimg_pwrite(img, buf, g, 0, 0);
	if (size > 3 * (uint64_t)g) {
		mimg_pwrite(img, buf, 1000, 2 * (uint64_t)g - 500, 0);
		mimg_pwrite_zeroes(img, g, g, 0);
	}
	if (size > (1u << 20))
		mimg_pwrite(img, buf, 8192, (size / 3) & ~511ull, 0);
	mimg_flush(img, 0);
	exercise_reads(img);
	mimg_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmdk_desc d;
	if (vmdk_desc_parse((const char *)data, size, "fuzz", &d, false) == 0)
		vmdk_desc_free(&d);
	if (setup() != 0)
		return 0;
	input_path = fuzz_input_write(data, size, "in.vmdk");
	if (!input_path)
		return 0;
	read_pass(input_path, MIMG_OPEN_UNTRUSTED);
	read_pass(desc_path, 0);
	write_pass();
	return 0;
}
