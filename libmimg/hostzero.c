/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Zeroing a range of a host file for drivers: the file's own zeroing
 * where it has one, else writes of zeroes.
 */
#include <errno.h>
#include <stdlib.h>

#include "checked.h"
#include "driver.h"
#include "error.h"
#include "file.h"

#define ZERO_CHUNK (1u << 20)

int mimg__file_zero(struct mimg_file *f, uint64_t off, uint64_t len)
{
	if (len == 0 || mimg_file_zero_range(f, off, len, false) == 0)
		return 0;
	size_t chunk = (size_t)min_u64(len, ZERO_CHUNK);
	void *z = calloc(1, chunk);
	int r = 0;
	if (!z)
		return mimg_err(-ENOMEM, "out of memory");
	while (len && r == 0) {
		size_t n = (size_t)min_u64(len, chunk);
		r = mimg_file_pwrite(f, z, n, off);
		off += n;
		len -= n;
	}
	free(z);
	return r;
}
