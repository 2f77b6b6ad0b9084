/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Block status of one layer and through the backing chain.
 */
#include <errno.h>

#include "checked.h"
#include "error.h"
#include "image.h"

/* Block status of IMG, whose resize lock the caller holds. */
static int layer_status(struct mimg *img, uint64_t off, uint64_t len,
			uint64_t *pnum, unsigned *status, uint64_t *host_off)
{
	uint64_t dummy_host;
	int r;

	if (!host_off)
		host_off = &dummy_host;
	*pnum = 0;
	*status = 0;
	*host_off = 0;
	if (off >= img->size || len == 0)
		return mimg_err(-EINVAL,
				"%s: block status at %llu is past the "
				"end of the image",
				img->filename, (unsigned long long)off);
	if (len > img->size - off)
		len = img->size - off;
	if (!img->drv->block_status) {
		*pnum = len;
		*status = MIMG_BS_DATA | MIMG_BS_ALLOCATED;
		return 0;
	}
	r = img->drv->block_status(img, off, len, pnum, status, host_off);
	if (r < 0)
		return r;
	if (*pnum == 0 || *pnum > len)
		return mimg_err(-EIO,
				"%s: driver %s reported a block status "
				"run of %llu bytes for %llu requested",
				img->filename, img->drv->name,
				(unsigned long long)*pnum,
				(unsigned long long)len);
	/* Unallocated with nothing below reads as zeroes. */
	if (!(*status & MIMG_BS_ALLOCATED) && !img->backing) {
		*status |= MIMG_BS_ZERO;
		*status &= ~(unsigned)MIMG_BS_DATA;
	}
	return 0;
}

int mimg_block_status(struct mimg *img, uint64_t off, uint64_t len,
		      uint64_t *pnum, unsigned *status, uint64_t *host_off,
		      unsigned flags)
{
	int r = mimg__check_flags("mimg_block_status", flags,
				  MIMG_BLOCK_STATUS_ALL_FLAGS);
	if (r < 0)
		return r;
	unsigned slot = mimg__io_enter(img);
	r = layer_status(img, off, len, pnum, status, host_off);
	mimg__io_leave(img, slot);
	return r;
}

/* One layer's part of the chain's status: *DONE set when CUR defines the
 * run (or is the last layer), else *N shortened to the run CUR leaves to
 * the layer below.  The caller holds CUR's resize lock. */
static int chain_layer(struct mimg *cur, uint64_t off, uint64_t *n,
		       unsigned *status, uint64_t *host_off, bool *done)
{
	uint64_t p, host;
	unsigned st;

	*done = true;
	if (off >= cur->size) {
		/* A shorter backing file: its tail reads as zeroes. */
		*status = MIMG_BS_ZERO;
		return 0;
	}
	int r = layer_status(cur, off, *n, &p, &st, &host);
	if (r < 0)
		return r;
	*n = p;
	if (!(st & MIMG_BS_ALLOCATED) && cur->backing) {
		/* Past the end of a shorter backing file this layer answers
		 * (zeroes), as qemu-img reports the depth. */
		uint64_t below = cur->backing->size;
		if (off >= below) {
			*status = MIMG_BS_ZERO;
			return 0;
		}
		*n = min_u64(*n, below - off);
		*done = false;
		return 0;
	}
	*status = st & (MIMG_BS_DATA | MIMG_BS_ZERO | MIMG_BS_ALLOCATED |
			MIMG_BS_COMPRESSED);
	/* OFFSET_VALID only for callers that take the offset: the others
	 * compare whole statuses. */
	if (host_off && (st & MIMG_BS_OFFSET_VALID)) {
		*status |= MIMG_BS_OFFSET_VALID;
		*host_off = host;
	}
	return 0;
}

int mimg_block_status_chain(struct mimg *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, unsigned *status, int *depth,
			    uint64_t *host_off, unsigned flags)
{
	uint64_t n = len;
	int d = 0;
	int r = mimg__check_flags("mimg_block_status_chain", flags,
				  MIMG_BLOCK_STATUS_ALL_FLAGS);
	if (r < 0)
		return r;

	if (host_off)
		*host_off = 0;
	for (struct mimg *cur = img; cur; cur = cur->backing, d++) {
		bool done;
		unsigned slot = mimg__io_enter(cur);
		r = chain_layer(cur, off, &n, status, host_off, &done);
		mimg__io_leave(cur, slot);
		if (r < 0)
			return r;
		if (done) {
			*pnum = n;
			if (depth)
				*depth = d;
			return 0;
		}
	}
	return mimg_err(-EIO, "%s: block status found no layer", img->filename);
}
