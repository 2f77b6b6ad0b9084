/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_create: find the driver, open the backing file when one is named
 * (for its size and to check it exists, as qemu-img does), then let the
 * driver write the new image.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/luks1.h"
#include "error.h"
#include "image.h"

/* The backing file name is relative to the new image's directory. */
static int open_backing_for_create(const char *path, const char *name,
				   const char *fmt, struct mimg **bp)
{
	char *full;
	if (name[0] == '/' || !strchr(path, '/')) {
		full = strdup(name);
	} else {
		const char *slash = strrchr(path, '/');
		size_t n = (size_t)(slash - path) + 1 + strlen(name) + 1;
		full = malloc(n);
		if (full)
			snprintf(full, n, "%.*s/%s", (int)(slash - path), path,
				 name);
	}
	if (!full)
		return mimg_err(-ENOMEM, "out of memory");
	int r = mimg_open(bp, full, fmt, 0);
	free(full);
	if (r < 0) { /* qemu-img's two lines */
		mimg_err_prefix(r, "%s", path);
		mimg_err_suffix(r, "\nCould not open backing image.");
	}
	return r;
}

/* True when PATH exists and is BACKING or an image below it: creating it
 * would truncate the data the new image is to be based on. */
static bool path_in_chain(const char *path, struct mimg *backing)
{
	struct stat ps, bs;
	if (stat(path, &ps) != 0)
		return false;
	for (struct mimg *b = backing; b; b = mimg_backing(b))
		if (stat(mimg_filename(b), &bs) == 0 &&
		    bs.st_dev == ps.st_dev && bs.st_ino == ps.st_ino)
			return true;
	return false;
}

static int same_name_error(const char *path)
{
	return mimg_err(-EINVAL,
			"%s: Error: Trying to create an image with the same "
			"filename as the backing file",
			path);
}

/* Check OPTS against the driver's create schema before anything is
 * opened or written, with qemu-img's messages. */
static int check_create_opts(const struct mimg_driver *drv, const char *path,
			     const struct mimg_opt *opts, size_t nopts)
{
	size_t n = mimg__opts_count(drv->create_opts);
	struct mimg_optval *vals;
	int r;
	for (size_t i = 0; i < nopts; i++)
		if (!strcmp(opts[i].key, "backing_file")) {
			size_t k = 0;
			while (k < n &&
			       strcmp(drv->create_opts[k].name, "backing_file"))
				k++;
			if (k == n)
				return mimg_err(-ENOTSUP,
						"%s: Backing file not "
						"supported for file format "
						"'%s'",
						path, drv->name);
		}
	if (!(vals = calloc(n + 1, sizeof(*vals))))
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg__opts_validate(drv->create_opts, NULL, opts, nopts, vals);
	free(vals);
	return r < 0 ? mimg_err_prefix(r, "%s", path) : 0;
}

/* The one implementation behind mimg_create, mimg_create_flags and
 * mimg_create_secret. */
static int create_image(const char *path, const char *format, uint64_t size,
			const struct mimg_opt *opts, size_t nopts,
			unsigned flags, const struct mimg_secret *secret)
{
	const struct mimg_driver *drv;
	struct mimg *backing = NULL;
	struct mimg_secret sec;
	const char *bname, *bfmt;
	int r;

	mimg_err_clear();
	if ((r = mimg__check_flags("mimg_create", flags,
				   MIMG_CREATE_ALL_FLAGS)) < 0)
		return r;
	if (secret && (r = mimg__secret_normalize(secret, &sec)) < 0)
		return r;
	if (!format)
		return mimg_err(-EINVAL, "No format given for '%s'", path);
	if (mimg_file_is_nbd_uri(path))
		return mimg_err(-ENOTSUP,
				"%s: images cannot be created on an "
				"NBD export; write into it as an existing "
				"image (convert -n)",
				path);
	if (!(drv = mimg__find_driver(format)))
		return mimg_err(-EINVAL, "Unknown file format '%s'", format);
	if (!drv->create)
		return mimg_err(-ENOTSUP,
				"%s: Format driver '%s' does not support "
				"image creation",
				path, format);
	if ((r = check_create_opts(drv, path, opts, nopts)) < 0)
		return r;
	if (secret && !drv->create_secret)
		return mimg_err(-ENOTSUP,
				"Format '%s' does not take a "
				"secret",
				format);
	if (size > (uint64_t)INT64_MAX)
		return mimg_err(-EFBIG, "Image size must be less than 8 EiB!");

	bname = mimg__opt(opts, nopts, "backing_file");
	bfmt = mimg__opt(opts, nopts, "backing_fmt");
	/* The name itself first, as qemu-img compares it (the file's
	 * identity is compared once the backing chain is open). */
	if (bname && strcmp(bname, path) == 0)
		return same_name_error(path);
	if (bname && *bname && (flags & MIMG_CREATE_UNSAFE_BACKING)) {
		if (size == 0)
			return mimg_err(-EINVAL,
					"%s: Image creation needs a "
					"size parameter",
					path);
		if (!bfmt)
			return mimg_err(-EINVAL,
					"%s: Backing file specified "
					"without backing format",
					path);
	} else if (bname && *bname) {
		r = open_backing_for_create(path, bname, bfmt, &backing);
		if (r < 0)
			return r;
		if (path_in_chain(path, backing)) {
			mimg_close(backing);
			return same_name_error(path);
		}
		if (!bfmt) {
			/* Like qemu-img 7.2: a probed backing format is a
			 * security hazard, so it must be given. */
			r = mimg_err(-EINVAL,
				     "%s: Backing file specified "
				     "without backing format\nDetected format "
				     "of %s.",
				     path, mimg_format(backing));
			mimg_close(backing);
			return r;
		}
		if (size == 0)
			size = mimg_size(backing);
	}
	/* Sizes are whole 512-byte sectors, as qemu-img rounds them. */
	if (size % 512)
		size += 512 - size % 512;
	r = secret ? drv->create_secret(path, size, opts, nopts, backing, &sec)
		   : drv->create(path, size, opts, nopts, backing);
	mimg_close(backing);
	return r;
}

int mimg_create(const char *path, const char *format, uint64_t size,
		const struct mimg_opt *opts, size_t nopts)
{
	return create_image(path, format, size, opts, nopts, 0, NULL);
}

int mimg_create_flags(const char *path, const char *format, uint64_t size,
		      const struct mimg_opt *opts, size_t nopts, unsigned flags)
{
	return create_image(path, format, size, opts, nopts, flags, NULL);
}

int mimg_create_secret(const char *path, const char *format, uint64_t size,
		       const struct mimg_opt *opts, size_t nopts,
		       const struct mimg_secret *secret)
{
	return create_image(path, format, size, opts, nopts, 0, secret);
}

int mimg_luks_header_size(const char *format, const struct mimg_opt *opts,
			  size_t nopts, uint64_t *bytes)
{
	struct luks1_create_params p;
	struct luks1_header h;
	const char *prefix = !format			    ? NULL
			     : strcmp(format, "luks") == 0  ? ""
			     : strcmp(format, "qcow2") == 0 ? "encrypt."
							    : NULL;
	int r;

	if (!format || !bytes)
		return mimg_err(-EINVAL, "mimg_luks_header_size: no %s",
				format ? "result" : "format");
	if (!prefix)
		return mimg_err(-ENOTSUP,
				"%s: the format has no LUKS encryption",
				format);
	if ((r = luks1_create_opts(format, opts, nopts, prefix, &p)) < 0 ||
	    (r = luks1_layout(&p, &h)) < 0)
		return r;
	*bytes = (uint64_t)h.payload_offset * MIMG_CRYPTO_SECTOR;
	return 0;
}
