/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * raw: the image is the disk, byte for byte.  Sparse files keep holes;
 * block status comes from SEEK_DATA/SEEK_HOLE, discard punches holes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "error.h"
#include "image.h"

#define FILL_CHUNK (1u << 20)

static bool raw_one_pass(const uint8_t *buf, size_t len)
{
	(void)buf;
	(void)len;
	return true;
}

static int raw_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)buf;
	(void)len;
	(void)filename;
	return 1; /* anything is a raw image; the weakest guess */
}

static int raw_open(struct mimg *img)
{
	uint64_t size;
	int r = mimg_file_size(img->file, &size);
	if (r < 0)
		return r;
	/* The disk is whole 512-byte sectors, as qemu sees a raw file: a
	 * partial last sector reads as zeroes up to its end (and writing
	 * there extends the file). */
	if (!ck_align_up_u64(size, 512, &img->size))
		return mimg_err(-EFBIG, "%s: size %llu is too large",
				img->filename, (unsigned long long)size);
	return 0;
}

static int raw_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		      uint64_t off, size_t len)
{
	(void)len;
	return mimg_file_preadv(img->file, iov, iovcnt, off);
}

static int raw_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
		       uint64_t off, size_t len)
{
	(void)len;
	return mimg_file_pwritev(img->file, iov, iovcnt, off);
}

static int raw_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
			     unsigned flags)
{
	return mimg_file_zero_range(img->file, off, len,
				    flags & MIMG_ZERO_MAY_UNMAP);
}

static int raw_discard(struct mimg *img, uint64_t off, uint64_t len)
{
	return mimg_file_punch_hole(img->file, off, len);
}

static int raw_block_status(struct mimg *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, unsigned *status,
			    uint64_t *host_off)
{
	bool data;
	int r = mimg_file_extent(img->file, off, len, &data, pnum);
	if (r < 0)
		return r;
	*status = MIMG_BS_ALLOCATED | MIMG_BS_OFFSET_VALID |
		  (data ? MIMG_BS_DATA : MIMG_BS_ZERO);
	*host_off = off;
	return 0;
}

/* Write zeroes into [off, off+len) of a host file (preallocation=full). */
static int fill_zeroes(struct mimg_file *f, uint64_t off, uint64_t len)
{
	size_t chunk = len < FILL_CHUNK ? (size_t)len : FILL_CHUNK;
	void *zeroes;
	int r = 0;

	if (!len)
		return 0;
	if (!(zeroes = calloc(1, chunk)))
		return mimg_err(-ENOMEM, "out of memory");
	while (len && r == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		r = mimg_file_pwrite(f, zeroes, n, off);
		off += n;
		len -= n;
	}
	free(zeroes);
	return r;
}

/* Resize FILE from OLD to NEW bytes with the preallocation mode. */
static int raw_resize_file(struct mimg_file *f, uint64_t old, uint64_t new,
			   enum mimg_prealloc prealloc)
{
	int r;
	if (prealloc == MIMG_PREALLOC_METADATA)
		return mimg_err(-ENOTSUP,
				"%s: unsupported preallocation mode "
				"'metadata' for raw images",
				mimg_file_path(f));
	if (new <= old || prealloc == MIMG_PREALLOC_OFF)
		return mimg_file_truncate(f, new);
	if ((r = mimg_file_truncate(f, new)) < 0)
		return r;
	if (prealloc == MIMG_PREALLOC_FALLOC)
		return mimg_file_allocate(f, old, new - old);
	return fill_zeroes(f, old, new - old);
}

static int raw_truncate(struct mimg *img, uint64_t size,
			enum mimg_prealloc prealloc)
{
	int r = raw_resize_file(img->file, img->size, size, prealloc);
	if (r == 0)
		img->size = size;
	return r;
}

/* raw has only the size; preallocation is the host file's option. */
static const struct mimg_optdesc raw_create_opts[] = {
	MIMG_OPT_FILE_PREALLOC,
	MIMG_OPT_SIZE,
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};

static int raw_create(const char *path, uint64_t size,
		      const struct mimg_opt *opts, size_t nopts,
		      struct mimg *backing)
{
	struct mimg_optval vals[2];
	enum mimg_prealloc prealloc = MIMG_PREALLOC_OFF;
	struct mimg_file *f;
	int r;

	if ((r = mimg__opts_validate(raw_create_opts, NULL, opts, nopts,
				     vals)) < 0)
		return r;
	if ((r = mimg__opt_prealloc_of(path, vals[0].s, &prealloc)) < 0)
		return r;
	if (prealloc == MIMG_PREALLOC_METADATA)
		return mimg_err(-EINVAL,
				"%s: Unsupported preallocation mode "
				"'metadata' for format raw",
				path);
	if ((r = mimg_file_open(&f, path, MIMG_FILE_RDWR | MIMG_FILE_CREATE)) <
	    0)
		return r;
	r = raw_resize_file(f, 0, size, prealloc);
	int rc = mimg_file_close(f);
	return r < 0 ? r : rc;
}

static bool raw_has_zero_init(struct mimg *img)
{
	return mimg_file_is_regular(img->file);
}

const struct mimg_driver mimg_raw_driver = {
	.name = "raw",
	.probe = raw_probe,
	.one_pass = raw_one_pass,
	.open = raw_open,
	.create = raw_create,
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.pwrite_zeroes = raw_pwrite_zeroes,
	.discard = raw_discard,
	.block_status = raw_block_status,
	.truncate = raw_truncate,
	.has_zero_init = raw_has_zero_init,
	.create_opts = raw_create_opts,
};
