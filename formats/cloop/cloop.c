/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * cloop (compressed loopback) version 2 images, read-only as qemu-img
 * reads them: a shell preamble of 128 bytes (what probing recognises;
 * opening does not look at it), the block size and the number of blocks
 * (big-endian 32-bit), then one more big-endian 64-bit offset than there
 * are blocks: block i is the zlib stream stored from offset i to offset
 * i + 1, and inflates to exactly one block.
 *
 * The header and the offsets are checked with qemu-img's limits and
 * words; the offsets table must lie inside the file.  A block whose
 * bytes are past the end of the file, or that cannot inflate to one
 * block, fails the read that reaches it, naming it.  The last inflated
 * block is kept for the next read of it.  qemu-img has no block status
 * for these images (its map shows all data), and neither has this
 * driver.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "codec.h"
#include "decoded.h"
#include "endian.h"
#include "error.h"
#include "image.h"
#include "runs.h"

#define CLOOP_PREAMBLE                                                         \
	"#!/bin/sh\n#V2.0 Format\n"                                            \
	"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
#define CLOOP_HEADER 128u
#define CLOOP_OFFSETS (CLOOP_HEADER + 8)
/* qemu-img's bounds: a block, a block's compressed bytes, the offsets
 * table (and the count of blocks that keeps its size in 32 bits). */
#define CLOOP_BLOCK_MAX (64u << 20)
#define CLOOP_STORED_MAX (2ull * CLOOP_BLOCK_MAX)
#define CLOOP_OFFSETS_MAX (512u << 20)
#define CLOOP_BLOCKS_MAX ((UINT32_MAX - 1) / 8)
/* The most a deflate stream can inflate to per byte (a 258-byte match
 * in two bits): a block stored in fewer bytes cannot be whole. */
#define DEFLATE_RATIO_MAX 1032u

struct cloop {
	uint32_t block_size, n_blocks;
	uint64_t *offsets; /* n_blocks + 1, host order */
	uint64_t file_size;
};

static int cloop_probe(const uint8_t *buf, size_t len, const char *filename)
{
	/* Probing compares a zero-padded buffer: a file cut inside the
	 * preamble is not cloop. */
	(void)filename;
	return len >= sizeof(CLOOP_PREAMBLE) - 1 &&
			       memcmp(buf, CLOOP_PREAMBLE,
				      sizeof(CLOOP_PREAMBLE) - 1) == 0
		       ? 2
		       : 0;
}

/* The block size and count, with qemu-img's limits and words. */
static int parse_header(struct mimg *img, struct cloop *s, const uint8_t *h)
{
	const char *fn = img->filename;
	s->block_size = ld_be32(h);
	s->n_blocks = ld_be32(h + 4);
	if (s->block_size % 512)
		return mimg_err(-EINVAL,
				"%s: block_size %u must be a multiple of 512",
				fn, s->block_size);
	if (s->block_size == 0)
		return mimg_err(-EINVAL, "%s: block_size cannot be zero", fn);
	if (s->block_size > CLOOP_BLOCK_MAX)
		return mimg_err(-EINVAL,
				"%s: block_size %u must be %u MB or less", fn,
				s->block_size, CLOOP_BLOCK_MAX >> 20);
	if (s->n_blocks > CLOOP_BLOCKS_MAX)
		return mimg_err(-EINVAL, "%s: n_blocks %u must be %u or less",
				fn, s->n_blocks, CLOOP_BLOCKS_MAX);
	if (((uint64_t)s->n_blocks + 1) * 8 > CLOOP_OFFSETS_MAX)
		return mimg_err(-EINVAL,
				"%s: image requires too many offsets, try "
				"increasing block size (%u blocks)",
				fn, s->n_blocks);
	img->size = (uint64_t)s->n_blocks * s->block_size;
	return 0;
}

/* The offsets, all inside the file's bytes, each block's at most
 * qemu-img's bound and none before the one before it. */
static int read_offsets(struct mimg *img, struct cloop *s)
{
	const char *fn = img->filename;
	uint64_t n = (uint64_t)s->n_blocks + 1;
	if (!ck_range_within(CLOOP_OFFSETS, n * 8, s->file_size))
		return mimg_err(-EINVAL,
				"%s: cloop: offsets table of %llu entries at "
				"%u is past the end of the file (%llu bytes)",
				fn, (unsigned long long)n, CLOOP_OFFSETS,
				(unsigned long long)s->file_size);
	if (!(s->offsets = mimg__img_calloc(img, n, 8)))
		return -ENOMEM;
	int r = mimg_file_pread(img->file, s->offsets, n * 8, CLOOP_OFFSETS);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < n; i++) {
		s->offsets[i] = ld_be64(&s->offsets[i]);
		if (i == 0)
			continue;
		if (s->offsets[i] < s->offsets[i - 1])
			return mimg_err(-EINVAL,
					"%s: offsets not monotonically "
					"increasing at index %llu, image file "
					"is corrupt",
					fn, (unsigned long long)i);
		if (s->offsets[i] - s->offsets[i - 1] > CLOOP_STORED_MAX)
			return mimg_err(-EINVAL,
					"%s: invalid compressed block size at "
					"index %llu, image file is corrupt",
					fn, (unsigned long long)i);
	}
	return 0;
}

static int inflate_block(void *arg, const struct mimg_decode_unit *u,
			 const uint8_t *in, uint8_t *out)
{
	struct mimg *img = arg;
	size_t got = 0;
	if (codec_inflate_zlib(in, u->stored, out, u->size, &got) < 0 ||
	    got != u->size)
		return mimg_err(-EIO,
				"%s: cloop: block %llu (%zu bytes at %llu) "
				"does not inflate to a block of %zu bytes",
				img->filename, (unsigned long long)u->key,
				u->stored, (unsigned long long)u->at, u->size);
	return 0;
}

/* Where block RUN->unit is stored, inflated when read. */
static int block_unit(struct mimg *img, const struct mimg_run *run,
		      struct mimg_decode_unit *u)
{
	struct cloop *s = img->priv;
	uint32_t b = (uint32_t)run->unit;
	uint64_t at = s->offsets[b], stored = s->offsets[b + 1] - at;

	if (!ck_range_within(at, stored, s->file_size))
		return mimg_err(-EIO,
				"%s: cloop: block %u (%llu bytes at %llu) is "
				"past the end of the file",
				img->filename, b, (unsigned long long)stored,
				(unsigned long long)at);
	if (stored * DEFLATE_RATIO_MAX < s->block_size)
		return mimg_err(-EIO,
				"%s: cloop: block %u of %llu bytes is too "
				"short to inflate to %u bytes",
				img->filename, b, (unsigned long long)stored,
				s->block_size);
	u->at = at;
	u->stored = (size_t)stored;
	u->size = s->block_size;
	return 0;
}

/* Every byte is in a block, inflated when read. */
static int cloop_map(struct mimg *img, uint64_t off, uint64_t len,
		     struct mimg_run *run)
{
	struct cloop *s = img->priv;
	run->kind = MIMG_RUN_DECODED;
	run->unit = off / s->block_size;
	run->skip = off % s->block_size;
	run->len = min_u64(len, s->block_size - run->skip);
	run->compressed = true;
	return 0;
}

static const struct mimg_runs cloop_runs = {.map = cloop_map,
					    .unit = block_unit,
					    .decode = inflate_block,
					    .what = "cloop block"};

static int cloop_open(struct mimg *img)
{
	struct cloop *s = img->priv;
	uint8_t h[8];
	int r;

	/* A short header reads as zeroes past the end, as in qemu-img. */
	if ((r = mimg_file_size(img->file, &s->file_size)) < 0 ||
	    (r = mimg_file_pread(img->file, h, sizeof(h), CLOOP_HEADER)) < 0 ||
	    (r = parse_header(img, s, h)) < 0 || (r = read_offsets(img, s)) < 0)
		return r;
	return 0;
}

const struct mimg_driver mimg_cloop_driver = {
	.name = "cloop",
	.priv_size = sizeof(struct cloop),
	.probe = cloop_probe,
	.open = cloop_open,
	.preadv = mimg__runs_preadv,
	.info = mimg__info_without_driver_info,
	.read_only = "Image is read-only", /* qemu-img's words */
	.runs = &cloop_runs,
};
