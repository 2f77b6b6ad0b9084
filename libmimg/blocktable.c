/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Block-by-block reads, writes with allocation and zeroing for formats
 * that map each fixed-size block through one table entry.
 */
#include "blocktable.h"

#include "checked.h"
#include "driver.h"
#include "image.h"
#include "iov-file.h"

size_t mimg__bt_in_block(const struct mimg_blocktable *bt, uint64_t off,
			 size_t len)
{
	uint64_t left = bt->block_size - off % bt->block_size;
	return left < len ? (size_t)left : len;
}

int mimg__bt_lookup(struct mimg *img, const struct mimg_blocktable *bt,
		    uint64_t off, uint64_t *host)
{
	pthread_mutex_lock(&img->table_lock);
	int r = bt->lookup(img, off, host);
	pthread_mutex_unlock(&img->table_lock);
	return r;
}

/* What a request does in one block: LEN bytes of IOV from byte SKIP at
 * guest offset OFF, all within OFF's block, whose data a lookup just
 * found at HOST (0: not allocated). */
typedef int (*block_io_fn)(struct mimg *img, const struct mimg_blocktable *bt,
			   const struct iovec *iov, int iovcnt, size_t skip,
			   uint64_t off, size_t len, uint64_t host);

static int for_each_block(struct mimg *img, const struct mimg_blocktable *bt,
			  const struct iovec *iov, int iovcnt, uint64_t off,
			  size_t len, block_io_fn fn)
{
	size_t done = 0;
	int r = 0;

	while (done < len && r == 0) {
		uint64_t at = off + done, host;
		size_t n = mimg__bt_in_block(bt, at, len - done);
		if ((r = mimg__bt_lookup(img, bt, at, &host)) == 0)
			r = fn(img, bt, iov, iovcnt, done, at, n, host);
		done += n;
	}
	return r;
}

/* Unallocated blocks read from below (backing file or zeroes). */
static int read_in_block(struct mimg *img, const struct mimg_blocktable *bt,
			 const struct iovec *iov, int iovcnt, size_t skip,
			 uint64_t off, size_t len, uint64_t host)
{
	if (!host)
		return mimg__read_below(img, iov, iovcnt, skip, off, len);
	return mimg__file_preadv_slice(img->file, iov, iovcnt, skip, len,
				       host + off % bt->block_size);
}

/* The lookup is repeated under the lock before allocating: another
 * writer may have allocated the block in between. */
static int write_in_block(struct mimg *img, const struct mimg_blocktable *bt,
			  const struct iovec *iov, int iovcnt, size_t skip,
			  uint64_t off, size_t len, uint64_t host)
{
	if (!host) {
		int r;
		pthread_mutex_lock(&img->table_lock);
		r = bt->lookup(img, off, &host);
		if (r == 0 && !host)
			r = bt->allocate(img, iov, iovcnt, skip, off, len);
		pthread_mutex_unlock(&img->table_lock);
		if (!host || r < 0)
			return r;
	}
	return mimg__file_pwritev_slice(img->file, iov, iovcnt, skip, len,
					host + off % bt->block_size);
}

/* A read or write (WRITE) of the request: straight to a flat file, else
 * block by block. */
static int request(struct mimg *img, const struct mimg_blocktable *bt,
		   const struct iovec *iov, int iovcnt, uint64_t off,
		   size_t len, bool write)
{
	if (bt->flat)
		return write ? mimg_file_pwritev(img->file, iov, iovcnt, off)
			     : mimg_file_preadv(img->file, iov, iovcnt, off);
	return for_each_block(img, bt, iov, iovcnt, off, len,
			      write ? write_in_block : read_in_block);
}

int mimg__bt_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		    uint64_t off, size_t len)
{
	return request(img, img->blocktable, iov, iovcnt, off, len, false);
}

static int before_write(struct mimg *img, const struct mimg_blocktable *bt)
{
	if (!bt->before_write)
		return 0;
	pthread_mutex_lock(&img->table_lock);
	int r = bt->before_write(img);
	pthread_mutex_unlock(&img->table_lock);
	return r;
}

int mimg__bt_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
		     uint64_t off, size_t len)
{
	const struct mimg_blocktable *bt = img->blocktable;
	int r = before_write(img, bt);
	return r < 0 ? r : request(img, bt, iov, iovcnt, off, len, true);
}

int mimg__bt_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
			   unsigned flags)
{
	const struct mimg_blocktable *bt = img->blocktable;
	int r = before_write(img, bt);

	(void)flags;
	if (r < 0)
		return r;
	if (bt->flat)
		return mimg__file_zero(img->file, off, len);
	while (len) {
		uint64_t n = min_u64(len,
				     bt->block_size - off % bt->block_size);
		uint64_t host;
		r = mimg__bt_lookup(img, bt, off, &host);
		if (r == 0 && host)
			r = mimg__file_zero(img->file,
					    host + off % bt->block_size, n);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

int mimg__bt_clear_stale(struct mimg *img, uint64_t file_size, uint64_t start,
			 uint64_t end)
{
	if (file_size <= start)
		return 0;
	return mimg__file_zero(img->file, start,
			       min_u64(file_size, end) - start);
}

int mimg__bt_place_block(struct mimg *img, uint64_t *file_size, uint64_t start,
			 uint64_t size, const struct iovec *iov, int iovcnt,
			 size_t skip, size_t len, uint64_t in_block)
{
	uint64_t end = start + size;
	int r;
	if ((r = mimg__bt_clear_stale(img, *file_size, start, end)) < 0)
		return r;
	if (*file_size < end) {
		if ((r = mimg_file_truncate(img->file, end)) < 0)
			return r;
		*file_size = end;
	}
	return mimg__file_pwritev_slice(img->file, iov, iovcnt, skip, len,
					start + in_block);
}

int mimg__bt_block_status(struct mimg *img, uint64_t off, uint64_t len,
			  uint64_t *pnum, unsigned *status, uint64_t *host_off)
{
	const struct mimg_blocktable *bt = img->blocktable;
	uint64_t host, n = 0;
	int r;
	pthread_mutex_lock(&img->table_lock);
	if ((r = bt->lookup(img, off, &host)) < 0)
		goto out;
	*host_off = host ? host + off % bt->block_size : 0;
	/* One run: all unallocated, or allocated and contiguous on disk. */
	while (n < len) {
		uint64_t cur = off + n, h;
		if ((r = bt->lookup(img, cur, &h)) < 0)
			goto out;
		if ((h == 0) != (host == 0) ||
		    (host && h + cur % bt->block_size != *host_off + n))
			break;
		n += min_u64(len - n, bt->block_size - cur % bt->block_size);
	}
	*pnum = n;
	/* Unallocated blocks read as zeroes in this layer: qemu-img map
	 * shows them present, zero and without data. */
	*status = host ? MIMG_BS_DATA | MIMG_BS_ALLOCATED | MIMG_BS_OFFSET_VALID
		       : MIMG_BS_ZERO | MIMG_BS_ALLOCATED;
out:
	pthread_mutex_unlock(&img->table_lock);
	return r;
}
