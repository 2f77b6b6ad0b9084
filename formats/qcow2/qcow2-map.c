/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Guest-to-host mapping through the L1 and L2 tables (under s->lock, or
 * for reads of cached tables inside s->map_readers).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"

uint64_t qcow2_l2_entry(const struct qcow2 *s, const uint8_t *l2, uint32_t idx)
{
	return ld_be64(l2 + (size_t)idx * s->l2e_size);
}

uint64_t qcow2_l2_bitmap(const struct qcow2 *s, const uint8_t *l2, uint32_t idx)
{
	return s->extended_l2 ? ld_be64(l2 + (size_t)idx * 16 + 8) : 0;
}

void qcow2_readers_block(struct qcow2 *s)
{
	if (s->readers_blocked++ == 0)
		mimg_readers_write_lock(&s->map_readers);
}

void qcow2_readers_unblock(struct qcow2 *s)
{
	if (--s->readers_blocked == 0)
		mimg_readers_write_unlock(&s->map_readers);
}

void qcow2_l2c_change(void *opaque, bool begin)
{
	if (begin)
		qcow2_readers_block(opaque);
	else
		qcow2_readers_unblock(opaque);
}

void qcow2_set_l2(struct qcow2 *s, uint8_t *l2, uint32_t idx, uint64_t entry,
		  uint64_t bitmap)
{
	uint32_t lo = idx * s->l2e_size;
	qcow2_readers_block(s);
	st_be64(l2 + lo, entry);
	if (s->extended_l2)
		st_be64(l2 + lo + 8, bitmap);
	qcow2_readers_unblock(s);
	qcow2_cache_mark_dirty(&s->l2c, l2, lo, lo + s->l2e_size);
}

void qcow2_compressed_extent(const struct qcow2 *s, uint64_t entry,
			     uint64_t *off, uint64_t *len)
{
	uint64_t o = entry & s->coffset_mask;
	uint64_t sectors = ((entry >> s->csize_shift) & s->csize_mask) + 1;
	*off = o;
	*len = sectors * 512 - (o & 511);
}

/* The file name is asked for only on the error paths: this runs for
 * every cluster a read maps. */
int qcow2_validate_l2_entry(struct qcow2 *s, uint64_t gcluster, uint64_t entry,
			    uint64_t bitmap)
{
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		if (s->data_file_name)
			return mimg_err(-EINVAL,
					"%s: qcow2: compressed cluster "
					"in an image with an external data "
					"file (guest cluster %llu)",
					qcow2_path(s),
					(unsigned long long)gcluster);
		if (s->extended_l2 && bitmap)
			return mimg_err(-EINVAL,
					"%s: qcow2: compressed cluster "
					"%llu has a non-zero subcluster bitmap",
					qcow2_path(s),
					(unsigned long long)gcluster);
		return 0;
	}
	if (entry & QCOW2_L2_RESERVED)
		return mimg_err(-EINVAL,
				"%s: qcow2: L2 entry 0x%llx of guest "
				"cluster %llu has reserved bits set",
				qcow2_path(s), (unsigned long long)entry,
				(unsigned long long)gcluster);
	uint64_t host = entry & QCOW2_OFFSET_MASK;
	if (!is_aligned_u64(host, s->cluster_size))
		return mimg_err(-EINVAL,
				"%s: qcow2: data cluster offset "
				"0x%llx of guest cluster %llu is not "
				"cluster-aligned",
				qcow2_path(s), (unsigned long long)host,
				(unsigned long long)gcluster);
	if (s->extended_l2 && ((bitmap & QCOW2_BITMAP_ALLOC) & (bitmap >> 32)))
		return mimg_err(-EINVAL,
				"%s: qcow2: guest cluster %llu has "
				"subclusters both allocated and zero "
				"(bitmap 0x%llx)",
				qcow2_path(s), (unsigned long long)gcluster,
				(unsigned long long)bitmap);
	/* Allocated subclusters need a host cluster to live in (qemu calls
	 * such an entry invalid; read as data it would expose the header). */
	if (s->extended_l2 && (bitmap & QCOW2_BITMAP_ALLOC) && !host &&
	    !(s->data_file_name && (entry & QCOW2_OFLAG_COPIED)))
		return mimg_err(-EINVAL,
				"%s: qcow2: guest cluster %llu has "
				"allocated subclusters (bitmap 0x%llx) but no "
				"host cluster",
				qcow2_path(s), (unsigned long long)gcluster,
				(unsigned long long)bitmap);
	return 0;
}

static int check_l1_entry(struct qcow2 *s, uint64_t l1e)
{
	uint64_t off = l1e & QCOW2_OFFSET_MASK;
	if (!is_aligned_u64(off, s->cluster_size) || (l1e & QCOW2_L1_RESERVED))
		return mimg_err(-EINVAL,
				"%s: qcow2: L1 entry 0x%llx is "
				"invalid (unaligned or reserved bits)",
				qcow2_path(s), (unsigned long long)l1e);
	return 0;
}

static int load_l2(struct qcow2 *s, uint64_t l1e, uint8_t **l2p)
{
	int r = check_l1_entry(s, l1e);
	if (r < 0)
		return r;
	return qcow2_cache_get(&s->l2c, s->file, l1e & QCOW2_OFFSET_MASK,
			       "L2 table", l2p);
}

/* Set L1 entry I to L1E in memory. */
static void set_l1(struct qcow2 *s, uint64_t i, uint64_t l1e)
{
	qcow2_readers_block(s);
	s->l1[i] = l1e;
	qcow2_readers_unblock(s);
}

static int write_l1_entry(struct qcow2 *s, uint32_t i)
{
	uint8_t b[8];
	st_be64(b, s->l1[i]);
	return mimg_file_pwrite(s->file, b, 8, s->l1_offset + (uint64_t)i * 8);
}

int qcow2_get_l2(struct qcow2 *s, uint64_t gcluster, bool alloc, uint8_t **l2p,
		 uint32_t *idxp)
{
	uint64_t l1i = gcluster >> s->l2_bits;
	int r;
	*l2p = NULL;
	*idxp = (uint32_t)(gcluster & (s->l2_entries - 1));
	if (l1i >= s->l1_size) {
		if (alloc)
			return mimg_err(-EINVAL,
					"%s: qcow2: guest cluster %llu "
					"beyond the L1 table",
					qcow2_path(s),
					(unsigned long long)gcluster);
		return 0;
	}
	uint64_t l1e = s->l1[l1i];
	uint64_t old = l1e & QCOW2_OFFSET_MASK;
	if (old && (!alloc || (l1e & QCOW2_OFLAG_COPIED)))
		return load_l2(s, l1e, l2p);
	if (!alloc)
		return 0;

	/* New L2 table, or a private copy of one shared with a snapshot. */
	uint8_t *tab = calloc(1, s->cluster_size), *old_tab;
	uint64_t noff;
	if (!tab)
		return mimg_err(-ENOMEM, "out of memory");
	if (old) {
		if ((r = load_l2(s, l1e, &old_tab)) < 0)
			goto out;
		memcpy(tab, old_tab, s->cluster_size);
	}
	if ((r = qcow2_alloc_clusters_unwritten(s, 1, &noff)) < 0)
		goto out;
	if ((r = qcow2_meta_add(s, noff, s->cluster_size)) < 0)
		goto out;
	/* The table and its refcount are durable before L1 points at it. */
	struct mimg_file_write w = {tab, s->cluster_size, noff};
	if ((r = qcow2_refcount_durable(s, noff >> s->cluster_bits, 1, &w)) < 0)
		goto out;
	set_l1(s, l1i, noff | QCOW2_OFLAG_COPIED);
	if ((r = write_l1_entry(s, (uint32_t)l1i)) < 0) {
		set_l1(s, l1i, l1e);
		goto out;
	}
	if (old && (r = qcow2_defer_free(s, old, s->cluster_size, false)) < 0)
		goto out;
	r = qcow2_cache_put_new(&s->l2c, noff, tab, l2p);
out:
	free(tab);
	return r;
}

/* Kind and host offset of subcluster SC (or the whole cluster without
 * extended L2) of L2 entry IDX. */
static int unit_kind(struct qcow2 *s, uint64_t gcluster, uint64_t e,
		     uint64_t bm, unsigned sc, enum qcow2_kind *kind,
		     uint64_t *host)
{
	int r = qcow2_validate_l2_entry(s, gcluster, e, bm);
	if (r < 0)
		return r;
	*host = e & QCOW2_OFFSET_MASK;
	if (e & QCOW2_OFLAG_COMPRESSED) {
		*kind = QCOW2_COMPRESSED;
		*host = e & s->coffset_mask;
		return 0;
	}
	bool has_host = *host != 0 ||
			(s->data_file_name && (e & QCOW2_OFLAG_COPIED));
	if (s->extended_l2) {
		if (bm & (1ull << (32 + sc)))
			*kind = QCOW2_ZERO;
		else if (bm & (1ull << sc))
			*kind = QCOW2_DATA;
		else
			*kind = QCOW2_UNALLOCATED;
	} else if (s->version >= 3 && (e & QCOW2_OFLAG_ZERO)) {
		*kind = QCOW2_ZERO;
	} else {
		*kind = has_host ? QCOW2_DATA : QCOW2_UNALLOCATED;
	}
	if (*kind == QCOW2_DATA && !has_host)
		return mimg_err(-EINVAL,
				"%s: qcow2: guest cluster %llu is "
				"allocated at host offset 0",
				qcow2_path(s), (unsigned long long)gcluster);
	return 0;
}

/* LEN cut at the end of the L2 table that maps OFF. */
static uint64_t within_l2(const struct qcow2 *s, uint64_t off, uint64_t len)
{
	uint64_t l2_span = (uint64_t)s->l2_entries << s->cluster_bits;
	return min_u64(len, l2_span - (off & (l2_span - 1)));
}

/* Map [OFF, OFF+LEN) (within one L2 table) through table L2, NULL when
 * the table is not allocated. */
static int map_in_l2(struct qcow2 *s, const uint8_t *l2, uint64_t off,
		     uint64_t len, struct qcow2_map *m)
{
	int r;
	memset(m, 0, sizeof(*m));
	if (!l2) {
		m->kind = QCOW2_UNALLOCATED;
		m->len = len;
		return 0;
	}
	unsigned ub = s->sc_bits; /* unit: subcluster or cluster */
	uint64_t unit = 1ull << ub;
	unsigned per = 1u << (s->cluster_bits - ub);
	uint64_t pos = off, end = off + len;
	enum qcow2_kind kind0 = QCOW2_UNALLOCATED;
	uint64_t expect_host = 0;
	bool first = true;

	while (pos < end) {
		uint64_t c = pos >> s->cluster_bits;
		uint32_t i = (uint32_t)(c & (s->l2_entries - 1));
		uint64_t e = qcow2_l2_entry(s, l2, i);
		uint64_t bm = qcow2_l2_bitmap(s, l2, i);
		unsigned sc = (unsigned)((pos >> ub) & (per - 1));
		enum qcow2_kind k;
		uint64_t host;
		if ((r = unit_kind(s, c, e, bm, sc, &k, &host)) < 0) {
			if (first)
				return r;
			break; /* report the good prefix first */
		}
		uint64_t in_cl = pos & (s->cluster_size - 1);
		/* Zero and unallocated (sub)clusters may lie in a host
		 * cluster (preallocated, or the rest of a cluster with
		 * extended L2: qemu's ZERO_ALLOC and UNALLOCATED_ALLOC):
		 * they then have a host offset too. */
		bool placed = k == QCOW2_DATA ||
			      (k != QCOW2_COMPRESSED && host != 0);
		if (first) {
			kind0 = k;
			m->kind = k;
			if (placed) {
				m->host_off = host + in_cl;
				expect_host = m->host_off;
			} else if (k == QCOW2_COMPRESSED) {
				uint64_t coff, clen;
				qcow2_compressed_extent(s, e, &coff, &clen);
				m->host_off = coff;
				m->csize = clen;
				m->cluster_guest = c << s->cluster_bits;
				/* One compressed cluster per mapping. */
				m->len = min_u64(end,
						 (c + 1) << s->cluster_bits) -
					 off;
				return 0;
			}
			first = false;
		} else {
			if (k != kind0)
				break;
			if (k != QCOW2_DATA && !host != !m->host_off)
				break;
			if (placed && host + in_cl != expect_host)
				break;
			if (k == QCOW2_COMPRESSED)
				break;
		}
		uint64_t step = min_u64(unit - (pos & (unit - 1)), end - pos);
		pos += step;
		expect_host += step;
	}
	m->len = pos - off;
	return 0;
}

int qcow2_map(struct qcow2 *s, uint64_t off, uint64_t len, struct qcow2_map *m)
{
	uint8_t *l2;
	uint32_t idx;
	int r = qcow2_get_l2(s, off >> s->cluster_bits, false, &l2, &idx);
	if (r < 0)
		return r;
	return map_in_l2(s, l2, off, within_l2(s, off, len), m);
}

int qcow2_map_cached(struct qcow2 *s, uint64_t off, uint64_t len,
		     struct qcow2_map *m)
{
	uint64_t l1i = off >> (s->cluster_bits + s->l2_bits);
	uint8_t *l2 = NULL;
	int r;
	if (l1i < s->l1_size && (s->l1[l1i] & QCOW2_OFFSET_MASK)) {
		uint64_t l1e = s->l1[l1i];
		if ((r = check_l1_entry(s, l1e)) < 0)
			return r;
		l2 = qcow2_cache_peek(&s->l2c, l1e & QCOW2_OFFSET_MASK);
		if (!l2)
			return 1;
	}
	return map_in_l2(s, l2, off, within_l2(s, off, len), m);
}

int qcow2_resize_l1(struct qcow2 *s, uint64_t new_size)
{
	int r;
	if (new_size <= s->l1_size)
		return 0;
	if (new_size * 8 > QCOW2_MAX_L1_BYTES)
		return mimg_err(-EFBIG,
				"%s: qcow2: L1 table would exceed 32 "
				"MiB",
				qcow2_path(s));
	uint64_t cs = s->cluster_size;
	uint64_t nclusters = div_round_up_u64(new_size * 8, cs);
	if (new_size <= s->l1_alloc) {
		/* Room in the current clusters: clear the tail on disk, then
		 * publish the new size. */
		size_t bytes = (size_t)(new_size - s->l1_size) * 8;
		uint8_t *z = calloc(1, bytes);
		if (!z)
			return mimg_err(-ENOMEM, "out of memory");
		r = mimg_file_pwrite(s->file, z, bytes,
				     s->l1_offset + (uint64_t)s->l1_size * 8);
		free(z);
		if (r < 0)
			return r;
		if ((r = qcow2_write_l1_fields(s, s->l1_offset,
					       (uint32_t)new_size)) < 0)
			return r;
		qcow2_readers_block(s);
		s->l1_size = (uint32_t)new_size;
		qcow2_readers_unblock(s);
		return 0;
	}
	uint64_t *nl1 = calloc(1, nclusters * cs);
	uint8_t *raw = calloc(1, nclusters * cs);
	uint64_t noff;
	if (!nl1 || !raw) {
		free(nl1);
		free(raw);
		return mimg_err(-ENOMEM, "out of memory");
	}
	memcpy(nl1, s->l1, (size_t)s->l1_size * 8);
	for (uint64_t i = 0; i < new_size; i++)
		st_be64(raw + i * 8, nl1[i]);
	r = qcow2_alloc_clusters(s, nclusters, &noff);
	if (r == 0)
		r = qcow2_metadata_sync(s);
	/* Only the entries in use are written, as qemu does; the rest of
	 * the clusters reads as zeroes. */
	if (r == 0)
		r = mimg_file_pwrite(s->file, raw, (size_t)new_size * 8, noff);
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r == 0)
		r = qcow2_write_l1_fields(s, noff, (uint32_t)new_size);
	free(raw);
	if (r < 0) {
		free(nl1);
		return r;
	}
	uint64_t old_off = s->l1_offset;
	uint64_t old_bytes = div_round_up_u64((uint64_t)s->l1_size * 8, cs) *
			     cs;
	qcow2_readers_block(s);
	free(s->l1);
	s->l1 = nl1;
	s->l1_offset = noff;
	s->l1_size = (uint32_t)new_size;
	s->l1_alloc = (uint32_t)(nclusters * cs / 8);
	qcow2_readers_unblock(s);
	if (old_bytes && old_off)
		r = qcow2_defer_free(s, old_off, old_bytes, false);
	return r;
}
