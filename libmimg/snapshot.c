/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Internal snapshots (create, apply, delete) and emptying an image in
 * place: the checks every format shares, then the driver's operation.
 */
#include <errno.h>
#include <stddef.h>

#include "driver.h"
#include "error.h"
#include "image.h"

static int snapshot_op(struct mimg *img, const char *name,
		       int (*op)(struct mimg *, const char *), const char *what)
{
	mimg_err_clear();
	if (!name)
		return mimg_err(-EINVAL, "%s: no snapshot name given",
				img->filename);
	int r = mimg__check_writable(img, what);
	if (r < 0)
		return r;
	if (!op)
		return mimg_err(-ENOTSUP,
				"%s: format %s has no internal "
				"snapshots",
				img->filename, img->drv->name);
	return op(img, name);
}

int mimg_snapshot_create(struct mimg *img, const char *name)
{
	return snapshot_op(img, name, img->drv->snapshot_create,
			   "create a snapshot in");
}

int mimg_snapshot_apply(struct mimg *img, const char *name)
{
	return snapshot_op(img, name, img->drv->snapshot_apply,
			   "apply a snapshot to");
}

int mimg_snapshot_delete(struct mimg *img, const char *name)
{
	return snapshot_op(img, name, img->drv->snapshot_delete,
			   "delete a snapshot from");
}

int mimg_make_empty(struct mimg *img)
{
	mimg_err_clear();
	int r = mimg__check_writable(img, "empty");
	if (r < 0)
		return r;
	if (!img->drv->make_empty)
		return mimg_err(-ENOTSUP, "%s: format %s cannot be emptied",
				img->filename, img->drv->name);
	return img->drv->make_empty(img);
}
