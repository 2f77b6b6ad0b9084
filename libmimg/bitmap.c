/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Persistent dirty bitmaps: the argument checks every format shares, then
 * the driver's operation (qcow2 is the only format that has them).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "driver.h"
#include "error.h"
#include "image.h"

/* A change to IMG: NAME given, IMG writable, the format has OP. */
static int prepare(struct mimg *img, const char *name, const void *op)
{
	mimg_err_clear();
	if (!name)
		return mimg_err(-EINVAL, "%s: no bitmap name given",
				img->filename);
	int r = mimg__check_writable(img, "change the bitmaps of");
	if (r < 0)
		return r;
	if (!op)
		return mimg_err(-ENOENT, "Dirty bitmap '%s' not found", name);
	return 0;
}

int mimg_bitmap_add(struct mimg *img, const char *name, uint64_t granularity,
		    unsigned flags)
{
	mimg_err_clear();
	int r = mimg__check_flags("mimg_bitmap_add", flags,
				  MIMG_BITMAP_ALL_FLAGS);
	if (r < 0)
		return r;
	if (name && !*name)
		return mimg_err(-EINVAL, "Bitmap name cannot be empty");
	r = prepare(img, name, img->drv->bitmap_add);
	if (r == -ENOENT)
		return mimg_err(-ENOTSUP,
				"Can't store persistent bitmaps to "
				"%s: Operation not supported",
				img->filename);
	if (r < 0)
		return r;
	return img->drv->bitmap_add(img, name, granularity,
				    !(flags & MIMG_BITMAP_DISABLED));
}

int mimg_bitmap_remove(struct mimg *img, const char *name)
{
	int r = prepare(img, name, img->drv->bitmap_remove);
	return r < 0 ? r : img->drv->bitmap_remove(img, name);
}

int mimg_bitmap_clear(struct mimg *img, const char *name)
{
	int r = prepare(img, name, img->drv->bitmap_clear);
	return r < 0 ? r : img->drv->bitmap_clear(img, name);
}

int mimg_bitmap_enable(struct mimg *img, const char *name, bool enable)
{
	int r = prepare(img, name, img->drv->bitmap_enable);
	return r < 0 ? r : img->drv->bitmap_enable(img, name, enable);
}

int mimg_bitmap_merge(struct mimg *img, const char *name, struct mimg *src,
		      const char *src_name)
{
	int r = prepare(img, name, img->drv->bitmap_merge);
	if (r < 0)
		return r;
	if (!src_name)
		return mimg_err(-EINVAL, "%s: no source bitmap name given",
				img->filename);
	return img->drv->bitmap_merge(img, name, src ? src : img, src_name);
}

int mimg_bitmap_status(struct mimg *img, const char *name, uint64_t off,
		       uint64_t len, uint64_t *pnum, bool *dirty)
{
	mimg_err_clear();
	if (!name || !pnum || !dirty)
		return mimg_err(-EINVAL, "mimg_bitmap_status: NULL argument");
	if (len == 0 || off > img->size || len > img->size - off)
		return mimg_err(-EINVAL,
				"%s: bitmap range %llu+%llu is not "
				"within the image",
				img->filename, (unsigned long long)off,
				(unsigned long long)len);
	if (!img->drv->bitmap_status)
		return mimg_err(-ENOENT, "Dirty bitmap '%s' not found", name);
	return img->drv->bitmap_status(img, name, off, len, pnum, dirty);
}
