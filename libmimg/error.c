/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The thread-local "last error" message behind mimg_errmsg().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "mimg.h"

#define ERRMSG_MAX 1024

static _Thread_local char errmsg[ERRMSG_MAX];

const char *mimg_errmsg(void)
{
	return errmsg[0] ? errmsg : "no error";
}

void mimg_err_clear(void)
{
	errmsg[0] = 0;
}

int mimg__check_flags(const char *call, unsigned flags, unsigned allowed)
{
	if (flags & ~allowed)
		return mimg_err(-EINVAL, "%s: unknown flags %#x", call,
				flags & ~allowed);
	return 0;
}

int mimg_err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return err;
}

int mimg_err_prefix(int err, const char *fmt, ...)
{
	char prefix[ERRMSG_MAX], old[ERRMSG_MAX];
	va_list ap;

	memcpy(old, errmsg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (old[0])
		snprintf(errmsg, sizeof(errmsg), "%s: %s", prefix, old);
	else
		snprintf(errmsg, sizeof(errmsg), "%s: %s", prefix,
			 strerror(-err));
	return err;
}

int mimg_err_suffix(int err, const char *fmt, ...)
{
	size_t used = strnlen(errmsg, sizeof(errmsg));
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg + used, sizeof(errmsg) - used, fmt, ap);
	va_end(ap);
	return err;
}

int mimg_err_errno(int err, const char *fmt, ...)
{
	char ctx[ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	snprintf(errmsg, sizeof(errmsg), "%s: %s", ctx, strerror(-err));
	return err;
}
