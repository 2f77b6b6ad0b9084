/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Operations on persistent bitmaps (qemu-img bitmap): add, remove,
 * clear, enable, disable, merge, and reading a bitmap's dirty runs.
 * Each change is stored before the call returns (qcow2-bitmap-store.c);
 * messages are qemu's, naming the image where qemu names its node.
 * Not concurrent with other calls on the image.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "error.h"
#include "qcow2.h"

static struct qcow2_bitmap *find(struct qcow2 *s, const char *name)
{
	for (uint32_t i = 0; s->bitmaps_loaded && i < s->nb_bitmaps; i++)
		if (strcmp(s->bitmaps[i].name, name) == 0)
			return &s->bitmaps[i];
	mimg_err(-ENOENT, "Dirty bitmap '%s' not found", name);
	return NULL;
}

/* B exists and may be read and changed (not inconsistent). */
static int check_usable(const struct qcow2_bitmap *b)
{
	if (!b->tracked &&
	    ((b->flags & QCOW2_BM_IN_USE) ||
	     (b->extra_len && !(b->flags & QCOW2_BM_EXTRA_COMPAT))))
		return mimg_err(-EBUSY,
				"Bitmap '%s' is inconsistent and "
				"cannot be used",
				b->name);
	return 0;
}

static int store(struct qcow2 *s)
{
	pthread_mutex_lock(&s->lock);
	int r = qcow2_bitmaps_store(s, false);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int load(struct qcow2 *s, struct qcow2_bitmap *b)
{
	pthread_mutex_lock(&s->lock);
	int r = qcow2_bitmap_load(s, b);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* The bitmap NAME in *OUT, found and usable and, with BITS, with its
 * bits loaded: 0, or -ENOENT or the error that stopped it. */
static int find_usable(struct qcow2 *s, const char *name, bool bits,
		       struct qcow2_bitmap **out)
{
	struct qcow2_bitmap *b = find(s, name);
	int r;
	if (!b)
		return -ENOENT;
	if ((r = check_usable(b)) < 0 || (bits && (r = load(s, b)) < 0))
		return r;
	*out = b;
	return 0;
}

static void update_tracking(struct qcow2 *s)
{
	s->bm_tracking = false;
	for (uint32_t i = 0; i < s->nb_bitmaps; i++)
		s->bm_tracking |= s->bitmaps[i].tracked;
}

static int check_new(struct qcow2 *s, const char *name, uint64_t gran,
		     unsigned *gbits)
{
	const char *path = qcow2_path(s);
	if (gran == 0)
		gran = min_u64(max_u64(s->cluster_size, 4096), 65536);
	if (gran < 512 || !is_pow2_u64(gran) || gran > (1ull << 31))
		return mimg_err(-EINVAL, "Granularity must be power of 2 and "
					 "at least 512");
	*gbits = 0;
	while ((1ull << *gbits) < gran)
		(*gbits)++;
	for (uint32_t i = 0; i < s->nb_bitmaps; i++)
		if (strcmp(s->bitmaps[i].name, name) == 0)
			return mimg_err(-EEXIST, "Bitmap already exists: %s",
					name);
	if (strlen(name) > QCOW2_BM_MAX_NAME)
		return mimg_err(-EINVAL,
				"Can't make bitmap '%s' persistent in "
				"'%s': Name length exceeds maximum (%u "
				"characters)",
				name, path, QCOW2_BM_MAX_NAME);
	if (s->version < 3)
		return mimg_err(-ENOTSUP,
				"Can't make bitmap '%s' persistent "
				"in '%s': Cannot store dirty bitmaps in qcow2 "
				"v2 files",
				name, path);
	if (s->nb_bitmaps >= QCOW2_BM_MAX_COUNT)
		return mimg_err(-ENOSPC,
				"Can't make bitmap '%s' persistent "
				"in '%s': Maximum number of persistent bitmaps "
				"is already reached",
				name, path);
	uint64_t bytes = qcow2_bitmap_bytes(s, *gbits);
	if (bytes == 0)
		return mimg_err(-EINVAL,
				"Can't make bitmap '%s' persistent in "
				"'%s': the image is empty",
				name, path);
	if (div_round_up_u64(bytes, s->cluster_size) * s->cluster_size >
	    (512ull << 20))
		return mimg_err(-EFBIG,
				"Can't make bitmap '%s' persistent in "
				"'%s': Too much space will be occupied by the "
				"bitmap. Use larger granularity",
				name, path);
	return 0;
}

int qcow2_bitmap_add(struct mimg *img, const char *name, uint64_t gran,
		     bool enabled)
{
	struct qcow2 *s = qcow2_of(img);
	unsigned gbits = 0;
	int r = check_new(s, name, gran, &gbits);
	if (r < 0)
		return r;
	struct qcow2_bitmap *arr = realloc(s->bitmaps,
					   (s->nb_bitmaps + 1) * sizeof(*arr));
	if (!arr)
		return mimg_err(-ENOMEM, "out of memory");
	s->bitmaps = arr;
	struct qcow2_bitmap *b = &arr[s->nb_bitmaps];
	memset(b, 0, sizeof(*b));
	b->type = 1;
	b->granularity_bits = gbits;
	b->flags = enabled ? QCOW2_BM_AUTO : 0;
	if (!(b->name = strdup(name)))
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = qcow2_bitmap_load(s, b)) < 0) {
		free(b->name);
		return r;
	}
	b->changed = true;
	b->tracked = enabled;
	s->nb_bitmaps++;
	s->bitmaps_loaded = true;
	update_tracking(s);
	if ((r = store(s)) < 0) {
		/* Not stored: it does not exist. */
		s->nb_bitmaps--;
		free(b->name);
		free(b->bits);
		update_tracking(s);
	}
	return r;
}

int qcow2_bitmap_remove(struct mimg *img, const char *name)
{
	struct qcow2 *s = qcow2_of(img);
	struct qcow2_bitmap *b = find(s, name);
	if (!b)
		return -ENOENT;
	size_t i = (size_t)(b - s->bitmaps);
	free(b->name);
	free(b->extra);
	free(b->bits);
	memmove(b, b + 1, (s->nb_bitmaps - i - 1) * sizeof(*b));
	s->nb_bitmaps--;
	update_tracking(s);
	return store(s);
}

int qcow2_bitmap_clear(struct mimg *img, const char *name)
{
	struct qcow2 *s = qcow2_of(img);
	struct qcow2_bitmap *b;
	int r = find_usable(s, name, true, &b);
	if (r < 0)
		return r;
	memset(b->bits, 0, b->nbytes);
	b->changed = true;
	return store(s);
}

int qcow2_bitmap_enable(struct mimg *img, const char *name, bool enable)
{
	struct qcow2 *s = qcow2_of(img);
	struct qcow2_bitmap *b;
	int r = find_usable(s, name, enable, &b);
	if (r < 0)
		return r;
	if (enable)
		b->flags |= QCOW2_BM_AUTO;
	else
		b->flags &= ~QCOW2_BM_AUTO;
	b->tracked = enable;
	update_tracking(s);
	return store(s);
}

int qcow2_bitmap_merge(struct mimg *img, const char *name, struct mimg *src,
		       const char *src_name)
{
	struct qcow2 *s = qcow2_of(img);
	struct qcow2_bitmap *b;
	int r = find_usable(s, name, true, &b);
	if (r < 0)
		return r;
	uint64_t end = min_u64(mimg_size(src), img->size), off = 0;
	bool any = false;
	while (off < end) {
		uint64_t pnum;
		bool dirty;
		if ((r = mimg_bitmap_status(src, src_name, off, end - off,
					    &pnum, &dirty)) < 0)
			return r;
		if (dirty) {
			qcow2_bitmap_set(b, off >> b->granularity_bits,
					 (off + pnum - 1) >>
						 b->granularity_bits);
			any = true;
		}
		off += pnum;
	}
	return any ? store(s) : 0;
}

/* Bit I of B. */
static bool test_bit(const struct qcow2_bitmap *b, uint64_t i)
{
	return (b->bits[i / 8] >> (i % 8)) & 1;
}

int qcow2_bitmap_status(struct mimg *img, const char *name, uint64_t off,
			uint64_t len, uint64_t *pnum, bool *dirty)
{
	struct qcow2 *s = qcow2_of(img);
	struct qcow2_bitmap *b;
	int r = find_usable(s, name, true, &b);
	if (r < 0)
		return r;
	unsigned g = b->granularity_bits;
	uint64_t i = off >> g, last = (off + len - 1) >> g;
	bool d = test_bit(b, i);
	uint8_t same = d ? 0xff : 0;
	i++;
	while (i <= last) {
		if (i % 8 == 0 && i + 8 <= last + 1 && b->bits[i / 8] == same) {
			i += 8;
			continue;
		}
		if (test_bit(b, i) != d)
			break;
		i++;
	}
	uint64_t run_end = i > last ? off + len : i << g;
	*pnum = run_end - off;
	*dirty = d;
	return 0;
}
