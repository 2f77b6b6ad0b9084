/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VHDX driver: probing, opening (vhdx-open.c parses, vhdx-log.c replays
 * a log left with updates to a view of the file), I/O through the block
 * table, block allocation and block status.
 *
 * A new block goes at the end of the file and its BAT entry, one 8-byte
 * write, is made after its data: the in-place update the format's log
 * exists to protect is a single sector here, so the log stays empty.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "crc32c.h"
#include "endian.h"
#include "iov-file.h"
#include "uuid.h"
#include "error.h"
#include "vhdx.h"

static int vhdx_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)filename;
	return len >= 8 && memcmp(buf, "vhdxfile", 8) == 0 ? 100 : 0;
}

/* The block table's lookup: the BAT was checked at open. */
static int bt_lookup(struct mimg *img, uint64_t off, uint64_t *host)
{
	struct vhdx *s = img->priv;
	*host = s->block_host[off / s->block_size];
	return 0;
}

/* Before the first change after opening, the format wants new write
 * GUIDs in the header: the header is rewritten in the slot that is not
 * current, then in the other, each with a higher sequence number and
 * flushed, so that one valid header survives a crash.  Called with
 * img->table_lock held. */
int vhdx_renew_headers(struct mimg *img, struct vhdx *s)
{
	uint8_t *h = s->header;
	int r = 0;
	mimg__uuid_random(h + VHDX_H_FILE_WRITE_GUID);
	mimg__uuid_random(h + VHDX_H_DATA_WRITE_GUID);
	for (int i = 0; i < 2 && r == 0; i++) {
		uint64_t slot = s->header_off == VHDX_HEADER1_OFFSET
					? VHDX_HEADER2_OFFSET
					: VHDX_HEADER1_OFFSET;
		st_le64(h + VHDX_H_SEQUENCE, ld_le64(h + VHDX_H_SEQUENCE) + 1);
		vhdx_checksum_set(h, VHDX_HEADER_SIZE);
		if ((r = mimg_file_pwrite(img->file, h, VHDX_HEADER_SIZE,
					  slot)) == 0 &&
		    (r = mimg_file_flush(img->file)) == 0)
			s->header_off = slot;
	}
	if (r == 0)
		s->headers_renewed = true;
	return r;
}

static int before_write(struct mimg *img)
{
	struct vhdx *s = img->priv;
	return s->headers_renewed ? 0 : vhdx_renew_headers(img, s);
}

/*
 * Allocate the block holding OFF at the end of the file (whole MiB) and
 * write the LEN bytes of IOV (from byte SKIP) into it, then point its
 * BAT entry there: a crash before the entry leaves an unused block.
 * Called with img->table_lock held.
 */
static int allocate_and_write(struct mimg *img, const struct iovec *iov,
			      int iovcnt, size_t skip, uint64_t off, size_t len)
{
	struct vhdx *s = img->priv;
	uint64_t block = off / s->block_size;
	uint64_t start = s->next_free, end = start + s->block_size;
	uint8_t e[8];
	int r;
	if (end > (uint64_t)INT64_MAX)
		return mimg_err(-EFBIG, "%s: vhdx: the file cannot grow",
				img->filename);
	/* The whole block in the file: the parts not written read as
	 * zeroes, and the file holds every block it names. */
	if ((r = mimg__bt_place_block(img, &s->file_size, start, s->block_size,
				      iov, iovcnt, skip, len,
				      off % s->block_size)) < 0)
		return r;
	s->next_free = end;
	st_le64(e, start | VHDX_BLOCK_FULLY_PRESENT);
	if ((r = mimg_file_pwrite(img->file, e, 8,
				  s->bat_offset +
					  8 * vhdx_bat_index(block,
							     s->chunk_ratio))) <
	    0)
		return r;
	s->block_host[block] = start;
	return 0;
}

static int vhdx_open(struct mimg *img)
{
	struct vhdx *s = img->priv;
	int r;
	if ((r = vhdx_parse(img, s)) < 0)
		return r;
	s->bt = (struct mimg_blocktable){.block_size = s->block_size,
					 .lookup = bt_lookup,
					 .allocate = allocate_and_write,
					 .before_write = before_write};
	img->blocktable = &s->bt;
	img->cluster_size = s->block_size;
	/* After the file and every block load_bat saw (each starts inside
	 * the file: no overflow). */
	ck_align_up_u64(max_u64(s->file_size, s->next_free), VHDX_MIB,
			&s->next_free);
	return 0;
}

static bool vhdx_has_zero_init(struct mimg *img)
{
	(void)img;
	return true; /* new blocks are zeroes, and fixed ones holes */
}

const struct mimg_driver mimg_vhdx_driver = {
	.name = "vhdx",
	.priv_size = sizeof(struct vhdx),
	.probe = vhdx_probe,
	.open = vhdx_open,
	.create = vhdx_create,
	.create_opts = vhdx_create_opts,
	.preadv = mimg__bt_preadv,
	.pwritev = mimg__bt_pwritev,
	.pwrite_zeroes = mimg__bt_pwrite_zeroes,
	.block_status = mimg__bt_block_status,
	.check = vhdx_check,
	.has_zero_init = vhdx_has_zero_init,
};
