/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Refcounts and cluster allocation.  Every function here runs under
 * s->lock.  Allocation writes the refcount blocks before returning, so a
 * caller may point metadata at the new clusters right away: a crash can
 * then only leak clusters, never leave a referenced cluster at refcount 0.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"

static uint64_t rb_get(const struct qcow2 *s, const uint8_t *b, uint32_t i)
{
	switch (s->refcount_order) {
	case 3: return b[i];
	case 4: return ld_be16(b + 2 * (size_t)i);
	case 5: return ld_be32(b + 4 * (size_t)i);
	case 6: return ld_be64(b + 8 * (size_t)i);
	default: {
		unsigned bits = s->refcount_bits, per = 8 / bits;
		return (b[i / per] >> ((i % per) * bits)) & s->refcount_max;
	}
	}
}

static void rb_set(const struct qcow2 *s, uint8_t *b, uint32_t i, uint64_t v)
{
	switch (s->refcount_order) {
	case 3: b[i] = (uint8_t)v; break;
	case 4: st_be16(b + 2 * (size_t)i, (uint16_t)v); break;
	case 5: st_be32(b + 4 * (size_t)i, (uint32_t)v); break;
	case 6: st_be64(b + 8 * (size_t)i, v); break;
	default: {
		unsigned bits = s->refcount_bits, per = 8 / bits;
		unsigned sh = (i % per) * bits;
		uint8_t m = (uint8_t)(s->refcount_max << sh);
		b[i / per] = (uint8_t)((b[i / per] & ~m) | ((v << sh) & m));
	}
	}
}

/* Byte range of entry I inside a block, for dirty tracking. */
static void rb_span(const struct qcow2 *s, uint32_t i, uint32_t *lo,
		    uint32_t *hi)
{
	uint64_t bit = (uint64_t)i * s->refcount_bits;
	*lo = (uint32_t)(bit / 8);
	*hi = (uint32_t)((bit + s->refcount_bits + 7) / 8);
}

static int block_offset(struct qcow2 *s, uint64_t rt_index, uint64_t *offp)
{
	uint64_t e = rt_index < s->reftable_size ? s->reftable[rt_index] : 0;
	uint64_t off = e & QCOW2_OFFSET_MASK;
	if (e && (e != off || !is_aligned_u64(off, s->cluster_size)))
		return mimg_err(-EINVAL,
				"%s: qcow2: refcount table entry %llu "
				"(0x%llx) is not a cluster-aligned offset",
				qcow2_path(s), (unsigned long long)rt_index,
				(unsigned long long)e);
	*offp = off;
	return 0;
}

int qcow2_get_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc)
{
	uint64_t off = 0;
	uint8_t *b;
	int r = block_offset(s, cluster >> s->rb_bits, &off);
	if (r < 0)
		return r;
	if (!off) {
		*rc = 0;
		return 0;
	}
	r = qcow2_cache_get(&s->rbc, s->file, off, "refcount block", &b);
	if (r < 0)
		return r;
	*rc = rb_get(s, b, (uint32_t)(cluster & (s->rb_entries - 1)));
	return 0;
}

int qcow2_count_referenced(struct qcow2 *s, uint64_t end, uint64_t limit,
			   uint64_t *count)
{
	uint64_t n = 0, c = 0;
	while (c < end && n < limit) {
		uint64_t off, block = c >> s->rb_bits;
		uint64_t next = (block + 1) << s->rb_bits;
		uint8_t *b;
		int r = block_offset(s, block, &off);
		if (r < 0)
			return r;
		if (!off) { /* no refcount block: all of its clusters free */
			c = next;
			continue;
		}
		r = qcow2_cache_get(&s->rbc, s->file, off, "refcount block",
				    &b);
		if (r < 0)
			return r;
		for (; c < end && c < next && n < limit; c++)
			n += rb_get(s, b,
				    (uint32_t)(c & (s->rb_entries - 1))) != 0;
	}
	*count = n;
	return 0;
}

static int write_table_entry(struct qcow2 *s, uint64_t index)
{
	uint8_t b[8];
	st_be64(b, s->reftable[index]);
	return mimg_file_pwrite(s->file, b, 8, s->reftable_offset + index * 8);
}

/* Whether clusters [C, C+N), free by their refcounts, are metadata in
 * use: then the image's refcounts are wrong; qemu calls this an overlap
 * and so do we, refusing instead of overwriting. */
static int check_overlap(struct qcow2 *s, uint64_t c, uint64_t n)
{
	return qcow2_meta_guard(s, c << s->cluster_bits, n << s->cluster_bits,
				"an allocation of clusters its refcounts call "
				"free");
}

int qcow2_reftable_fits(struct qcow2 *s, uint64_t clusters, const char *what)
{
	if (clusters > QCOW2_MAX_REFTABLE_BYTES >> s->cluster_bits)
		return mimg_err(-EFBIG, "%s: qcow2: %s would exceed 8 MiB",
				qcow2_path(s), what);
	return 0;
}

/* Grow the refcount table so that index NEED exists, placing the new
 * refcount blocks and table at the start of the first uncovered range so
 * that they describe themselves.  The header switches to the new table
 * with one write; the old table is freed afterwards. */
static int grow_reftable(struct qcow2 *s, uint64_t need)
{
	uint64_t cs = s->cluster_size, per_cluster = cs / 8;
	uint64_t B = 1, T, E;
	for (;;) {
		E = max_u64(need + B, s->reftable_size + s->reftable_size / 2);
		T = div_round_up_u64(E, per_cluster);
		E = T * per_cluster;
		int r = qcow2_reftable_fits(s, T, "refcount table");
		if (r < 0)
			return r;
		if (B * s->rb_entries >= B + T)
			break;
		B++;
	}
	uint64_t S = need << s->rb_bits; /* first cluster of the range */
	uint64_t end_cluster = S + B + T;
	if (end_cluster > (QCOW2_OFFSET_MASK >> s->cluster_bits))
		return mimg_err(-EFBIG, "%s: qcow2: image too large",
				qcow2_path(s));
	uint8_t *blk = malloc(cs);
	uint64_t *nt = calloc(1, T * cs);
	uint8_t *raw = malloc(T * cs);
	int r = 0;
	if (!blk || !nt || !raw) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t j = 0; j < B; j++) {
		uint64_t first = (need + j) << s->rb_bits;
		memset(blk, 0, cs);
		for (uint64_t c = S; c < end_cluster; c++)
			if (c >= first && c < first + s->rb_entries)
				rb_set(s, blk, (uint32_t)(c - first), 1);
		r = mimg_file_pwrite(s->file, blk, cs, (S + j) * cs);
		if (r < 0)
			goto out;
	}
	memcpy(nt, s->reftable, s->reftable_size * 8);
	for (uint64_t j = 0; j < B; j++)
		nt[need + j] = (S + j) * cs;
	if ((r = qcow2_meta_add(s, S * cs, B * cs)) < 0)
		goto out;
	for (uint64_t i = 0; i < E; i++)
		st_be64(raw + i * 8, nt[i]);
	if ((r = mimg_file_pwrite(s->file, raw, T * cs, (S + B) * cs)) < 0)
		goto out;
	if ((r = mimg_file_flush(s->file)) < 0)
		goto out;
	if ((r = qcow2_write_reftable_fields(s, (S + B) * cs, (uint32_t)T)) < 0)
		goto out;
	uint64_t old_off = s->reftable_offset;
	uint64_t old_bytes = (uint64_t)s->reftable_clusters * cs;
	qcow2_use_reftable(s, &nt, (S + B) * cs, (uint32_t)T);
	r = qcow2_defer_free(s, old_off, old_bytes, false);
out:
	free(blk);
	free(nt);
	free(raw);
	return r;
}

/* Make sure the refcount block for RT_INDEX exists.  A new block goes to
 * cluster AT (inside the range it covers, so it describes itself; by
 * default the range's first cluster); *CREATED tells the caller that a
 * cluster it may have picked could now be taken. */
static int ensure_block_at(struct qcow2 *s, uint64_t rt_index, uint64_t at,
			   bool *created)
{
	uint64_t off = 0;
	int r;
	if (rt_index >= s->reftable_size) {
		*created = true;
		return grow_reftable(s, rt_index);
	}
	if ((r = block_offset(s, rt_index, &off)) < 0)
		return r;
	if (off)
		return 0;
	uint64_t S = at;
	if (S > (QCOW2_OFFSET_MASK >> s->cluster_bits))
		return mimg_err(-EFBIG, "%s: qcow2: image too large",
				qcow2_path(s));
	if ((r = check_overlap(s, S, 1)) < 0)
		return r;
	uint8_t *blk = calloc(1, s->cluster_size);
	if (!blk)
		return mimg_err(-ENOMEM, "out of memory");
	rb_set(s, blk, (uint32_t)(S & (s->rb_entries - 1)), 1);
	off = S << s->cluster_bits;
	r = mimg_file_pwrite(s->file, blk, s->cluster_size, off);
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r == 0) {
		s->reftable[rt_index] = off;
		r = write_table_entry(s, rt_index);
		if (r < 0)
			s->reftable[rt_index] = 0;
	}
	if (r == 0)
		r = qcow2_cache_put_new(&s->rbc, off, blk, NULL);
	if (r == 0)
		r = qcow2_meta_add(s, off, s->cluster_size);
	free(blk);
	*created = true;
	return r;
}

static int ensure_block(struct qcow2 *s, uint64_t rt_index, bool *created)
{
	return ensure_block_at(s, rt_index, rt_index << s->rb_bits, created);
}

static int set_refcount_nowb(struct qcow2 *s, uint64_t cluster, uint64_t rc)
{
	uint64_t off = 0;
	uint8_t *b;
	bool created = false;
	int r = ensure_block(s, cluster >> s->rb_bits, &created);
	if (r < 0)
		return r;
	if ((r = block_offset(s, cluster >> s->rb_bits, &off)) < 0)
		return r;
	if ((r = qcow2_cache_get(&s->rbc, s->file, off, "refcount block", &b)) <
	    0)
		return r;
	uint32_t i = (uint32_t)(cluster & (s->rb_entries - 1)), lo, hi;
	rb_set(s, b, i, rc);
	rb_span(s, i, &lo, &hi);
	qcow2_cache_mark_dirty(&s->rbc, b, lo, hi);
	if (rc == 0 && cluster < s->free_hint)
		s->free_hint = cluster;
	return 0;
}

void qcow2_use_reftable(struct qcow2 *s, uint64_t **tab, uint64_t off,
			uint32_t clusters)
{
	free(s->reftable);
	s->reftable = *tab;
	*tab = NULL;
	s->reftable_offset = off;
	s->reftable_clusters = clusters;
	s->reftable_size = (uint64_t)clusters * s->cluster_size / 8;
}

int qcow2_refcount_writeback(struct qcow2 *s)
{
	return qcow2_cache_writeback(&s->rbc, s->file);
}

int qcow2_refcount_durable(struct qcow2 *s, uint64_t first, uint64_t n,
			   const struct mimg_file_write *with)
{
	/* A run shorter than a refcount block's reach spans two blocks at
	 * most (qcow2_alloc_clusters keeps runs that short). */
	struct mimg_file_write w[3];
	uint64_t c = first, end = first + n;
	int k = 0;
	if (with)
		w[k++] = *with;
	while (c < end) {
		uint64_t rt = c >> s->rb_bits, off = 0;
		uint64_t stop = min_u64(end, (rt + 1) << s->rb_bits);
		uint32_t lo, hi, unused;
		uint8_t *b;
		int r = block_offset(s, rt, &off);
		if (r < 0)
			return r;
		if (!off || k == 3)
			return mimg_err(
				-EIO,
				"%s: qcow2: refcounts of clusters "
				"%llu+%llu are not in one or two blocks",
				qcow2_path(s), (unsigned long long)first,
				(unsigned long long)n);
		if ((r = qcow2_cache_get(&s->rbc, s->file, off,
					 "refcount block", &b)) < 0)
			return r;
		rb_span(s, (uint32_t)(c & (s->rb_entries - 1)), &lo, &unused);
		rb_span(s, (uint32_t)((stop - 1) & (s->rb_entries - 1)),
			&unused, &hi);
		w[k++] = (struct mimg_file_write){b + lo, hi - lo, off + lo};
		c = stop;
	}
	return mimg_file_pwrite_durable(s->file, w, k);
}

int qcow2_set_refcount(struct qcow2 *s, uint64_t cluster, uint64_t rc)
{
	int r = set_refcount_nowb(s, cluster, rc);
	if (r == 0)
		r = qcow2_refcount_writeback(s);
	return r;
}

/* Allocate N clusters (too many to fit between the refcount blocks that
 * sit at the start of each covered range) in ranges that have no block
 * yet: their blocks go first, then the run, all self-described. */
static int alloc_fresh_region(struct qcow2 *s, uint64_t n, uint64_t *offp)
{
	uint64_t cs = s->cluster_size;
	int r;
	for (;;) {
		uint64_t k = 0;
		for (uint64_t i = 0; i < s->reftable_size; i++)
			if (s->reftable[i])
				k = i + 1;
		uint64_t B = 1;
		while (B * s->rb_entries < B + n)
			B++;
		if (k + B > s->reftable_size) {
			if ((r = grow_reftable(s, k + B - 1)) < 0)
				return r;
			continue;
		}
		uint64_t S = k << s->rb_bits, end = S + B + n;
		if (end > (QCOW2_OFFSET_MASK >> s->cluster_bits))
			return mimg_err(-EFBIG, "%s: qcow2: image too large",
					qcow2_path(s));
		uint8_t *blk = malloc(cs);
		if (!blk)
			return mimg_err(-ENOMEM, "out of memory");
		r = 0;
		for (uint64_t j = 0; j < B && r == 0; j++) {
			uint64_t first = (k + j) << s->rb_bits;
			memset(blk, 0, cs);
			for (uint64_t c = first;
			     c < first + s->rb_entries && c < end; c++)
				rb_set(s, blk, (uint32_t)(c - first), 1);
			r = mimg_file_pwrite(s->file, blk, cs, (S + j) * cs);
			if (r == 0)
				r = mimg_file_flush(s->file);
			if (r == 0) {
				s->reftable[k + j] = (S + j) * cs;
				r = write_table_entry(s, k + j);
			}
			if (r == 0)
				r = qcow2_meta_add(s, (S + j) * cs, cs);
			qcow2_cache_drop(&s->rbc, (S + j) * cs);
		}
		free(blk);
		if (r < 0)
			return r;
		*offp = (S + B) * cs;
		return 0;
	}
}

/* Allocate N clusters; their refcounts are written before returning
 * unless DEFER (then the next metadata sync writes them, before any L2
 * table). */
static int alloc_run(struct qcow2 *s, uint64_t n, uint64_t *offp, bool defer)
{
	uint64_t limit = QCOW2_OFFSET_MASK >> s->cluster_bits;
	int r;
	if (n > s->rb_entries / 4)
		return alloc_fresh_region(s, n, offp);
restart:;
	uint64_t start = s->free_hint, c = start, run = 0;
	uint64_t first_free = UINT64_MAX;
	while (run < n) {
		uint64_t rc;
		if (c + n > limit)
			return mimg_err(-ENOSPC,
					"%s: qcow2: no host offset "
					"left for %llu clusters",
					qcow2_path(s), (unsigned long long)n);
		if ((r = qcow2_get_refcount(s, c, &rc)) < 0)
			return r;
		if (rc) {
			run = 0;
			start = c + 1;
		} else {
			if (first_free == UINT64_MAX)
				first_free = c;
			run++;
		}
		c++;
	}
	for (uint64_t rt = start >> s->rb_bits;
	     rt <= (start + n - 1) >> s->rb_bits; rt++) {
		/* A missing block goes right after the run when the run
		 * covers the start of its range, so runs may cross range
		 * boundaries as they do with qemu. */
		uint64_t at = rt << s->rb_bits;
		bool keep_run = false;
		if (rt < s->reftable_size && at >= start && at < start + n &&
		    ((start + n) >> s->rb_bits) == rt) {
			at = start + n;
			keep_run = true;
		}
		bool created = false;
		if ((r = ensure_block_at(s, rt, at, &created)) < 0)
			return r;
		if (created && !keep_run)
			goto restart;
	}
	if ((r = check_overlap(s, start, n)) < 0)
		return r;
	for (uint64_t i = 0; i < n; i++)
		if ((r = set_refcount_nowb(s, start + i, 1)) < 0)
			return r;
	if (!defer && (r = qcow2_refcount_writeback(s)) < 0)
		return r;
	s->free_hint = first_free == start ? start + n : first_free;
	*offp = start << s->cluster_bits;
	return 0;
}

int qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, uint64_t *offp)
{
	return alloc_run(s, n, offp, false);
}

int qcow2_alloc_data_clusters(struct qcow2 *s, uint64_t n, uint64_t *offp)
{
	return alloc_run(s, n, offp, !s->exit_safe);
}

int qcow2_alloc_clusters_unwritten(struct qcow2 *s, uint64_t n, uint64_t *offp)
{
	return alloc_run(s, n, offp, true);
}

/* Refcounts of guest data clusters: written now in exit-safe mode (a
 * group flush, not a metadata sync, orders them before the L2 entry),
 * else left to the next metadata sync. */
static int data_refcount_writeback(struct qcow2 *s)
{
	return s->exit_safe ? qcow2_refcount_writeback(s) : 0;
}

int qcow2_alloc_bytes(struct qcow2 *s, uint64_t len, uint64_t *offp)
{
	uint64_t cs = s->cluster_size, rc;
	int r;
	if (len == 0 || len > cs)
		return mimg_err(-EINVAL, "qcow2: bad compressed length %llu",
				(unsigned long long)len);
	uint64_t fb = s->free_byte;
	if (fb && (fb & (cs - 1))) {
		uint64_t cur = fb >> s->cluster_bits;
		uint64_t room = cs - (fb & (cs - 1));
		if ((r = qcow2_get_refcount(s, cur, &rc)) < 0)
			return r;
		if (rc == 0 || rc >= s->refcount_max)
			goto fresh;
		if (len <= room) {
			if ((r = set_refcount_nowb(s, cur, rc + 1)) < 0 ||
			    (r = data_refcount_writeback(s)) < 0)
				return r;
			*offp = fb;
			s->free_byte = fb + len;
			return 0;
		}
		/* Spill into the next cluster when it is free. */
		uint64_t next_rc;
		bool created = false;
		if ((r = ensure_block(s, (cur + 1) >> s->rb_bits, &created)) <
		    0)
			return r;
		if ((r = qcow2_get_refcount(s, cur + 1, &next_rc)) < 0)
			return r;
		if (next_rc == 0) {
			if ((r = set_refcount_nowb(s, cur + 1, 1)) < 0 ||
			    (r = set_refcount_nowb(s, cur, rc + 1)) < 0 ||
			    (r = data_refcount_writeback(s)) < 0)
				return r;
			*offp = fb;
			s->free_byte = fb + len;
			return 0;
		}
	}
fresh:;
	uint64_t off = 0;
	if ((r = qcow2_alloc_data_clusters(s, 1, &off)) < 0)
		return r;
	*offp = off;
	s->free_byte = off + len;
	return 0;
}

int qcow2_free_range(struct qcow2 *s, uint64_t off, uint64_t len, bool discard)
{
	if (len == 0)
		return 0;
	uint64_t first = off >> s->cluster_bits;
	uint64_t last = (off + len - 1) >> s->cluster_bits;
	int r;
	for (uint64_t c = first; c <= last; c++) {
		uint64_t rc;
		if ((r = qcow2_get_refcount(s, c, &rc)) < 0)
			return r;
		if (rc == 0)
			return mimg_err(
				-EIO,
				"%s: qcow2: freeing cluster at "
				"0x%llx whose refcount is already 0",
				qcow2_path(s),
				(unsigned long long)(c << s->cluster_bits));
		if ((r = set_refcount_nowb(s, c, rc - 1)) < 0)
			return r;
		if (rc == 1)
			qcow2_meta_remove_cluster(s, c);
	}
	if ((r = qcow2_refcount_writeback(s)) < 0)
		return r;
	if (s->free_byte && (s->free_byte >> s->cluster_bits) >= first &&
	    (s->free_byte >> s->cluster_bits) <= last)
		s->free_byte = 0;
	for (uint64_t c = first; c <= last; c++) {
		uint64_t rc;
		qcow2_cache_drop(&s->l2c, c << s->cluster_bits);
		if (discard && qcow2_get_refcount(s, c, &rc) == 0 && rc == 0)
			(void)mimg_file_punch_hole(s->file,
						   c << s->cluster_bits,
						   s->cluster_size);
	}
	return 0;
}

int qcow2_refcount_add(struct qcow2 *s, uint64_t cluster, int addend,
		       uint64_t *rcp)
{
	uint64_t rc;
	int r = qcow2_get_refcount(s, cluster, &rc);
	if (r < 0)
		return r;
	if (addend < 0 && rc < (uint64_t) - (int64_t)addend)
		return mimg_err(-EIO,
				"%s: qcow2: refcount of cluster at "
				"0x%llx would drop below 0",
				qcow2_path(s),
				(unsigned long long)(cluster
						     << s->cluster_bits));
	if (addend > 0 && s->refcount_max - rc < (uint64_t)addend)
		return mimg_err(-EINVAL,
				"%s: qcow2: refcount of cluster at "
				"0x%llx would exceed %llu",
				qcow2_path(s),
				(unsigned long long)(cluster
						     << s->cluster_bits),
				(unsigned long long)s->refcount_max);
	rc += (uint64_t)(int64_t)addend;
	if (addend && (r = set_refcount_nowb(s, cluster, rc)) < 0)
		return r;
	if (addend < 0 && rc == 0)
		qcow2_meta_remove_cluster(s, cluster);
	*rcp = rc;
	return 0;
}

/* Every change made to a cached refcount block may reach the disk at any
 * time (the callers order them so), so a full cache simply writes back. */
static int rbc_make_room(void *opaque)
{
	return qcow2_refcount_writeback(opaque);
}

int qcow2_refcount_init(struct qcow2 *s)
{
	unsigned n = (unsigned)max_u64(4, (4u << 20) >> s->cluster_bits);
	s->free_hint = 0;
	s->free_byte = 0;
	int r = qcow2_cache_init(&s->rbc, n, s->cluster_size);
	s->rbc.make_room = rbc_make_room;
	s->rbc.opaque = s;
	/* Increments left for the metadata sync count clusters that L2
	 * entries in the cache already use: losing them would let the
	 * allocator hand those clusters out twice. */
	s->rbc.keep_on_error = true;
	return r;
}

/* Whether refcount block B (at cluster BLOCK_C, for reftable index I)
 * counts nothing but, perhaps, itself. */
static bool block_unused(const struct qcow2 *s, const uint8_t *b, uint64_t i,
			 uint64_t block_c)
{
	bool self = (block_c >> s->rb_bits) == i;
	uint32_t own = (uint32_t)(block_c & (s->rb_entries - 1));
	for (uint32_t k = 0; k < s->rb_entries; k++)
		if (rb_get(s, b, k) && !(self && k == own))
			return false;
	return true;
}

int qcow2_shrink_reftable(struct qcow2 *s)
{
	uint64_t cs = s->cluster_size, n = s->reftable_size;
	uint8_t *raw = calloc(1, (size_t)s->reftable_clusters * cs);
	bool *drop = calloc(n + 1, sizeof(*drop));
	int r = 0;
	if (!raw || !drop) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t off = 0;
		uint8_t *b;
		if ((r = block_offset(s, i, &off)) < 0)
			goto out;
		if (!off)
			continue;
		if ((r = qcow2_cache_get(&s->rbc, s->file, off,
					 "refcount block", &b)) < 0)
			goto out;
		drop[i] = block_unused(s, b, i, off >> s->cluster_bits);
		if (!drop[i])
			st_be64(raw + i * 8, s->reftable[i]);
	}
	if ((r = mimg_file_pwrite(s->file, raw, n * 8, s->reftable_offset)) <
		    0 ||
	    (r = mimg_file_flush(s->file)) < 0)
		goto out;
	/* The table no longer names the blocks: release them. */
	for (uint64_t i = 0; i < n && r == 0; i++) {
		if (!drop[i])
			continue;
		uint64_t off = s->reftable[i] & QCOW2_OFFSET_MASK;
		uint64_t c = off >> s->cluster_bits, rc;
		s->reftable[i] = 0;
		qcow2_cache_drop(&s->rbc, off);
		qcow2_meta_remove_cluster(s, c);
		if ((c >> s->rb_bits) != i)
			r = qcow2_refcount_add(s, c, -1, &rc);
		if (c < s->free_hint)
			s->free_hint = c;
		(void)mimg_file_punch_hole(s->file, off, cs);
	}
	if (r == 0)
		r = qcow2_refcount_writeback(s);
out:
	free(raw);
	free(drop);
	return r;
}
