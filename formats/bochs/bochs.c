/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Bochs "growing" images (redolog files), read-only as qemu-img reads
 * them: a 512-byte little-endian header, a catalog of 32-bit extent
 * numbers (one per extent of the disk; 0xffffffff: not allocated), then
 * the allocated extents, each a sector bitmap padded to whole sectors
 * followed by the extent's sectors.  A sector reads as zeroes unless its
 * extent is allocated and its bit is set.  Header versions 1 and 2
 * differ only in where the disk size is (version 2 has a reserved word
 * before it).
 *
 * The header is checked with qemu-img's limits and words.  Catalog
 * entries are checked against the file by the reads that reach them: a
 * bitmap or sector past the end of the file fails the read, naming the
 * entry (qemu-img would read zeroes there).  qemu-img has no block
 * status for these images (its map shows all data), and neither has
 * this driver.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "image.h"
#include "runs.h"

#define BOCHS_HEADER 512u
#define BOCHS_SECTOR 512u
#define BOCHS_V1 0x00010000u
#define BOCHS_V2 0x00020000u
#define BOCHS_UNALLOCATED 0xffffffffu
/* qemu-img's bounds: the catalog of the largest image bximage makes,
 * and the extent size. */
#define BOCHS_CATALOG_MAX 0x100000u
#define BOCHS_EXTENT_MAX 0x800000u
/* Bitmap bytes read at a time: runs of up to 512 sectors. */
#define BOCHS_BITMAP_READ 64u

struct bochs {
	uint32_t *catalog; /* host order */
	uint32_t catalog_size;
	uint32_t extent_size;
	uint64_t data_offset;  /* where the first stored extent starts */
	uint64_t bitmap_bytes; /* the bitmap's whole sectors */
	uint64_t stride;       /* bytes of one stored extent */
	uint64_t file_size;
};

/* A NUL-terminated string STR at P (a field of the header). */
static bool str_at(const uint8_t *p, const char *str)
{
	return memcmp(p, str, strlen(str) + 1) == 0;
}

/* H: the header's 512 bytes (zeroes past the end of a short file). */
static bool is_bochs(const uint8_t *h)
{
	uint32_t version = ld_le32(h + 64);
	return str_at(h, "Bochs Virtual HD Image") &&
	       str_at(h + 32, "Redolog") && str_at(h + 48, "Growing") &&
	       (version == BOCHS_V1 || version == BOCHS_V2);
}

static int bochs_probe(const uint8_t *buf, size_t len, const char *filename)
{
	/* qemu-img probes a zero-padded buffer: a short file counts as
	 * followed by zeroes. */
	uint8_t h[BOCHS_HEADER] = {0};
	(void)filename;
	memcpy(h, buf, len < sizeof(h) ? len : sizeof(h));
	return len && is_bochs(h) ? 100 : 0;
}

/* The catalog's size and the extent size, with qemu-img's limits and
 * words; the disk size from where the header's version keeps it. */
static int parse_header(struct mimg *img, struct bochs *s, const uint8_t *h)
{
	const char *fn = img->filename;
	if (!is_bochs(h))
		return mimg_err(-EINVAL, "%s: Image not in Bochs format", fn);
	uint64_t disk = ld_le64(h + (ld_le32(h + 64) == BOCHS_V1 ? 84 : 88));
	uint64_t sectors = disk / BOCHS_SECTOR;
	s->catalog_size = ld_le32(h + 72);
	s->extent_size = ld_le32(h + 80);
	if (s->catalog_size > BOCHS_CATALOG_MAX)
		return mimg_err(-EFBIG,
				"%s: Catalog size is too large (%u entries, at "
				"most %u)",
				fn, s->catalog_size, BOCHS_CATALOG_MAX);
	if (s->extent_size < BOCHS_SECTOR)
		return mimg_err(-EINVAL,
				"%s: Extent size must be at least 512 (not %u)",
				fn, s->extent_size);
	if (!is_pow2_u64(s->extent_size))
		return mimg_err(-EINVAL,
				"%s: Extent size %u is not a power of two", fn,
				s->extent_size);
	if (s->extent_size > BOCHS_EXTENT_MAX)
		return mimg_err(-EINVAL, "%s: Extent size %u is too large", fn,
				s->extent_size);
	if (s->catalog_size <
	    div_round_up_u64(sectors, s->extent_size / BOCHS_SECTOR))
		return mimg_err(-EINVAL,
				"%s: Catalog size is too small for this disk "
				"size (%u entries for %llu bytes)",
				fn, s->catalog_size, (unsigned long long)disk);
	img->size = sectors * BOCHS_SECTOR;
	/* qemu-img counts the bitmap's sectors in 32 bits, so that a
	 * bitmap of 0 bytes takes 2^23 sectors: the same here, for the
	 * same extents. */
	uint32_t bitmap_blocks = 1 + (ld_le32(h + 76) - 1) / BOCHS_SECTOR;
	uint32_t extent_blocks = s->extent_size / BOCHS_SECTOR;
	s->bitmap_bytes = (uint64_t)bitmap_blocks * BOCHS_SECTOR;
	s->stride = ((uint64_t)bitmap_blocks + extent_blocks) * BOCHS_SECTOR;
	return 0;
}

/* The catalog, all of it inside the file, and where the extents start
 * (qemu-img keeps that offset in 32 bits: larger ones are refused). */
static int read_catalog(struct mimg *img, struct bochs *s, uint32_t at)
{
	uint64_t bytes = (uint64_t)s->catalog_size * 4;
	if (bytes && (!ck_range_within(at, bytes, s->file_size) ||
		      at + bytes > UINT32_MAX))
		return mimg_err(-EINVAL,
				"%s: bochs: catalog of %u entries at %u is "
				"past the end of the file (%llu bytes) or of "
				"4 GiB",
				img->filename, s->catalog_size, at,
				(unsigned long long)s->file_size);
	if (!(s->catalog = mimg__img_calloc(img, s->catalog_size, 4)))
		return -ENOMEM;
	int r = mimg_file_pread(img->file, s->catalog, bytes, at);
	for (uint32_t i = 0; r == 0 && i < s->catalog_size; i++)
		s->catalog[i] = ld_le32(&s->catalog[i]);
	s->data_offset = at + bytes;
	return r;
}

/* The error of a read of the extent of catalog entry I (extent number
 * E), whose sectors start at DATA, from its sector SEC on, that reaches
 * past the end of the file: named by the first sector it misses. */
static int past_end(struct mimg *img, uint32_t i, uint32_t e, uint64_t data,
		    uint64_t sec)
{
	const struct bochs *s = img->priv;
	uint64_t held = s->file_size > data ? s->file_size - data : 0;
	return mimg_err(-EIO,
			"%s: bochs: catalog entry %u names stored extent %u, "
			"whose sector %llu is past the end of the file",
			img->filename, i, e,
			(unsigned long long)max_u64(sec, held / BOCHS_SECTOR));
}

/* The bit of sector SEC in BITS, the bitmap's bytes from that of
 * sector FIRST on. */
static bool bit_at(const uint8_t *bits, uint64_t first, uint64_t sec)
{
	return bits[sec / 8 - first / 8] >> (sec % 8) & 1;
}

/*
 * The run at byte SKIP of the extent of catalog entry I (stored extent
 * E), at most LEN bytes: the sectors from SKIP's on whose bits are
 * alike, as far as one read of the bitmap reaches.  A set bit is data in
 * the file, a clear one zeroes.
 */
static int map_extent(struct mimg *img, uint32_t i, uint32_t e, uint64_t skip,
		      uint64_t len, struct mimg_run *run)
{
	struct bochs *s = img->priv;
	uint8_t bits[BOCHS_BITMAP_READ];
	uint64_t first = skip / BOCHS_SECTOR;
	uint64_t last = min_u64((skip + len - 1) / BOCHS_SECTOR,
				first + sizeof(bits) * 8 - 1);
	uint64_t base, at, nbytes = last / 8 - first / 8 + 1;

	if (!ck_mul_u64(e, s->stride, &base) ||
	    !ck_add_u64(base, s->data_offset, &base) ||
	    !ck_add_u64(base, first / 8, &at) ||
	    !ck_range_within(at, nbytes, s->file_size))
		return mimg_err(-EIO,
				"%s: bochs: catalog entry %u names stored "
				"extent %u, whose bitmap is past the end of "
				"the file",
				img->filename, i, e);
	int r = mimg_file_pread(img->file, bits, nbytes, at);
	if (r < 0)
		return r;
	bool set = bit_at(bits, first, first);
	uint64_t end = first + 1;
	while (end <= last && bit_at(bits, first, end) == set)
		end++;
	run->len = min_u64(len, end * BOCHS_SECTOR - skip);
	run->kind = set ? MIMG_RUN_DATA : MIMG_RUN_ZERO;
	/* BASE is inside the file: no overflow from here on. */
	uint64_t data = base + s->bitmap_bytes;
	run->host = data + skip;
	if (set && !ck_range_within(run->host, run->len, s->file_size))
		return past_end(img, i, e, data, first);
	return 0;
}

static int bochs_map(struct mimg *img, uint64_t off, uint64_t len,
		     struct mimg_run *run)
{
	struct bochs *s = img->priv;
	/* The catalog covers the disk: checked at open. */
	uint32_t i = (uint32_t)(off / s->extent_size);
	uint64_t skip = off % s->extent_size;
	len = min_u64(len, s->extent_size - skip);
	if (s->catalog[i] != BOCHS_UNALLOCATED)
		return map_extent(img, i, s->catalog[i], skip, len, run);
	run->kind = MIMG_RUN_ZERO;
	run->len = len;
	return 0;
}

static const struct mimg_runs bochs_runs = {.map = bochs_map};

static int bochs_open(struct mimg *img)
{
	struct bochs *s = img->priv;
	uint8_t h[BOCHS_HEADER];
	int r;

	/* A short header reads as zeroes past the end, as in qemu-img. */
	if ((r = mimg_file_size(img->file, &s->file_size)) < 0 ||
	    (r = mimg_file_pread(img->file, h, sizeof(h), 0)) < 0 ||
	    (r = parse_header(img, s, h)) < 0 ||
	    (r = read_catalog(img, s, ld_le32(h + 68))) < 0)
		return r;
	return 0;
}

const struct mimg_driver mimg_bochs_driver = {
	.name = "bochs",
	.priv_size = sizeof(struct bochs),
	.probe = bochs_probe,
	.open = bochs_open,
	.preadv = mimg__runs_preadv,
	.info = mimg__info_without_driver_info,
	.read_only = "Image is read-only", /* qemu-img's words */
	.runs = &bochs_runs,
};
