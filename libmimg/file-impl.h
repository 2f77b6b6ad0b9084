/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The host-file interface seen from its implementations.  file.c wraps
 * every call (fault injection, capability checks, whole-length helpers);
 * an implementation only moves bytes and manages space.  A NULL optional
 * operation means the file cannot do it (-ENOTSUP, or "all data" for
 * extent).
 */
#ifndef MIMG_FILE_IMPL_H
#define MIMG_FILE_IMPL_H

#include "file.h"

struct mimg_file_ops {
	/* Full transfers: a read past the end zero-fills, returns 0. */
	int (*preadv)(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		      uint64_t off);
	int (*pwritev)(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		       uint64_t off);
	int (*flush)(struct mimg_file *f);
	int (*size)(struct mimg_file *f, uint64_t *sizep);
	int (*allocated)(struct mimg_file *f, uint64_t *bytesp);
	int (*truncate)(struct mimg_file *f, uint64_t size);
	/* Optional. */
	/* A write durable on return without waiting for other writes;
	 * without it file.c writes and flushes. */
	int (*pwritev_dsync)(struct mimg_file *f, const struct iovec *iov,
			     int iovcnt, uint64_t off);
	/* Bytes written since the last flush began, as far as known: what
	 * a flush would wait for. */
	uint64_t (*unflushed)(struct mimg_file *f);
	int (*allocate)(struct mimg_file *f, uint64_t off, uint64_t len);
	int (*punch)(struct mimg_file *f, uint64_t off, uint64_t len);
	int (*zero)(struct mimg_file *f, uint64_t off, uint64_t len,
		    bool may_unmap);
	int (*extent)(struct mimg_file *f, uint64_t off, uint64_t len,
		      bool *is_data, uint64_t *pnum);
	/* Called only with SRC and DST of the same implementation. */
	int (*copy_range)(struct mimg_file *src, uint64_t soff,
			  struct mimg_file *dst, uint64_t doff, uint64_t len);
	/* Release everything but the common part, which file.c frees. */
	int (*close)(struct mimg_file *f);
};

/* The common part, first member of every implementation's struct. */
struct mimg_file {
	const struct mimg_file_ops *ops;
	char *path;    /* for messages */
	unsigned caps; /* MIMG_FILE_CAN_*; bits only ever cleared, atomically */
};

/* Set up the common part of a freshly allocated file (path copied). */
int mimg__file_init(struct mimg_file *f, const struct mimg_file_ops *ops,
		    const char *path, unsigned caps);
/* Clear capability bits once the host said the operation is unsupported. */
void mimg__file_drop_caps(struct mimg_file *f, unsigned caps);

#endif
