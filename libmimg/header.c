/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The first step of a driver's open: the file's size and its header.
 */
#include <errno.h>

#include "driver.h"
#include "error.h"
#include "image.h"

int mimg__read_header(struct mimg *img, void *buf, size_t len,
		      uint64_t *file_size)
{
	int r = mimg_file_size(img->file, file_size);
	if (r < 0)
		return r;
	if (*file_size < len)
		return mimg_err(-EINVAL,
				"%s: %s: file of %llu bytes is shorter than "
				"the header",
				img->filename, img->drv->name,
				(unsigned long long)*file_size);
	return mimg_file_pread(img->file, buf, len, 0);
}
