/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_set_backing: change the backing file an image's metadata names
 * (what qemu-img rebase -u does, and the last step of a safe rebase).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "error.h"
#include "image.h"

int mimg_set_backing(struct mimg *img, const char *name, const char *fmt)
{
	char *n = NULL, *f = NULL;
	int r;

	mimg_err_clear();
	if (name && !*name)
		name = NULL;
	if (fmt && !*fmt)
		fmt = NULL;
	if (!name && fmt)
		return mimg_err(-EINVAL,
				"%s: a backing format needs a backing "
				"file",
				img->filename);
	if (name && strncmp(name, "json:", 5) == 0)
		return mimg_err(-EINVAL,
				"%s: backing file name '%s' uses the "
				"json: pseudo-protocol, which is never "
				"interpreted",
				img->filename, name);
	if ((r = mimg__check_writable(img, "change the backing file of")) < 0)
		return r;
	if (!img->drv->set_backing)
		return mimg_err(-ENOTSUP,
				"Operation not supported for format "
				"'%s' (changing the backing file of %s)",
				img->drv->name, img->filename);
	if ((name && !(n = strdup(name))) || (fmt && !(f = strdup(fmt)))) {
		free(n);
		return mimg_err(-ENOMEM, "out of memory");
	}
	if ((r = img->drv->set_backing(img, name, fmt)) < 0) {
		free(n);
		free(f);
		return r;
	}
	free(img->backing_name);
	free(img->backing_fmt);
	img->backing_name = n;
	img->backing_fmt = f;
	return 0;
}
