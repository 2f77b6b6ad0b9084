/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Scatter-gather helpers shared by the core and the drivers.
 */
#ifndef MIMG_IOV_H
#define MIMG_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

size_t iov_total(const struct iovec *iov, int cnt);

/*
 * Describe bytes [SKIP, SKIP+LEN) of SRC as a new iovec array.  Uses
 * STORAGE (NSTORAGE entries) when it fits, else allocates; *OUT receives the
 * array and the return value is its count (or -ENOMEM).  Release with
 * iov_slice_free(out, storage).
 */
int iov_slice(const struct iovec *src, int cnt, size_t skip, size_t len,
	      struct iovec *storage, int nstorage, struct iovec **out);
void iov_slice_free(struct iovec *iov, struct iovec *storage);

/* Set LEN bytes of IOV starting at byte SKIP to C. */
void iov_memset(const struct iovec *iov, int cnt, size_t skip, int c,
		size_t len);
/* Copy between a flat buffer and bytes [SKIP, SKIP+LEN) of IOV. */
void iov_to_buf(const struct iovec *iov, int cnt, size_t skip, void *buf,
		size_t len);
void iov_from_buf(const struct iovec *iov, int cnt, size_t skip,
		  const void *buf, size_t len);

/* Bytes [SKIP, SKIP+LEN) of IOV as one pointer when they lie in a single
 * element, else NULL (decoders write there directly, saving a copy). */
void *iov_flat(const struct iovec *iov, int cnt, size_t skip, size_t len);

/* True when BUF holds only zero bytes. */
bool buf_is_zero(const void *buf, size_t len);

#endif
