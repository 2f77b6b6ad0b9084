/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The host-file layer.  Drivers do all their file I/O through it so that
 * tests can inject faults and sources can be other than files: a struct
 * mimg_file is an interface (file-impl.h) with implementations for regular
 * files and devices (file-posix.c), memory buffers (file-memory.c) and
 * NBD exports (file-nbd.c);
 * images inside archives are spooled into a posix file (file-archive.c).
 * Reads and writes are full: short transfers are retried; a read past the
 * end of the file fills the rest with zeroes and returns 0 (like reading a
 * sparse hole), except mimg_file_pread_exact which gives -EIO.
 */
#ifndef MIMG_FILE_H
#define MIMG_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct mimg_file;

enum {
	MIMG_FILE_RDWR = 1u << 0,
	MIMG_FILE_CREATE = 1u << 1, /* create or truncate */
	MIMG_FILE_DIRECT = 1u << 2,
	MIMG_FILE_SYNC = 1u << 3,
	MIMG_FILE_NO_FLUSH = 1u << 4, /* flush is a no-op (cache=unsafe) */
};

/* What a file can do; a file may lose a bit once the host has said no
 * (a file system without hole punching). */
enum {
	MIMG_FILE_CAN_WRITE = 1u << 0,
	MIMG_FILE_CAN_SEEK_DATA = 1u << 1, /* extent() knows holes */
	MIMG_FILE_CAN_PUNCH = 1u << 2,
	MIMG_FILE_CAN_ZERO = 1u << 3, /* zero_range() may work */
	MIMG_FILE_REGULAR = 1u << 4,  /* grows on write, starts as zeroes */
};

/* A regular file or block device at PATH. */
int mimg_file_open(struct mimg_file **fp, const char *path, unsigned flags);
/* A file over the open descriptor FD, which it owns from then on (closed
 * on failure too).  NAME is used in messages.  FLAGS: MIMG_FILE_RDWR tells
 * whether writes are allowed (FD must then be writable), the others as
 * for mimg_file_open where they apply after opening (NO_FLUSH). */
int mimg_file_open_fd(struct mimg_file **fp, int fd, const char *name,
		      unsigned flags);
/* A file over a private copy of LEN bytes at BUF.  With MIMG_FILE_RDWR it
 * is writable and grows up to MAX_SIZE bytes (writes past give -ENOSPC). */
int mimg_file_open_memory(struct mimg_file **fp, const void *buf, size_t len,
			  size_t max_size, const char *name, unsigned flags);
/* True when PATH is an NBD URI: nbd://, nbds://, nbd+unix://, nbds+unix://. */
bool mimg_file_is_nbd_uri(const char *path);
/* The NBD export named by URI (file-nbd.c): a fixed-size device that
 * cannot grow; reads past its end are zeroes.  Requests that get no
 * answer within $MIMG_NBD_TIMEOUT seconds (default 60) fail with
 * -ETIMEDOUT.  FLAGS: MIMG_FILE_RDWR (or CREATE) for writes.  -ENOTSUP
 * when built without libnbd. */
int mimg_file_open_nbd(struct mimg_file **fp, const char *uri, unsigned flags);
int mimg_file_close(struct mimg_file *f);
const char *mimg_file_path(const struct mimg_file *f);
unsigned mimg_file_caps(const struct mimg_file *f);
bool mimg_file_is_regular(const struct mimg_file *f);
/* True for a file read in one pass, forward only (file-stream.c). */
bool mimg_file_is_stream(const struct mimg_file *f);

int mimg_file_preadv(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		     uint64_t off);
int mimg_file_pread(struct mimg_file *f, void *buf, size_t len, uint64_t off);
/* -EIO with a message when the file ends before OFF+LEN. */
int mimg_file_pread_exact(struct mimg_file *f, void *buf, size_t len,
			  uint64_t off, const char *what);
int mimg_file_pwritev(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		      uint64_t off);
int mimg_file_pwrite(struct mimg_file *f, const void *buf, size_t len,
		     uint64_t off);
int mimg_file_flush(struct mimg_file *f);
/* A write that is durable when it returns, with what reading it back
 * takes (the file's size when it grew): O_DSYNC for this one write.  It
 * does not wait for other unflushed writes, so its cost does not grow
 * with the data written before it (a flush's does).  Files that cannot
 * do this write and flush. */
int mimg_file_pwrite_dsync(struct mimg_file *f, const void *buf, size_t len,
			   uint64_t off);
int mimg_file_pwritev_dsync(struct mimg_file *f, const struct iovec *iov,
			    int iovcnt, uint64_t off);
/* A piece of a durable write group. */
struct mimg_file_write {
	const void *buf;
	size_t len;
	uint64_t off;
};
/* Write the N pieces of W in order, all durable when this returns (with
 * the file's size): each O_DSYNC when much was written since the last
 * flush, else with one flush after them, whichever costs less. */
int mimg_file_pwrite_durable(struct mimg_file *f,
			     const struct mimg_file_write *w, int n);
int mimg_file_size(struct mimg_file *f, uint64_t *sizep);
/* Bytes of host storage in use (st_blocks * 512). */
int mimg_file_allocated(struct mimg_file *f, uint64_t *bytesp);
int mimg_file_truncate(struct mimg_file *f, uint64_t size);
/* Reserve space (fallocate mode 0); -ENOTSUP where impossible. */
int mimg_file_allocate(struct mimg_file *f, uint64_t off, uint64_t len);
/* Deallocate, keeping the size; the range reads as zeroes afterwards.
 * -ENOTSUP where impossible. */
int mimg_file_punch_hole(struct mimg_file *f, uint64_t off, uint64_t len);
/* Make the range read as zeroes efficiently (punch hole when MAY_UNMAP,
 * else FALLOC_FL_ZERO_RANGE); -ENOTSUP, without a message, where the file
 * cannot (the caller writes zeroes instead).  A host that answered
 * "unsupported" once is not asked again for that file; real failures
 * (-EIO, -ENOSPC, ...) are returned as they are. */
int mimg_file_zero_range(struct mimg_file *f, uint64_t off, uint64_t len,
			 bool may_unmap);
/* Copy LEN bytes at SOFF of SRC to DOFF of DST inside the host
 * (copy_file_range); -ENOTSUP, without a message, where the two files or
 * their file systems cannot (the caller copies through memory). */
int mimg_file_copy_range(struct mimg_file *src, uint64_t soff,
			 struct mimg_file *dst, uint64_t doff, uint64_t len);
/* Data/hole map: *IS_DATA tells whether OFF is in data, *PNUM how far the
 * run goes (capped at LEN).  Files without SEEK_DATA report all data. */
int mimg_file_extent(struct mimg_file *f, uint64_t off, uint64_t len,
		     bool *is_data, uint64_t *pnum);

/*
 * Fault injection for tests.  When set, the hook is called before every
 * write-type operation (write, truncate, allocate, punch, flush) on any
 * file with the operation and range; a non-zero return fails that
 * operation with that (negative errno) value, without performing it.
 * Setting a hook is process-wide and meant for single-purpose test
 * programs only.
 */
enum mimg_file_op {
	MIMG_FILE_OP_WRITE,
	MIMG_FILE_OP_FLUSH,
	MIMG_FILE_OP_TRUNCATE,
	MIMG_FILE_OP_ALLOCATE,
	MIMG_FILE_OP_DISCARD,
	MIMG_FILE_OP_WRITE_DSYNC, /* mimg_file_pwrite_dsync */
};
typedef int (*mimg_file_fault_hook)(void *opaque, enum mimg_file_op op,
				    const char *path, uint64_t off,
				    uint64_t len);
void mimg_file_set_fault_hook(mimg_file_fault_hook hook, void *opaque);

/* For tests: replace the fallocate(2) call of posix files (NULL restores
 * it), to play file systems that refuse or fail space operations.  The
 * function returns 0 or -1 with errno set.  Process-wide. */
typedef int (*mimg_file_fallocate_fn)(int fd, int mode, off_t off, off_t len);
void mimg_file_set_fallocate(mimg_file_fallocate_fn fn);

#endif
