/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Parallels consistency check, the rules and messages of qemu-img 7.2:
 * an image left marked in use, BAT entries naming a cluster outside the
 * file (repaired by unallocating them) and space after the last cluster
 * (a leak: what an interrupted allocation leaves; repaired by cutting the
 * file there).  It also counts what qemu-img counts: allocated clusters,
 * those not right after the one before, the end of the image.  Unlike
 * qemu-img's, the end is never put inside the BAT or header (an empty
 * image with clusters smaller than its BAT has no leak).
 */
#include <errno.h>
#include <stdlib.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "parallels.h"

/* Problem TEXT, "ERROR TEXT" or, when FIXING, "Repairing TEXT". */
#define REPORT(res, fixing, fmt, ...)                                          \
	mimg__check_report(res, "%s " fmt, (fixing) ? "Repairing" : "ERROR",   \
			   __VA_ARGS__)

static int unallocate(struct mimg *img, uint32_t idx)
{
	struct parallels *s = img->priv;
	uint8_t zero[4] = {0};
	int r = mimg_file_pwrite(img->file, zero, 4,
				 PRL_HEADER_SIZE + (uint64_t)idx * 4);
	if (r == 0)
		s->bat[idx] = 0;
	return r;
}

int parallels_check(struct mimg *img, unsigned flags,
		    struct mimg_check_result *res)
{
	struct parallels *s = img->priv;
	bool fix_errors = flags & MIMG_CHECK_REPAIR_ERRORS;
	bool fix_leaks = flags & MIMG_CHECK_REPAIR_LEAKS;
	uint64_t high = 0, prev = 0;
	int r;

	res->supported = true;
	if (ld_le32(s->header + PRL_H_INUSE) == PRL_INUSE) {
		REPORT(res, fix_errors, "%s", "image was not closed correctly");
		if (fix_errors) {
			if ((r = parallels_set_in_use(img, 0)) < 0)
				return r;
			res->corruptions_fixed++;
		} else {
			res->corruptions++;
		}
	}
	res->total_clusters = s->bat_entries;
	for (uint32_t i = 0; i < s->bat_entries; i++) {
		uint64_t host = prl_host(s, s->bat[i]);
		if (!s->bat[i]) {
			prev = 0;
			continue;
		}
		if (host < s->data_start ||
		    host + s->cluster_size > s->file_size) {
			REPORT(res, fix_errors, "cluster %u is outside image",
			       i);
			if (fix_errors) {
				if ((r = unallocate(img, i)) < 0)
					return r;
				res->corruptions_fixed++;
				prev = 0;
				continue;
			}
			res->corruptions++;
		}
		res->allocated_clusters++;
		if (prev && prev + s->cluster_size != host)
			res->fragmented_clusters++;
		prev = host;
		high = max_u64(high, host + s->cluster_size);
	}
	res->image_end_offset = max_u64(high, s->data_start);
	if (s->file_size > res->image_end_offset) {
		uint64_t extra = s->file_size - res->image_end_offset;
		uint64_t n = div_round_up_u64(extra, s->cluster_size);
		REPORT(res, fix_leaks,
		       "space leaked at the end of the image %llu",
		       (unsigned long long)extra);
		if (fix_leaks) {
			if ((r = mimg_file_truncate(img->file,
						    res->image_end_offset)) < 0)
				return r;
			s->file_size = res->image_end_offset;
			res->leaks_fixed += n;
		} else {
			res->leaks += n;
		}
	}
	if (fix_errors || fix_leaks)
		return mimg_file_flush(img->file);
	return 0;
}
