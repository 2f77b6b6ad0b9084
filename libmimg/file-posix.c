/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Host files that are regular files or block devices: full-length
 * positional I/O, space management (fallocate, hole punching) and
 * data/hole maps.  What the file system refuses as unsupported is
 * remembered per file, so it is asked once.
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
#include "file-impl.h"

struct posix_file {
	struct mimg_file f;
	int fd;
	bool no_flush;
};

static mimg_file_fallocate_fn fallocate_override;

void mimg_file_set_fallocate(mimg_file_fallocate_fn fn)
{
	__atomic_store_n(&fallocate_override, fn, __ATOMIC_SEQ_CST);
}

#ifdef __linux__
static int do_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	mimg_file_fallocate_fn fn = __atomic_load_n(&fallocate_override,
						    __ATOMIC_SEQ_CST);
	if (fn)
		return fn(fd, mode, (off_t)off, (off_t)len);
	return fallocate(fd, mode, (off_t)off, (off_t)len);
}
#endif

static struct posix_file *posix_of(struct mimg_file *f)
{
	return (struct posix_file *)f;
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
static int transfer(struct posix_file *p, const struct iovec *iov, int iovcnt,
		    uint64_t off, bool write)
{
	struct iovec storage[IOV_STACK];
	struct iovec *copy, *cur;
	int cnt = iovcnt, r = 0;

	if (iovcnt <= 0)
		return 0;
	copy = iov_copy(iov, iovcnt, storage);
	if (!copy)
		return mimg_err(-ENOMEM, "%s: out of memory", p->f.path);
	cur = copy;
	while (cnt > 0) {
		if (cur->iov_len == 0) {
			cur++;
			cnt--;
			continue;
		}
		int n_iov = cnt > IOV_MAX ? IOV_MAX : cnt;
		ssize_t n = write ? pwritev(p->fd, cur, n_iov, (off_t)off)
				  : preadv(p->fd, cur, n_iov, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = mimg_err_errno(-errno, "%s: %s at offset %llu",
					   p->f.path, write ? "write" : "read",
					   (unsigned long long)off);
			break;
		}
		if (n == 0) {
			if (!write) { /* end of file: the rest reads as zeroes */
				iov_zero_rest(cur, cnt);
				break;
			}
			r = mimg_err(-EIO, "%s: write at offset %llu made no "
				     "progress", p->f.path,
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

static int posix_preadv(struct mimg_file *f, const struct iovec *iov,
			int iovcnt, uint64_t off)
{
	return transfer(posix_of(f), iov, iovcnt, off, false);
}

static int posix_pwritev(struct mimg_file *f, const struct iovec *iov,
			 int iovcnt, uint64_t off)
{
	return transfer(posix_of(f), iov, iovcnt, off, true);
}

static int posix_flush(struct mimg_file *f)
{
	struct posix_file *p = posix_of(f);
	if (p->no_flush)
		return 0;
	if (fdatasync(p->fd) != 0)
		return mimg_err_errno(-errno, "%s: flush", f->path);
	return 0;
}

static int posix_size(struct mimg_file *f, uint64_t *sizep)
{
	struct posix_file *p = posix_of(f);
	struct stat st;
	if (fstat(p->fd, &st) != 0)
		return mimg_err_errno(-errno, "%s: stat", f->path);
	if (S_ISREG(st.st_mode)) {
		*sizep = (uint64_t)st.st_size;
		return 0;
	}
#if defined(__linux__) && defined(BLKGETSIZE64)
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz;
		if (ioctl(p->fd, BLKGETSIZE64, &sz) == 0) {
			*sizep = sz;
			return 0;
		}
	}
#endif
	off_t end = lseek(p->fd, 0, SEEK_END);
	if (end < 0)
		return mimg_err_errno(-errno, "%s: size", f->path);
	*sizep = (uint64_t)end;
	return 0;
}

static int posix_allocated(struct mimg_file *f, uint64_t *bytesp)
{
	struct stat st;
	if (fstat(posix_of(f)->fd, &st) != 0)
		return mimg_err_errno(-errno, "%s: stat", f->path);
	*bytesp = (uint64_t)st.st_blocks * 512;
	return 0;
}

static int posix_truncate(struct mimg_file *f, uint64_t size)
{
	int r;
	if (!(mimg_file_caps(f) & MIMG_FILE_REGULAR)) {
		uint64_t cur;
		if ((r = posix_size(f, &cur)) < 0)
			return r;
		if (size <= cur)
			return 0;
		return mimg_err(-ENOSPC, "%s: device is %llu bytes, needs %llu",
				f->path, (unsigned long long)cur,
				(unsigned long long)size);
	}
	if (ftruncate(posix_of(f)->fd, (off_t)size) != 0)
		return mimg_err_errno(-errno, "%s: truncate to %llu", f->path,
				      (unsigned long long)size);
	return 0;
}

/* fallocate answers that mean "this file system cannot", not "failed". */
static bool unsupported(int err)
{
	return err == EOPNOTSUPP || err == ENOSYS;
}

static int posix_allocate(struct mimg_file *f, uint64_t off, uint64_t len)
{
	int fd = posix_of(f)->fd;
#ifdef __linux__
	if (do_fallocate(fd, 0, off, len) == 0)
		return 0;
	if (!unsupported(errno))
		return mimg_err_errno(-errno, "%s: allocate %llu bytes at %llu",
				      f->path, (unsigned long long)len,
				      (unsigned long long)off);
#else
	int r = posix_fallocate(fd, (off_t)off, (off_t)len);
	if (r == 0)
		return 0;
	if (r != EOPNOTSUPP && r != EINVAL)
		return mimg_err_errno(-r, "%s: allocate", f->path);
#endif
	return mimg_err(-ENOTSUP, "%s: preallocation is not supported here",
			f->path);
}

#ifdef __linux__
/* One fallocate for a space operation of capability CAP: 1 done, 0 the
 * file system cannot (remembered: CAP is dropped), negative a failure. */
static int space_op(struct mimg_file *f, int mode, unsigned cap,
		    const char *what, uint64_t off, uint64_t len)
{
	if (!(mimg_file_caps(f) & cap))
		return 0;
	if (do_fallocate(posix_of(f)->fd, mode, off, len) == 0)
		return 1;
	if (unsupported(errno)) {
		mimg__file_drop_caps(f, cap);
		return 0;
	}
	return mimg_err_errno(-errno, "%s: %s %llu bytes at %llu", f->path,
			      what, (unsigned long long)len,
			      (unsigned long long)off);
}
#endif

static int posix_punch(struct mimg_file *f, uint64_t off, uint64_t len)
{
#if defined(__linux__) && defined(FALLOC_FL_PUNCH_HOLE)
	int r = space_op(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			 MIMG_FILE_CAN_PUNCH, "discard", off, len);
	if (r != 0)
		return r < 0 ? r : 0;
#endif
	return mimg_err(-ENOTSUP, "%s: hole punching is not supported",
			f->path);
}

static int posix_zero(struct mimg_file *f, uint64_t off, uint64_t len,
		      bool may_unmap)
{
#ifdef __linux__
	int r;
	if (!(mimg_file_caps(f) & MIMG_FILE_REGULAR))
		return -ENOTSUP;
#ifdef FALLOC_FL_PUNCH_HOLE
	if (may_unmap &&
	    (r = space_op(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  MIMG_FILE_CAN_PUNCH, "discard", off, len)) != 0)
		return r < 0 ? r : 0;
#endif
#ifdef FALLOC_FL_ZERO_RANGE
	if ((r = space_op(f, FALLOC_FL_ZERO_RANGE, MIMG_FILE_CAN_ZERO,
			  "zero", off, len)) != 0)
		return r < 0 ? r : 0;
#endif
#endif
	(void)f; (void)off; (void)len; (void)may_unmap;
	return -ENOTSUP;
}

static int posix_extent(struct mimg_file *f, uint64_t off, uint64_t len,
			bool *is_data, uint64_t *pnum)
{
#ifdef SEEK_DATA
	int fd = posix_of(f)->fd;
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		if (errno == ENXIO) /* no data from OFF to EOF */
			*is_data = false;
		return 0; /* otherwise unsupported: report data */
	}
	if ((uint64_t)d > off) {
		*is_data = false;
		*pnum = (uint64_t)d - off < len ? (uint64_t)d - off : len;
		return 0;
	}
	off_t h = lseek(fd, (off_t)off, SEEK_HOLE);
	if (h < 0 || (uint64_t)h <= off)
		return 0;
	*pnum = (uint64_t)h - off < len ? (uint64_t)h - off : len;
#else
	(void)f; (void)off; (void)len; (void)is_data; (void)pnum;
#endif
	return 0;
}

static int posix_close(struct mimg_file *f)
{
	struct posix_file *p = posix_of(f);
	int r = 0;
	if (close(p->fd) != 0)
		r = mimg_err_errno(-errno, "%s: close", f->path);
	free(p);
	return r;
}

static const struct mimg_file_ops posix_ops = {
	.preadv = posix_preadv,
	.pwritev = posix_pwritev,
	.flush = posix_flush,
	.size = posix_size,
	.allocated = posix_allocated,
	.truncate = posix_truncate,
	.allocate = posix_allocate,
	.punch = posix_punch,
	.zero = posix_zero,
	.extent = posix_extent,
	.close = posix_close,
};

int mimg_file_open_fd(struct mimg_file **fp, int fd, const char *name,
		      unsigned flags)
{
	struct posix_file *p;
	struct stat st;
	unsigned caps = 0;
	int r;

	*fp = NULL;
	if (fstat(fd, &st) != 0) {
		r = mimg_err_errno(-errno, "%s: stat", name);
		close(fd);
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return mimg_err(-EISDIR, "'%s' is a directory", name);
	}
	if (flags & (MIMG_FILE_RDWR | MIMG_FILE_CREATE))
		caps |= MIMG_FILE_CAN_WRITE;
	if (S_ISREG(st.st_mode))
		caps |= MIMG_FILE_REGULAR | MIMG_FILE_CAN_SEEK_DATA |
			MIMG_FILE_CAN_PUNCH | MIMG_FILE_CAN_ZERO;
	if (!(p = calloc(1, sizeof(*p))) ||
	    (r = mimg__file_init(&p->f, &posix_ops, name, caps)) < 0) {
		free(p);
		close(fd);
		return mimg_err(-ENOMEM, "%s: out of memory", name);
	}
	p->fd = fd;
	p->no_flush = flags & MIMG_FILE_NO_FLUSH;
	*fp = &p->f;
	return 0;
}

int mimg_file_open(struct mimg_file **fp, const char *path, unsigned flags)
{
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
	int fd = open(path, oflags, 0644);
	if (fd < 0)
		return mimg_err_errno(-errno, "Could not open '%s'", path);
	return mimg_file_open_fd(fp, fd, path, flags);
}
