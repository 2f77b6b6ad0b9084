/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The I/O entry points: range checks, the probed-raw write guard, reads
 * from the backing chain, and emulation of optional driver callbacks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "error.h"
#include "image.h"
#include "iov.h"
#include "probe.h"

#define SECTOR 512
#define ZERO_CHUNK (1u << 20)
#define IOV_LOCAL 16

int mimg__check_writable(const struct mimg *img, const char *what)
{
	if (img->read_only)
		return mimg_err(-EROFS,
				"%s: cannot %s an image opened "
				"read-only",
				img->filename, what);
	return 0;
}

int mimg__drv_flush(struct mimg *img)
{
	return img->drv->flush ? img->drv->flush(img)
			       : mimg_file_flush(img->file);
}

/* MIMG_IO_FUA: what the write R did is made durable before returning. */
static int finish_fua(struct mimg *img, int r, unsigned flags)
{
	if (r < 0 || !(flags & MIMG_IO_FUA))
		return r;
	int f = mimg__drv_flush(img);
	return f < 0 ? f : r;
}

static ssize_t do_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
			 uint64_t off, unsigned flags)
{
	size_t len = iov_total(iov, iovcnt);
	struct iovec local[IOV_LOCAL], *use;
	int n, r;

	if ((r = mimg__check_flags("mimg_preadv", flags, MIMG_READ_ALL_FLAGS)) <
	    0)
		return r;
	if (off >= img->size || len == 0)
		return 0;
	if (len > img->size - off)
		len = (size_t)(img->size - off);
	n = iov_slice(iov, iovcnt, 0, len, local, IOV_LOCAL, &use);
	if (n < 0)
		return mimg_err(n, "out of memory");
	r = img->drv->preadv(img, use, n, off, len);
	iov_slice_free(use, local);
	return r < 0 ? r : (ssize_t)len;
}

/* The entry points run their do_ function as one I/O of IMG: it waits
 * for a resize of IMG to finish, and holds the next one back. */
typedef ssize_t vec_io_fn(struct mimg *img, const struct iovec *iov, int iovcnt,
			  uint64_t off, unsigned flags);
typedef int range_io_fn(struct mimg *img, uint64_t off, uint64_t len,
			unsigned flags);

static ssize_t run_vec_io(vec_io_fn *fn, struct mimg *img,
			  const struct iovec *iov, int iovcnt, uint64_t off,
			  unsigned flags)
{
	unsigned slot = mimg__io_enter(img);
	ssize_t r = fn(img, iov, iovcnt, off, flags);
	mimg__io_leave(img, slot);
	return r;
}

/* The same over the one flat buffer BUF of LEN bytes. */
static ssize_t run_buf_io(vec_io_fn *fn, struct mimg *img, const void *buf,
			  size_t len, uint64_t off, unsigned flags)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	return run_vec_io(fn, img, &iov, 1, off, flags);
}

static int run_range_io(range_io_fn *fn, struct mimg *img, uint64_t off,
			uint64_t len, unsigned flags)
{
	unsigned slot = mimg__io_enter(img);
	int r = fn(img, off, len, flags);
	mimg__io_leave(img, slot);
	return r;
}

ssize_t mimg_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		    uint64_t off, unsigned flags)
{
	return run_vec_io(do_preadv, img, iov, iovcnt, off, flags);
}

ssize_t mimg_pread(struct mimg *img, void *buf, size_t len, uint64_t off,
		   unsigned flags)
{
	return run_buf_io(do_preadv, img, buf, len, off, flags);
}

/* What every change checks first: FLAGS known to CALL (within ALLOWED),
 * IMG writable and [OFF, OFF+LEN) inside it. */
static int check_change(struct mimg *img, const char *call, unsigned flags,
			unsigned allowed, uint64_t off, uint64_t len)
{
	int r = mimg__check_flags(call, flags, allowed);
	if (r < 0)
		return r;
	if (img->read_only)
		return mimg_err(-EROFS, "%s: image is open read-only",
				img->filename);
	if (!ck_range_within(off, len, img->size))
		return mimg_err(
			-ENOSPC,
			"%s: write of %llu bytes at offset %llu is past "
			"the end of the image (%llu bytes)",
			img->filename, (unsigned long long)len,
			(unsigned long long)off, (unsigned long long)img->size);
	return 0;
}

/*
 * An image whose format was only guessed as raw must not be turned into
 * something that probes as another format (a guest writing a qcow2 header
 * with a backing file of /etc/shadow): build what sector 0 would hold
 * after the write and probe it, as qemu does.  For changes that reach
 * sector 0 of such an image (begin_change).
 */
static int guard_probed_raw(struct mimg *img, const struct iovec *iov,
			    int iovcnt, uint64_t off, uint64_t len)
{
	uint8_t sector[SECTOR];
	struct iovec iov0 = {.iov_base = sector, .iov_len = SECTOR};
	ssize_t r = do_preadv(img, &iov0, 1, 0, 0);
	if (r < 0)
		return (int)r;
	if ((size_t)r < SECTOR)
		memset(sector + r, 0, SECTOR - (size_t)r);
	size_t n = SECTOR - (size_t)off < len ? SECTOR - (size_t)off
					      : (size_t)len;
	if (iov)
		iov_to_buf(iov, iovcnt, 0, sector + off, n);
	else
		memset(sector + off, 0, n);
	const struct mimg_driver *d = mimg__probe(sector, SECTOR,
						  img->filename);
	if (d && strcmp(d->name, "raw") != 0)
		return mimg_err(-EPERM,
				"%s: refusing to write a %s header into an "
				"image whose format was only guessed as raw; "
				"give the format explicitly",
				img->filename, d->name);
	return 0;
}

/*
 * Changes that reach sector 0 of a probed-raw image hold this lock from
 * their guard check to the end of the change: otherwise two concurrent
 * writes, each harmless alone, could assemble a header that neither
 * check saw.  Such changes are rare; one lock for all images is enough.
 */
static pthread_mutex_t sector0_lock = PTHREAD_MUTEX_INITIALIZER;

/* Start a change of [OFF, OFF+LEN) that will hold IOV's bytes (zeroes
 * when IOV is NULL): takes the sector-0 lock where needed (*LOCKED says
 * whether; end_change releases it) and checks the probed-raw guard. */
static int begin_change(struct mimg *img, const struct iovec *iov, int iovcnt,
			uint64_t off, uint64_t len, bool *locked)
{
	*locked = false;
	if (!img->probed_raw || off >= SECTOR || len == 0)
		return 0;
	pthread_mutex_lock(&sector0_lock);
	*locked = true;
	return guard_probed_raw(img, iov, iovcnt, off, len);
}

/* Finish the change that returned R: release the sector-0 lock, then
 * make the change durable when FLAGS ask for it. */
static int end_change(struct mimg *img, bool locked, int r, unsigned flags)
{
	if (locked)
		pthread_mutex_unlock(&sector0_lock);
	return finish_fua(img, r, flags);
}

static ssize_t do_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
			  uint64_t off, unsigned flags)
{
	size_t len = iov_total(iov, iovcnt);
	bool locked;
	int r = check_change(img, "mimg_pwritev", flags, MIMG_WRITE_ALL_FLAGS,
			     off, len);
	if (r < 0 || len == 0)
		return r;
	if ((r = begin_change(img, iov, iovcnt, off, len, &locked)) == 0)
		r = img->drv->pwritev(img, iov, iovcnt, off, len);
	r = end_change(img, locked, r, flags);
	return r < 0 ? r : (ssize_t)len;
}

ssize_t mimg_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
		     uint64_t off, unsigned flags)
{
	return run_vec_io(do_pwritev, img, iov, iovcnt, off, flags);
}

ssize_t mimg_pwrite(struct mimg *img, const void *buf, size_t len, uint64_t off,
		    unsigned flags)
{
	return run_buf_io(do_pwritev, img, buf, len, off, flags);
}

/* Emulated write-zeroes: plain writes from one zeroed buffer. */
static int write_zero_buffers(struct mimg *img, uint64_t off, uint64_t len)
{
	size_t chunk = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;
	void *zeroes = calloc(1, chunk);
	int r = 0;
	if (!zeroes)
		return mimg_err(-ENOMEM, "out of memory");
	while (len) {
		size_t n = len < chunk ? (size_t)len : chunk;
		struct iovec iov = {.iov_base = zeroes, .iov_len = n};
		r = img->drv->pwritev(img, &iov, 1, off, n);
		if (r < 0)
			break;
		off += n;
		len -= n;
	}
	free(zeroes);
	return r;
}

static int do_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
			    unsigned flags)
{
	bool locked;
	int r = check_change(img, "mimg_pwrite_zeroes", flags,
			     MIMG_ZERO_ALL_FLAGS, off, len);
	if (r < 0 || len == 0)
		return r;
	if ((r = begin_change(img, NULL, 0, off, len, &locked)) == 0) {
		r = -ENOTSUP;
		if (img->drv->pwrite_zeroes)
			r = img->drv->pwrite_zeroes(
				img, off, len, flags & MIMG_ZERO_MAY_UNMAP);
		if (r == -ENOTSUP)
			r = write_zero_buffers(img, off, len);
	}
	return end_change(img, locked, r, flags);
}

int mimg_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
		       unsigned flags)
{
	return run_range_io(do_pwrite_zeroes, img, off, len, flags);
}

static int do_discard(struct mimg *img, uint64_t off, uint64_t len,
		      unsigned flags)
{
	bool locked;
	int r = check_change(img, "mimg_discard", flags, MIMG_WRITE_ALL_FLAGS,
			     off, len);
	if (r < 0 || len == 0 || !img->drv->discard)
		return r;
	/* A discarded raw range reads as zeroes: zeroing a byte can turn
	 * sector 0 into a header as well as writing one can. */
	if ((r = begin_change(img, NULL, 0, off, len, &locked)) == 0) {
		r = img->drv->discard(img, off, len);
		if (r == -ENOTSUP)
			r = 0;
	}
	return end_change(img, locked, r, flags);
}

int mimg_discard(struct mimg *img, uint64_t off, uint64_t len, unsigned flags)
{
	return run_range_io(do_discard, img, off, len, flags);
}

int mimg_flush(struct mimg *img, unsigned flags)
{
	int r = mimg__check_flags("mimg_flush", flags, MIMG_FLUSH_ALL_FLAGS);
	if (r < 0)
		return r;
	if (img->read_only)
		return 0;
	unsigned slot = mimg__io_enter(img);
	r = mimg__drv_flush(img);
	mimg__io_leave(img, slot);
	return r;
}

int mimg_truncate(struct mimg *img, uint64_t size, enum mimg_prealloc prealloc)
{
	if (img->read_only)
		return mimg_err(-EROFS, "%s: image is open read-only",
				img->filename);
	if (size > (uint64_t)INT64_MAX)
		return mimg_err(-EFBIG, "%s: size %llu is too large",
				img->filename, (unsigned long long)size);
	if (!img->drv->truncate) /* qemu-img's words */
		return mimg_err(-ENOTSUP,
				"Image format driver does not support resize");
	/* Exclusive: waits for the I/O in flight on IMG and holds back new
	 * I/O until the size and the metadata agree again. */
	mimg_readers_write_lock(&img->resize_lock);
	int r = img->drv->truncate(img, size, prealloc);
	mimg_readers_write_unlock(&img->resize_lock);
	return r;
}

int mimg__read_below(struct mimg *img, const struct iovec *iov, int iovcnt,
		     size_t iov_skip, uint64_t off, size_t len)
{
	struct mimg *below = img->backing;
	size_t from_below = 0;

	if (below && off < below->size)
		from_below = below->size - off < len
				     ? (size_t)(below->size - off)
				     : len;
	if (from_below) {
		struct iovec local[IOV_LOCAL], *use;
		int n = iov_slice(iov, iovcnt, iov_skip, from_below, local,
				  IOV_LOCAL, &use);
		if (n < 0)
			return mimg_err(n, "out of memory");
		int r = below->drv->preadv(below, use, n, off, from_below);
		iov_slice_free(use, local);
		if (r < 0)
			return r;
	}
	if (from_below < len)
		iov_memset(iov, iovcnt, iov_skip + from_below, 0,
			   len - from_below);
	return 0;
}

int mimg__read_below_buf(struct mimg *img, void *buf, uint64_t off, size_t len)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	return mimg__read_below(img, &iov, 1, 0, off, len);
}
