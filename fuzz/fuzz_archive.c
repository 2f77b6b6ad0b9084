/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz the archive-reading layer: compressed streams and tars opened from
 * memory, unpacked into a temporary file or, with MIMG_OPEN_SEQUENTIAL,
 * streamed (the size an xz index or zstd frame header declares, the
 * forward-only reader, the checks at the end of the data).  Byte 0:
 * bit 0 streams, bit 1 also parses the declared size of the data as xz
 * and as zstd directly, bit 2 opens it as info does (MIMG_OPEN_INSPECT:
 * streamed and the rest of the archive read at once).  The rest is the
 * archive.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "../libmimg/file-archive.h"
#include "fuzz_util.h"
#include "mimg.h"

#define READ_MAX (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void declared_sizes(const uint8_t *data, size_t size)
{
	struct mimg_file *f;
	uint64_t v;
	if (mimg_file_open_memory(&f, data, size, size, "fuzz", 0) < 0)
		return;
	(void)mimg__declared_size(f, "xz", &v);
	(void)mimg__declared_size(f, "zstd", &v);
	mimg_file_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mimg *img = NULL;
	unsigned flags = MIMG_OPEN_UNTRUSTED;

	if (size < 1)
		return 0;
	if (data[0] & 1)
		flags |= MIMG_OPEN_SEQUENTIAL;
	if (data[0] & 4)
		flags |= MIMG_OPEN_INSPECT;
	if (data[0] & 2)
		declared_sizes(data + 1, size - 1);
	if (mimg_open_memory(&img, data + 1, size - 1, NULL, flags) != 0)
		return 0;
	/* In order, as convert reads; bounded whatever the size says. */
	uint64_t vsize = mimg_size(img);
	for (uint64_t off = 0; off < vsize && off < READ_MAX; off += 65536)
		fuzz_read_range(img, off, 65536);
	fuzz_describe(img);
	mimg_close(img);
	return 0;
}
