/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Resizing the served image (see resize.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <mimg.h>

#include "blockif_impl.h"
#include "resize.h"

/* blockif_resize() changes the image and the size blockif serves with
 * no request running. */
static int serve_size(struct blockif_ctxt *bc, uint64_t size, const char **why)
{
	int err = blockif_resize(bc, (off_t)size);
	if (err)
		*why = mimg_errmsg()[0] ? mimg_errmsg() : strerror(err);
	return -err;
}

int vmmblk_resize(struct blockif_ctxt *bc, uint64_t size, const char **why)
{
	if (size == 0 || size > (uint64_t)INT64_MAX ||
	    size % (uint64_t)bc->sectsz) {
		*why = "the size must be a non-zero multiple of the sector "
		       "size";
		return -EINVAL;
	}
	return serve_size(bc, size, why);
}

/* The size of the file (or block device) at PATH; -errno on failure. */
static int64_t file_size(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;

	if (fd < 0)
		return -errno;
	end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		end = -errno;
	close(fd);
	return end;
}

int vmmblk_reread_size(struct blockif_ctxt *bc, const char **why)
{
	int64_t now;

	if (strcmp(mimg_format(bc->img), "raw") != 0) {
		*why = "only a raw image's size is read again; resize other "
		       "formats through the control socket";
		return -ENOTSUP;
	}
	if (strstr(mimg_filename(bc->img), "://")) {
		*why = "an NBD export's size is fixed while it is connected";
		return -ENOTSUP;
	}
	now = file_size(mimg_filename(bc->img));
	if (now < 0) {
		*why = strerror((int)-now);
		return (int)now;
	}
	if ((uint64_t)now == mimg_size(bc->img))
		return 0;
	/* The file already has the size: truncating to it only makes the
	 * raw driver take it as the image's size. */
	return serve_size(bc, (uint64_t)now, why);
}
