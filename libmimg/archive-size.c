/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The size a compressed file says it unpacks to, read without unpacking:
 * the index at the end of an xz stream, the content size in a zstd frame
 * header.  Streaming an image needs its size before its data; the value
 * is only a claim (the stream checks the data against it), and anything
 * unusual (several streams, no size field) gives "unknown", so that the
 * image is spooled instead.
 */
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "file-archive.h"

#define XZ_HEADER 12u
#define XZ_FOOTER 12u
#define XZ_MAX_INDEX (16u << 20)
#define ZSTD_HEADER_MAX 18u

/* An xz multibyte integer at *P (< END): false when malformed. */
static bool xz_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (unsigned i = 0; i < 9; i++) {
		if (*p >= end)
			return false;
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			return b != 0 || i == 0;
	}
	return false;
}

/* Sum the records of an xz index (IDX, LEN bytes); *BLOCKS gets the
 * bytes the blocks take in the stream, *COUNT their number. */
static bool xz_index_sum(const uint8_t *idx, size_t len, uint64_t *size,
			 uint64_t *blocks, uint64_t *count)
{
	const uint8_t *p = idx + 1, *end = idx + len - 4;
	uint64_t n, unpadded, unpacked;
	if (len < 8 || idx[0] != 0 || !xz_varint(&p, end, &n))
		return false;
	*size = *blocks = 0;
	*count = n;
	for (uint64_t i = 0; i < n; i++) {
		if (!xz_varint(&p, end, &unpadded) ||
		    !xz_varint(&p, end, &unpacked) || unpadded > UINT64_MAX / 2)
			return false;
		uint64_t padded = (unpadded + 3) & ~(uint64_t)3;
		if (unpacked > UINT64_MAX - *size ||
		    padded > UINT64_MAX - *blocks)
			return false;
		*size += unpacked;
		*blocks += padded;
	}
	while (p < end && *p == 0)
		p++;
	return p == end && ((size_t)(p - idx) & 3) == 0;
}

static bool xz_size(struct mimg_file *f, uint64_t fsize, uint64_t *sizep,
		    uint64_t *countp)
{
	uint8_t foot[XZ_FOOTER];
	uint64_t end = fsize, blocks;

	/* Stream padding: whole 4-byte groups of zeroes. */
	while (end >= XZ_HEADER + XZ_FOOTER) {
		if (mimg_file_pread(f, foot, 4, end - 4) < 0)
			return false;
		if (memcmp(foot, "\0\0\0\0", 4) != 0)
			break;
		end -= 4;
	}
	if (end < XZ_HEADER + XZ_FOOTER ||
	    mimg_file_pread(f, foot, XZ_FOOTER, end - XZ_FOOTER) < 0 ||
	    memcmp(foot + 10, "YZ", 2) != 0)
		return false;
	uint64_t isize = ((uint64_t)ld_le32(foot + 4) + 1) * 4;
	if (isize > XZ_MAX_INDEX || isize > end - XZ_HEADER - XZ_FOOTER)
		return false;
	uint8_t *idx = malloc((size_t)isize);
	bool ok = idx &&
		  mimg_file_pread(f, idx, (size_t)isize,
				  end - XZ_FOOTER - isize) == 0 &&
		  xz_index_sum(idx, (size_t)isize, sizep, &blocks, countp);
	free(idx);
	/* One stream only: its parts must make up the whole file. */
	return ok && blocks == end - XZ_HEADER - XZ_FOOTER - isize;
}

static bool zstd_size(struct mimg_file *f, uint64_t fsize, uint64_t *sizep)
{
	static const unsigned dict_len[4] = {0, 1, 2, 4};
	uint8_t h[ZSTD_HEADER_MAX] = {0};
	if (fsize < 6 || mimg_file_pread(f, h, sizeof(h), 0) < 0 ||
	    ld_le32(h) != 0xfd2fb528u)
		return false;
	unsigned desc = h[4], fcs = desc >> 6, single = (desc >> 5) & 1;
	unsigned at = 5 + !single + dict_len[desc & 3];
	unsigned len = fcs == 0 ? single : 1u << fcs;
	if (desc & 0x08 || len == 0 || at + len > fsize)
		return false;
	uint64_t v = 0;
	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)h[at + i] << (8 * i);
	*sizep = len == 2 ? v + 256 : v;
	return true;
}

bool mimg__declared_size(struct mimg_file *f, const char *filters,
			 uint64_t *sizep)
{
	uint64_t fsize;
	if (mimg_file_size(f, &fsize) < 0)
		return false;
	uint64_t count;
	if (strcmp(filters, "xz") == 0)
		return xz_size(f, fsize, sizep, &count);
	if (strcmp(filters, "zstd") == 0)
		return zstd_size(f, fsize, sizep);
	return false;
}

bool mimg__xz_layout(struct mimg_file *f, uint64_t *sizep, uint64_t *blocksp)
{
	uint64_t fsize;
	return mimg_file_size(f, &fsize) == 0 &&
	       xz_size(f, fsize, sizep, blocksp);
}
