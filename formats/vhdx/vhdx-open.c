/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VHDX parsing: the current header, the region table, the metadata
 * items and the BAT, each validated before use (the file may be
 * crafted).  Everything read is bounded by the file: regions, items and
 * blocks must lie inside it, and the regions must not overlap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "crc32c.h"
#include "endian.h"
#include "error.h"
#include "vhdx.h"

/* Header at OFF into H: whether it is valid (signature, checksum,
 * versions). */
static int read_header(struct mimg *img, uint64_t off, uint8_t *h, bool *valid)
{
	int r = mimg_file_pread(img->file, h, VHDX_HEADER_SIZE, off);
	if (r < 0)
		return r;
	*valid = memcmp(h, "head", 4) == 0 &&
		 vhdx_checksum_ok(h, VHDX_HEADER_SIZE) &&
		 ld_le16(h + VHDX_H_VERSION) == 1 &&
		 ld_le16(h + VHDX_H_LOG_VERSION) == 0;
	return 0;
}

/* The file type identifier, then the current header: of the two valid
 * ones, the one with the higher sequence number. */
static int current_header(struct mimg *img, uint8_t *cur, uint64_t *offp)
{
	uint8_t *other = malloc(VHDX_HEADER_SIZE);
	bool v1, v2;
	int r;
	if (!other)
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = mimg_file_pread(img->file, other, 8, 0)) < 0)
		goto out;
	if (memcmp(other, "vhdxfile", 8) != 0) {
		r = mimg_err(-EINVAL,
			     "%s: vhdx: no file type identifier "
			     "(\"vhdxfile\") at the start of the file",
			     img->filename);
		goto out;
	}
	if ((r = read_header(img, VHDX_HEADER1_OFFSET, cur, &v1)) < 0 ||
	    (r = read_header(img, VHDX_HEADER2_OFFSET, other, &v2)) < 0)
		goto out;
	if (!v1 && !v2) {
		r = mimg_err(-EINVAL,
			     "%s: vhdx: no valid header (signature, CRC-32C "
			     "and version checked at 0x%x and 0x%x)",
			     img->filename, VHDX_HEADER1_OFFSET,
			     VHDX_HEADER2_OFFSET);
		goto out;
	}
	*offp = VHDX_HEADER1_OFFSET;
	/* Two valid headers of one sequence number are the same header
	 * (some writers make them so) or an ambiguity. */
	if (v1 && v2 &&
	    ld_le64(other + VHDX_H_SEQUENCE) ==
		    ld_le64(cur + VHDX_H_SEQUENCE) &&
	    memcmp(cur, other, VHDX_HEADER_SIZE) != 0) {
		r = mimg_err(-EINVAL,
			     "%s: vhdx: the two headers differ but have the "
			     "same sequence number %llu",
			     img->filename,
			     (unsigned long long)ld_le64(cur +
							 VHDX_H_SEQUENCE));
		goto out;
	}
	if (v2 && (!v1 || ld_le64(other + VHDX_H_SEQUENCE) >
				  ld_le64(cur + VHDX_H_SEQUENCE))) {
		memcpy(cur, other, VHDX_HEADER_SIZE);
		*offp = VHDX_HEADER2_OFFSET;
	}
out:
	free(other);
	return r;
}

/* A region of LEN bytes at OFF named WHAT: MiB-aligned, after the
 * header section, inside the file. */
static int check_region(struct mimg *img, const struct vhdx *s,
			const char *what, uint64_t off, uint64_t len)
{
	if (!is_aligned_u64(off, VHDX_MIB) || !is_aligned_u64(len, VHDX_MIB) ||
	    off < VHDX_HEADER_SECTION ||
	    !ck_range_within(off, len, s->file_size))
		return mimg_err(-EINVAL,
				"%s: vhdx: %s at 0x%llx (%llu bytes) is not "
				"MiB-aligned after the header section inside "
				"the file (%llu bytes)",
				img->filename, what, (unsigned long long)off,
				(unsigned long long)len,
				(unsigned long long)s->file_size);
	return 0;
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

static int parse_log_fields(struct mimg *img, struct vhdx *s, const uint8_t *h)
{
	s->log_offset = ld_le64(h + VHDX_H_LOG_OFFSET);
	s->log_length = ld_le32(h + VHDX_H_LOG_LENGTH);
	if (!s->log_length)
		return 0;
	return check_region(img, s, "log", s->log_offset, s->log_length);
}

/* Region table at OFF into T: whether it is valid. */
static int read_region_table(struct mimg *img, uint64_t off, uint8_t *t,
			     bool *valid)
{
	int r = mimg_file_pread(img->file, t, VHDX_REGION_TABLE_SIZE, off);
	if (r < 0)
		return r;
	*valid = memcmp(t, "regi", 4) == 0 &&
		 vhdx_checksum_ok(t, VHDX_REGION_TABLE_SIZE) &&
		 ld_le32(t + 8) <= VHDX_REGION_MAX_ENTRIES;
	return 0;
}

static int parse_regions(struct mimg *img, struct vhdx *s)
{
	uint8_t *t = malloc(VHDX_REGION_TABLE_SIZE);
	bool valid, bat = false, meta = false;
	int r;
	if (!t)
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = read_region_table(img, VHDX_REGION_TABLE1_OFFSET, t, &valid)) <
	    0)
		goto out;
	if (!valid && (r = read_region_table(img, VHDX_REGION_TABLE2_OFFSET, t,
					     &valid)) < 0)
		goto out;
	if (!valid) {
		r = mimg_err(-EINVAL,
			     "%s: vhdx: no valid region table (signature, "
			     "CRC-32C and entry count checked at 0x%x and "
			     "0x%x)",
			     img->filename, VHDX_REGION_TABLE1_OFFSET,
			     VHDX_REGION_TABLE2_OFFSET);
		goto out;
	}
	uint32_t n = ld_le32(t + 8);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = t + 16 + 32 * (size_t)i;
		uint64_t off = ld_le64(e + 16);
		uint64_t len = ld_le32(e + 24);
		bool required = ld_le32(e + 28) & 1;
		bool *seen = NULL;
		const char *what = NULL;
		if (vhdx_guid_is(e, VHDX_GUID_BAT)) {
			seen = &bat;
			what = "BAT region";
			s->bat_offset = off;
			s->bat_length = len;
		} else if (vhdx_guid_is(e, VHDX_GUID_METADATA)) {
			seen = &meta;
			what = "metadata region";
			s->meta_offset = off;
			s->meta_length = len;
		} else if (required) {
			r = mimg_err(-ENOTSUP,
				     "%s: vhdx: region table entry %u is a "
				     "required region of an unknown kind",
				     img->filename, i);
			goto out;
		} else {
			continue;
		}
		if (*seen) {
			r = mimg_err(-EINVAL,
				     "%s: vhdx: the region table names the "
				     "%s twice",
				     img->filename, what);
			goto out;
		}
		*seen = true;
		if ((r = check_region(img, s, what, off, len)) < 0)
			goto out;
	}
	if (!bat || !meta) {
		r = mimg_err(-EINVAL, "%s: vhdx: the region table has no %s",
			     img->filename,
			     !bat ? "BAT region" : "metadata region");
		goto out;
	}
	if (overlap(s->bat_offset, s->bat_length, s->meta_offset,
		    s->meta_length) ||
	    overlap(s->bat_offset, s->bat_length, s->log_offset,
		    s->log_length) ||
	    overlap(s->meta_offset, s->meta_length, s->log_offset,
		    s->log_length))
		r = mimg_err(-EINVAL,
			     "%s: vhdx: the log, BAT and metadata regions "
			     "overlap",
			     img->filename);
out:
	free(t);
	return r;
}

enum {
	ITEM_FILE_PARAMS,
	ITEM_DISK_SIZE,
	ITEM_PAGE83,
	ITEM_LOGICAL_SECTOR,
	ITEM_PHYSICAL_SECTOR,
	ITEM_PARENT_LOCATOR,
	ITEM_COUNT
};

/* The metadata items known: GUID, name for messages, size. */
static const struct {
	const char *guid, *name;
	uint32_t size;
} item_kinds[ITEM_COUNT] = {
	[ITEM_FILE_PARAMS] = {VHDX_GUID_FILE_PARAMS, "file parameters", 8},
	[ITEM_DISK_SIZE] = {VHDX_GUID_DISK_SIZE, "virtual disk size", 8},
	[ITEM_PAGE83] = {VHDX_GUID_PAGE83, "page 83 data", 16},
	[ITEM_LOGICAL_SECTOR] = {VHDX_GUID_LOGICAL_SECTOR,
				 "logical sector size", 4},
	[ITEM_PHYSICAL_SECTOR] = {VHDX_GUID_PHYSICAL_SECTOR,
				  "physical sector size", 4},
	[ITEM_PARENT_LOCATOR] = {VHDX_GUID_PARENT_LOCATOR, "parent locator", 0},
};

/* One known item as found: its value (of its kind's size). */
struct meta_item {
	uint8_t value[16];
	bool present;
};

static int read_items(struct mimg *img, struct vhdx *s, struct meta_item *items)
{
	uint8_t *t = malloc(VHDX_METADATA_TABLE_SIZE);
	int r;
	if (!t)
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = mimg_file_pread_exact(img->file, t, VHDX_METADATA_TABLE_SIZE,
				       s->meta_offset, "vhdx metadata table")) <
	    0)
		goto out;
	uint32_t n = ld_le16(t + 10);
	if (memcmp(t, "metadata", 8) != 0 || n > VHDX_METADATA_MAX_ENTRIES) {
		r = mimg_err(-EINVAL,
			     "%s: vhdx: no metadata table (signature "
			     "\"metadata\", at most %u entries) at 0x%llx",
			     img->filename, VHDX_METADATA_MAX_ENTRIES,
			     (unsigned long long)s->meta_offset);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = t + 32 + 32 * (size_t)i;
		uint32_t off = ld_le32(e + 16), len = ld_le32(e + 20);
		bool required = ld_le32(e + 24) & 4;
		int k = 0;
		while (k < ITEM_COUNT && !vhdx_guid_is(e, item_kinds[k].guid))
			k++;
		struct meta_item *it = k < ITEM_COUNT ? &items[k] : NULL;
		if (!it) {
			if (required) {
				r = mimg_err(-ENOTSUP,
					     "%s: vhdx: metadata entry %u is "
					     "a required item of an unknown "
					     "kind",
					     img->filename, i);
				goto out;
			}
			continue;
		}
		if (it->present) {
			r = mimg_err(-EINVAL,
				     "%s: vhdx: the metadata table names the "
				     "%s twice",
				     img->filename, item_kinds[k].name);
			goto out;
		}
		it->present = true;
		if (it == &items[ITEM_PARENT_LOCATOR])
			continue; /* refused by the caller, unread */
		if (len != item_kinds[k].size ||
		    off < VHDX_METADATA_TABLE_SIZE ||
		    !ck_range_within(off, len, s->meta_length)) {
			r = mimg_err(-EINVAL,
				     "%s: vhdx: metadata item %s at 0x%x "
				     "(%u bytes) is not %u bytes inside the "
				     "metadata region",
				     img->filename, item_kinds[k].name, off,
				     len, item_kinds[k].size);
			goto out;
		}
		if ((r = mimg_file_pread_exact(img->file, it->value, len,
					       s->meta_offset + off,
					       "vhdx metadata item")) < 0)
			goto out;
	}
out:
	free(t);
	return r;
}

static int parse_metadata(struct mimg *img, struct vhdx *s)
{
	struct meta_item items[ITEM_COUNT] = {0};
	int r;
	if (s->meta_length < VHDX_METADATA_TABLE_SIZE)
		return mimg_err(-EINVAL,
				"%s: vhdx: metadata region of %llu bytes "
				"cannot hold its table",
				img->filename,
				(unsigned long long)s->meta_length);
	if ((r = read_items(img, s, items)) < 0)
		return r;
	for (int k = 0; k < ITEM_PARENT_LOCATOR; k++)
		if (!items[k].present)
			return mimg_err(-EINVAL,
					"%s: vhdx: the metadata has no %s",
					img->filename, item_kinds[k].name);
	uint32_t flags = ld_le32(items[ITEM_FILE_PARAMS].value + 4);
	if ((flags & VHDX_PARAM_HAS_PARENT) ||
	    items[ITEM_PARENT_LOCATOR].present)
		return mimg_err(-ENOTSUP,
				"%s: vhdx: differencing images (with a parent) "
				"are not supported",
				img->filename);
	s->leave_allocated = flags & VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED;
	s->block_size = ld_le32(items[ITEM_FILE_PARAMS].value);
	if (!is_pow2_u64(s->block_size) || s->block_size < VHDX_MIB ||
	    s->block_size > 256 * VHDX_MIB)
		return mimg_err(-EINVAL,
				"%s: vhdx: block size %u is not a power of two "
				"from 1 MiB to 256 MiB",
				img->filename, s->block_size);
	s->logical_sector = ld_le32(items[ITEM_LOGICAL_SECTOR].value);
	s->physical_sector = ld_le32(items[ITEM_PHYSICAL_SECTOR].value);
	if ((s->logical_sector != 512 && s->logical_sector != 4096) ||
	    (s->physical_sector != 512 && s->physical_sector != 4096))
		return mimg_err(-EINVAL,
				"%s: vhdx: sector sizes %u (logical) and %u "
				"(physical) are not 512 or 4096",
				img->filename, s->logical_sector,
				s->physical_sector);
	uint64_t size = ld_le64(items[ITEM_DISK_SIZE].value);
	if (size > VHDX_MAX_SIZE || !is_aligned_u64(size, s->logical_sector))
		return mimg_err(-EINVAL,
				"%s: vhdx: virtual disk size %llu is not a "
				"multiple of the %u-byte sector up to 64 TiB",
				img->filename, (unsigned long long)size,
				s->logical_sector);
	img->size = size;
	memcpy(s->disk_id, items[ITEM_PAGE83].value, 16);
	s->chunk_ratio = vhdx_chunk_ratio(s->logical_sector, s->block_size);
	s->nblocks = div_round_up_u64(size, s->block_size);
	return 0;
}

/* A payload block at HOST may not meet the header section or a region,
 * and the part of it the disk uses must be inside the file. */
static int check_block(struct mimg *img, const struct vhdx *s, uint64_t i,
		       uint64_t host)
{
	uint64_t used = min_u64(s->block_size, img->size - i * s->block_size);
	if (host < VHDX_HEADER_SECTION ||
	    overlap(host, s->block_size, s->log_offset, s->log_length) ||
	    overlap(host, s->block_size, s->bat_offset, s->bat_length) ||
	    overlap(host, s->block_size, s->meta_offset, s->meta_length))
		return mimg_err(-EINVAL,
				"%s: vhdx: BAT entry of block %llu points at "
				"0x%llx, inside the headers, log, BAT or "
				"metadata",
				img->filename, (unsigned long long)i,
				(unsigned long long)host);
	if (!ck_range_within(host, used, s->file_size))
		return mimg_err(-EINVAL,
				"%s: vhdx: BAT entry of block %llu points at "
				"0x%llx, past the end of the file (%llu bytes)",
				img->filename, (unsigned long long)i,
				(unsigned long long)host,
				(unsigned long long)s->file_size);
	return 0;
}

static int payload_entry(struct mimg *img, struct vhdx *s, uint64_t i,
			 uint64_t e)
{
	uint64_t host = e & ~(VHDX_MIB - 1);
	switch (e & 7) {
	case VHDX_BLOCK_NOT_PRESENT:
	case VHDX_BLOCK_UNDEFINED:
	case VHDX_BLOCK_ZERO:
	case VHDX_BLOCK_UNMAPPED: s->block_host[i] = 0; return 0;
	case VHDX_BLOCK_FULLY_PRESENT: {
		int r = check_block(img, s, i, host);
		s->block_host[i] = host;
		/* A last block may reach past the end of the file: new
		 * blocks go after all of it. */
		if (r == 0)
			s->next_free = max_u64(s->next_free,
					       host + s->block_size);
		return r;
	}
	case VHDX_BLOCK_PARTIALLY_PRESENT:
		return mimg_err(-EINVAL,
				"%s: vhdx: block %llu is partially present "
				"in an image without a parent",
				img->filename, (unsigned long long)i);
	default:
		return mimg_err(-EINVAL,
				"%s: vhdx: BAT entry of block %llu has the "
				"unknown state %u",
				img->filename, (unsigned long long)i,
				(unsigned)(e & 7));
	}
}

static int load_bat(struct mimg *img, struct vhdx *s)
{
	uint64_t n = s->nblocks;
	uint64_t entries = vhdx_bat_entries(n, s->chunk_ratio);
	if (n > VHDX_MAX_BLOCKS || entries * 8 > s->bat_length)
		return mimg_err(-EINVAL,
				"%s: vhdx: BAT region of %llu bytes is too "
				"small for %llu blocks of %u bytes",
				img->filename,
				(unsigned long long)s->bat_length,
				(unsigned long long)n, s->block_size);
	/* Read in pieces: the region is within the file, yet may be large. */
	enum { CHUNK = 8192 };
	uint8_t *buf;
	int r = 0;
	if (!(s->block_host = mimg__img_calloc(img, n, sizeof(*s->block_host))))
		return -ENOMEM;
	if (!(buf = malloc(CHUNK * 8)))
		return mimg_err(-ENOMEM, "out of memory");
	for (uint64_t first = 0; first < entries && r == 0; first += CHUNK) {
		uint64_t cnt = min_u64(CHUNK, entries - first);
		if ((r = mimg_file_pread_exact(img->file, buf, cnt * 8,
					       s->bat_offset + first * 8,
					       "vhdx BAT")) < 0)
			break;
		for (uint64_t k = 0; k < cnt && r == 0; k++) {
			uint64_t idx = first + k;
			uint64_t block;
			if (!vhdx_bat_block(idx, s->chunk_ratio, &block))
				continue; /* a sector bitmap's */
			r = payload_entry(img, s, block, ld_le64(buf + k * 8));
		}
	}
	free(buf);
	return r;
}

int vhdx_parse(struct mimg *img, struct vhdx *s)
{
	uint8_t *h = s->header;
	int r;
	/* The log replayed (to a view) first: the regions, metadata and BAT
	 * are read as its updates left them. */
	if ((r = mimg_file_size(img->file, &s->file_size)) == 0 &&
	    (r = current_header(img, h, &s->header_off)) == 0 &&
	    (r = parse_log_fields(img, s, h)) == 0 &&
	    (r = vhdx_log_view(img, s, h)) == 0 &&
	    (r = mimg_file_size(img->file, &s->file_size)) == 0 &&
	    (r = parse_regions(img, s)) == 0 &&
	    (r = parse_metadata(img, s)) == 0)
		r = load_bat(img, s);
	return r;
}
