/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Keeping enabled persistent bitmaps right while the image is written,
 * as qemu keeps them: at a writable open every enabled, consistent
 * bitmap is read into memory and flagged in use on disk (durably, before
 * any guest write); each write, zeroing or discard sets the bits of the
 * range in memory; at close the bitmaps are stored and the flag cleared.
 * A crash in between leaves them in use, which readers treat as
 * inconsistent, never as clean.  Disabled bitmaps are not touched.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"

/* Whether B's content may be used and changed. */
static bool usable(const struct qcow2_bitmap *b)
{
	return !(b->flags & QCOW2_BM_IN_USE) &&
	       (b->extra_len == 0 || (b->flags & QCOW2_BM_EXTRA_COMPAT));
}

static int write_flags(struct qcow2 *s, const struct qcow2_bitmap *b,
		       uint32_t flags)
{
	uint8_t f[4];
	st_be32(f, flags);
	return mimg_file_pwrite(s->file, f, 4, s->bm_dir_offset + b->dir_pos);
}

int qcow2_bitmaps_track(struct qcow2 *s)
{
	bool marked = false;
	int r = 0;
	/* Everything is read and checked before the first write. */
	for (uint32_t i = 0; i < s->nb_bitmaps && r == 0; i++) {
		struct qcow2_bitmap *b = &s->bitmaps[i];
		if ((b->flags & QCOW2_BM_AUTO) && usable(b))
			r = qcow2_bitmap_load(s, b);
	}
	for (uint32_t i = 0; i < s->nb_bitmaps && r == 0; i++) {
		struct qcow2_bitmap *b = &s->bitmaps[i];
		if (!(b->flags & QCOW2_BM_AUTO) || !usable(b))
			continue;
		if ((r = write_flags(s, b, b->flags | QCOW2_BM_IN_USE)) < 0)
			break;
		b->tracked = true;
		marked = true;
	}
	if (r == 0 && marked)
		r = mimg_file_flush(s->file);
	s->bm_tracking = marked;
	return r;
}

void qcow2_bitmap_set(struct qcow2_bitmap *b, uint64_t first, uint64_t last)
{
	uint64_t fb = first / 8, lb = last / 8;
	uint8_t head = (uint8_t)(0xffu << (first % 8));
	uint8_t tail = (uint8_t)(0xffu >> (7 - last % 8));
	if (lb >= b->nbytes)
		return;
	if (fb == lb) {
		__atomic_fetch_or(&b->bits[fb], head & tail, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_or(&b->bits[fb], head, __ATOMIC_RELAXED);
		for (uint64_t i = fb + 1; i < lb; i++)
			__atomic_store_n(&b->bits[i], 0xff, __ATOMIC_RELAXED);
		__atomic_fetch_or(&b->bits[lb], tail, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&b->changed, true, __ATOMIC_RELAXED);
}

void qcow2_bitmaps_dirty(struct qcow2 *s, uint64_t off, uint64_t len)
{
	if (!s->bm_tracking || len == 0)
		return;
	for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
		struct qcow2_bitmap *b = &s->bitmaps[i];
		if (b->tracked && b->bits)
			qcow2_bitmap_set(b, off >> b->granularity_bits,
					 (off + len - 1) >>
						 b->granularity_bits);
	}
}

int qcow2_bitmaps_load_all(struct qcow2 *s)
{
	for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
		struct qcow2_bitmap *b = &s->bitmaps[i];
		if (b->extra_len && !(b->flags & QCOW2_BM_EXTRA_COMPAT))
			return mimg_err(-ENOTSUP,
					"%s: qcow2: bitmap '%s' has "
					"extra data this version does not "
					"know; the image cannot be resized",
					qcow2_path(s), b->name);
		int r = qcow2_bitmap_load(s, b);
		if (r < 0)
			return r;
	}
	return 0;
}

int qcow2_bitmaps_resize(struct qcow2 *s)
{
	for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
		struct qcow2_bitmap *b = &s->bitmaps[i];
		uint64_t n = qcow2_bitmap_bytes(s, b->granularity_bits);
		uint8_t *p = realloc(b->bits, n ? n : 1);
		if (!p)
			return mimg_err(-ENOMEM, "out of memory");
		if (n > b->nbytes)
			memset(p + b->nbytes, 0, n - b->nbytes);
		qcow2_bitmap_set_content(s, b, p, n);
		b->changed = true;
	}
	return s->nb_bitmaps ? qcow2_bitmaps_store(s, false) : 0;
}

/* Nothing changed since the last store: only the in-use flags go. */
static int clear_in_use(struct qcow2 *s)
{
	int r = 0;
	for (uint32_t i = 0; i < s->nb_bitmaps && r == 0; i++)
		if (s->bitmaps[i].tracked)
			r = write_flags(s, &s->bitmaps[i], s->bitmaps[i].flags);
	return r;
}

int qcow2_bitmaps_close(struct mimg *img)
{
	struct qcow2 *s = qcow2_of(img);
	if (img->read_only || !s->bitmaps_loaded || !s->bm_tracking)
		return 0;
	/* The data and its mapping reach the disk before the bitmaps that
	 * describe them say they are consistent. */
	int r = qcow2_flush(img);
	if (r < 0)
		return r;
	bool changed = false;
	for (uint32_t i = 0; i < s->nb_bitmaps; i++)
		changed |= s->bitmaps[i].changed;
	pthread_mutex_lock(&s->lock);
	r = changed ? qcow2_bitmaps_store(s, true) : clear_in_use(s);
	if (r == 0) {
		for (uint32_t i = 0; i < s->nb_bitmaps; i++)
			s->bitmaps[i].tracked = false;
		s->bm_tracking = false;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}
