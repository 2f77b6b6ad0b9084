/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fixed-budget LRU cache of cluster-sized metadata tables.  Modified
 * entries are written back by their owner at the point the crash-safety
 * ordering allows (refcount blocks right away, L2 tables after a flush),
 * so a dirty entry is never evicted silently: eviction takes clean
 * entries, and when all are dirty the owner's make_room writes them back
 * in order first.
 *
 * A cache may be read without the lock (qcow2_cache_peek): every change
 * of an entry's table or contents then runs between the change callbacks,
 * which keep those readers out; recency is atomic, as they refresh it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "qcow2.h"

int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint32_t size)
{
	memset(c, 0, sizeof(*c));
	c->e = calloc(n, sizeof(*c->e));
	if (!c->e)
		return mimg_err(-ENOMEM, "out of memory for a qcow2 cache");
	c->n = n;
	c->size = size;
	return 0;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	if (!c->e)
		return;
	for (unsigned i = 0; i < c->n; i++)
		free(c->e[i].data);
	free(c->e);
	c->e = NULL;
}

static void change_begin(struct qcow2_cache *c)
{
	if (c->change)
		c->change(c->opaque, true);
}

static void change_end(struct qcow2_cache *c)
{
	if (c->change)
		c->change(c->opaque, false);
}

static uint64_t last_use(const struct qcow2_cache_entry *e)
{
	return atomic_load_explicit(&e->last_use, memory_order_relaxed);
}

/* Mark E as used now. */
static void touch(struct qcow2_cache *c, struct qcow2_cache_entry *e)
{
	uint64_t t = atomic_fetch_add_explicit(&c->tick, 1,
					       memory_order_relaxed);
	atomic_store_explicit(&e->last_use, t + 1, memory_order_relaxed);
}

static struct qcow2_cache_entry *lookup(struct qcow2_cache *c, uint64_t offset)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].offset == offset && c->e[i].data)
			return &c->e[i];
	return NULL;
}

static struct qcow2_cache_entry *victim(struct qcow2_cache *c)
{
	struct qcow2_cache_entry *best = NULL;
	for (unsigned i = 0; i < c->n; i++) {
		struct qcow2_cache_entry *e = &c->e[i];
		if (e->dirty_hi > e->dirty_lo)
			continue;
		if (!e->data || e->offset == 0)
			return e;
		if (!best || last_use(e) < last_use(best))
			best = e;
	}
	return best;
}

static int prepare_slot(struct qcow2_cache *c, struct qcow2_cache_entry **ep)
{
	struct qcow2_cache_entry *e = victim(c);
	if (!e && c->make_room) {
		int r = c->make_room(c->opaque);
		if (r < 0)
			return r;
		e = victim(c);
	}
	if (!e)
		return mimg_err(-EIO, "qcow2: metadata cache full of unwritten "
				      "tables");
	if (!e->data && !(e->data = malloc(c->size)))
		return mimg_err(-ENOMEM, "out of memory for a qcow2 cache");
	e->offset = 0;
	*ep = e;
	return 0;
}

/* The entry caching OFFSET in *EP: 0 when it is cached, 1 when *EP is a
 * free slot for it (its data not loaded yet), or a negative errno. */
static int entry_or_slot(struct qcow2_cache *c, uint64_t offset,
			 struct qcow2_cache_entry **ep)
{
	*ep = lookup(c, offset);
	if (*ep)
		return 0;
	int r = prepare_slot(c, ep);
	return r < 0 ? r : 1;
}

/* Load the table at OFFSET from F into a free slot (a miss). */
static int load(struct qcow2_cache *c, struct mimg_file *f, uint64_t offset,
		const char *what, struct qcow2_cache_entry **ep)
{
	change_begin(c);
	int r = prepare_slot(c, ep);
	if (r == 0)
		r = mimg_file_pread_exact(f, (*ep)->data, c->size, offset,
					  what);
	if (r == 0) {
		(*ep)->offset = offset;
		(*ep)->dirty_lo = (*ep)->dirty_hi = 0;
	}
	change_end(c);
	return r;
}

int qcow2_cache_get(struct qcow2_cache *c, struct mimg_file *f, uint64_t offset,
		    const char *what, uint8_t **datap)
{
	struct qcow2_cache_entry *e = lookup(c, offset);
	int r;
	if (!e && (r = load(c, f, offset, what, &e)) < 0)
		return r;
	touch(c, e);
	*datap = e->data;
	return 0;
}

uint8_t *qcow2_cache_peek(struct qcow2_cache *c, uint64_t offset)
{
	struct qcow2_cache_entry *e = lookup(c, offset);
	if (!e)
		return NULL;
	/* Refresh the recency only when something else was used since:
	 * readers on many CPUs must not all write the entry each time. */
	uint64_t t = atomic_load_explicit(&c->tick, memory_order_relaxed);
	if (last_use(e) != t)
		atomic_store_explicit(&e->last_use, t, memory_order_relaxed);
	return e->data;
}

int qcow2_cache_put_new(struct qcow2_cache *c, uint64_t offset,
			const uint8_t *data, uint8_t **datap)
{
	struct qcow2_cache_entry *e;
	change_begin(c);
	int r = entry_or_slot(c, offset, &e);
	if (r >= 0) {
		memcpy(e->data, data, c->size);
		e->offset = offset;
		e->dirty_lo = e->dirty_hi = 0;
		touch(c, e);
		if (datap)
			*datap = e->data;
		r = 0;
	}
	change_end(c);
	return r;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, const uint8_t *data,
			    uint32_t lo, uint32_t hi)
{
	for (unsigned i = 0; i < c->n; i++) {
		struct qcow2_cache_entry *e = &c->e[i];
		if (e->data != data)
			continue;
		/* Whole 512-byte sectors, for O_DIRECT and atomicity. */
		lo &= ~511u;
		hi = (hi + 511u) & ~511u;
		if (hi > c->size)
			hi = c->size;
		if (e->dirty_hi <= e->dirty_lo) {
			e->dirty_lo = lo;
			e->dirty_hi = hi;
		} else {
			if (lo < e->dirty_lo)
				e->dirty_lo = lo;
			if (hi > e->dirty_hi)
				e->dirty_hi = hi;
		}
		return;
	}
}

int qcow2_cache_writeback(struct qcow2_cache *c, struct mimg_file *f)
{
	for (unsigned i = 0; i < c->n; i++) {
		struct qcow2_cache_entry *e = &c->e[i];
		if (e->dirty_hi <= e->dirty_lo || !e->data)
			continue;
		int r = mimg_file_pwrite(f, e->data + e->dirty_lo,
					 e->dirty_hi - e->dirty_lo,
					 e->offset + e->dirty_lo);
		if (r < 0 && c->keep_on_error)
			return r;
		if (r < 0) {
			/* Forget the entry: the disk copy is authoritative
			 * and memory must not pretend otherwise. */
			change_begin(c);
			e->offset = 0;
			e->dirty_lo = e->dirty_hi = 0;
			change_end(c);
			return r;
		}
		e->dirty_lo = e->dirty_hi = 0;
	}
	return 0;
}

void qcow2_cache_drop(struct qcow2_cache *c, uint64_t offset)
{
	struct qcow2_cache_entry *e = lookup(c, offset);
	if (e) {
		change_begin(c);
		e->offset = 0;
		e->dirty_lo = e->dirty_hi = 0;
		change_end(c);
	}
}

void qcow2_cache_clear(struct qcow2_cache *c)
{
	change_begin(c);
	for (unsigned i = 0; i < c->n; i++) {
		c->e[i].offset = 0;
		c->e[i].dirty_lo = c->e[i].dirty_hi = 0;
	}
	change_end(c);
}
