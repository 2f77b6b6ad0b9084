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
#include "value.h"

/* The first published layout of struct mimg_check_result. */
#define CHECK_RESULT_MIN_SIZE sizeof(struct mimg_check_result)

static int check_layer(struct mimg *img, unsigned flags,
		       struct mimg_check_result *res)
{
	if (!img->drv->check) {
		res->supported = false;
		return 0;
	}
	if ((flags & (MIMG_CHECK_REPAIR_LEAKS | MIMG_CHECK_REPAIR_ERRORS)) &&
	    img->read_only)
		return mimg_err(-EROFS,
				"%s: repair needs the image open "
				"read-write",
				img->filename);
	res->supported = true;
	int r = img->drv->check(img, flags, res);
	if (r == -ENOTSUP) {
		res->supported = false;
		return 0;
	}
	return r;
}

int mimg_check(struct mimg *img, unsigned flags, struct mimg_check_result *res)
{
	struct mimg_check_result r = {.size = sizeof(r)};

	if (!res || res->size < CHECK_RESULT_MIN_SIZE || res->size > sizeof(r))
		return mimg_err(-EINVAL,
				"struct mimg_check_result: size %zu "
				"(this library takes %zu)",
				res ? res->size : 0, sizeof(r));
	size_t size = res->size;
	memset(res, 0, size);
	res->size = size;
	int rc = mimg__check_flags("mimg_check", flags, MIMG_CHECK_ALL_FLAGS);
	if (rc < 0)
		return rc;
	int ret = check_layer(img, flags, &r);
	memcpy(res, &r, size);
	res->size = size;
	return ret;
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

void mimg__check_vreport(struct mimg_check_result *res, const char *fmt,
			 va_list ap)
{
	char *line;

	if (!res)
		return;
	/* The list is made whole at the first message (NULLs after the
	 * lines), so that the next free place is found by halving: a
	 * damaged image says something for every entry it holds. */
	if (!res->messages &&
	    !(res->messages = calloc(CHECK_MAX_MESSAGES + 1, sizeof(char *))))
		return;
	size_t lo = 0, hi = CHECK_MAX_MESSAGES;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (res->messages[mid])
			lo = mid + 1;
		else
			hi = mid;
	}
	/* A report that cannot grow still counts the problem: the counters
	 * are what the exit status comes from. */
	if (lo >= CHECK_MAX_MESSAGES || vasprintf(&line, fmt, ap) < 0)
		return;
	res->messages[lo] = line;
}

void mimg__check_report(struct mimg_check_result *res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	mimg__check_vreport(res, fmt, ap);
	va_end(ap);
}

/* Add KEY = V to O when V is not zero; false on -ENOMEM. */
static bool add_nonzero(struct mimg_value *o, const char *key, uint64_t v)
{
	return !v || mimg_value_add_uint(o, key, v) != NULL;
}

/*
 * Members come in the order qemu-img prints them (its dictionary's order,
 * observed from qemu-img 7.2), and counters are left out when zero, as
 * qemu-img leaves them out, except check-errors.
 */
int mimg_check_report(const struct mimg_check_result *res, const char *filename,
		      const char *format, struct mimg_value **reportp)
{
	*reportp = NULL;
	if (!res || !filename || !format)
		return mimg_err(-EINVAL, "check report: no result, file name "
					 "or format");
	struct mimg_value *o = mimg_value_new_object();
	bool ok = o != NULL;
	ok = ok && add_nonzero(o, "image-end-offset", res->image_end_offset);
	ok = ok &&
	     add_nonzero(o, "compressed-clusters", res->compressed_clusters);
	ok = ok && add_nonzero(o, "total-clusters", res->total_clusters);
	ok = ok && add_nonzero(o, "corruptions", res->corruptions);
	ok = ok && add_nonzero(o, "corruptions-fixed", res->corruptions_fixed);
	ok = ok && mimg_value_add_uint(o, "check-errors", res->check_errors);
	ok = ok && add_nonzero(o, "leaks", res->leaks);
	ok = ok && add_nonzero(o, "leaks-fixed", res->leaks_fixed);
	ok = ok &&
	     add_nonzero(o, "allocated-clusters", res->allocated_clusters);
	ok = ok && mimg_value_add_str(o, "filename", filename) &&
	     mimg_value_add_str(o, "format", format);
	ok = ok &&
	     add_nonzero(o, "fragmented-clusters", res->fragmented_clusters);
	if (!ok) {
		mimg_value_free(o);
		return mimg_err(-ENOMEM, "check report: out of memory");
	}
	*reportp = o;
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct mimg_host_range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The end of R, saturated: a crafted range may run past 2^64. */
static uint64_t range_end(const struct mimg_host_range *r)
{
	return r->len > UINT64_MAX - r->start ? UINT64_MAX : r->start + r->len;
}

void mimg__host_overlaps(struct mimg_host_range *ranges, size_t n,
			 void (*overlap)(void *opaque,
					 const struct mimg_host_range *prev,
					 const struct mimg_host_range *cur),
			 void *opaque)
{
	if (n < 2)
		return;
	qsort(ranges, n, sizeof(*ranges), by_start);
	/* Against the range reaching furthest so far, not just the one
	 * before: a long range can hold several that follow it. */
	const struct mimg_host_range *far = &ranges[0];
	for (size_t i = 1; i < n; i++) {
		if (ranges[i].start < range_end(far))
			overlap(opaque, far, &ranges[i]);
		if (range_end(&ranges[i]) > range_end(far))
			far = &ranges[i];
	}
}
