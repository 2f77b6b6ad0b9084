/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VDI consistency check, the rules and messages of qemu-img check: every
 * allocated entry names a block inside the image, no block is used twice,
 * and the header's allocated-block count matches the map.  A count above
 * the map's is what an interrupted allocation leaves (the block was
 * written, its map entry was not): reported as qemu-img does, but as a
 * leak, since nothing refers to that block (qemu-img calls it a
 * corruption; a crash must never leave one).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "error.h"
#include "vdi.h"

int vdi_check(struct mimg *img, unsigned flags, struct mimg_check_result *res)
{
	struct vdi *s = img->priv;
	uint32_t *owner, allocated = 0;

	if (flags & (MIMG_CHECK_REPAIR_LEAKS | MIMG_CHECK_REPAIR_ERRORS))
		return mimg_err(-ENOTSUP,
				"%s: vdi: repairing is not "
				"supported",
				img->filename);
	if (!(owner = malloc((s->blocks ? s->blocks : 1) * sizeof(*owner))))
		return mimg_err(-ENOMEM, "out of memory");
	memset(owner, 0xff, (s->blocks ? s->blocks : 1) * sizeof(*owner));
	pthread_mutex_lock(&img->table_lock);
	for (uint32_t i = 0; i < s->blocks; i++) {
		uint32_t e = s->bmap[i];
		if (e >= VDI_DISCARDED)
			continue;
		if (e >= s->blocks) {
			res->corruptions++;
			mimg__check_report(res,
					   "ERROR: block index %u too "
					   "large, is %u",
					   i, e);
			continue;
		}
		allocated++;
		if (owner[e] != UINT32_MAX) {
			/* qemu-img names the data block twice. */
			res->corruptions++;
			mimg__check_report(res,
					   "ERROR: block index %u also "
					   "used by %u",
					   e, e);
		} else {
			owner[e] = i;
		}
	}
	uint32_t stored = ld_le32(s->header + VDI_H_ALLOCATED);
	pthread_mutex_unlock(&img->table_lock);
	free(owner);
	if (allocated != stored) {
		if (stored > allocated)
			res->leaks++;
		else
			res->corruptions++;
		mimg__check_report(res,
				   "%s: allocated blocks mismatch, is %u, "
				   "should be %u",
				   stored > allocated ? "Leak" : "ERROR",
				   allocated, stored);
	}
	return 0;
}
