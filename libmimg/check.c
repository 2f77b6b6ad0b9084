/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_check: dispatch to the driver's consistency check.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image.h"

int mimg_check(struct mimg *img, unsigned flags,
	       struct mimg_check_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!img->drv->check) {
		res->supported = false;
		return 0;
	}
	if ((flags & (MIMG_CHECK_REPAIR_LEAKS | MIMG_CHECK_REPAIR_ERRORS)) &&
	    img->read_only)
		return mimg_err(-EROFS, "%s: repair needs the image open "
				"read-write", img->filename);
	res->supported = true;
	int r = img->drv->check(img, flags, res);
	if (r == -ENOTSUP) {
		res->supported = false;
		return 0;
	}
	return r;
}

void mimg_check_result_free(struct mimg_check_result *res)
{
	if (!res || !res->messages)
		return;
	for (char **m = res->messages; *m; m++)
		free(*m);
	free(res->messages);
	res->messages = NULL;
}
