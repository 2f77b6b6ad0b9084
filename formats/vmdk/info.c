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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "file.h"
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
		ok = ok && mimg_value_add_str(o, "filename", e->filename ?
					      e->filename : "");
		if (ok && e->sp)
			ok = mimg_value_add_uint(o, "cluster-size",
						 e->sp->grain_bytes);
		/* qemu prints "" for a sparse file opened directly. */
		ok = ok && mimg_value_add_str(o, "format", s->monolithic_sparse ?
					      "" : e->type_name);
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
			return;	/* unknown: keep the descriptor's */
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
	const char *ct = s->desc.create_type ? s->desc.create_type :
			 "monolithicSparse";
	if (s->monolithic_sparse && s->ext[0].sp->compressed)
		ct = "streamOptimized";
	ok = ok && mimg_value_add_str(data, "create-type", ct);
	if (!ok || add_extents(s, data) < 0)
		return mimg_err(-ENOMEM, "out of memory");
	static const char *const tail[] = { "full-backing-filename",
					    "backing-filename", "dirty-flag" };
	for (size_t i = 0; i < 3; i++)
		if (move_to_end(info, tail[i]) < 0)
			return mimg_err(-ENOMEM, "out of memory");
	return 0;
}

/* ------------------------------------------------------------------ */

#define MAX_MESSAGES 1000
#define MAX_OVERLAP_GRAINS (4u << 20)	/* 64 MiB of records: 256 GiB of data */

struct checker {
	struct mimg_check_result *res;
	bool repair_leaks;
	size_t nmsg;
	bool oom;
};

static void report(struct checker *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(struct checker *c, const char *fmt, ...)
{
	va_list ap;
	char *m;

	if (c->nmsg >= MAX_MESSAGES || c->oom)
		return;
	va_start(ap, fmt);
	int n = vasprintf(&m, fmt, ap);
	va_end(ap);
	if (n < 0) {
		c->oom = true;
		return;
	}
	char **nm = realloc(c->res->messages, (c->nmsg + 2) * sizeof(*nm));
	if (!nm) {
		free(m);
		c->oom = true;
		return;
	}
	nm[c->nmsg++] = m;
	nm[c->nmsg] = NULL;
	c->res->messages = nm;
}

struct alloc_rec {
	uint64_t host;
	uint64_t len;
};

static int cmp_rec(const void *a, const void *b)
{
	const struct alloc_rec *x = a, *y = b;
	return x->host < y->host ? -1 : x->host > y->host;
}

/* The redundant table is updated first, so an interrupted update leaves
 * it ahead of the primary, which is what reads use: the grain it points
 * to is leaked, nothing is damaged. */
static void compare_copies(struct checker *c, struct vmdk_sparse *sp,
			   uint64_t gdi, const uint32_t *gt, const uint32_t *rgt)
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
					     (uint64_t)sp->rgd[gdi] * VMDK_SECTOR +
					     (uint64_t)i * 4) == 0) {
				report(c, "Repairing grain %" PRIu64 " in the "
				       "redundant grain table of %s", grain,
				       sp->path);
				c->res->leaks_fixed++;
				continue;
			}
		}
		report(c, "Leaked grain: %s: grain %" PRIu64 " is %" PRIu32
		       " in the redundant grain table but %" PRIu32 " in the "
		       "grain table (interrupted update)", sp->path, grain,
		       rgt[i], gt[i]);
		c->res->leaks++;
	}
}

static int check_sparse(struct checker *c, struct vmdk_extent *e)
{
	struct vmdk_sparse *sp = e->sp;
	struct mimg_check_result *res = c->res;
	uint64_t fsize, meta_end, total;
	uint32_t *gt = NULL, *rgt = NULL;
	struct alloc_rec *recs = NULL;
	size_t nrec = 0, caprec = 0;
	bool overlap_ok = true;
	uint64_t prev_host = 0;
	int r;

	r = mimg_file_size(sp->file, &fsize);
	if (r < 0)
		return r;
	if (sp->gd_at_end || !ck_mul_u64(sp->overhead, VMDK_SECTOR, &meta_end))
		meta_end = VMDK_SECTOR;
	total = div_round_up_u64(sp->capacity, sp->grain_sectors);
	res->total_clusters += total;
	gt = malloc(sp->gt_bytes);
	rgt = malloc(sp->gt_bytes);
	if (!gt || !rgt) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t gdi = 0; gdi < sp->gd_entries; gdi++) {
		r = vmdk_sparse_read_gt(sp, sp->gd, gdi, gt);
		if (r < 0) {
			report(c, "ERROR: %s: grain table %" PRIu64 ": %s",
			       sp->path, gdi, mimg_errmsg());
			res->corruptions++;
			continue;
		}
		if (sp->rgd) {
			r = vmdk_sparse_read_gt(sp, sp->rgd, gdi, rgt);
			if (r < 0) {
				report(c, "ERROR: %s: redundant grain table %"
				       PRIu64 ": %s", sp->path, gdi,
				       mimg_errmsg());
				res->corruptions++;
			} else {
				compare_copies(c, sp, gdi, gt, rgt);
			}
		}
		for (uint32_t i = 0; i < sp->gt_entries; i++) {
			uint64_t grain = gdi * sp->gt_entries + i;
			uint32_t v = gt[i];
			if (v == 0 || grain >= total)
				continue;
			if (v == VMDK_GTE_ZERO && sp->zero_grain)
				continue;
			uint64_t host = (uint64_t)v * VMDK_SECTOR;
			uint64_t len = sp->grain_bytes;
			res->allocated_clusters++;
			if (sp->compressed) {
				res->compressed_clusters++;
				len = VMDK_SECTOR;
				if (sp->markers && host + 12 <= fsize) {
					uint8_t m[12];
					if (mimg_file_pread(sp->file, m, 12,
							    host) == 0)
						len = 12 + (uint64_t)ld_le32(m + 8);
				}
			}
			if (!ck_range_within(host, len, fsize)) {
				report(c, "ERROR: %s: grain %" PRIu64 " at "
				       "offset 0x%" PRIx64 " points after EOF",
				       sp->path, grain, host);
				res->corruptions++;
				continue;
			}
			if (host < meta_end) {
				report(c, "ERROR: %s: grain %" PRIu64 " at "
				       "offset 0x%" PRIx64 " overlaps the "
				       "metadata", sp->path, grain, host);
				res->corruptions++;
				continue;
			}
			if (prev_host && host != prev_host + len)
				res->fragmented_clusters++;
			prev_host = host;
			if (!overlap_ok)
				continue;
			if (nrec == caprec) {
				size_t nc = caprec ? caprec * 2 : 1024;
				struct alloc_rec *n;
				if (nc > MAX_OVERLAP_GRAINS ||
				    !(n = realloc(recs, nc * sizeof(*n)))) {
					overlap_ok = false;
					report(c, "%s: too many grains to check "
					       "for overlaps", sp->path);
					res->check_errors++;
					continue;
				}
				recs = n;
				caprec = nc;
			}
			recs[nrec].host = host;
			recs[nrec].len = len;
			nrec++;
		}
	}
	if (overlap_ok && nrec > 1) {
		qsort(recs, nrec, sizeof(*recs), cmp_rec);
		for (size_t i = 1; i < nrec; i++)
			if (recs[i].host < recs[i - 1].host + recs[i - 1].len) {
				report(c, "ERROR: %s: grains at offsets 0x%"
				       PRIx64 " and 0x%" PRIx64 " overlap",
				       sp->path, recs[i - 1].host,
				       recs[i].host);
				res->corruptions++;
			}
	}
	r = 0;
out:
	free(gt);
	free(rgt);
	free(recs);
	return r;
}

int vmdk_check(struct mimg *img, unsigned flags,
	       struct mimg_check_result *res)
{
	struct vmdk_state *s = img->priv;
	struct checker c = { .res = res };
	int r;

	c.repair_leaks = (flags & MIMG_CHECK_REPAIR_LEAKS) && !img->read_only;
	for (size_t i = 0; i < s->n_ext; i++) {
		struct vmdk_extent *e = &s->ext[i];
		if (!e->sp)
			continue;
		if (e->sp->primary_damaged) {
			report(&c, "ERROR: %s: the grain directory is damaged; "
			       "the redundant copy is in use", e->sp->path);
			res->corruptions++;
		}
		r = check_sparse(&c, e);
		if (r < 0)
			return r;
	}
	if (c.oom)
		return mimg_err(-ENOMEM, "out of memory");
	return 0;
}
