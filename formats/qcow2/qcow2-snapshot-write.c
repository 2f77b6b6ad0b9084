/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Creating, applying and deleting internal snapshots, with the on-disk
 * results qemu's qcow2 driver gives.  A snapshot is a copy of the active
 * L1 table plus one more reference to every L2 table and cluster it
 * reaches (a cluster's refcount counts the L1 tables that reach it, as
 * qemu's check counts them).  OFLAG_COPIED is kept exactly on the active
 * entries whose refcount is 1, so writes copy shared clusters first.
 *
 * Order on disk, so that a crash leaks clusters at worst: refcount
 * increments before the tables that use them; the snapshot table and
 * header after the L1 copy and its references; a switched or dropped L1
 * table before the refcount decrements of what it referred to; the
 * OFLAG_COPIED flags set last (a missing flag only costs a copy).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "grow.h"
#include "qcow2.h"

/* qemu-img keeps names in a 256-byte buffer. */
#define SNAP_NAME_MAX 255

/* Clusters whose refcount reached 0 during a walk: punched afterwards. */
struct freed {
	uint64_t *c;
	size_t n, cap;
};

static int note_freed(struct freed *f, uint64_t c)
{
	uint64_t *p = mimg__grow(f->c, &f->cap, f->n + 1, sizeof(*p), 64);
	if (!p)
		return -ENOMEM;
	f->c = p;
	f->c[f->n++] = c;
	return 0;
}

/* Punch the clusters freed by a walk that are still free (nothing was
 * allocated in between, but a crafted image may list one twice). */
static void punch_freed(struct qcow2 *s, struct freed *f)
{
	for (size_t i = 0; i < f->n; i++) {
		uint64_t rc;
		if (qcow2_get_refcount(s, f->c[i], &rc) == 0 && rc == 0)
			(void)mimg_file_punch_hole(s->file,
						   f->c[i] << s->cluster_bits,
						   s->cluster_size);
	}
	free(f->c);
	memset(f, 0, sizeof(*f));
}

static int ref_cluster(struct qcow2 *s, uint64_t c, int addend, struct freed *f,
		       uint64_t *rcp)
{
	int r = qcow2_refcount_add(s, c, addend, rcp);
	if (r == 0 && addend < 0 && *rcp == 0) {
		if (c < s->free_hint)
			s->free_hint = c;
		r = note_freed(f, c);
	}
	return r;
}

static int ref_range(struct qcow2 *s, uint64_t off, uint64_t len, int addend,
		     struct freed *f)
{
	uint64_t rc;
	for (uint64_t c = off >> s->cluster_bits;
	     len && c <= (off + len - 1) >> s->cluster_bits; c++) {
		int r = ref_cluster(s, c, addend, f, &rc);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One L2 table: ADDEND to every cluster it maps, and OFLAG_COPIED set
 * where the refcount is 1. */
static int update_l2(struct qcow2 *s, uint64_t l2_off, int addend,
		     struct freed *f)
{
	uint8_t *l2;
	int r = qcow2_cache_get(&s->l2c, s->file, l2_off, "L2 table", &l2);
	if (r < 0)
		return r;
	for (uint32_t j = 0; j < s->l2_entries; j++) {
		uint64_t e = qcow2_l2_entry(s, l2, j);
		uint64_t bm = qcow2_l2_bitmap(s, l2, j);
		uint64_t ne = e & ~QCOW2_OFLAG_COPIED, rc = 0;
		if (e & QCOW2_OFLAG_COMPRESSED) {
			uint64_t coff, clen;
			qcow2_compressed_extent(s, e, &coff, &clen);
			if (addend)
				r = ref_range(s, coff, clen, addend, f);
			rc = 2; /* compressed clusters are never rewritten */
		} else if (e & QCOW2_OFFSET_MASK) {
			uint64_t host = e & QCOW2_OFFSET_MASK;
			if (!is_aligned_u64(host, s->cluster_size))
				return mimg_err(-EIO,
						"%s: qcow2: L2 table at "
						"0x%llx maps a cluster at the "
						"unaligned offset 0x%llx",
						qcow2_path(s),
						(unsigned long long)l2_off,
						(unsigned long long)host);
			r = addend ? ref_cluster(s, host >> s->cluster_bits,
						 addend, f, &rc)
				   : qcow2_get_refcount(s,
							host >> s->cluster_bits,
							&rc);
		}
		if (r < 0)
			return r;
		if (rc == 1)
			ne |= QCOW2_OFLAG_COPIED;
		/* The refcount cache may have made room by writing back, but
		 * the L2 table stays where it is: only the L2 cache's own
		 * calls evict, and none ran since the lookup. */
		if (ne != e)
			qcow2_set_l2(s, l2, j, ne, bm);
	}
	return 0;
}

/* Walk L1 (L1_SIZE host-endian entries, updated in place): ADDEND to the
 * refcount of every L2 table and every cluster reachable, and
 * OFLAG_COPIED set exactly where the refcount ends at 1.  *CHANGED tells
 * whether L1 changed.  The refcounts are written back on return; the L2
 * tables stay in the cache for the next metadata sync. */
static int update_refs(struct qcow2 *s, uint64_t *l1, uint32_t l1_size,
		       int addend, struct freed *f, bool *changed)
{
	int r = 0;
	for (uint32_t i = 0; i < l1_size && r == 0; i++) {
		uint64_t e = l1[i], off = e & QCOW2_OFFSET_MASK, rc;
		if (!off)
			continue;
		if (!is_aligned_u64(off, s->cluster_size) ||
		    (e & QCOW2_L1_RESERVED))
			return mimg_err(-EIO,
					"%s: qcow2: L1 entry %u (0x%llx) "
					"is invalid",
					qcow2_path(s), i,
					(unsigned long long)e);
		if ((r = update_l2(s, off, addend, f)) < 0)
			break;
		r = addend ? ref_cluster(s, off >> s->cluster_bits, addend, f,
					 &rc)
			   : qcow2_get_refcount(s, off >> s->cluster_bits, &rc);
		if (r < 0)
			break;
		/* A freed table's pending flag changes must never land on
		 * the cluster's next user. */
		if (rc == 0)
			qcow2_cache_drop(&s->l2c, off);
		uint64_t ne = off | (rc == 1 ? QCOW2_OFLAG_COPIED : 0);
		if (ne != e) {
			l1[i] = ne;
			*changed = true;
		}
	}
	int w = qcow2_refcount_writeback(s);
	return r < 0 ? r : w;
}

/* Drop the references held through L1 (L1_SIZE entries; freed here),
 * make the drops durable, then punch the clusters they freed. */
static int unref_l1(struct qcow2 *s, uint64_t *l1, uint32_t l1_size)
{
	struct freed f = {NULL, 0, 0};
	bool changed = false;
	int r = update_refs(s, l1, l1_size, -1, &f, &changed);
	free(l1);
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r == 0)
		punch_freed(s, &f);
	free(f.c);
	s->free_byte = 0;
	return r;
}

static int write_l1(struct qcow2 *s, uint64_t off, const uint64_t *l1,
		    uint32_t n)
{
	uint8_t *raw = malloc((size_t)n * 8 + 8);
	if (!raw)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++)
		st_be64(raw + (size_t)i * 8, l1[i]);
	int r = n ? mimg_file_pwrite(s->file, raw, (size_t)n * 8, off) : 0;
	free(raw);
	if (r == 0)
		r = mimg_file_flush(s->file);
	return r;
}

/* Clear OFLAG_COPIED throughout the active tables (L2 before L1 on
 * disk) before references are added: a flag must never claim a cluster
 * is private while its refcount already says it is shared.  A cut in
 * between leaves flags missing on private clusters, which only costs a
 * copy. */
static int clear_active_flags(struct qcow2 *s)
{
	bool changed = false;
	int r = 0;
	for (uint32_t i = 0; i < s->l1_size && r == 0; i++) {
		uint64_t off = s->l1[i] & QCOW2_OFFSET_MASK;
		uint8_t *l2;
		if (!off)
			continue;
		if (!is_aligned_u64(off, s->cluster_size) ||
		    (s->l1[i] & QCOW2_L1_RESERVED))
			return mimg_err(-EIO,
					"%s: qcow2: L1 entry %u (0x%llx) "
					"is invalid",
					qcow2_path(s), i,
					(unsigned long long)s->l1[i]);
		if ((r = qcow2_cache_get(&s->l2c, s->file, off, "L2 table",
					 &l2)) < 0)
			break;
		for (uint32_t j = 0; j < s->l2_entries; j++) {
			uint64_t e = qcow2_l2_entry(s, l2, j);
			if (e & QCOW2_OFLAG_COPIED)
				qcow2_set_l2(s, l2, j, e & ~QCOW2_OFLAG_COPIED,
					     qcow2_l2_bitmap(s, l2, j));
		}
		if (s->l1[i] & QCOW2_OFLAG_COPIED) {
			qcow2_readers_block(s);
			s->l1[i] &= ~QCOW2_OFLAG_COPIED;
			qcow2_readers_unblock(s);
			changed = true;
		}
	}
	if (r == 0)
		r = qcow2_metadata_sync(s);
	if (r == 0 && changed)
		r = write_l1(s, s->l1_offset, s->l1, s->l1_size);
	return r;
}

/* Bring the active L1's OFLAG_COPIED flags up to date after refcounts
 * dropped (qemu's walk with addend 0), L2 tables before L1. */
static int fix_copied_flags(struct qcow2 *s)
{
	struct freed f = {NULL, 0, 0};
	bool changed = false;
	int r = update_refs(s, s->l1, s->l1_size, 0, &f, &changed);
	free(f.c);
	if (r == 0)
		r = qcow2_metadata_sync(s);
	if (r == 0 && changed)
		r = write_l1(s, s->l1_offset, s->l1, s->l1_size);
	return r;
}

static uint64_t entry_bytes(const struct qcow2_snapshot *sn)
{
	uint32_t extra = sn->extra_len > 24 ? sn->extra_len : 24;
	return 40ull + extra + strlen(sn->id) + strlen(sn->name);
}

static void put_entry(const struct qcow2 *s, const struct qcow2_snapshot *sn,
		      uint8_t *p)
{
	uint32_t extra = sn->extra_len > 24 ? sn->extra_len : 24;
	size_t idl = strlen(sn->id), nl = strlen(sn->name);
	st_be64(p, sn->l1_offset);
	st_be32(p + 8, sn->l1_size);
	st_be16(p + 12, (uint16_t)idl);
	st_be16(p + 14, (uint16_t)nl);
	st_be32(p + 16, sn->date_sec);
	st_be32(p + 20, sn->date_nsec);
	st_be64(p + 24, sn->vm_clock_nsec);
	/* A VM state too large for the old field reads as none to older
	 * readers instead of a truncated one. */
	st_be32(p + 32, sn->vm_state_size <= UINT32_MAX
				? (uint32_t)sn->vm_state_size
				: 0);
	st_be32(p + 36, extra);
	st_be64(p + 40, sn->vm_state_size);
	st_be64(p + 48,
		sn->disk_size != UINT64_MAX ? sn->disk_size : s->img->size);
	st_be64(p + 56, sn->has_icount ? sn->icount : UINT64_MAX);
	if (sn->extra_len > 24)
		memcpy(p + 64, sn->extra_more, sn->extra_len - 24);
	memcpy(p + 40 + extra, sn->id, idl);
	memcpy(p + 40 + extra + idl, sn->name, nl);
}

/* Write LIST (N entries) as the new snapshot table in fresh clusters,
 * switch the header to it in one write and free the old table.  On
 * success LIST becomes the image's list (the old array is freed, the
 * entries it shares with LIST are not). */
static int write_table(struct qcow2 *s, struct qcow2_snapshot *list, uint32_t n)
{
	uint64_t size = 0, off = 0;
	for (uint32_t i = 0; i < n; i++) {
		ck_align_up_u64(size, 8, &size);
		size += entry_bytes(&list[i]);
	}
	uint64_t alloc = 0;
	ck_align_up_u64(size, 8, &alloc);
	uint8_t *buf = calloc(1, alloc ? alloc : 1);
	if (!buf)
		return mimg_err(-ENOMEM, "out of memory");
	uint64_t pos = 0;
	for (uint32_t i = 0; i < n; i++) {
		ck_align_up_u64(pos, 8, &pos);
		put_entry(s, &list[i], buf + pos);
		pos += entry_bytes(&list[i]);
	}
	int r = 0;
	if (n) {
		uint64_t ncl = div_round_up_u64(size, s->cluster_size);
		r = qcow2_alloc_clusters(s, ncl, &off);
		if (r == 0)
			r = qcow2_meta_add(s, off, size);
		if (r == 0)
			r = mimg_file_pwrite(s->file, buf, size, off);
		if (r == 0)
			r = mimg_file_flush(s->file);
	}
	free(buf);
	uint8_t h[12];
	st_be32(h, n);
	st_be64(h + 4, off);
	if (r == 0)
		r = mimg_file_pwrite(s->file, h, 12, 60);
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r < 0) {
		if (off)
			(void)qcow2_free_range(s, off, size, true);
		return r;
	}
	uint64_t old_off = s->snapshots_offset, old_size = s->snapshots_size;
	bool had = s->nb_snapshots != 0;
	free(s->snaps);
	s->snaps = list;
	s->nb_snapshots = n;
	s->snapshots_offset = off;
	s->snapshots_size = size;
	if (had && old_size)
		r = qcow2_free_range(s, old_off, old_size, true);
	return r;
}

int qcow2_snapshot_table_rewrite(struct qcow2 *s)
{
	if (!s->nb_snapshots)
		return 0;
	struct qcow2_snapshot *list = calloc(s->nb_snapshots, sizeof(*list));
	if (!list)
		return mimg_err(-ENOMEM, "out of memory");
	memcpy(list, s->snaps, s->nb_snapshots * sizeof(*list));
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (list[i].extra_len < 24) /* what put_entry writes */
			list[i].extra_len = 24;
	int r = write_table(s, list, s->nb_snapshots);
	if (r < 0 && s->snaps != list)
		free(list);
	return r;
}

static int find_by_name(const struct qcow2 *s, const char *name)
{
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (strcmp(s->snaps[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The metadata set follows the active tables: rebuild it after they
 * changed wholesale. */
static int rebuild_meta(struct qcow2 *s)
{
	if (!s->meta_tracked)
		return 0;
	qcow2_meta_free(s);
	return qcow2_meta_build(s);
}

/* Run OP on snapshot IDX under the lock, then give the active tables the
 * COPIED flags their new refcounts call for and rebuild the metadata set
 * from them. */
static int change_locked(struct qcow2 *s, int (*op)(struct qcow2 *, uint32_t),
			 uint32_t idx)
{
	pthread_mutex_lock(&s->lock);
	int r = op(s, idx);
	if (r == 0)
		r = fix_copied_flags(s);
	if (r == 0)
		r = rebuild_meta(s);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int refuse_data_file(struct qcow2 *s)
{
	if (s->data_file_name)
		return mimg_err(-ENOTSUP,
				"%s: qcow2: internal snapshots are "
				"not supported with an external data file",
				qcow2_path(s));
	return 0;
}

/* The next free id: one more than the largest numeric id, as qemu
 * numbers them. */
static void next_id(const struct qcow2 *s, char *buf, size_t len)
{
	unsigned long max = 0;
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		unsigned long v = strtoul(s->snaps[i].id, NULL, 10);
		if (v > max)
			max = v;
	}
	snprintf(buf, len, "%lu", max + 1);
}

static int create_locked(struct qcow2 *s, struct qcow2_snapshot *sn)
{
	struct freed f = {NULL, 0, 0};
	uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
	bool changed = false;
	int r;
	if ((r = qcow2_resv_release(s)) < 0 || (r = qcow2_metadata_sync(s)) < 0)
		return r;
	sn->l1_size = s->l1_size;
	sn->l1_offset = 0;
	if (l1_bytes) {
		uint64_t ncl = div_round_up_u64(l1_bytes, s->cluster_size);
		if ((r = qcow2_alloc_clusters(s, ncl, &sn->l1_offset)) < 0 ||
		    (r = qcow2_meta_add(s, sn->l1_offset, l1_bytes)) < 0 ||
		    (r = write_l1(s, sn->l1_offset, s->l1, s->l1_size)) < 0)
			return r;
	}
	r = clear_active_flags(s);
	if (r == 0 &&
	    (r = update_refs(s, s->l1, s->l1_size, 1, &f, &changed)) < 0)
		(void)fix_copied_flags(s); /* the flags the refcounts give */
	free(f.c);
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r == 0)
		r = qcow2_metadata_sync(s);
	if (r == 0 && changed)
		r = write_l1(s, s->l1_offset, s->l1, s->l1_size);
	if (r < 0)
		return r;
	struct qcow2_snapshot *list = calloc(s->nb_snapshots + 1,
					     sizeof(*list));
	if (!list)
		return mimg_err(-ENOMEM, "out of memory");
	if (s->nb_snapshots)
		memcpy(list, s->snaps, s->nb_snapshots * sizeof(*list));
	list[s->nb_snapshots] = *sn;
	if ((r = write_table(s, list, s->nb_snapshots + 1)) < 0) {
		free(list);
		return r;
	}
	memset(sn, 0, sizeof(*sn)); /* owned by the list now */
	return 0;
}

int qcow2_snapshot_create(struct mimg *img, const char *name)
{
	struct qcow2 *s = qcow2_of(img);
	struct qcow2_snapshot sn;
	struct timespec ts;
	char id[24];
	int r;
	if ((r = refuse_data_file(s)) < 0)
		return r;
	if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS)
		return mimg_err(-EFBIG,
				"%s: qcow2: the image already has %u "
				"snapshots",
				qcow2_path(s), s->nb_snapshots);
	memset(&sn, 0, sizeof(sn));
	clock_gettime(CLOCK_REALTIME, &ts);
	next_id(s, id, sizeof(id));
	size_t nl = strlen(name);
	sn.id = strdup(id);
	sn.name = strndup(name, nl > SNAP_NAME_MAX ? SNAP_NAME_MAX : nl);
	if (!sn.id || !sn.name) {
		free(sn.id);
		free(sn.name);
		return mimg_err(-ENOMEM, "out of memory");
	}
	/* Microseconds, as qemu-img takes the time. */
	sn.date_sec = (uint32_t)ts.tv_sec;
	sn.date_nsec = (uint32_t)(ts.tv_nsec / 1000 * 1000);
	sn.disk_size = img->size;
	sn.has_icount = true; /* qemu-img records an icount of 0 */
	sn.extra_len = 24;
	pthread_mutex_lock(&s->lock);
	if ((r = qcow2_refuse_if_corrupt(s)) == 0)
		r = create_locked(s, &sn);
	if (r == 0)
		r = rebuild_meta(s);
	pthread_mutex_unlock(&s->lock);
	free(sn.id);
	free(sn.name);
	return r;
}

/* Snapshot SN's L1 table with ROOM entries or more (see
 * qcow2_load_table). */
static int read_snapshot_l1(struct qcow2 *s, const struct qcow2_snapshot *sn,
			    uint64_t room, uint64_t **l1p)
{
	return qcow2_load_table(s, sn->l1_offset, sn->l1_size, room, l1p,
				"snapshot L1 table");
}

static int apply_locked(struct qcow2 *s, uint32_t idx)
{
	const struct qcow2_snapshot *sn = &s->snaps[idx];
	struct freed f = {NULL, 0, 0};
	uint64_t *snl1 = NULL, *old;
	bool changed = false;
	int r;
	/* The snapshot's L1 becomes the active one: it gets room for all
	 * the entries the active L1's clusters hold. */
	if ((r = qcow2_resv_release(s)) < 0 ||
	    (r = qcow2_metadata_sync(s)) < 0 ||
	    (r = qcow2_resize_l1(s, sn->l1_size)) < 0 ||
	    (r = clear_active_flags(s)) < 0 ||
	    (r = read_snapshot_l1(s, sn, s->l1_alloc, &snl1)) < 0)
		return r;
	/* References of the snapshot's tables first (its own L1 gets the
	 * flags they give, as qemu leaves it); the active copy starts
	 * without flags, the final pass sets them where they are due. */
	r = update_refs(s, snl1, sn->l1_size, 1, &f, &changed);
	free(f.c);
	if (r < 0)
		(void)fix_copied_flags(s); /* the active tables stay */
	if (r == 0 && changed)
		r = write_l1(s, sn->l1_offset, snl1, sn->l1_size);
	for (uint32_t i = 0; i < s->l1_size; i++)
		snl1[i] &= ~QCOW2_OFLAG_COPIED;
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r == 0)
		r = qcow2_metadata_sync(s);
	if (r == 0)
		r = write_l1(s, s->l1_offset, snl1, s->l1_size);
	if (r < 0) {
		free(snl1);
		return r;
	}
	/* The old tables lose the active L1's reference. */
	old = s->l1;
	qcow2_readers_block(s);
	s->l1 = snl1;
	qcow2_readers_unblock(s);
	return unref_l1(s, old, s->l1_size);
}

int qcow2_snapshot_apply(struct mimg *img, const char *name)
{
	struct qcow2 *s = qcow2_of(img);
	int i = qcow2_find_snapshot(s, name), r;
	if (i < 0)
		return i;
	if ((r = refuse_data_file(s)) < 0 ||
	    (r = qcow2_refuse_if_corrupt(s)) < 0)
		return r;
	/* The image takes the snapshot's size back (qemu resizes too). */
	uint64_t want = s->snaps[i].disk_size;
	if (want != UINT64_MAX && want != img->size &&
	    (r = qcow2_truncate(img, want, MIMG_PREALLOC_OFF)) < 0)
		return r;
	return change_locked(s, apply_locked, (uint32_t)i);
}

static int delete_locked(struct qcow2 *s, uint32_t idx)
{
	struct qcow2_snapshot sn = s->snaps[idx];
	uint64_t *l1 = NULL;
	int r;
	if ((r = qcow2_resv_release(s)) < 0 ||
	    (r = qcow2_metadata_sync(s)) < 0 ||
	    (r = read_snapshot_l1(s, &sn, sn.l1_size, &l1)) < 0)
		return r;
	struct qcow2_snapshot *list = calloc(s->nb_snapshots, sizeof(*list));
	if (!list) {
		free(l1);
		return mimg_err(-ENOMEM, "out of memory");
	}
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (i != idx)
			list[n++] = s->snaps[i];
	/* The table stops naming the snapshot first: after that only
	 * leaks are possible. */
	if ((r = write_table(s, list, n)) < 0) {
		free(list);
		free(l1);
		return r;
	}
	free(sn.id);
	free(sn.name);
	free(sn.extra_more);
	r = unref_l1(s, l1, sn.l1_size);
	if (r == 0 && sn.l1_size)
		r = qcow2_free_range(s, sn.l1_offset, (uint64_t)sn.l1_size * 8,
				     true);
	return r;
}

int qcow2_snapshot_delete(struct mimg *img, const char *name)
{
	struct qcow2 *s = qcow2_of(img);
	int i = find_by_name(s, name), r;
	if (i < 0)
		return mimg_err(-ENOENT, "%s: qcow2: no snapshot named '%s'",
				qcow2_path(s), name);
	if ((r = qcow2_refuse_if_corrupt(s)) < 0)
		return r;
	return change_locked(s, delete_locked, (uint32_t)i);
}
