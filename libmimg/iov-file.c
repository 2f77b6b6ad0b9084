/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Slices of a caller's iovec read from or written to a host file.
 */
#include "iov-file.h"

#include <stdbool.h>

#include "error.h"
#include "file.h"
#include "iov.h"

/* Slices of up to this many elements need no allocation. */
#define SLICE_LOCAL 16

static int slice_io(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		    size_t skip, size_t len, uint64_t off, bool write)
{
	struct iovec local[SLICE_LOCAL], *use;
	int n = iov_slice(iov, iovcnt, skip, len, local, SLICE_LOCAL, &use);
	if (n < 0)
		return mimg_err(n, "out of memory");
	int r = write ? mimg_file_pwritev(f, use, n, off)
		      : mimg_file_preadv(f, use, n, off);
	iov_slice_free(use, local);
	return r;
}

int mimg__file_preadv_slice(struct mimg_file *f, const struct iovec *iov,
			    int iovcnt, size_t skip, size_t len, uint64_t off)
{
	return slice_io(f, iov, iovcnt, skip, len, off, false);
}

int mimg__file_pwritev_slice(struct mimg_file *f, const struct iovec *iov,
			     int iovcnt, size_t skip, size_t len, uint64_t off)
{
	return slice_io(f, iov, iovcnt, skip, len, off, true);
}
