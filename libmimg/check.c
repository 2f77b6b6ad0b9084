/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_check: dispatch to the driver's consistency check.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
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

#define CHECK_MAX_MESSAGES 1000

void mimg__check_report(struct mimg_check_result *res, const char *fmt, ...)
{
	size_t n = 0;
	char buf[512];
	va_list ap;

	if (!res)
		return;
	while (res->messages && res->messages[n])
		n++;
	if (n >= CHECK_MAX_MESSAGES)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* A report that cannot grow still counts the problem: the counters
	 * are what the exit status comes from. */
	char **m = realloc(res->messages, (n + 2) * sizeof(*m));
	if (!m)
		return;
	res->messages = m;
	if (!(m[n] = strdup(buf)))
		return;
	m[n + 1] = NULL;
}
