/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The host-file layer: full-length positional I/O on regular files and
 * block devices, space management (fallocate, hole punching), data/hole
 * maps, and the fault-injection hook used by crash tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif

#include "error.h"
#include "file.h"
#include "iov.h"

struct mimg_file {
	int fd;
	char *path;
	bool regular;
	bool writable;
	bool no_flush;
};

static mimg_file_fault_hook fault_hook;
static void *fault_opaque;

void mimg_file_set_fault_hook(mimg_file_fault_hook hook, void *opaque)
{
	fault_opaque = opaque;
	__atomic_store_n(&fault_hook, hook, __ATOMIC_SEQ_CST);
}

static int fault_check(struct mimg_file *f, enum mimg_file_op op,
		       uint64_t off, uint64_t len)
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

int mimg_file_open(struct mimg_file **fp, const char *path, unsigned flags)
{
	struct mimg_file *f;
	struct stat st;
	int oflags = O_CLOEXEC;

	*fp = NULL;
	oflags |= (flags & MIMG_FILE_RDWR) ? O_RDWR : O_RDONLY;
	if (flags & MIMG_FILE_CREATE)
		oflags |= O_CREAT | O_TRUNC | O_RDWR;
#ifdef O_DIRECT
	if (flags & MIMG_FILE_DIRECT)
		oflags |= O_DIRECT;
#endif
	if (flags & MIMG_FILE_SYNC)
		oflags |= O_DSYNC;

	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return mimg_err(-ENOMEM, "%s: out of memory", path);
	}
	f->fd = open(path, oflags, 0644);
	if (f->fd < 0) {
		int err = -errno;
		free(f->path);
		free(f);
		return mimg_err_errno(err, "Could not open '%s'", path);
	}
	if (fstat(f->fd, &st) != 0) {
		int err = -errno;
		close(f->fd);
		free(f->path);
		free(f);
		return mimg_err_errno(err, "%s: stat", path);
	}
	if (S_ISDIR(st.st_mode)) {
		close(f->fd);
		free(f->path);
		free(f);
		return mimg_err(-EISDIR, "'%s' is a directory", path);
	}
	f->regular = S_ISREG(st.st_mode);
	f->writable = (oflags & O_ACCMODE) == O_RDWR;
	f->no_flush = flags & MIMG_FILE_NO_FLUSH;
	*fp = f;
	return 0;
}

int mimg_file_close(struct mimg_file *f)
{
	int r = 0;
	if (!f)
		return 0;
	if (close(f->fd) != 0)
		r = mimg_err_errno(-errno, "%s: close", f->path);
	free(f->path);
	free(f);
	return r;
}

const char *mimg_file_path(const struct mimg_file *f)
{
	return f->path;
}

bool mimg_file_is_regular(const struct mimg_file *f)
{
	return f->regular;
}

/* Advance an iovec array by N bytes in place (on a private copy). */
static void iov_advance(struct iovec **iovp, int *cntp, size_t n)
{
	struct iovec *iov = *iovp;
	int cnt = *cntp;
	while (cnt > 0 && n >= iov->iov_len) {
		n -= iov->iov_len;
		iov++;
		cnt--;
	}
	if (cnt > 0 && n) {
		iov->iov_base = (char *)iov->iov_base + n;
		iov->iov_len -= n;
	}
	*iovp = iov;
	*cntp = cnt;
}

#define IOV_STACK 64

/* Copy IOV into STORAGE (or a heap array when large); IOV_MAX bounded. */
static struct iovec *iov_copy(const struct iovec *iov, int cnt,
			      struct iovec *storage)
{
	struct iovec *c = cnt <= IOV_STACK ? storage
					   : malloc((size_t)cnt * sizeof(*c));
	if (c)
		memcpy(c, iov, (size_t)cnt * sizeof(*c));
	return c;
}

static void iov_zero_rest(struct iovec *iov, int cnt)
{
	for (int i = 0; i < cnt; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
}

/*
 * Move all of IOV to or from the file at OFF, retrying short transfers
 * and EINTR.  A read that meets the end of the file zero-fills the rest.
 */
static int transfer(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		    uint64_t off, bool write)
{
	struct iovec storage[IOV_STACK];
	struct iovec *copy, *cur;
	int cnt = iovcnt, r = 0;

	if (iovcnt <= 0)
		return 0;
	copy = iov_copy(iov, iovcnt, storage);
	if (!copy)
		return mimg_err(-ENOMEM, "%s: out of memory", f->path);
	cur = copy;
	while (cnt > 0) {
		if (cur->iov_len == 0) {
			cur++;
			cnt--;
			continue;
		}
		int n_iov = cnt > IOV_MAX ? IOV_MAX : cnt;
		ssize_t n = write ? pwritev(f->fd, cur, n_iov, (off_t)off)
				  : preadv(f->fd, cur, n_iov, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = mimg_err_errno(-errno, "%s: %s at offset %llu",
					   f->path, write ? "write" : "read",
					   (unsigned long long)off);
			break;
		}
		if (n == 0) {
			if (!write) { /* end of file: the rest reads as zeroes */
				iov_zero_rest(cur, cnt);
				break;
			}
			r = mimg_err(-EIO, "%s: write at offset %llu made no "
				     "progress", f->path,
				     (unsigned long long)off);
			break;
		}
		off += (uint64_t)n;
		iov_advance(&cur, &cnt, (size_t)n);
	}
	if (copy != storage)
		free(copy);
	return r;
}

int mimg_file_preadv(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		     uint64_t off)
{
	return transfer(f, iov, iovcnt, off, false);
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

int mimg_file_pwritev(struct mimg_file *f, const struct iovec *iov,
		      int iovcnt, uint64_t off)
{
	int r = fault_check(f, MIMG_FILE_OP_WRITE, off,
			    iov_total(iov, iovcnt));
	if (r < 0)
		return r;
	return transfer(f, iov, iovcnt, off, true);
}

int mimg_file_pwrite(struct mimg_file *f, const void *buf, size_t len,
		     uint64_t off)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	return mimg_file_pwritev(f, &iov, 1, off);
}

int mimg_file_flush(struct mimg_file *f)
{
	int r = fault_check(f, MIMG_FILE_OP_FLUSH, 0, 0);
	if (r < 0)
		return r;
	if (!f->writable || f->no_flush)
		return 0;
	if (fdatasync(f->fd) != 0)
		return mimg_err_errno(-errno, "%s: flush", f->path);
	return 0;
}

int mimg_file_size(struct mimg_file *f, uint64_t *sizep)
{
	struct stat st;
	if (fstat(f->fd, &st) != 0)
		return mimg_err_errno(-errno, "%s: stat", f->path);
	if (S_ISREG(st.st_mode)) {
		*sizep = (uint64_t)st.st_size;
		return 0;
	}
#if defined(__linux__) && defined(BLKGETSIZE64)
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz;
		if (ioctl(f->fd, BLKGETSIZE64, &sz) == 0) {
			*sizep = sz;
			return 0;
		}
	}
#endif
	off_t end = lseek(f->fd, 0, SEEK_END);
	if (end < 0)
		return mimg_err_errno(-errno, "%s: size", f->path);
	*sizep = (uint64_t)end;
	return 0;
}

int mimg_file_allocated(struct mimg_file *f, uint64_t *bytesp)
{
	struct stat st;
	if (fstat(f->fd, &st) != 0)
		return mimg_err_errno(-errno, "%s: stat", f->path);
	*bytesp = (uint64_t)st.st_blocks * 512;
	return 0;
}

int mimg_file_truncate(struct mimg_file *f, uint64_t size)
{
	int r = fault_check(f, MIMG_FILE_OP_TRUNCATE, size, 0);
	if (r < 0)
		return r;
	if (size > (uint64_t)INT64_MAX)
		return mimg_err(-EFBIG, "%s: size %llu too large", f->path,
				(unsigned long long)size);
	if (!f->regular) {
		uint64_t cur;
		if ((r = mimg_file_size(f, &cur)) < 0)
			return r;
		if (size <= cur)
			return 0;
		return mimg_err(-ENOSPC, "%s: device is %llu bytes, needs %llu",
				f->path, (unsigned long long)cur,
				(unsigned long long)size);
	}
	if (ftruncate(f->fd, (off_t)size) != 0)
		return mimg_err_errno(-errno, "%s: truncate to %llu", f->path,
				      (unsigned long long)size);
	return 0;
}

int mimg_file_allocate(struct mimg_file *f, uint64_t off, uint64_t len)
{
	int r = fault_check(f, MIMG_FILE_OP_ALLOCATE, off, len);
	if (r < 0)
		return r;
#ifdef __linux__
	if (fallocate(f->fd, 0, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return mimg_err_errno(-errno, "%s: allocate %llu bytes at %llu",
				      f->path, (unsigned long long)len,
				      (unsigned long long)off);
#else
	r = posix_fallocate(f->fd, (off_t)off, (off_t)len);
	if (r == 0)
		return 0;
	if (r != EOPNOTSUPP && r != EINVAL)
		return mimg_err_errno(-r, "%s: allocate", f->path);
#endif
	return mimg_err(-ENOTSUP, "%s: preallocation is not supported here",
			f->path);
}

int mimg_file_punch_hole(struct mimg_file *f, uint64_t off, uint64_t len)
{
	int r = fault_check(f, MIMG_FILE_OP_DISCARD, off, len);
	if (r < 0)
		return r;
#if defined(__linux__) && defined(FALLOC_FL_PUNCH_HOLE)
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return mimg_err_errno(-errno, "%s: discard %llu bytes at %llu",
				      f->path, (unsigned long long)len,
				      (unsigned long long)off);
#endif
	return mimg_err(-ENOTSUP, "%s: hole punching is not supported",
			f->path);
}

int mimg_file_zero_range(struct mimg_file *f, uint64_t off, uint64_t len,
			 bool may_unmap)
{
#ifdef __linux__
	int r = fault_check(f, MIMG_FILE_OP_WRITE, off, len);
	if (r < 0)
		return r;
	if (may_unmap && f->regular &&
	    fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
#ifdef FALLOC_FL_ZERO_RANGE
	if (f->regular && fallocate(f->fd, FALLOC_FL_ZERO_RANGE, (off_t)off,
				    (off_t)len) == 0)
		return 0;
#endif
#endif
	(void)f; (void)off; (void)len; (void)may_unmap;
	return -ENOTSUP;
}

int mimg_file_extent(struct mimg_file *f, uint64_t off, uint64_t len,
		     bool *is_data, uint64_t *pnum)
{
	*is_data = true;
	*pnum = len;
#ifdef SEEK_DATA
	if (!f->regular)
		return 0;
	off_t d = lseek(f->fd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		if (errno == ENXIO) { /* no data from OFF to EOF */
			*is_data = false;
			return 0;
		}
		return 0; /* unsupported: report data */
	}
	if ((uint64_t)d > off) {
		*is_data = false;
		*pnum = (uint64_t)d - off < len ? (uint64_t)d - off : len;
		return 0;
	}
	off_t h = lseek(f->fd, (off_t)off, SEEK_HOLE);
	if (h < 0 || (uint64_t)h <= off)
		return 0;
	*pnum = (uint64_t)h - off < len ? (uint64_t)h - off : len;
#else
	(void)f; (void)off;
#endif
	return 0;
}
