/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The patched view of file-patched.h.  A read takes the base file's
 * bytes, then lays every patch that meets the range over them in the
 * order they were added; patches are few (a log's worth), and a read
 * outside the span they cover skips them all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "driver.h"
#include "error.h"
#include "file-impl.h"
#include "file-patched.h"
#include "grow.h"
#include "iov.h"

struct patch {
	uint64_t off, len;
	uint8_t *data; /* NULL: zeroes */
};

struct patched_file {
	struct mimg_file f;
	struct mimg_file *base;
	struct patch *p;
	size_t n, cap;
	uint64_t lo, hi; /* the span the patches cover */
	uint64_t min_size;
};

static struct patched_file *patched(struct mimg_file *f)
{
	return (struct patched_file *)f;
}

static int patched_preadv(struct mimg_file *f, const struct iovec *iov,
			  int iovcnt, uint64_t off)
{
	struct patched_file *pf = patched(f);
	size_t len = iov_total(iov, iovcnt);
	int r = mimg_file_preadv(pf->base, iov, iovcnt, off);
	if (r < 0 || len == 0 || off >= pf->hi || off + len <= pf->lo)
		return r;
	for (size_t i = 0; i < pf->n; i++) {
		const struct patch *p = &pf->p[i];
		uint64_t a = max_u64(off, p->off);
		uint64_t b = min_u64(off + len, p->off + p->len);
		if (a >= b)
			continue;
		if (p->data)
			iov_from_buf(iov, iovcnt, (size_t)(a - off),
				     p->data + (a - p->off), (size_t)(b - a));
		else
			iov_memset(iov, iovcnt, (size_t)(a - off), 0,
				   (size_t)(b - a));
	}
	return 0;
}

static int patched_size(struct mimg_file *f, uint64_t *sizep)
{
	struct patched_file *pf = patched(f);
	int r = mimg_file_size(pf->base, sizep);
	if (r == 0)
		*sizep = max_u64(*sizep, pf->min_size);
	return r;
}

static int patched_allocated(struct mimg_file *f, uint64_t *bytesp)
{
	return mimg_file_allocated(patched(f)->base, bytesp);
}

static int patched_flush(struct mimg_file *f)
{
	(void)f;
	return 0;
}

static int patched_close(struct mimg_file *f)
{
	struct patched_file *pf = patched(f);
	struct mimg_file *base = pf->base;
	for (size_t i = 0; i < pf->n; i++)
		free(pf->p[i].data);
	free(pf->p);
	free(pf);
	return base ? mimg_file_close(base) : 0;
}

static const struct mimg_file_ops patched_ops = {
	.preadv = patched_preadv,
	.size = patched_size,
	.allocated = patched_allocated,
	.flush = patched_flush,
	.close = patched_close,
};

int mimg__patched_open(struct mimg_file *base, struct mimg_file **fp)
{
	struct patched_file *pf = calloc(1, sizeof(*pf));
	*fp = NULL;
	if (!pf)
		return mimg_err(-ENOMEM, "out of memory");
	int r = mimg__file_init(&pf->f, &patched_ops, mimg_file_path(base), 0);
	if (r < 0) {
		free(pf);
		return r;
	}
	pf->base = base;
	pf->lo = UINT64_MAX;
	*fp = &pf->f;
	return 0;
}

int mimg__patched_add(struct mimg_file *f, uint64_t off, uint64_t len,
		      const void *data)
{
	struct patched_file *pf = patched(f);
	uint64_t end;
	if (!len)
		return 0;
	if (!ck_add_u64(off, len, &end) || (data && len > SIZE_MAX))
		return mimg_err(-EINVAL, "%s: patch of %llu bytes at %llu",
				f->path, (unsigned long long)len,
				(unsigned long long)off);
	struct patch *grown = mimg__grow(pf->p, &pf->cap, pf->n + 1,
					 sizeof(*grown), 16);
	if (!grown)
		return -ENOMEM;
	pf->p = grown;
	struct patch *p = &pf->p[pf->n];
	*p = (struct patch){off, len, NULL};
	if (data) {
		if (!(p->data = malloc((size_t)len)))
			return mimg_err(-ENOMEM, "out of memory");
		memcpy(p->data, data, (size_t)len);
	}
	pf->n++;
	pf->lo = min_u64(pf->lo, off);
	pf->hi = max_u64(pf->hi, end);
	return 0;
}

void mimg__patched_min_size(struct mimg_file *f, uint64_t size)
{
	struct patched_file *pf = patched(f);
	pf->min_size = max_u64(pf->min_size, size);
}

int mimg__patched_commit(struct mimg_file *f, struct mimg_file **basep)
{
	struct patched_file *pf = patched(f);
	uint64_t size;
	int r = 0;
	for (size_t i = 0; i < pf->n && r == 0; i++) {
		const struct patch *p = &pf->p[i];
		if (p->data) {
			r = mimg_file_pwrite(pf->base, p->data, (size_t)p->len,
					     p->off);
			continue;
		}
		/* Zeroes past the end are there already: a range reaching
		 * beyond it must not grow the file. */
		if ((r = mimg_file_size(pf->base, &size)) == 0 && p->off < size)
			r = mimg__file_zero(pf->base, p->off,
					    min_u64(p->len, size - p->off));
	}
	if (r == 0 && (r = mimg_file_size(pf->base, &size)) == 0 &&
	    size < pf->min_size)
		r = mimg_file_truncate(pf->base, pf->min_size);
	if (r == 0)
		r = mimg_file_flush(pf->base);
	if (r < 0)
		return r;
	*basep = pf->base;
	pf->base = NULL;
	/* The view's release, without closing the base. */
	return mimg_file_close(f);
}
