/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VDI driver: header and block map validation, reads, writes with block
 * allocation, zeroing and block status.
 *
 * A new block goes at the end of the data area: its data is written
 * first (the rest of the block reads as zeroes), then the header with the
 * new allocated-block count, then the block map entry, so an interrupted
 * allocation leaves the old image plus an unreferenced block.  Allocation
 * holds the image's table_lock for its whole sequence; I/O to allocated
 * blocks only looks the entry up under it.
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
#include "vdi.h"

static int vdi_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)filename;
	/* qemu-img probes the signature in a zero-padded buffer of at least
	 * a header's size */
	return len >= VDI_H_SIGNATURE + 4 &&
			       ld_le32(buf + VDI_H_SIGNATURE) == VDI_SIGNATURE
		       ? 100
		       : 0;
}

static bool uuid_is_null(const uint8_t *u)
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

/* The checks qemu-img applies, with its limits, plus the layout checks
 * that keep the block map and data area inside the file. */
static int validate_header(struct mimg *img, struct vdi *s)
{
	const uint8_t *h = s->header;
	const char *fn = img->filename;
	uint32_t v;

	if ((v = ld_le32(h + VDI_H_SIGNATURE)) != VDI_SIGNATURE)
		return mimg_err(-EINVAL,
				"%s: Image not in VDI format (bad signature "
				"%08x)",
				fn, v);
	if ((v = ld_le32(h + VDI_H_VERSION)) != VDI_VERSION_1_1)
		return mimg_err(-ENOTSUP, "%s: vdi: unsupported version %u.%u",
				fn, v >> 16, v & 0xffff);
	if ((v = ld_le32(h + VDI_H_IMAGE_TYPE)) != VDI_TYPE_DYNAMIC &&
	    v != VDI_TYPE_STATIC)
		return mimg_err(-ENOTSUP, "%s: vdi: unsupported image type %u",
				fn, v);
	if ((v = ld_le32(h + VDI_H_SECTOR_SIZE)) != VDI_SECTOR)
		return mimg_err(-ENOTSUP, "%s: vdi: sector size %u is not 512",
				fn, v);
	if ((v = ld_le32(h + VDI_H_BLOCK_SIZE)) != VDI_BLOCK_SIZE)
		return mimg_err(-ENOTSUP, "%s: vdi: block size %u is not %u",
				fn, v, VDI_BLOCK_SIZE);
	if ((v = ld_le32(h + VDI_H_BLOCK_EXTRA)) != 0)
		return mimg_err(-ENOTSUP,
				"%s: vdi: block extra data of %u "
				"bytes is not supported",
				fn, v);
	if (s->offset_bmap % VDI_SECTOR || s->offset_data % VDI_SECTOR)
		return mimg_err(-ENOTSUP,
				"%s: vdi: unaligned block map offset "
				"0x%llx or data offset 0x%llx",
				fn, (unsigned long long)s->offset_bmap,
				(unsigned long long)s->offset_data);
	if (!uuid_is_null(h + VDI_H_UUID_LINK) ||
	    !uuid_is_null(h + VDI_H_UUID_PARENT))
		return mimg_err(-ENOTSUP,
				"%s: vdi: differencing images (a "
				"link or parent UUID) are not supported",
				fn);
	if (s->blocks > VDI_BLOCKS_MAX)
		return mimg_err(-EINVAL,
				"%s: vdi: too many blocks %u, max is "
				"%u",
				fn, s->blocks, VDI_BLOCKS_MAX);
	return 0;
}

static int check_layout(struct mimg *img, struct vdi *s)
{
	const char *fn = img->filename;
	uint64_t disk = ld_le64(s->header + VDI_H_DISK_SIZE);
	uint64_t map_bytes = (uint64_t)s->blocks * 4;

	/* VBoxManage may write a size that is not whole sectors. */
	if (!ck_align_up_u64(disk, VDI_SECTOR, &img->size) ||
	    img->size > (uint64_t)s->blocks * VDI_BLOCK_SIZE)
		return mimg_err(-EINVAL,
				"%s: vdi: disk size %llu does not fit "
				"in the %u blocks of the block map",
				fn, (unsigned long long)disk, s->blocks);
	/* The map is read whole: it must be in the file, which bounds the
	 * memory it takes. */
	if (s->offset_bmap < VDI_HEADER_SIZE ||
	    !ck_range_within(s->offset_bmap, map_bytes, s->file_size))
		return mimg_err(-EINVAL,
				"%s: vdi: block map at 0x%llx with %u "
				"entries is outside the file",
				fn, (unsigned long long)s->offset_bmap,
				s->blocks);
	if (s->offset_data < s->offset_bmap + map_bytes)
		return mimg_err(-EINVAL,
				"%s: vdi: data offset 0x%llx is "
				"inside the header or block map",
				fn, (unsigned long long)s->offset_data);
	return 0;
}

static int load_bmap(struct mimg *img, struct vdi *s)
{
	if (!(s->bmap = mimg__img_calloc(img, s->blocks, 4)))
		return -ENOMEM;
	int r = mimg_file_pread_exact(img->file, s->bmap, (size_t)s->blocks * 4,
				      s->offset_bmap, "vdi block map");
	if (r < 0)
		return r;
	/* New blocks go after every block in use, whatever the header's
	 * count says, so that a block is never handed out twice. */
	s->next_index = ld_le32(s->header + VDI_H_ALLOCATED);
	for (uint32_t i = 0; i < s->blocks; i++) {
		uint32_t e = ld_le32(&s->bmap[i]);
		s->bmap[i] = e;
		if (e < s->blocks && e >= s->next_index)
			s->next_index = e + 1;
	}
	return 0;
}

/* Host offset of guest offset OFF's block into *HOST (0 when not
 * allocated).  Entries past the image's blocks are refused: they would
 * point anywhere in a huge sparse range.  Called with img->table_lock held. */
static int block_host(struct mimg *img, uint64_t off, uint64_t *host)
{
	struct vdi *s = img->priv;
	uint32_t idx = (uint32_t)(off / VDI_BLOCK_SIZE), e = s->bmap[idx];
	*host = 0;
	if (e >= VDI_DISCARDED)
		return 0;
	if (e >= s->blocks)
		return mimg_err(-EIO,
				"%s: vdi: block map entry %u is %u, past "
				"the image's %u blocks",
				img->filename, idx, e, s->blocks);
	*host = s->offset_data + (uint64_t)e * VDI_BLOCK_SIZE;
	return 0;
}

/*
 * Allocate the block holding OFF and write the LEN bytes of IOV (from
 * byte SKIP) into it, in crash-safe order.  Called with img->table_lock held.
 */
static int allocate_and_write(struct mimg *img, const struct iovec *iov,
			      int iovcnt, size_t skip, uint64_t off, size_t len)
{
	struct vdi *s = img->priv;
	uint32_t idx = (uint32_t)(off / VDI_BLOCK_SIZE);
	uint64_t host = s->offset_data +
			(uint64_t)s->next_index * VDI_BLOCK_SIZE;
	int r;

	if (s->next_index >= s->blocks)
		return mimg_err(-EIO,
				"%s: vdi: no free block left in the "
				"data area (%u blocks)",
				img->filename, s->blocks);
	/* The whole block in the file, as qemu-img leaves it, and nothing
	 * the file held there (not in an image qemu-img or mimg wrote)
	 * showing through. */
	if ((r = mimg__bt_place_block(img, &s->file_size, host, VDI_BLOCK_SIZE,
				      iov, iovcnt, skip, len,
				      off % VDI_BLOCK_SIZE)) < 0)
		return r;
	uint8_t count[4], entry[4];
	st_le32(count, s->next_index + 1);
	if ((r = mimg_file_pwrite(img->file, count, 4, VDI_H_ALLOCATED)) < 0)
		return r;
	memcpy(s->header + VDI_H_ALLOCATED, count, 4);
	st_le32(entry, s->next_index);
	if ((r = mimg_file_pwrite(img->file, entry, 4,
				  s->offset_bmap + (uint64_t)idx * 4)) < 0)
		return r;
	s->bmap[idx] = s->next_index++;
	return 0;
}

static int vdi_open(struct mimg *img)
{
	struct vdi *s = img->priv;
	int r;

	s->bt = (struct mimg_blocktable){.block_size = VDI_BLOCK_SIZE,
					 .lookup = block_host,
					 .allocate = allocate_and_write};
	img->blocktable = &s->bt;
	if ((r = mimg_file_size(img->file, &s->file_size)) < 0 ||
	    (r = mimg_file_pread_exact(img->file, s->header, VDI_HEADER_SIZE, 0,
				       "vdi header")) < 0)
		return r;
	s->offset_bmap = ld_le32(s->header + VDI_H_OFFSET_BMAP);
	s->offset_data = ld_le32(s->header + VDI_H_OFFSET_DATA);
	s->blocks = ld_le32(s->header + VDI_H_BLOCKS);
	s->is_static = ld_le32(s->header + VDI_H_IMAGE_TYPE) == VDI_TYPE_STATIC;
	if ((r = validate_header(img, s)) < 0 ||
	    (r = check_layout(img, s)) < 0 || (r = load_bmap(img, s)) < 0)
		return r;
	img->cluster_size = VDI_BLOCK_SIZE;
	return 0;
}

static int vdi_block_status(struct mimg *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, unsigned *status,
			    uint64_t *host_off)
{
	struct vdi *s = img->priv;
	uint64_t host;
	int r = mimg__bt_lookup(img, &s->bt, off, &host);
	if (r < 0)
		return r;
	*pnum = mimg__bt_in_block(&s->bt, off,
				  (size_t)min_u64(len, VDI_BLOCK_SIZE));
	if (!host) {
		/* qemu-img map shows unallocated blocks as present zeroes */
		*status = MIMG_BS_ZERO | MIMG_BS_ALLOCATED;
		*host_off = 0;
		return 0;
	}
	*host_off = host + off % VDI_BLOCK_SIZE;
	*status = MIMG_BS_DATA | MIMG_BS_ALLOCATED | MIMG_BS_OFFSET_VALID;
	if (s->is_static) {
		/* qemu-img looks through a static image's blocks into the
		 * file: holes there are known zeroes. */
		bool data;
		if ((r = mimg_file_extent(img->file, *host_off, *pnum, &data,
					  pnum)) < 0)
			return r;
		if (!data)
			*status |= MIMG_BS_ZERO;
	}
	return 0;
}

static bool vdi_has_zero_init(struct mimg *img)
{
	struct vdi *s = img->priv;
	return !s->is_static || mimg_file_is_regular(img->file);
}

const struct mimg_driver mimg_vdi_driver = {
	.name = "vdi",
	.priv_size = sizeof(struct vdi),
	.probe = vdi_probe,
	.open = vdi_open,
	.create = vdi_create,
	.create_opts = vdi_create_opts,
	.preadv = mimg__bt_preadv,
	.pwritev = mimg__bt_pwritev,
	.pwrite_zeroes = mimg__bt_pwrite_zeroes,
	.block_status = vdi_block_status,
	.check = vdi_check,
	.has_zero_init = vdi_has_zero_init,
};
