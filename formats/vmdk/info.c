/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VMDK's "format-specific" info (qemu-img 7.2's keys and order) and the
 * consistency check: grain-table entries past the end of the file or
 * inside the metadata, grains that overlap, and grain tables that differ
 * from their redundant copies.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "file.h"
#include "grow.h"
#include "image.h"
#include "value.h"
#include "vmdk.h"

static int add_extents(struct vmdk_state *s, struct mimg_value *data)
{
	struct mimg_value *arr = mimg_value_add(data, "extents",
						MIMG_VALUE_ARRAY);
	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_ext; i++) {
		const struct vmdk_extent *e = &s->ext[i];
		struct mimg_value *o = mimg_value_add(arr, NULL,
						      MIMG_VALUE_OBJECT);
		bool ok = o != NULL;
		if (ok && e->sp && e->sp->compressed)
			ok = mimg_value_add_bool(o, "compressed", true);
		ok = ok && mimg_value_add_uint(o, "virtual-size", e->size);
		ok = ok && mimg_value_add_str(o, "filename",
					      e->filename ? e->filename : "");
		if (ok && e->sp)
			ok = mimg_value_add_uint(o, "cluster-size",
						 e->sp->grain_bytes);
		/* qemu prints "" for a sparse file opened directly. */
		ok = ok &&
		     mimg_value_add_str(o, "format",
					s->monolithic_sparse ? ""
							     : e->type_name);
		if (!ok)
			return -ENOMEM;
	}
	return 0;
}

/* Move member KEY of INFO to the end (to keep qemu's key order). */
static int move_to_end(struct mimg_value *info, const char *key)
{
	struct mimg_value *v = mimg_value_find(info, key);
	bool ok = true;

	if (!v)
		return 0;
	if (v->type == MIMG_VALUE_STRING) {
		char *str = strdup(v->v.s);
		if (!str)
			return -ENOMEM;
		mimg_value_remove(info, key);
		ok = mimg_value_add_str(info, key, str) != NULL;
		free(str);
	} else if (v->type == MIMG_VALUE_BOOL) {
		bool b = v->v.b;
		mimg_value_remove(info, key);
		ok = mimg_value_add_bool(info, key, b) != NULL;
	}
	return ok ? 0 : -ENOMEM;
}

/* As qemu-img: the space of the descriptor's file plus that of every
 * extent in another file (once per extent line). */
static void add_extent_sizes(struct mimg *img, struct mimg_value *info)
{
	struct vmdk_state *s = img->priv;
	struct mimg_value *v = mimg_value_find(info, "actual-size");
	uint64_t sum, n;

	/* An image unpacked from an archive counts as its archive. */
	if (!v || v->type != MIMG_VALUE_UINT || img->archive)
		return;
	sum = v->v.u;
	for (size_t i = 0; i < s->n_ext; i++) {
		const struct vmdk_extent *e = &s->ext[i];
		if (!e->file || e->file == img->file)
			continue;
		if (mimg_file_allocated(e->file, &n) < 0)
			return; /* unknown: keep the descriptor's */
		sum += n;
	}
	v->v.u = sum;
}

int vmdk_info(struct mimg *img, struct mimg_value *info)
{
	struct vmdk_state *s = img->priv;
	struct mimg_value *fs, *data;
	bool ok;

	fs = mimg_value_add(info, "format-specific", MIMG_VALUE_OBJECT);
	ok = fs && mimg_value_add_str(fs, "type", "vmdk");
	data = ok ? mimg_value_add(fs, "data", MIMG_VALUE_OBJECT) : NULL;
	ok = data != NULL;
	add_extent_sizes(img, info);
	ok = ok && mimg_value_add_uint(data, "cid", s->desc.cid);
	ok = ok && mimg_value_add_uint(data, "parent-cid", s->desc.parent_cid);
	/* As qemu: a sparse file with compressed grains is a stream. */
	const char *ct = s->desc.create_type ? s->desc.create_type
					     : "monolithicSparse";
	if (s->monolithic_sparse && s->ext[0].sp->compressed)
		ct = "streamOptimized";
	ok = ok && mimg_value_add_str(data, "create-type", ct);
	if (!ok || add_extents(s, data) < 0)
		return mimg_err(-ENOMEM, "out of memory");
	static const char *const tail[] = {"full-backing-filename",
					   "backing-filename", "dirty-flag"};
	for (size_t i = 0; i < 3; i++)
		if (move_to_end(info, tail[i]) < 0)
			return mimg_err(-ENOMEM, "out of memory");
	return 0;
}

/* ------------------------------------------------------------------ */

#define MAX_OVERLAP_GRAINS (4u << 20) /* 64 MiB of records: 256 GiB of data */

struct checker {
	struct mimg_check_result *res;
	bool repair_leaks;
};

/* The redundant table is updated first, so an interrupted update leaves
 * it ahead of the primary, which is what reads use: the grain it points
 * to is leaked, nothing is damaged. */
static void compare_copies(struct checker *c, struct vmdk_sparse *sp,
			   uint64_t gdi, const uint32_t *gt,
			   const uint32_t *rgt)
{
	for (uint32_t i = 0; i < sp->gt_entries; i++) {
		if (gt[i] == rgt[i])
			continue;
		uint64_t grain = gdi * sp->gt_entries + i;
		if (c->repair_leaks) {
			/* Make the copy match what reads use. */
			uint8_t v[4];
			st_le32(v, gt[i]);
			if (mimg_file_pwrite(sp->file, v, 4,
					     (uint64_t)sp->rgd[gdi] *
							     VMDK_SECTOR +
						     (uint64_t)i * 4) == 0) {
				mimg__check_report(c->res,
						   "Repairing grain %" PRIu64
						   " in the redundant "
						   "grain table of %s",
						   grain, sp->path);
				c->res->leaks_fixed++;
				continue;
			}
		}
		mimg__check_report(c->res,
				   "Leaked grain: %s: grain %" PRIu64
				   " is %" PRIu32 " in the redundant grain "
				   "table but %" PRIu32 " in the grain table "
				   "(interrupted update)",
				   sp->path, grain, rgt[i], gt[i]);
		c->res->leaks++;
	}
}

/* What a walk over one sparse extent's grain tables keeps. */
struct grain_walk {
	struct vmdk_sparse *sp;
	struct mimg_check_result *res; /* where overlaps are reported */
	uint64_t fsize;		       /* host file size */
	uint64_t meta_end;	       /* grains must start at or after this */
	uint64_t total;		       /* grains in the capacity */
	struct mimg_host_range *recs;  /* every grain's, for overlaps */
	size_t nrec, caprec;
	bool overlap_ok; /* recs holds every grain */
};

/* Host bytes the grain at HOST takes: a whole grain, or for compressed
 * grains the marker and the data it declares (one sector when that
 * cannot be read). */
static uint64_t grain_host_len(const struct vmdk_sparse *sp, uint64_t host,
			       uint64_t fsize)
{
	uint8_t m[12];

	if (!sp->compressed)
		return sp->grain_bytes;
	if (sp->markers && host + 12 <= fsize &&
	    mimg_file_pread(sp->file, m, 12, host) == 0)
		return 12 + (uint64_t)ld_le32(m + 8);
	return VMDK_SECTOR;
}

/* Remember the range of a grain for the overlap check, while memory for
 * it is allowed. */
static void record_grain(struct checker *c, struct grain_walk *w, uint64_t host,
			 uint64_t len)
{
	if (!w->overlap_ok)
		return;
	struct mimg_host_range *n = NULL;
	if (w->nrec < MAX_OVERLAP_GRAINS)
		n = mimg__grow(w->recs, &w->caprec, w->nrec + 1, sizeof(*n),
			       1024);
	if (!n) {
		w->overlap_ok = false;
		mimg__check_report(c->res,
				   "%s: too many grains to check for "
				   "overlaps",
				   w->sp->path);
		c->res->check_errors++;
		return;
	}
	w->recs = n;
	w->recs[w->nrec++] = (struct mimg_host_range){.start = host,
						      .len = len};
}

/* Check grain GRAIN, whose grain-table entry is V. */
static void check_grain(struct checker *c, struct grain_walk *w, uint64_t grain,
			uint32_t v)
{
	struct vmdk_sparse *sp = w->sp;
	struct mimg_check_result *res = c->res;

	if (v == 0 || grain >= w->total ||
	    (v == VMDK_GTE_ZERO && sp->zero_grain))
		return;
	uint64_t host = (uint64_t)v * VMDK_SECTOR;
	uint64_t len = grain_host_len(sp, host, w->fsize);
	if (!ck_range_within(host, len, w->fsize)) {
		mimg__check_report(c->res,
				   "ERROR: %s: grain %" PRIu64
				   " at offset 0x%" PRIx64 " points after EOF",
				   sp->path, grain, host);
		res->corruptions++;
		return;
	}
	if (host < w->meta_end) {
		mimg__check_report(c->res,
				   "ERROR: %s: grain %" PRIu64
				   " at offset 0x%" PRIx64 " overlaps the "
				   "metadata",
				   sp->path, grain, host);
		res->corruptions++;
		return;
	}
	record_grain(c, w, host, len);
}

static void report_overlap(void *opaque, const struct mimg_host_range *p,
			   const struct mimg_host_range *q)
{
	const struct grain_walk *w = opaque;
	mimg__check_report(w->res,
			   "ERROR: %s: grains at "
			   "offsets 0x%" PRIx64 " and 0x%" PRIx64 " overlap",
			   w->sp->path, p->start, q->start);
	w->res->corruptions++;
}

/* Read grain table GDI (and its redundant copy) into GT and RGT; false
 * when the primary could not be read (reported). */
static bool read_grain_tables(struct checker *c, struct vmdk_sparse *sp,
			      uint64_t gdi, uint32_t *gt, uint32_t *rgt)
{
	if (vmdk_sparse_read_gt(sp, sp->gd, gdi, gt) < 0) {
		mimg__check_report(c->res,
				   "ERROR: %s: grain table %" PRIu64 ": %s",
				   sp->path, gdi, mimg_errmsg());
		c->res->corruptions++;
		return false;
	}
	if (!sp->rgd)
		return true;
	if (vmdk_sparse_read_gt(sp, sp->rgd, gdi, rgt) < 0) {
		mimg__check_report(c->res,
				   "ERROR: %s: redundant grain "
				   "table %" PRIu64 ": %s",
				   sp->path, gdi, mimg_errmsg());
		c->res->corruptions++;
	} else {
		compare_copies(c, sp, gdi, gt, rgt);
	}
	return true;
}

static int check_sparse(struct checker *c, struct vmdk_extent *e)
{
	struct vmdk_sparse *sp = e->sp;
	struct grain_walk w = {.sp = sp, .res = c->res, .overlap_ok = true};
	uint32_t *gt = NULL, *rgt = NULL;
	int r;

	r = mimg_file_size(sp->file, &w.fsize);
	if (r < 0)
		return r;
	if (sp->gd_at_end ||
	    !ck_mul_u64(sp->overhead, VMDK_SECTOR, &w.meta_end))
		w.meta_end = VMDK_SECTOR;
	/* No cluster counts: qemu-img's VMDK check reports none. */
	w.total = div_round_up_u64(sp->capacity, sp->grain_sectors);
	gt = malloc(sp->gt_bytes);
	rgt = malloc(sp->gt_bytes);
	if (!gt || !rgt) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t gdi = 0; gdi < sp->gd_entries; gdi++) {
		if (!read_grain_tables(c, sp, gdi, gt, rgt))
			continue;
		for (uint32_t i = 0; i < sp->gt_entries; i++)
			check_grain(c, &w, gdi * sp->gt_entries + i, gt[i]);
	}
	/* Every pair of recorded grains whose host ranges overlap. */
	if (w.overlap_ok)
		mimg__host_overlaps(w.recs, w.nrec, report_overlap, &w);
	r = 0;
out:
	free(gt);
	free(rgt);
	free(w.recs);
	return r;
}

int vmdk_check(struct mimg *img, unsigned flags, struct mimg_check_result *res)
{
	struct vmdk_state *s = img->priv;
	struct checker c = {.res = res};
	int r;

	c.repair_leaks = (flags & MIMG_CHECK_REPAIR_LEAKS) && !img->read_only;
	for (size_t i = 0; i < s->n_ext; i++) {
		struct vmdk_extent *e = &s->ext[i];
		if (!e->sp)
			continue;
		if (e->sp->primary_damaged) {
			mimg__check_report(res,
					   "ERROR: %s: the grain "
					   "directory is damaged; the "
					   "redundant copy is in use",
					   e->sp->path);
			res->corruptions++;
		}
		r = check_sparse(&c, e);
		if (r < 0)
			return r;
	}
	return 0;
}
