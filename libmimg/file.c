/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The host-file interface: what every caller goes through whatever the
 * file is.  It runs the fault-injection hook before each write-type
 * operation, refuses operations the file cannot do, and builds the
 * whole-length helpers on the implementation's operations.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "file-impl.h"
#include "iov.h"

static mimg_file_fault_hook fault_hook;
static void *fault_opaque;

void mimg_file_set_fault_hook(mimg_file_fault_hook hook, void *opaque)
{
	fault_opaque = opaque;
	__atomic_store_n(&fault_hook, hook, __ATOMIC_SEQ_CST);
}

static int fault_check(struct mimg_file *f, enum mimg_file_op op, uint64_t off,
		       uint64_t len)
{
	mimg_file_fault_hook hook = __atomic_load_n(&fault_hook,
						    __ATOMIC_SEQ_CST);
	if (!hook)
		return 0;
	int r = hook(fault_opaque, op, f->path, off, len);
	if (r)
		return mimg_err(r < 0 ? r : -EIO, "%s: injected fault",
				f->path);
	return 0;
}

int mimg__file_init(struct mimg_file *f, const struct mimg_file_ops *ops,
		    const char *path, unsigned caps)
{
	f->ops = ops;
	f->caps = caps;
	if (!(f->path = strdup(path)))
		return mimg_err(-ENOMEM, "%s: out of memory", path);
	return 0;
}

void mimg__file_drop_caps(struct mimg_file *f, unsigned caps)
{
	__atomic_and_fetch(&f->caps, ~caps, __ATOMIC_RELAXED);
}

unsigned mimg_file_caps(const struct mimg_file *f)
{
	return __atomic_load_n(&f->caps, __ATOMIC_RELAXED);
}

bool mimg_file_is_nbd_uri(const char *path)
{
	static const char *const schemes[] = {
		"nbd://", "nbds://", "nbd+unix://", "nbds+unix://", NULL,
	};
	for (int i = 0; schemes[i]; i++)
		if (strncmp(path, schemes[i], strlen(schemes[i])) == 0)
			return true;
	return false;
}

#ifndef MIMG_HAVE_LIBNBD
int mimg_file_open_nbd(struct mimg_file **fp, const char *uri, unsigned flags)
{
	(void)flags;
	*fp = NULL;
	return mimg_err(-ENOTSUP,
			"%s: NBD exports cannot be opened: mimg "
			"was built without libnbd",
			uri);
}
#endif

int mimg_file_close(struct mimg_file *f)
{
	if (!f)
		return 0;
	char *path = f->path;
	int r = f->ops->close(f);
	free(path);
	return r;
}

const char *mimg_file_path(const struct mimg_file *f)
{
	return f->path;
}

bool mimg_file_is_regular(const struct mimg_file *f)
{
	return mimg_file_caps(f) & MIMG_FILE_REGULAR;
}

static int check_writable(struct mimg_file *f)
{
	if (mimg_file_caps(f) & MIMG_FILE_CAN_WRITE)
		return 0;
	return mimg_err(-EBADF, "%s: not open for writing", f->path);
}

int mimg_file_preadv(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		     uint64_t off)
{
	if (iovcnt <= 0)
		return 0;
	return f->ops->preadv(f, iov, iovcnt, off);
}

int mimg_file_pread(struct mimg_file *f, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	return mimg_file_preadv(f, &iov, 1, off);
}

int mimg_file_pread_exact(struct mimg_file *f, void *buf, size_t len,
			  uint64_t off, const char *what)
{
	uint64_t size;
	int r = mimg_file_size(f, &size);
	if (r < 0)
		return r;
	if (off > size || len > size - off)
		return mimg_err(-EIO,
				"%s: %s at offset %llu (%zu bytes) is past the "
				"end of the file (%llu bytes)",
				f->path, what, (unsigned long long)off, len,
				(unsigned long long)size);
	return mimg_file_pread(f, buf, len, off);
}

int mimg_file_pwritev(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		      uint64_t off)
{
	int r = fault_check(f, MIMG_FILE_OP_WRITE, off, iov_total(iov, iovcnt));
	if (r < 0 || (r = check_writable(f)) < 0)
		return r;
	if (iovcnt <= 0)
		return 0;
	return f->ops->pwritev(f, iov, iovcnt, off);
}

int mimg_file_pwrite(struct mimg_file *f, const void *buf, size_t len,
		     uint64_t off)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	return mimg_file_pwritev(f, &iov, 1, off);
}

int mimg_file_pwritev_dsync(struct mimg_file *f, const struct iovec *iov,
			    int iovcnt, uint64_t off)
{
	size_t len = iov_total(iov, iovcnt);
	int r = fault_check(f, MIMG_FILE_OP_WRITE_DSYNC, off, len);
	if (r < 0 || (r = check_writable(f)) < 0)
		return r;
	if (len == 0)
		return 0;
	if (f->ops->pwritev_dsync)
		return f->ops->pwritev_dsync(f, iov, iovcnt, off);
	if ((r = f->ops->pwritev(f, iov, iovcnt, off)) < 0)
		return r;
	return f->ops->flush(f);
}

int mimg_file_pwrite_dsync(struct mimg_file *f, const void *buf, size_t len,
			   uint64_t off)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	return mimg_file_pwritev_dsync(f, &iov, 1, off);
}

/* Unflushed bytes per extra piece below which one flush costs less than
 * an O_DSYNC write per piece (each is a device cache flush). */
#define DURABLE_FLUSH_BYTES (1u << 20)

int mimg_file_pwrite_durable(struct mimg_file *f,
			     const struct mimg_file_write *w, int n)
{
	bool each = f->ops->pwritev_dsync && f->ops->unflushed &&
		    f->ops->unflushed(f) >
			    (uint64_t)(n - 1) * DURABLE_FLUSH_BYTES;
	int r = 0;
	for (int i = 0; i < n && r == 0; i++)
		r = each ? mimg_file_pwrite_dsync(f, w[i].buf, w[i].len,
						  w[i].off)
			 : mimg_file_pwrite(f, w[i].buf, w[i].len, w[i].off);
	if (r == 0 && !each)
		r = mimg_file_flush(f);
	return r;
}

int mimg_file_copy_range(struct mimg_file *src, uint64_t soff,
			 struct mimg_file *dst, uint64_t doff, uint64_t len)
{
	int r = fault_check(dst, MIMG_FILE_OP_WRITE, doff, len);
	if (r < 0 || (r = check_writable(dst)) < 0)
		return r;
	if (src->ops != dst->ops || !src->ops->copy_range)
		return -ENOTSUP;
	return src->ops->copy_range(src, soff, dst, doff, len);
}

int mimg_file_flush(struct mimg_file *f)
{
	int r = fault_check(f, MIMG_FILE_OP_FLUSH, 0, 0);
	if (r < 0)
		return r;
	if (!(mimg_file_caps(f) & MIMG_FILE_CAN_WRITE))
		return 0;
	return f->ops->flush(f);
}

int mimg_file_size(struct mimg_file *f, uint64_t *sizep)
{
	return f->ops->size(f, sizep);
}

int mimg_file_allocated(struct mimg_file *f, uint64_t *bytesp)
{
	return f->ops->allocated(f, bytesp);
}

int mimg_file_truncate(struct mimg_file *f, uint64_t size)
{
	int r = fault_check(f, MIMG_FILE_OP_TRUNCATE, size, 0);
	if (r < 0 || (r = check_writable(f)) < 0)
		return r;
	if (size > (uint64_t)INT64_MAX)
		return mimg_err(-EFBIG, "%s: size %llu too large", f->path,
				(unsigned long long)size);
	return f->ops->truncate(f, size);
}

int mimg_file_allocate(struct mimg_file *f, uint64_t off, uint64_t len)
{
	int r = fault_check(f, MIMG_FILE_OP_ALLOCATE, off, len);
	if (r < 0 || (r = check_writable(f)) < 0)
		return r;
	if (!f->ops->allocate)
		return mimg_err(-ENOTSUP,
				"%s: preallocation is not supported "
				"here",
				f->path);
	return f->ops->allocate(f, off, len);
}

int mimg_file_punch_hole(struct mimg_file *f, uint64_t off, uint64_t len)
{
	int r = fault_check(f, MIMG_FILE_OP_DISCARD, off, len);
	if (r < 0 || (r = check_writable(f)) < 0)
		return r;
	if (!f->ops->punch || !(mimg_file_caps(f) & MIMG_FILE_CAN_PUNCH))
		return mimg_err(-ENOTSUP, "%s: hole punching is not supported",
				f->path);
	return f->ops->punch(f, off, len);
}

int mimg_file_zero_range(struct mimg_file *f, uint64_t off, uint64_t len,
			 bool may_unmap)
{
	int r = fault_check(f, MIMG_FILE_OP_WRITE, off, len);
	if (r < 0 || (r = check_writable(f)) < 0)
		return r;
	if (len == 0)
		return 0;
	if (!f->ops->zero)
		return -ENOTSUP;
	return f->ops->zero(f, off, len, may_unmap);
}

int mimg_file_extent(struct mimg_file *f, uint64_t off, uint64_t len,
		     bool *is_data, uint64_t *pnum)
{
	*is_data = true;
	*pnum = len;
	if (!f->ops->extent || !(mimg_file_caps(f) & MIMG_FILE_CAN_SEEK_DATA))
		return 0;
	return f->ops->extent(f, off, len, is_data, pnum);
}
