/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qemu-img amend for qcow2: compat 0.10 <-> 1.1, lazy refcounts, the
 * refcount width, the size, data_file/data_file_raw where qemu allows
 * them; the backing file only as it is (qemu-img 7.2 sends other
 * changes to rebase).  The steps run in qemu's order (upgrade first,
 * downgrade last) with its messages.  Each step leaves a consistent
 * image: data before the L2 entries that use it, the refcount structure
 * switched by one header write.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"
#include "crypto/luks1.h"

enum {
	QA_BACKING_FILE,
	QA_BACKING_FMT,
	QA_COMPAT,
	QA_DATA_FILE,
	QA_DATA_FILE_RAW,
	QA_ENC_ITER_TIME,
	QA_ENC_KEYSLOT,
	QA_ENC_NEW_SECRET,
	QA_ENC_OLD_SECRET,
	QA_ENC_STATE,
	QA_LAZY,
	QA_REFCOUNT_BITS,
	QA_SIZE,
	QA_COUNT
};

/* qemu-img 7.2's qcow2 amend options and help texts, sorted by name. */
const struct mimg_optdesc qcow2_amend_opts[] = {
	QCOW2_OPT_BACKING_FILE,
	QCOW2_OPT_BACKING_FMT,
	{"compat", MIMG_OPTK_STRING,
	 "Compatibility level (v2 [0.10] or v3 [1.1])", NULL, NULL, NULL, 0},
	QCOW2_OPT_DATA_FILE,
	QCOW2_OPT_DATA_FILE_RAW,
	MIMG_OPT_LUKS_ITER_TIME("encrypt.iter-time"),
	MIMG_OPT_LUKS_KEYSLOT("encrypt.keyslot"),
	MIMG_OPT_LUKS_NEW_SECRET("encrypt.new-secret"),
	MIMG_OPT_LUKS_OLD_SECRET("encrypt.old-secret"),
	MIMG_OPT_LUKS_STATE("encrypt.state"),
	QCOW2_OPT_LAZY_REFCOUNTS,
	QCOW2_OPT_REFCOUNT_BITS,
	MIMG_OPT_SIZE,
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};
MIMG_OPTS_INDEXED(qcow2_amend_opts, QA_COUNT);

/* What the options ask, checked before anything is written. */
struct amend_plan {
	uint32_t version;
	bool lazy;
	unsigned refcount_order;
	uint64_t new_size;     /* 0: unchanged */
	const char *data_file; /* NULL: unchanged */
	bool clear_data_raw;
};

static bool same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int plan_amend(struct qcow2 *s, const struct mimg_optval *v,
		      struct amend_plan *p)
{
	struct mimg *img = s->img;
	memset(p, 0, sizeof(*p));
	p->version = s->version;
	p->lazy = (s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
	p->refcount_order = s->refcount_order;
	if (v[QA_COMPAT].set) {
		const char *c = v[QA_COMPAT].s;
		if (!strcmp(c, "0.10") || !strcmp(c, "v2"))
			p->version = 2;
		else if (!strcmp(c, "1.1") || !strcmp(c, "v3"))
			p->version = 3;
		else
			return mimg_err(-EINVAL,
					"Unknown compatibility level "
					"%s",
					c);
	}
	if (v[QA_SIZE].set)
		p->new_size = v[QA_SIZE].u;
	/* Key slots change in qcow2_amend, through mimg__keyslot_amend. */
	for (int i = QA_ENC_ITER_TIME; i <= QA_ENC_STATE; i++)
		if (v[i].set && s->crypt_method != 2)
			return mimg_err(-EINVAL,
					"Can't amend encryption "
					"options - encryption not present");
	if (v[QA_LAZY].set)
		p->lazy = v[QA_LAZY].b;
	if (v[QA_REFCOUNT_BITS].set) {
		uint64_t bits = v[QA_REFCOUNT_BITS].u;
		if (bits == 0 || bits > 64 || !is_pow2_u64(bits))
			return mimg_err(-EINVAL,
					"Refcount width must be a power "
					"of two and may not exceed 64 bits");
		p->refcount_order = (unsigned)__builtin_ctzll(bits);
	}
	if (v[QA_DATA_FILE].set) {
		if (!s->data_file_name)
			return mimg_err(-EINVAL,
					"data-file can only be set for "
					"images that use an external data "
					"file");
		/* qemu would drop the name and leave an image that needs
		 * it given at every open. */
		if (!*v[QA_DATA_FILE].s)
			return mimg_err(-EINVAL,
					"%s: qcow2: the data file "
					"name cannot be removed",
					qcow2_path(s));
		p->data_file = v[QA_DATA_FILE].s;
	}
	if (v[QA_DATA_FILE_RAW].set) {
		if (v[QA_DATA_FILE_RAW].b && !s->data_raw)
			return mimg_err(-EINVAL, "data-file-raw cannot be set "
						 "on existing images");
		p->clear_data_raw = !v[QA_DATA_FILE_RAW].b;
	}
	if ((v[QA_BACKING_FILE].set || v[QA_BACKING_FMT].set) &&
	    (!same_text(v[QA_BACKING_FILE].s, img->backing_name) ||
	     !same_text(v[QA_BACKING_FMT].s, img->backing_fmt)))
		return mimg_err(-EINVAL, "Cannot amend the backing file\nYou "
					 "can use 'qemu-img rebase' instead.");
	if (p->refcount_order != s->refcount_order && p->version < 3 &&
	    p->refcount_order != 4)
		return mimg_err(-EINVAL,
				"Refcount widths other than 16 bits "
				"require compatibility level 1.1 or above (use "
				"compat=1.1 or greater)");
	if (p->lazy && !(s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS) &&
	    p->version < 3)
		return mimg_err(-EINVAL,
				"Lazy refcounts only supported with "
				"compatibility level 1.1 and above (use "
				"compat=1.1 or greater)");
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Walking L2 tables (for the downgrade)                                   */

/* Call FN for every L2 entry of the L1 table L1 (host-endian, SIZE
 * entries); stops at FN's first non-zero return. */
static int walk_entries(struct qcow2 *s, const uint64_t *l1, uint32_t size,
			int (*fn)(struct qcow2 *s, uint64_t entry, void *arg),
			void *arg)
{
	for (uint32_t i = 0; i < size; i++) {
		uint64_t off = l1[i] & QCOW2_OFFSET_MASK;
		uint8_t *l2;
		int r;
		if (!off)
			continue;
		if (!is_aligned_u64(off, s->cluster_size))
			return mimg_err(-EINVAL,
					"%s: qcow2: L2 table offset "
					"0x%llx is not cluster-aligned",
					qcow2_path(s), (unsigned long long)off);
		if ((r = qcow2_cache_get(&s->l2c, s->file, off, "L2 table",
					 &l2)) < 0)
			return r;
		for (uint32_t j = 0; j < s->l2_entries; j++)
			if ((r = fn(s, qcow2_l2_entry(s, l2, j), arg)) != 0)
				return r;
	}
	return 0;
}

/* Snapshot I's L1 table, host-endian, malloc'ed. */
static int load_snapshot_l1(struct qcow2 *s, uint32_t i, uint64_t **l1p)
{
	uint32_t n = s->snaps[i].l1_size;
	uint64_t *l1;
	int r;
	if ((uint64_t)n * 8 > QCOW2_MAX_L1_BYTES)
		return mimg_err(-EINVAL,
				"%s: qcow2: snapshot L1 size %u too "
				"large",
				qcow2_path(s), n);
	if (!(l1 = calloc(n ? n : 1, 8)))
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg_file_pread(s->file, l1, (size_t)n * 8, s->snaps[i].l1_offset);
	for (uint32_t k = 0; r == 0 && k < n; k++)
		l1[k] = ld_be64(&l1[k]);
	if (r < 0) {
		free(l1);
		return r;
	}
	*l1p = l1;
	return 0;
}

/* The same for every snapshot's L1 table. */
static int walk_snapshots(struct qcow2 *s,
			  int (*fn)(struct qcow2 *s, uint64_t entry, void *arg),
			  void *arg)
{
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		uint64_t *l1;
		int r = load_snapshot_l1(s, i, &l1);
		if (r < 0)
			return r;
		r = walk_entries(s, l1, s->snaps[i].l1_size, fn, arg);
		free(l1);
		if (r != 0)
			return r;
	}
	return 0;
}

static int is_compressed(struct qcow2 *s, uint64_t e, void *arg)
{
	(void)s;
	(void)arg;
	return (e & QCOW2_OFLAG_COMPRESSED) ? 1 : 0;
}

static int is_zero(struct qcow2 *s, uint64_t e, void *arg)
{
	(void)s;
	(void)arg;
	return !(e & QCOW2_OFLAG_COMPRESSED) && (e & QCOW2_OFLAG_ZERO) ? 1 : 0;
}

static int any_entry(struct qcow2 *s,
		     int (*fn)(struct qcow2 *s, uint64_t entry, void *arg))
{
	int r = walk_entries(s, s->l1, s->l1_size, fn, NULL);
	if (r == 0)
		r = walk_snapshots(s, fn, NULL);
	return r;
}

/* Expand the zero entries of the L2 table at OFF.  A table shared by
 * several L1 tables (snapshots) has a refcount above 1: the clusters it
 * gains get that refcount too, and the other tables see the same
 * (unchanged) content. */
static int expand_l2(struct qcow2 *s, uint64_t off)
{
	uint64_t cs = s->cluster_size, l2rc;
	uint8_t *l2;
	int r;
	if (!is_aligned_u64(off, cs))
		return mimg_err(-EINVAL,
				"%s: qcow2: L2 table offset 0x%llx is "
				"not cluster-aligned",
				qcow2_path(s), (unsigned long long)off);
	if ((r = qcow2_get_refcount(s, off / cs, &l2rc)) < 0)
		return r;
	for (uint32_t j = 0; j < s->l2_entries; j++) {
		uint64_t e, host;
		if ((r = qcow2_cache_get(&s->l2c, s->file, off, "L2 table",
					 &l2)) < 0)
			return r;
		e = qcow2_l2_entry(s, l2, j);
		if (!is_zero(s, e, NULL))
			continue;
		host = e & QCOW2_OFFSET_MASK;
		if (!host && !s->img->backing_name) {
			qcow2_set_l2(s, l2, j, 0, 0);
			continue;
		}
		if (!host) {
			if ((r = qcow2_alloc_clusters(s, 1, &host)) < 0 ||
			    (l2rc > 1 &&
			     (r = qcow2_set_refcount(s, host / cs, l2rc)) < 0))
				return r;
			e = host | (l2rc == 1 ? QCOW2_OFLAG_COPIED : 0);
		}
		if ((r = qcow2_meta_guard(s, host, cs,
					  "zero cluster expansion")) < 0 ||
		    (r = mimg__file_zero(s->file, host, cs)) < 0)
			return r;
		if ((r = qcow2_cache_get(&s->l2c, s->file, off, "L2 table",
					 &l2)) < 0)
			return r;
		qcow2_set_l2(s, l2, j, e & ~QCOW2_OFLAG_ZERO, 0);
	}
	/* Data and refcounts on disk before the table (metadata sync). */
	return qcow2_metadata_sync(s);
}

static int expand_l1(struct qcow2 *s, const uint64_t *l1, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++) {
		uint64_t off = l1[i] & QCOW2_OFFSET_MASK;
		uint8_t *l2;
		bool has_zero = false;
		int r;
		if (!off)
			continue;
		if ((r = qcow2_cache_get(&s->l2c, s->file, off, "L2 table",
					 &l2)) < 0)
			return r;
		for (uint32_t j = 0; j < s->l2_entries && !has_zero; j++)
			has_zero = is_zero(s, qcow2_l2_entry(s, l2, j), NULL);
		if (has_zero && (r = expand_l2(s, off)) < 0)
			return r;
	}
	return 0;
}

/* v2 has no zero flag: zero clusters become unallocated ones (nothing
 * below) or data clusters of zeroes, in the image and its snapshots. */
static int expand_zero_clusters(struct qcow2 *s)
{
	int r = expand_l1(s, s->l1, s->l1_size);
	for (uint32_t i = 0; r == 0 && i < s->nb_snapshots; i++) {
		uint64_t *l1;
		if ((r = load_snapshot_l1(s, i, &l1)) < 0)
			return r;
		r = expand_l1(s, l1, s->snaps[i].l1_size);
		free(l1);
	}
	return r;
}

/* ---------------------------------------------------------------------- */
/* The steps                                                               */

static int upgrade(struct qcow2 *s)
{
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (s->snaps[i].disk_size == UINT64_MAX)
			return mimg_err(-ENOTSUP,
					"%s: qcow2: upgrading an image "
					"whose internal snapshots lack the "
					"version 3 fields is not supported",
					qcow2_path(s));
	s->version = 3;
	s->incompat = s->compat = s->autoclear = 0;
	int r = qcow2_rewrite_header(s);
	if (r < 0)
		s->version = 2;
	return r;
}

static int make_clean(struct qcow2 *s)
{
	if (!(s->incompat & QCOW2_INCOMPAT_DIRTY))
		return 0;
	pthread_mutex_unlock(&s->lock);
	int r = qcow2_rebuild_dirty(s);
	pthread_mutex_lock(&s->lock);
	return r;
}

static int downgrade(struct qcow2 *s)
{
	struct mimg *img = s->img;
	int r;
	if (s->refcount_order != 4)
		return mimg_err(-ENOTSUP, "compat=0.10 requires "
					  "refcount_bits=16");
	if (s->data_file_name)
		return mimg_err(-ENOTSUP, "Cannot downgrade an image with a "
					  "data file");
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (s->snaps[i].vm_state_size > UINT32_MAX ||
		    s->snaps[i].disk_size != img->size)
			return mimg_err(-ENOTSUP, "Internal snapshots prevent "
						  "downgrade of image");
	if ((r = make_clean(s)) < 0)
		return r;
	uint64_t bad = s->incompat & ~QCOW2_INCOMPAT_COMPRESSION;
	if (bad)
		return mimg_err(-ENOTSUP,
				"Cannot downgrade an image with "
				"incompatible features 0x%llx set",
				(unsigned long long)bad);
	s->compat = 0;
	s->autoclear = 0;
	if ((r = expand_zero_clusters(s)) < 0)
		return r;
	if (s->incompat & QCOW2_INCOMPAT_COMPRESSION) {
		if ((r = any_entry(s, is_compressed)) < 0)
			return r;
		if (r > 0)
			return mimg_err(-ENOTSUP,
					"Cannot downgrade an image "
					"with zstd compression type and "
					"existing compressed clusters");
		s->incompat &= ~QCOW2_INCOMPAT_COMPRESSION;
		s->compression = QCOW2_COMPRESS_ZLIB;
	}
	s->version = 2;
	if ((r = qcow2_rewrite_header(s)) < 0)
		s->version = 3;
	return r;
}

static int set_lazy(struct qcow2 *s, bool on)
{
	int r;
	if (!on && (r = make_clean(s)) < 0)
		return r;
	uint64_t old = s->compat;
	if (on)
		s->compat |= QCOW2_COMPAT_LAZY_REFCOUNTS;
	else
		s->compat &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
	if ((r = qcow2_rewrite_header(s)) < 0)
		s->compat = old;
	return r;
}

static int set_data_file(struct qcow2 *s, const struct amend_plan *p)
{
	char *old = s->data_file_name, *name = NULL;
	uint64_t old_auto = s->autoclear;
	int r;
	if (p->data_file && !(name = strdup(p->data_file)))
		return mimg_err(-ENOMEM, "out of memory");
	if (name)
		s->data_file_name = name;
	if (p->clear_data_raw)
		s->autoclear &= ~QCOW2_AUTOCLEAR_DATA_FILE_RAW;
	if ((r = qcow2_rewrite_header(s)) < 0) {
		s->data_file_name = old;
		s->autoclear = old_auto;
		free(name);
		return r;
	}
	if (name)
		free(old);
	if (p->clear_data_raw)
		s->data_raw = false;
	return 0;
}

/* Progress in qemu's terms: one unit per step that rewrites structures. */
struct steps {
	void (*cb)(void *opaque, uint64_t done, uint64_t total);
	void *opaque;
	uint64_t done, total;
};

static void step_done(struct steps *st)
{
	if (st->cb && st->done < st->total)
		st->cb(st->opaque, ++st->done, st->total);
}

static int run_steps(struct qcow2 *s, const struct amend_plan *p,
		     struct steps *st)
{
	bool meta_changed = false;
	int r = 0;
	if (p->version > s->version) {
		if ((r = upgrade(s)) < 0)
			return r;
		step_done(st);
	}
	if (p->refcount_order != s->refcount_order) {
		if ((r = qcow2_change_refcount_order(s, p->refcount_order)) < 0)
			return r;
		meta_changed = true;
		step_done(st);
	}
	if ((p->data_file || p->clear_data_raw) &&
	    (r = set_data_file(s, p)) < 0)
		return r;
	if (p->lazy != ((s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0) &&
	    (r = set_lazy(s, p->lazy)) < 0)
		return r;
	if (meta_changed && s->meta_tracked) {
		/* The refcount structure moved: overlap checks follow. */
		qcow2_meta_free(s);
		if ((r = qcow2_meta_build(s)) < 0)
			return r;
	}
	return 0;
}

/* The refcount rewrite and the zero-cluster expansion trust the L1/L2
 * tables: a damaged image is refused rather than rewritten around its
 * damage. */
static int refuse_if_inconsistent(struct mimg *img)
{
	struct mimg_check_result res;
	memset(&res, 0, sizeof(res));
	int r = qcow2_check(img, 0, &res);
	if (r < 0)
		return r;
	uint64_t bad = res.corruptions + res.check_errors;
	mimg_check_result_free(&res);
	if (bad)
		return mimg_err(-EINVAL,
				"%s: qcow2: the image has %llu "
				"errors; repair it (check -r all) before "
				"changing its structure",
				img->filename, (unsigned long long)bad);
	return 0;
}

int qcow2_amend(struct mimg *img, const struct mimg_optval *v, unsigned flags,
		void (*progress)(void *opaque, uint64_t done, uint64_t total),
		void *opaque)
{
	struct qcow2 *s = qcow2_of(img);
	struct amend_plan p;
	struct steps st = {.cb = progress, .opaque = opaque};
	int r;
	if ((r = qcow2_refuse_if_corrupt(s)) < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	r = plan_amend(s, v, &p);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	for (int i = QA_ENC_ITER_TIME; i <= QA_ENC_STATE; i++)
		if (v[i].set) {
			struct mimg_keyslot_change c = {
				.iter_time = &v[QA_ENC_ITER_TIME],
				.keyslot = &v[QA_ENC_KEYSLOT],
				.new_secret = &v[QA_ENC_NEW_SECRET],
				.old_secret = &v[QA_ENC_OLD_SECRET],
				.state = &v[QA_ENC_STATE],
				.force = (flags & MIMG_AMEND_FORCE) != 0,
			};
			if ((r = mimg__keyslot_amend(img, &c,
						     qcow2_keyslot_change)) < 0)
				return r;
			break;
		}
	if ((p.version < s->version || p.refcount_order != s->refcount_order) &&
	    (r = refuse_if_inconsistent(img)) < 0)
		return r;
	st.total = (p.version != s->version) +
		   (p.refcount_order != s->refcount_order) + 1;
	if (progress)
		progress(opaque, 0, st.total);
	pthread_mutex_lock(&s->lock);
	if ((r = qcow2_metadata_sync(s)) == 0)
		r = run_steps(s, &p, &st);
	pthread_mutex_unlock(&s->lock);
	if (r == 0 && p.new_size && p.new_size != img->size)
		r = mimg_truncate(img, p.new_size, MIMG_PREALLOC_OFF);
	if (r == 0 && p.version < s->version) {
		pthread_mutex_lock(&s->lock);
		r = downgrade(s);
		pthread_mutex_unlock(&s->lock);
		step_done(&st);
	}
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r == 0 && progress)
		progress(opaque, st.total, st.total);
	return r;
}
