/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Ordering of metadata on disk, so that a power cut at any point leaks
 * clusters at worst.  Refcount increments of guest data clusters stay
 * in the cache with the L2 entries that use them (other allocations write
 * theirs at once); guest data follows; the sync writes the refcounts,
 * and the modified L2 entries reach the disk only after a flush has made
 * the data and refcounts durable.  References that an L2 update dropped
 * are released only after a second flush has made that update durable.
 * This runs on mimg_flush, when the L2 cache is full of modified tables,
 * and before a check.
 */
#include <errno.h>
#include <stdlib.h>

#include "error.h"
#include "grow.h"
#include "qcow2.h"

#define MAX_PENDING 4096

bool qcow2_cache_has_dirty(const struct qcow2_cache *c)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].dirty_hi > c->e[i].dirty_lo)
			return true;
	return false;
}

int qcow2_metadata_sync(struct qcow2 *s)
{
	bool dirty = qcow2_cache_has_dirty(&s->l2c);
	int r;
	/* Refcounts of newly allocated data clusters wait in the cache
	 * (qcow2_alloc_data_clusters): they go first. */
	if ((r = qcow2_refcount_writeback(s)) < 0)
		return r;
	if (!dirty && !s->npending)
		return 0;
	if (s->data != s->file && (r = mimg_file_flush(s->data)) < 0)
		return r;
	if ((r = mimg_file_flush(s->file)) < 0)
		return r;
	if (dirty) {
		if ((r = qcow2_cache_writeback(&s->l2c, s->file)) < 0)
			return r;
		if (s->npending && (r = mimg_file_flush(s->file)) < 0)
			return r;
	}
	/* Take the list first: freeing may not re-enter it. */
	struct qcow2_pending_free *p = s->pending;
	size_t n = s->npending;
	s->pending = NULL;
	s->npending = s->cappending = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		r = qcow2_free_range(s, p[i].off, p[i].len, p[i].discard);
	free(p);
	return r;
}

int qcow2_defer_free(struct qcow2 *s, uint64_t off, uint64_t len, bool discard)
{
	if (s->npending >= MAX_PENDING) {
		int r = qcow2_metadata_sync(s);
		if (r < 0)
			return r;
	}
	struct qcow2_pending_free *p = mimg__grow(s->pending, &s->cappending,
						  s->npending + 1, sizeof(*p),
						  64);
	if (!p)
		return -ENOMEM;
	s->pending = p;
	s->pending[s->npending++] = (struct qcow2_pending_free){off, len,
								discard};
	return 0;
}

int qcow2_sync_make_room(void *opaque)
{
	return qcow2_metadata_sync(opaque);
}
