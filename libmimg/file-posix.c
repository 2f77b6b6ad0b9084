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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif

#include "error.h"
#include "file-impl.h"
#include "iov.h"

struct posix_file {
	struct mimg_file f;
	int fd;
	bool no_flush;
	bool no_rwf_dsync;  /* the kernel refused pwritev2's RWF_DSYNC */
	uint64_t unflushed; /* bytes written through the page cache since
			     * the last flush began */
	/* O_DIRECT: transfers must start and end on REQ_ALIGN bytes of the
	 * file and use memory aligned to MEM_ALIGN; others are bounced. */
	bool direct;
	bool lock_init;
	uint32_t req_align, mem_align;
	/* Writers that read-modify-write a partial block take it
	 * exclusively, every other direct writer shared: two writes into
	 * different bytes of one block must not lose each other's bytes,
	 * and a padded write that trims the file back to its size must not
	 * cut off a concurrent write that grew it. */
	pthread_rwlock_t rmw_lock;
	/* The last data run SEEK_DATA/SEEK_HOLE found, [data_start,
	 * data_end) (empty: none): asked again and again inside one run
	 * (a conversion asks for each piece it copies), lseek would scan
	 * the run each time on some file systems (tmpfs: 0.8 ms for a
	 * 256 MiB run).  Writes only turn holes into data, so the run
	 * stays data; punching, zeroing and truncating forget it. */
	pthread_mutex_t extent_lock;
	bool extent_lock_init;
	uint64_t data_start, data_end;
	unsigned holes_changed; /* counts forget_data_run calls */
};

/* Largest alignment tried, and the piece size of bounced transfers. */
#define DIRECT_MAX_ALIGN 4096u
#define DIRECT_CHUNK (1u << 20)

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
 * A positional system call of four arguments, made in line where the
 * architecture is known.  Not libc's pread and pwrite: they are
 * thread-cancellation points, and a thread cancelled inside the library
 * would leave its locks held.  Not libc's syscall() either: each
 * function that returns after the kernel has run costs a mispredicted
 * return on hosts whose kernels clear the CPU's return predictor on
 * entry (AMD's SRSO mitigation, common on cloud hosts), some 7 ns per
 * level, a tenth of the library's share of a 4 KiB read from the page
 * cache.  (64-bit only: elsewhere the offset is two arguments.)
 */
#if defined(__linux__) && defined(__x86_64__) && defined(__LP64__)
#define HAVE_INLINE_SYSCALL 1
static inline long syscall4(long nr, long a, long b, long c, long d)
{
	register long r10 __asm__("r10") = d;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}
#endif

#ifdef HAVE_INLINE_SYSCALL
/* The kernel's answer as libc gives it: -1 with errno set. */
static inline ssize_t syscall_result(long ret)
{
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}
#endif

static ssize_t pread_one(int fd, void *buf, size_t len, uint64_t off)
{
#if defined(HAVE_INLINE_SYSCALL) && defined(SYS_pread64)
	return syscall_result(
		syscall4(SYS_pread64, fd, (long)buf, (long)len, (long)off));
#elif defined(__linux__) && defined(__LP64__) && defined(SYS_pread64)
	return syscall(SYS_pread64, fd, buf, len, (off_t)off);
#else
	return pread(fd, buf, len, (off_t)off);
#endif
}

static ssize_t pwrite_one(int fd, const void *buf, size_t len, uint64_t off)
{
#if defined(HAVE_INLINE_SYSCALL) && defined(SYS_pwrite64)
	return syscall_result(
		syscall4(SYS_pwrite64, fd, (long)buf, (long)len, (long)off));
#elif defined(__linux__) && defined(__LP64__) && defined(SYS_pwrite64)
	return syscall(SYS_pwrite64, fd, buf, len, (off_t)off);
#else
	return pwrite(fd, buf, len, (off_t)off);
#endif
}

/* pwritev, or pwritev2 with the per-write flags RWF where there are.
 * One buffer goes through pwrite, which spares the kernel copying in an
 * iovec array: a guest's 4 KiB request is mostly that one buffer. */
static ssize_t write_some(int fd, const struct iovec *iov, int cnt,
			  uint64_t off, int rwf)
{
#ifdef RWF_DSYNC
	if (rwf)
		return pwritev2(fd, iov, cnt, (off_t)off, rwf);
#else
	(void)rwf;
#endif
	if (cnt == 1)
		return pwrite_one(fd, iov->iov_base, iov->iov_len, off);
	return pwritev(fd, iov, cnt, (off_t)off);
}

/* preadv, or pread for one buffer (as write_some). */
static ssize_t read_some(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
	if (cnt == 1)
		return pread_one(fd, iov->iov_base, iov->iov_len, off);
	return preadv(fd, iov, cnt, (off_t)off);
}

/*
 * Move all of IOV to or from the file at OFF, retrying short transfers
 * and EINTR.  A read that meets the end of the file zero-fills the rest.
 * RWF: per-write flags (pwritev2) for writes; -ENOTSUP, without a
 * message, when the kernel has none.  The caller's array is used as it
 * is until a transfer stops short: only then is it copied, to be
 * advanced (most requests complete in one call).
 */
static int transfer_rwf(struct posix_file *p, const struct iovec *iov,
			int iovcnt, uint64_t off, bool write, int rwf)
{
	struct iovec storage[IOV_STACK];
	struct iovec *copy = NULL, *cur = (struct iovec *)iov;
	int cnt = iovcnt, r = 0;

	while (cnt > 0) {
		if (cur->iov_len == 0) {
			cur++;
			cnt--;
			continue;
		}
		int n_iov = cnt > IOV_MAX ? IOV_MAX : cnt;
		ssize_t n = write ? write_some(p->fd, cur, n_iov, off, rwf)
				  : read_some(p->fd, cur, n_iov, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (rwf && (errno == EOPNOTSUPP || errno == ENOSYS)) {
				r = -ENOTSUP; /* the caller does without */
				break;
			}
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
			r = mimg_err(-EIO,
				     "%s: write at offset %llu made no "
				     "progress",
				     p->f.path, (unsigned long long)off);
			break;
		}
		size_t asked = iov_total(cur, n_iov);
		if (!copy) {
			if ((size_t)n == asked && n_iov == cnt)
				break; /* all of it, the common case */
			if (!(copy = iov_copy(cur, cnt, storage))) {
				r = mimg_err(-ENOMEM, "%s: out of memory",
					     p->f.path);
				break;
			}
			cur = copy;
		}
		off += (uint64_t)n;
		if (p->direct && !write && (size_t)n < asked) {
			/* O_DIRECT reads stop short only at the end of the
			 * file; asking again from an unaligned offset could
			 * be refused. */
			iov_advance(&cur, &cnt, (size_t)n);
			iov_zero_rest(cur, cnt);
			break;
		}
		iov_advance(&cur, &cnt, (size_t)n);
	}
	if (copy && copy != storage)
		free(copy);
	return r;
}

static int transfer(struct posix_file *p, const struct iovec *iov, int iovcnt,
		    uint64_t off, bool write)
{
	return transfer_rwf(p, iov, iovcnt, off, write, 0);
}

/* True when IOV at OFF can go to an O_DIRECT descriptor as it is. */
static bool direct_aligned(const struct posix_file *p, const struct iovec *iov,
			   int cnt, uint64_t off)
{
	uint64_t rmask = p->req_align - 1, mmask = p->mem_align - 1;
	if (off & rmask)
		return false;
	for (int i = 0; i < cnt; i++)
		if ((iov[i].iov_len & rmask) ||
		    ((uintptr_t)iov[i].iov_base & mmask))
			return false;
	return true;
}

static uint64_t align_down(uint64_t v, uint32_t a)
{
	return v & ~(uint64_t)(a - 1);
}

static uint64_t align_up(uint64_t v, uint32_t a)
{
	return align_down(v + a - 1, a);
}

static void *bounce_alloc(struct posix_file *p, size_t len)
{
	void *buf = NULL;
	size_t a = p->mem_align > sizeof(void *) ? p->mem_align
						 : sizeof(void *);
	if (posix_memalign(&buf, a, len) != 0)
		buf = NULL;
	return buf;
}

static int transfer_flat(struct posix_file *p, void *buf, size_t len,
			 uint64_t off, bool write)
{
	struct iovec v = {.iov_base = buf, .iov_len = len};
	return transfer(p, &v, 1, off, write);
}

/* An unaligned read on a direct file: whole blocks into an aligned
 * buffer, a piece at a time, the wanted bytes copied out. */
static int direct_bounce_read(struct posix_file *p, const struct iovec *iov,
			      int cnt, uint64_t off)
{
	size_t total = iov_total(iov, cnt), done = 0;
	uint8_t *buf = bounce_alloc(p, DIRECT_CHUNK + 2 * p->req_align);
	int r = 0;

	if (!buf)
		return mimg_err(-ENOMEM, "%s: out of memory", p->f.path);
	while (done < total && r == 0) {
		uint64_t o = off + done, a0 = align_down(o, p->req_align);
		size_t n = total - done;
		if (n > DIRECT_CHUNK - (o - a0))
			n = DIRECT_CHUNK - (size_t)(o - a0);
		uint64_t a1 = align_up(o + n, p->req_align);
		r = transfer_flat(p, buf, (size_t)(a1 - a0), a0, false);
		if (r == 0)
			iov_from_buf(iov, cnt, done, buf + (o - a0), n);
		done += n;
	}
	free(buf);
	return r;
}

/* One aligned piece [A0, A1) of a bounced write holding the caller's
 * bytes [DONE, DONE+N) at file offset O.  Partial first and last blocks
 * are read first; the caller holds the lock exclusively then. */
static int direct_write_piece(struct posix_file *p, uint8_t *buf,
			      const struct iovec *iov, int cnt, size_t done,
			      size_t n, uint64_t o, uint64_t a0, uint64_t a1)
{
	uint32_t ra = p->req_align;
	int r;

	if (a0 < o && (r = transfer_flat(p, buf, ra, a0, false)) < 0)
		return r;
	if (o + n < a1 && (a1 - a0 > ra || a0 == o) &&
	    (r = transfer_flat(p, buf + (a1 - a0 - ra), ra, a1 - ra, false)) <
		    0)
		return r;
	iov_to_buf(iov, cnt, done, buf + (o - a0), n);
	return transfer_flat(p, buf, (size_t)(a1 - a0), a0, true);
}

/* After a padded write that ran past the old end of the file, the file
 * ends where the data ends, as it would without O_DIRECT. */
static int direct_trim(struct posix_file *p, uint64_t old_size, uint64_t end,
		       uint64_t padded_end)
{
	uint64_t want = end > old_size ? end : old_size;
	if (padded_end <= want || !(mimg_file_caps(&p->f) & MIMG_FILE_REGULAR))
		return 0;
	if (ftruncate(p->fd, (off_t)want) != 0)
		return mimg_err_errno(-errno, "%s: truncate to %llu", p->f.path,
				      (unsigned long long)want);
	return 0;
}

static int direct_bounce_write(struct posix_file *p, const struct iovec *iov,
			       int cnt, uint64_t off)
{
	size_t total = iov_total(iov, cnt), done = 0;
	uint32_t ra = p->req_align;
	bool partial = (off & (ra - 1)) || ((off + total) & (ra - 1));
	uint8_t *buf = bounce_alloc(p, DIRECT_CHUNK + 2 * ra);
	uint64_t old_size = 0;
	struct stat st;
	int r = 0;

	if (!buf)
		return mimg_err(-ENOMEM, "%s: out of memory", p->f.path);
	if (partial) {
		pthread_rwlock_wrlock(&p->rmw_lock);
		if (fstat(p->fd, &st) != 0)
			r = mimg_err_errno(-errno, "%s: stat", p->f.path);
		else
			old_size = (uint64_t)st.st_size;
	} else {
		pthread_rwlock_rdlock(&p->rmw_lock);
	}
	while (done < total && r == 0) {
		uint64_t o = off + done, a0 = align_down(o, ra);
		size_t n = total - done;
		if (n > DIRECT_CHUNK - (o - a0))
			n = DIRECT_CHUNK - (size_t)(o - a0);
		uint64_t a1 = align_up(o + n, ra);
		r = direct_write_piece(p, buf, iov, cnt, done, n, o, a0, a1);
		done += n;
	}
	if (r == 0 && partial)
		r = direct_trim(p, old_size, off + total,
				align_up(off + total, ra));
	pthread_rwlock_unlock(&p->rmw_lock);
	free(buf);
	return r;
}

static int posix_preadv(struct mimg_file *f, const struct iovec *iov,
			int iovcnt, uint64_t off)
{
	struct posix_file *p = posix_of(f);
	if (p->direct && !direct_aligned(p, iov, iovcnt, off))
		return direct_bounce_read(p, iov, iovcnt, off);
	return transfer(p, iov, iovcnt, off, false);
}

static int posix_pwritev(struct mimg_file *f, const struct iovec *iov,
			 int iovcnt, uint64_t off)
{
	struct posix_file *p = posix_of(f);
	int r;
	if (!p->direct) {
		__atomic_add_fetch(&p->unflushed, iov_total(iov, iovcnt),
				   __ATOMIC_RELAXED);
		return transfer(p, iov, iovcnt, off, true);
	}
	if (!direct_aligned(p, iov, iovcnt, off))
		return direct_bounce_write(p, iov, iovcnt, off);
	pthread_rwlock_rdlock(&p->rmw_lock);
	r = transfer(p, iov, iovcnt, off, true);
	pthread_rwlock_unlock(&p->rmw_lock);
	return r;
}

static int posix_flush(struct mimg_file *f)
{
	struct posix_file *p = posix_of(f);
	if (p->no_flush)
		return 0;
	/* Writes from now on may miss this flush. */
	__atomic_store_n(&p->unflushed, 0, __ATOMIC_RELAXED);
	if (fdatasync(p->fd) != 0)
		return mimg_err_errno(-errno, "%s: flush", f->path);
	return 0;
}

static uint64_t posix_unflushed(struct mimg_file *f)
{
	return __atomic_load_n(&posix_of(f)->unflushed, __ATOMIC_RELAXED);
}

/* fdatasync writes back every dirty page of the file, an O_DSYNC write
 * only its own: a metadata write made durable this way costs the same
 * however much data the guest wrote before it.  Direct writes leave no
 * dirty pages, so a flush after them is as cheap. */
static int posix_pwritev_dsync(struct mimg_file *f, const struct iovec *iov,
			       int iovcnt, uint64_t off)
{
	struct posix_file *p = posix_of(f);
	int r;
	if (p->no_flush)
		return posix_pwritev(f, iov, iovcnt, off);
#ifdef RWF_DSYNC
	if (!p->direct &&
	    !__atomic_load_n(&p->no_rwf_dsync, __ATOMIC_RELAXED)) {
		r = transfer_rwf(p, iov, iovcnt, off, true, RWF_DSYNC);
		if (r != -ENOTSUP)
			return r;
		__atomic_store_n(&p->no_rwf_dsync, true, __ATOMIC_RELAXED);
	}
#endif
	if ((r = posix_pwritev(f, iov, iovcnt, off)) < 0)
		return r;
	return posix_flush(f);
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

/* Forget the data run found last: the file's holes changed. */
static void forget_data_run(struct posix_file *p)
{
	pthread_mutex_lock(&p->extent_lock);
	p->data_start = p->data_end = 0;
	p->holes_changed++;
	pthread_mutex_unlock(&p->extent_lock);
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
	forget_data_run(posix_of(f));
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
	forget_data_run(posix_of(f));
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
	forget_data_run(posix_of(f));
#ifdef FALLOC_FL_PUNCH_HOLE
	if (may_unmap &&
	    (r = space_op(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  MIMG_FILE_CAN_PUNCH, "discard", off, len)) != 0)
		return r < 0 ? r : 0;
#endif
#ifdef FALLOC_FL_ZERO_RANGE
	if ((r = space_op(f, FALLOC_FL_ZERO_RANGE, MIMG_FILE_CAN_ZERO, "zero",
			  off, len)) != 0)
		return r < 0 ? r : 0;
#endif
#endif
	(void)f;
	(void)off;
	(void)len;
	(void)may_unmap;
	return -ENOTSUP;
}

static int posix_extent(struct mimg_file *f, uint64_t off, uint64_t len,
			bool *is_data, uint64_t *pnum)
{
#ifdef SEEK_DATA
	struct posix_file *p = posix_of(f);
	int fd = p->fd;
	pthread_mutex_lock(&p->extent_lock);
	bool known = off >= p->data_start && off < p->data_end;
	if (known)
		*pnum = p->data_end - off < len ? p->data_end - off : len;
	unsigned changed = p->holes_changed;
	pthread_mutex_unlock(&p->extent_lock);
	if (known)
		return 0; /* *is_data is already true */
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
	pthread_mutex_lock(&p->extent_lock);
	if (p->holes_changed == changed) { /* no punch since the lseeks */
		p->data_start = off;
		p->data_end = (uint64_t)h;
	}
	pthread_mutex_unlock(&p->extent_lock);
#else
	(void)f;
	(void)off;
	(void)len;
	(void)is_data;
	(void)pnum;
#endif
	return 0;
}

/* copy_file_range answers that mean "not between these files". */
static bool no_copy_range(int err)
{
	return err == EXDEV || err == EINVAL || err == ENOSYS ||
	       err == EOPNOTSUPP || err == EBADF || err == ETXTBSY;
}

static int posix_copy_range(struct mimg_file *src, uint64_t soff,
			    struct mimg_file *dst, uint64_t doff, uint64_t len)
{
#if defined(__linux__) || defined(__FreeBSD__)
	struct posix_file *s = posix_of(src), *d = posix_of(dst);
	bool first = true;
	while (len) {
		off_t so = (off_t)soff, dof = (off_t)doff;
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t got = copy_file_range(s->fd, &so, d->fd, &dof, n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && first && no_copy_range(errno))
			return -ENOTSUP;
		if (got < 0)
			return mimg_err_errno(-errno,
					      "%s: copy to %s at offset "
					      "%llu",
					      src->path, dst->path,
					      (unsigned long long)doff);
		if (got == 0) /* the source ends: the rest reads as zeroes */
			return mimg_file_zero_range(dst, doff, len, false) == 0
				       ? 0
				       : -ENOTSUP;
		first = false;
		__atomic_add_fetch(&d->unflushed, (uint64_t)got,
				   __ATOMIC_RELAXED);
		soff += (uint64_t)got;
		doff += (uint64_t)got;
		len -= (uint64_t)got;
	}
	return 0;
#else
	(void)src;
	(void)soff;
	(void)dst;
	(void)doff;
	(void)len;
	return -ENOTSUP;
#endif
}

static int posix_close(struct mimg_file *f)
{
	struct posix_file *p = posix_of(f);
	int r = 0;
	if (close(p->fd) != 0)
		r = mimg_err_errno(-errno, "%s: close", f->path);
	if (p->lock_init)
		pthread_rwlock_destroy(&p->rmw_lock);
	if (p->extent_lock_init)
		pthread_mutex_destroy(&p->extent_lock);
	free(p);
	return r;
}

static const struct mimg_file_ops posix_ops = {
	.preadv = posix_preadv,
	.pwritev = posix_pwritev,
	.flush = posix_flush,
	.pwritev_dsync = posix_pwritev_dsync,
	.unflushed = posix_unflushed,
	.size = posix_size,
	.allocated = posix_allocated,
	.truncate = posix_truncate,
	.allocate = posix_allocate,
	.punch = posix_punch,
	.zero = posix_zero,
	.extent = posix_extent,
	.copy_range = posix_copy_range,
	.close = posix_close,
};

/* Whether an O_DIRECT read of LEN bytes at BUF from offset 0 is
 * accepted: only EINVAL means misaligned (other failures say nothing). */
static bool direct_read_ok(int fd, void *buf, size_t len)
{
	ssize_t n;
	do
		n = pread(fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n >= 0 || errno != EINVAL;
}

/*
 * The alignments O_DIRECT needs on this file: the device's logical block
 * size for block devices, else found by trial reads at offset 0.  A
 * 1-byte read that succeeds proves nothing (an empty file answers every
 * read at its end before checking alignment), so the largest alignment
 * tried is assumed then.
 */
static int direct_probe_alignment(struct posix_file *p, const struct stat *st)
{
	static const uint32_t tries[] = {1, 512, 1024, 2048, 4096};
	const uint32_t max = DIRECT_MAX_ALIGN;
	uint8_t *buf = NULL;

	p->req_align = p->mem_align = 0;
#if defined(__linux__) && defined(BLKSSZGET)
	int ssz;
	if (S_ISBLK(st->st_mode) && ioctl(p->fd, BLKSSZGET, &ssz) == 0 &&
	    ssz > 0 && ssz <= 65536 && !(ssz & (ssz - 1))) {
		p->req_align = p->mem_align = (uint32_t)ssz;
		return 0;
	}
#else
	(void)st;
#endif
	if (posix_memalign((void **)&buf, max, 2 * max) != 0)
		return mimg_err(-ENOMEM, "%s: out of memory", p->f.path);
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
		if (direct_read_ok(p->fd, buf, tries[i])) {
			p->req_align = tries[i] == 1 ? max : tries[i];
			break;
		}
	for (size_t i = 0; p->req_align && i < sizeof(tries) / sizeof(tries[0]);
	     i++)
		if (direct_read_ok(p->fd, buf + tries[i], p->req_align)) {
			p->mem_align = tries[i] == 1 ? p->req_align : tries[i];
			break;
		}
	free(buf);
	if (!p->req_align || !p->mem_align)
		return mimg_err(-EINVAL,
				"%s: Could not find working O_DIRECT "
				"alignment",
				p->f.path);
	return 0;
}

static int direct_setup(struct posix_file *p, const struct stat *st)
{
	int r = direct_probe_alignment(p, st);
	if (r < 0)
		return r;
	if (pthread_rwlock_init(&p->rmw_lock, NULL) != 0)
		return mimg_err(-ENOMEM, "%s: out of memory", p->f.path);
	p->lock_init = true;
	p->direct = true;
	return 0;
}

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
	if (pthread_mutex_init(&p->extent_lock, NULL) != 0) {
		mimg_file_close(&p->f);
		return mimg_err(-ENOMEM, "%s: out of memory", name);
	}
	p->extent_lock_init = true;
#ifdef O_DIRECT
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_DIRECT) && (r = direct_setup(p, &st)) < 0) {
		mimg_file_close(&p->f);
		return r;
	}
#endif
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
