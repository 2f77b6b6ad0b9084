/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VHD driver: opening (footer, dynamic header and BAT validation), reads,
 * writes with block allocation, zeroing and block status.
 *
 * Allocation appends a block where the footer was: the footer is written
 * after the new block first (the file always ends with a footer), then
 * the block's bitmap and data, and only then the BAT entry, so a crash at
 * any point leaves either the old image (plus unreferenced bytes) or the
 * new one.  Allocation holds the image's table_lock for its whole
 * sequence; I/O to allocated blocks only looks the entry up under it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blocktable.h"
#include "checked.h"
#include "endian.h"
#include "error.h"
#include "iov-file.h"
#include "iov.h"
#include "vpc.h"

uint32_t vpc_checksum(const uint8_t *buf, size_t len, size_t ck_off)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < len; i++)
		if (i < ck_off || i >= ck_off + 4)
			sum += buf[i];
	return ~sum;
}

static int vpc_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)filename;
	/* Only a footer copy at the start counts, as in qemu-img: a fixed
	 * VHD (footer at the end only) probes as raw. */
	return len >= 8 && memcmp(buf, "conectix", 8) == 0 ? 100 : 0;
}

/* Creators whose images are sized by the footer's current size rather
 * than the CHS geometry (qemu-img's table). */
static bool sized_by_current_size(const uint8_t *footer)
{
	static const char apps[][4] = {"win ",
				       "qem2",
				       "d2v ",
				       "CTXS",
				       {'t', 'a', 'p', 0}};
	for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++)
		if (memcmp(footer + VPC_F_CREATOR_APP, apps[i], 4) == 0)
			return true;
	return false;
}

static int read_footer(struct mimg *img, struct vpc *s)
{
	uint8_t *f = s->footer;
	int r = mimg_file_pread(img->file, f, VPC_FOOTER_SIZE, 0);
	if (r < 0)
		return r;
	if (memcmp(f, "conectix", 8) != 0) {
		/* A fixed disk has its footer only at the end. */
		if (s->file_size < VPC_FOOTER_SIZE)
			return mimg_err(-EINVAL,
					"%s: vpc: file of %llu bytes "
					"is too small for a VHD footer",
					img->filename,
					(unsigned long long)s->file_size);
		r = mimg_file_pread(img->file, f, VPC_FOOTER_SIZE,
				    s->file_size - VPC_FOOTER_SIZE);
		if (r < 0)
			return r;
		if (memcmp(f, "conectix", 8) != 0)
			return mimg_err(-EINVAL, /* no footer at all */
					"%s: invalid VPC image", img->filename);
	}
	uint32_t want = ld_be32(f + VPC_F_CHECKSUM);
	uint32_t got = vpc_checksum(f, VPC_FOOTER_SIZE, VPC_F_CHECKSUM);
	if (want != got)
		return mimg_err(-EINVAL,
				"%s: vpc: footer checksum 0x%08x does "
				"not match its contents (0x%08x)",
				img->filename, want, got);
	return 0;
}

/* The virtual size, chosen as qemu-img chooses it. */
static int footer_size(struct mimg *img, struct vpc *s)
{
	const uint8_t *f = s->footer;
	uint64_t chs = (uint64_t)ld_be16(f + VPC_F_CYLS) * f[VPC_F_HEADS] *
		       f[VPC_F_SECS];
	uint64_t sectors = chs;
	if (sized_by_current_size(f) || chs == VPC_MAX_GEOMETRY)
		sectors = ld_be64(f + VPC_F_CUR_SIZE) / VPC_SECTOR;
	if (sectors > (uint64_t)INT64_MAX / VPC_SECTOR)
		return mimg_err(-EFBIG,
				"%s: vpc: current size %llu is too "
				"large",
				img->filename,
				(unsigned long long)ld_be64(f +
							    VPC_F_CUR_SIZE));
	img->size = sectors * VPC_SECTOR;
	return 0;
}

static int open_fixed(struct mimg *img, struct vpc *s)
{
	s->fixed = true;
	s->bt.flat = true;
	/* The data must end before the footer; a read-only image reads a
	 * short tail as zeroes, but a write there would hit the footer. */
	if (!img->read_only &&
	    !ck_range_within(img->size, VPC_FOOTER_SIZE, s->file_size))
		return mimg_err(-EINVAL,
				"%s: vpc: fixed disk of %llu bytes "
				"does not fit in the file (%llu bytes)",
				img->filename, (unsigned long long)img->size,
				(unsigned long long)s->file_size);
	return 0;
}

static int read_dyn_header(struct mimg *img, struct vpc *s, uint8_t *h)
{
	uint64_t off = ld_be64(s->footer + VPC_F_DATA_OFFSET);
	if (!ck_range_within(off, VPC_DYN_HEADER_SIZE, s->file_size))
		return mimg_err(-EINVAL,
				"%s: vpc: dynamic header offset "
				"0x%llx is past the end of the file",
				img->filename, (unsigned long long)off);
	int r = mimg_file_pread_exact(img->file, h, VPC_DYN_HEADER_SIZE, off,
				      "vpc dynamic header");
	if (r < 0)
		return r;
	if (memcmp(h, "cxsparse", 8) != 0)
		return mimg_err(-EINVAL,
				"%s: vpc: no dynamic header (cookie "
				"\"cxsparse\") at offset 0x%llx",
				img->filename, (unsigned long long)off);
	s->dyn_offset = off;
	s->meta_end = off + VPC_DYN_HEADER_SIZE;
	s->block_size = ld_be32(h + VPC_D_BLOCK_SIZE);
	if (!is_pow2_u64(s->block_size) || s->block_size < VPC_SECTOR)
		return mimg_err(-EINVAL,
				"%s: vpc: block size %u is not a "
				"power of two of at least 512",
				img->filename, s->block_size);
	s->bitmap_size = (uint32_t)((s->block_size / (8 * VPC_SECTOR) + 511) &
				    ~511u);
	s->max_entries = ld_be32(h + VPC_D_MAX_ENTRIES);
	s->bat_offset = ld_be64(h + VPC_D_TABLE_OFFSET);
	return 0;
}

static bool ranges_meet(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* A block at START of SPAN bytes shares bytes with the footer copy, the
 * dynamic header or the BAT. */
static bool overlaps_metadata(const struct vpc *s, uint64_t start,
			      uint64_t span, uint64_t bat_bytes)
{
	return ranges_meet(start, span, 0, VPC_FOOTER_SIZE) ||
	       ranges_meet(start, span, s->dyn_offset, VPC_DYN_HEADER_SIZE) ||
	       ranges_meet(start, span, s->bat_offset, bat_bytes);
}

/* Load the entries that cover the virtual size and validate each. */
static int load_bat(struct mimg *img, struct vpc *s)
{
	uint64_t need = div_round_up_u64(img->size, s->block_size);
	uint64_t bat_bytes = (uint64_t)s->max_entries * 4;

	if (need > s->max_entries)
		return mimg_err(-EINVAL,
				"%s: vpc: BAT of %u entries is too "
				"small for %llu blocks of %u bytes",
				img->filename, s->max_entries,
				(unsigned long long)need, s->block_size);
	if (need > VPC_MAX_BAT_ENTRIES)
		return mimg_err(-EFBIG,
				"%s: vpc: %llu blocks are more than "
				"the supported %u",
				img->filename, (unsigned long long)need,
				VPC_MAX_BAT_ENTRIES);
	if (!ck_range_within(s->bat_offset, bat_bytes, s->file_size))
		return mimg_err(-EINVAL,
				"%s: vpc: BAT at 0x%llx with %u "
				"entries is past the end of the file",
				img->filename,
				(unsigned long long)s->bat_offset,
				s->max_entries);
	s->nblocks = (uint32_t)need;
	s->meta_end = max_u64(s->meta_end, s->bat_offset + bat_bytes);
	/* within the file, so this cannot overflow */
	ck_align_up_u64(s->meta_end, VPC_SECTOR, &s->next_free);
	if (!(s->bat = mimg__img_calloc(img, need, 4)))
		return -ENOMEM;
	int r = mimg_file_pread_exact(img->file, s->bat, need * 4,
				      s->bat_offset, "vpc BAT");
	if (r < 0)
		return r;
	uint64_t span = (uint64_t)s->bitmap_size + s->block_size;
	for (uint32_t i = 0; i < s->nblocks; i++) {
		uint32_t e = ld_be32(&s->bat[i]);
		s->bat[i] = e;
		if (e == VPC_BAT_UNUSED)
			continue;
		uint64_t start = (uint64_t)e * VPC_SECTOR;
		if (overlaps_metadata(s, start, span, bat_bytes))
			return mimg_err(-EINVAL,
					"%s: vpc: BAT entry %u points "
					"at sector 0x%x, inside the image's "
					"headers or BAT",
					img->filename, i, e);
		if (!ck_range_within(start, span, s->file_size))
			return mimg_err(-EINVAL,
					"%s: vpc: BAT entry %u points "
					"at sector 0x%x, past the end of the "
					"file (truncated image?)",
					img->filename, i, e);
		s->next_free = max_u64(s->next_free, start + span);
	}
	return 0;
}

/* Host offset of guest offset OFF's block, or 0 when unallocated.
 * Called with img->table_lock held. */
static uint64_t block_host(struct vpc *s, uint64_t off)
{
	uint32_t e = s->bat[off / s->block_size];
	if (e == VPC_BAT_UNUSED)
		return 0;
	return (uint64_t)e * VPC_SECTOR + s->bitmap_size;
}

/* The block table's lookup: never fails, the BAT was checked at open. */
static int bt_lookup(struct mimg *img, uint64_t off, uint64_t *host)
{
	*host = block_host(img->priv, off);
	return 0;
}

/*
 * Allocate the block holding OFF and write the LEN bytes of IOV (from
 * byte SKIP) into it, in crash-safe order.  Called with img->table_lock held.
 */
static int allocate_and_write(struct mimg *img, const struct iovec *iov,
			      int iovcnt, size_t skip, uint64_t off, size_t len)
{
	struct vpc *s = img->priv;
	uint64_t idx = off / s->block_size;
	uint64_t start = s->next_free, data = start + s->bitmap_size;
	uint64_t end = data + s->block_size;
	uint64_t sector = start / VPC_SECTOR;
	uint8_t *bitmap;
	int r;

	if (sector >= VPC_BAT_UNUSED || end + VPC_FOOTER_SIZE > INT64_MAX)
		return mimg_err(-EFBIG,
				"%s: vpc: the file cannot grow past "
				"2 TiB of blocks",
				img->filename);
	/* Whatever lies past the old footer (nothing, normally) must not
	 * show through the parts of the block this write does not cover. */
	if ((r = mimg__bt_clear_stale(img, s->file_size, data, end)) < 0)
		return r;
	/* The footer moves first, so that the file always ends with one;
	 * the bitmap then overwrites the old footer. */
	if ((r = mimg_file_pwrite(img->file, s->footer, VPC_FOOTER_SIZE, end)) <
	    0)
		return r;
	s->file_size = max_u64(s->file_size, end + VPC_FOOTER_SIZE);
	/* Every sector is marked present, as qemu-img does: sectors never
	 * written read as the zeroes the block was created with. */
	if (!(bitmap = malloc(s->bitmap_size)))
		return mimg_err(-ENOMEM, "out of memory");
	memset(bitmap, 0xff, s->bitmap_size);
	r = mimg_file_pwrite(img->file, bitmap, s->bitmap_size, start);
	free(bitmap);
	if (r < 0)
		return r;
	r = mimg__file_pwritev_slice(img->file, iov, iovcnt, skip, len,
				     data + off % s->block_size);
	if (r < 0)
		return r;
	s->next_free = end;
	uint8_t be[4];
	st_be32(be, (uint32_t)sector);
	if ((r = mimg_file_pwrite(img->file, be, 4, s->bat_offset + idx * 4)) <
	    0)
		return r;
	s->bat[idx] = (uint32_t)sector;
	return 0;
}

static int vpc_open(struct mimg *img)
{
	struct vpc *s = img->priv;
	uint8_t h[VPC_DYN_HEADER_SIZE];
	int r;

	img->blocktable = &s->bt; /* flat or dynamic, set up below */
	if ((r = mimg_file_size(img->file, &s->file_size)) < 0 ||
	    (r = read_footer(img, s)) < 0 || (r = footer_size(img, s)) < 0)
		return r;
	uint32_t type = ld_be32(s->footer + VPC_F_TYPE);
	if (type == VPC_FIXED)
		return open_fixed(img, s);
	if (type == VPC_DIFFERENCING) {
		return mimg_err(-ENOTSUP,
				"%s: vpc: differencing VHD images are "
				"not supported",
				img->filename);
	}
	if (type != VPC_DYNAMIC) {
		return mimg_err(-EINVAL, "%s: vpc: unknown disk type %u",
				img->filename, type);
	}
	if (img->size > VPC_MAX_SECTORS * VPC_SECTOR) {
		return mimg_err(-EFBIG,
				"%s: vpc: disk size %llu is larger than "
				"2040 GiB",
				img->filename, (unsigned long long)img->size);
	}
	if ((r = read_dyn_header(img, s, h)) < 0 || (r = load_bat(img, s)) < 0)
		return r;
	s->bt = (struct mimg_blocktable){.block_size = s->block_size,
					 .lookup = bt_lookup,
					 .allocate = allocate_and_write};
	img->cluster_size = s->block_size;
	return 0;
}

static int vpc_block_status(struct mimg *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, unsigned *status,
			    uint64_t *host_off)
{
	struct vpc *s = img->priv;
	if (s->fixed) {
		/* The data area is a raw file: holes in it read as zeroes, as
		 * qemu-img map shows them (data that is known zero). */
		bool data;
		int r = mimg_file_extent(img->file, off, len, &data, pnum);
		if (r < 0)
			return r;
		*status = MIMG_BS_DATA | MIMG_BS_ALLOCATED |
			  MIMG_BS_OFFSET_VALID | (data ? 0 : MIMG_BS_ZERO);
		*host_off = off;
		return 0;
	}
	return mimg__bt_block_status(img, off, len, pnum, status, host_off);
}

static bool vpc_has_zero_init(struct mimg *img)
{
	struct vpc *s = img->priv;
	return !s->fixed || mimg_file_is_regular(img->file);
}

const struct mimg_driver mimg_vpc_driver = {
	.name = "vpc",
	.priv_size = sizeof(struct vpc),
	.probe = vpc_probe,
	.open = vpc_open,
	.create = vpc_create,
	.create_opts = vpc_create_opts,
	.preadv = mimg__bt_preadv,
	.pwritev = mimg__bt_pwritev,
	.pwrite_zeroes = mimg__bt_pwrite_zeroes,
	.block_status = vpc_block_status,
	.check = vpc_check,
	.has_zero_init = vpc_has_zero_init,
};
