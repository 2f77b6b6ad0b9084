/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * I/O for a "block-table image": a disk cut into equal blocks, each
 * either unallocated or stored whole at a host offset that a table of
 * entries gives (VDI's block map, VHD's BAT).  The format says how an
 * entry is read and how a new block is allocated; this layer walks a
 * request block by block, reads unallocated blocks from below, and
 * allocates a block on its first write under the image's table_lock.
 */
#ifndef MIMG_BLOCKTABLE_H
#define MIMG_BLOCKTABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mimg;

struct mimg_blocktable {
	/* The disk is stored as it is from the start of the file (a fixed
	 * VHD): requests go straight to the file; nothing else is used. */
	bool flat;
	uint64_t block_size;
	/* Host offset of the start of the data of the block holding guest
	 * offset OFF into *HOST, 0 when not allocated.  Called with
	 * img->table_lock held.  0 or a negative errno (with the error
	 * set). */
	int (*lookup)(struct mimg *img, uint64_t off, uint64_t *host);
	/* Allocate the block holding OFF and write the LEN bytes of IOV
	 * from byte SKIP at their place in it, in the format's crash-safe
	 * order.  Called with img->table_lock held, only for a block
	 * LOOKUP found unallocated.  0 or a negative errno (with the error
	 * set). */
	int (*allocate)(struct mimg *img, const struct iovec *iov, int iovcnt,
			size_t skip, uint64_t off, size_t len);
	/* Optional: what must be in the file before any write of this open
	 * reaches it (VHDX's new write GUIDs, Parallels' in-use mark);
	 * called with img->table_lock held before every write and zeroing,
	 * so it does its work once and then returns 0. */
	int (*before_write)(struct mimg *img);
};

/* Bytes from OFF to the end of its block, capped at LEN. */
size_t mimg__bt_in_block(const struct mimg_blocktable *bt, uint64_t off,
			 size_t len);
/* LOOKUP of the block holding OFF, taking img->table_lock. */
int mimg__bt_lookup(struct mimg *img, const struct mimg_blocktable *bt,
		    uint64_t off, uint64_t *host);

/* The driver ops of an image whose I/O all goes through the table at
 * img->blocktable (or the flat file). */
int mimg__bt_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		    uint64_t off, size_t len);
int mimg__bt_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
		     uint64_t off, size_t len);
/* The run at OFF of blocks alike: unallocated (zeroes, the image has no
 * layer below) or allocated and contiguous in the file. */
int mimg__bt_block_status(struct mimg *img, uint64_t off, uint64_t len,
			  uint64_t *pnum, unsigned *status, uint64_t *host_off);
/* Zeroing leaves unallocated blocks unallocated (they read as zeroes)
 * and needs no flags. */
int mimg__bt_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
			   unsigned flags);

/* Zero whatever the file already holds in [START, END) before a new
 * block is placed there: bytes past the end of the image's data (left by
 * another tool) must not show through the parts of the block a first
 * write does not cover.  FILE_SIZE is the file's current size. */
int mimg__bt_clear_stale(struct mimg *img, uint64_t file_size, uint64_t start,
			 uint64_t end);

/* Place a new block of SIZE bytes at host offset START: clear what the
 * file held there (mimg__bt_clear_stale), extend the file to hold the
 * whole block (*FILE_SIZE follows) and write the LEN bytes of IOV (from
 * byte SKIP) at IN_BLOCK within it.  Nothing refers to the block yet:
 * the caller's table entry, written after, makes it part of the image. */
int mimg__bt_place_block(struct mimg *img, uint64_t *file_size, uint64_t start,
			 uint64_t size, const struct iovec *iov, int iovcnt,
			 size_t skip, size_t len, uint64_t in_block);

#endif
