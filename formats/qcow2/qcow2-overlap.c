/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Guest data never lands on metadata.  A crafted (or damaged) image can
 * make an L2 entry point at the L1 table, a refcount block or another L2
 * table, or give an active L2 table a refcount of 0 so that the allocator
 * hands it out; a write would then let the guest rewrite the image's
 * metadata.  As qemu does, every data write and every allocation is
 * checked against the metadata in use, and a hit fails with EIO and marks
 * the image corrupt (it can then only be opened read-only or repaired).
 *
 * The header, L1 and refcount table are described by header fields.  The
 * other metadata clusters -- refcount blocks, active L2 tables, the
 * snapshot table and the snapshots' L1 tables, the bitmap directory and
 * bitmap tables -- are kept in a sorted set of cluster indexes, built at
 * open from the tables (so its size is bounded by what the file holds)
 * and updated where metadata is allocated and freed.  Lookups are a
 * binary search.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "error.h"
#include "grow.h"
#include "qcow2.h"

/* Index of the first element >= C. */
static size_t lower_bound(const struct qcow2_meta_set *m, uint64_t c)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->c[mid] < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int add_cluster(struct qcow2_meta_set *m, uint64_t c)
{
	size_t i = lower_bound(m, c);
	if (i < m->n && m->c[i] == c)
		return 0;
	uint64_t *p = mimg__grow(m->c, &m->cap, m->n + 1, sizeof(*p), 64);
	if (!p)
		return -ENOMEM;
	m->c = p;
	memmove(&m->c[i + 1], &m->c[i], (m->n - i) * sizeof(*m->c));
	m->c[i] = c;
	m->n++;
	return 0;
}

int qcow2_meta_add(struct qcow2 *s, uint64_t off, uint64_t len)
{
	if (!s->meta_tracked || len == 0)
		return 0;
	uint64_t first = off >> s->cluster_bits;
	uint64_t last = (off + len - 1) >> s->cluster_bits;
	for (uint64_t c = first; c <= last; c++) {
		int r = add_cluster(&s->meta, c);
		if (r < 0)
			return r;
	}
	return 0;
}

void qcow2_meta_remove_cluster(struct qcow2 *s, uint64_t c)
{
	struct qcow2_meta_set *m = &s->meta;
	size_t i = lower_bound(m, c);
	if (i < m->n && m->c[i] == c) {
		memmove(&m->c[i], &m->c[i + 1], (m->n - i - 1) * sizeof(*m->c));
		m->n--;
	}
}

void qcow2_meta_free(struct qcow2 *s)
{
	free(s->meta.c);
	memset(&s->meta, 0, sizeof(s->meta));
	s->meta_tracked = false;
}

int qcow2_meta_build(struct qcow2 *s)
{
	int r = 0;
	s->meta_tracked = true;
	for (uint64_t i = 0; i < s->reftable_size && r == 0; i++)
		if (s->reftable[i] & QCOW2_OFFSET_MASK)
			r = qcow2_meta_add(s,
					   s->reftable[i] & QCOW2_OFFSET_MASK,
					   s->cluster_size);
	for (uint32_t i = 0; i < s->l1_size && r == 0; i++)
		if (s->l1[i] & QCOW2_OFFSET_MASK)
			r = qcow2_meta_add(s, s->l1[i] & QCOW2_OFFSET_MASK,
					   s->cluster_size);
	if (r == 0 && s->nb_snapshots)
		r = qcow2_meta_add(s, s->snapshots_offset, s->snapshots_size);
	for (uint32_t i = 0; i < s->nb_snapshots && r == 0; i++)
		r = qcow2_meta_add(s, s->snaps[i].l1_offset,
				   (uint64_t)s->snaps[i].l1_size * 8);
	if (r == 0 && s->crypt_method == 2 && s->has_crypt_ext)
		r = qcow2_meta_add(s, s->crypt_hdr_off, s->crypt_hdr_len);
	if (r == 0 && s->bitmaps_loaded && s->nb_bitmaps) {
		r = qcow2_meta_add(s, s->bm_dir_offset, s->bm_dir_size);
		for (uint32_t i = 0; i < s->nb_bitmaps && r == 0; i++)
			r = qcow2_meta_add(s, s->bitmaps[i].table_offset,
					   (uint64_t)s->bitmaps[i].table_size *
						   8);
	}
	if (r < 0)
		qcow2_meta_free(s);
	return r;
}

/* Which metadata [OFF, OFF+LEN) overlaps, or NULL. */
static const char *overlap_what(const struct qcow2 *s, uint64_t off,
				uint64_t len)
{
	uint64_t cs = s->cluster_size;
	struct {
		uint64_t off, len;
		const char *what;
	} fixed[] = {
		{0, cs, "the header"},
		{s->l1_offset, (uint64_t)s->l1_size * 8, "the active L1 table"},
		{s->reftable_offset, (uint64_t)s->reftable_clusters * cs,
		 "the refcount table"},
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (fixed[i].len && off < fixed[i].off + fixed[i].len &&
		    fixed[i].off < off + len)
			return fixed[i].what;
	if (len == 0 || !s->meta_tracked)
		return NULL;
	size_t i = lower_bound(&s->meta, off >> s->cluster_bits);
	if (i < s->meta.n && s->meta.c[i] <= (off + len - 1) >> s->cluster_bits)
		return "a refcount block, an L2 table or other metadata";
	return NULL;
}

int qcow2_meta_guard(struct qcow2 *s, uint64_t off, uint64_t len,
		     const char *action)
{
	const char *what = overlap_what(s, off, len);
	if (!what)
		return 0;
	/* Like qemu, flag the image so that it is repaired before it is
	 * written again; until then this handle refuses writes too. */
	s->incompat |= QCOW2_INCOMPAT_CORRUPT;
	(void)qcow2_write_incompat(s, s->incompat);
	return mimg_err(-EIO,
			"%s: qcow2: preventing %s at host offset 0x%llx "
			"(%llu bytes): it overlaps %s; the image is now "
			"marked corrupt (repair with check -r all)",
			qcow2_path(s), action, (unsigned long long)off,
			(unsigned long long)len, what);
}

int qcow2_refuse_if_corrupt(struct qcow2 *s)
{
	if (!(s->incompat & QCOW2_INCOMPAT_CORRUPT) || !s->meta_tracked)
		return 0;
	return mimg_err(-EIO,
			"%s: qcow2: the image was marked corrupt; "
			"refusing to write (repair with check -r all)",
			qcow2_path(s));
}
