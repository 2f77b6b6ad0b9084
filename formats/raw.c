/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * raw: the image is the disk, byte for byte, or a window of it (the
 * "offset" and "size" open options: a partition of a whole-disk image).
 * Sparse files keep holes; block status comes from SEEK_DATA/SEEK_HOLE,
 * discard punches holes.
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

/* The window of the file that is the disk; all zero without the
 * options: the whole file. */
struct raw {
	uint64_t offset;
	bool fixed_size; /* "size" given: the disk cannot be resized */
};

enum { OPT_OFFSET, OPT_SIZE };
static const struct mimg_optdesc raw_open_opts[] = {
	[OPT_OFFSET] = {"offset", MIMG_OPTK_SIZE,
			"Where the disk starts in the file", "0", NULL, NULL,
			0},
	[OPT_SIZE] = {"size", MIMG_OPTK_SIZE, "Size of the disk", NULL, NULL,
		      NULL, 0},
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};

/* The window the options ask for, checked against the file's SIZE in
 * qemu's order and words. */
static int open_window(struct mimg *img, struct raw *s, uint64_t size)
{
	const struct mimg_optval *v = img->open_vals;
	s->offset = v[OPT_OFFSET].u;
	s->fixed_size = v[OPT_SIZE].set;
	if (s->offset > size)
		return mimg_err(-EINVAL,
				"%s: Offset (%llu) cannot be greater than "
				"size of the containing file (%llu)",
				img->filename, (unsigned long long)s->offset,
				(unsigned long long)size);
	if (!s->fixed_size)
		return 0;
	if (v[OPT_SIZE].u > size - s->offset)
		return mimg_err(-EINVAL,
				"%s: The sum of offset (%llu) and size (%llu) "
				"has to be smaller or equal to the  actual "
				"size of the containing file (%llu)",
				img->filename, (unsigned long long)s->offset,
				(unsigned long long)v[OPT_SIZE].u,
				(unsigned long long)size);
	if (v[OPT_SIZE].u % 512)
		return mimg_err(-EINVAL,
				"%s: Specified size is not multiple of 512",
				img->filename);
	img->size = v[OPT_SIZE].u;
	return 0;
}

static int raw_open(struct mimg *img)
{
	struct raw *s = img->priv;
	uint64_t bytes, size;
	int r = mimg_file_size(img->file, &bytes);
	if (r < 0)
		return r;
	/* The file is whole 512-byte sectors, as qemu sees it: a partial
	 * last sector reads as zeroes up to its end (and writing there
	 * extends the file).  Windows are taken from that size. */
	if (!ck_align_up_u64(bytes, 512, &size))
		return mimg_err(-EFBIG, "%s: size %llu is too large",
				img->filename, (unsigned long long)bytes);
	if ((r = open_window(img, s, size)) < 0 || s->fixed_size)
		return r;
	/* A window that starts inside a sector ends in whole sectors. */
	ck_align_up_u64(size - s->offset, 512, &img->size);
	return 0;
}

/* Where guest offset OFF is in the file. */
static uint64_t at(const struct mimg *img, uint64_t off)
{
	return off + ((const struct raw *)img->priv)->offset;
}

bool mimg__raw_is_file(const struct mimg *img)
{
	return strcmp(img->drv->name, "raw") == 0 && at(img, 0) == 0;
}

static int raw_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		      uint64_t off, size_t len)
{
	(void)len;
	return mimg_file_preadv(img->file, iov, iovcnt, at(img, off));
}

static int raw_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
		       uint64_t off, size_t len)
{
	(void)len;
	return mimg_file_pwritev(img->file, iov, iovcnt, at(img, off));
}

static int raw_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
			     unsigned flags)
{
	return mimg_file_zero_range(img->file, at(img, off), len,
				    flags & MIMG_ZERO_MAY_UNMAP);
}

static int raw_discard(struct mimg *img, uint64_t off, uint64_t len)
{
	return mimg_file_punch_hole(img->file, at(img, off), len);
}

static int raw_block_status(struct mimg *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, unsigned *status,
			    uint64_t *host_off)
{
	bool data;
	int r = mimg_file_extent(img->file, at(img, off), len, &data, pnum);
	if (r < 0)
		return r;
	*status = MIMG_BS_ALLOCATED | MIMG_BS_OFFSET_VALID |
		  (data ? MIMG_BS_DATA : MIMG_BS_ZERO);
	*host_off = at(img, off);
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
	const struct raw *s = img->priv;
	if (s->fixed_size)
		return mimg_err(-ENOTSUP, "Cannot resize fixed-size raw disks");
	int r = raw_resize_file(img->file, at(img, img->size), at(img, size),
				prealloc);
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

/* A window of a file holds whatever the file held there. */
static bool raw_has_zero_init(struct mimg *img)
{
	return mimg__raw_is_file(img) &&
	       !((const struct raw *)img->priv)->fixed_size &&
	       mimg_file_is_regular(img->file);
}

const struct mimg_driver mimg_raw_driver = {
	.name = "raw",
	.priv_size = sizeof(struct raw),
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
	.open_opts = raw_open_opts,
};
