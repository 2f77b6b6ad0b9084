/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_amend: change the format options of an existing image (qemu-img
 * amend).  The options are checked against the driver's amend schema;
 * the driver's amend callback does the work.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "error.h"
#include "image.h"

const char *const mimg__keyslot_states[] = {"active", "inactive", NULL};

int mimg__keyslot_amend(struct mimg *img, uint64_t hdr_off,
			const struct mimg_keyslot_change *c)
{
	/* Where LUKS key-slot changes (add, erase, iteration time) are
	 * applied once libmimg/crypto can rewrite key slots; until then
	 * they are refused, never ignored. */
	(void)hdr_off;
	(void)c;
	return mimg_err(-ENOTSUP, "%s: changing LUKS key slots is not "
			"supported", img->filename);
}

int mimg_amend(struct mimg *img, const struct mimg_opt *opts, size_t nopts,
	       unsigned flags,
	       void (*progress)(void *opaque, uint64_t done, uint64_t total),
	       void *opaque)
{
	const struct mimg_driver *drv;
	struct mimg_optval *vals;
	int r;

	mimg_err_clear();
	if (!img)
		return mimg_err(-EINVAL, "mimg_amend: no image");
	if (flags & ~(unsigned)MIMG_AMEND_ALL_FLAGS)
		return mimg_err(-EINVAL, "mimg_amend: unknown flags 0x%x",
				flags);
	drv = img->drv;
	if (!drv->amend || !drv->amend_opts)
		return mimg_err(-ENOTSUP, "Format driver '%s' does not support "
				"option amendment", drv->name);
	if (img->read_only)
		return mimg_err(-EROFS, "%s: cannot amend an image opened "
				"read-only", img->filename);
	size_t n = mimg__opts_count(drv->amend_opts);
	if (!(vals = calloc(n + 1, sizeof(*vals))))
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg__opts_validate(drv->amend_opts, drv->create_opts, opts, nopts,
				vals);
	if (r == 0)
		r = drv->amend(img, vals, flags, progress, opaque);
	free(vals);
	return r;
}
