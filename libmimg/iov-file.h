/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Part of a caller's iovec read from or written to a host file at an
 * offset: the one step every sparse driver takes once it has mapped a
 * guest range to where its data lies.
 */
#ifndef MIMG_IOV_FILE_H
#define MIMG_IOV_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mimg_file;

/* Read or write bytes [SKIP, SKIP+LEN) of IOV at host offset OFF of F.
 * 0 or a negative errno (with the error set). */
int mimg__file_preadv_slice(struct mimg_file *f, const struct iovec *iov,
			    int iovcnt, size_t skip, size_t len, uint64_t off);
int mimg__file_pwritev_slice(struct mimg_file *f, const struct iovec *iov,
			     int iovcnt, size_t skip, size_t len, uint64_t off);

#endif
