/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VHDX consistency check.  Opening already refused what cannot be read
 * (bad checksums, regions or blocks outside the file or over the
 * metadata); what is left is updates left in the log and blocks that
 * share host space, which reading does not notice and writing would
 * corrupt.
 */
#include <errno.h>
#include <stdlib.h>

#include "error.h"
#include "vhdx.h"

struct placed {
	uint64_t host, block;
};

static int by_host(const void *a, const void *b)
{
	const struct placed *x = a, *y = b;
	return x->host < y->host ? -1 : x->host > y->host;
}

int vhdx_check(struct mimg *img, unsigned flags, struct mimg_check_result *res)
{
	struct vhdx *s = img->priv;
	uint64_t n = 0;
	(void)flags;
	/* Updates left in the log: read-only, the image reads as they
	 * leave it but the file lacks them; opening it for a repair wrote
	 * them (as qemu-img counts it: one corruption, repaired). */
	if (s->log_pending) {
		res->corruptions++;
		mimg__check_report(res,
				   "ERROR the log holds updates not yet made "
				   "in the file");
	}
	if (s->log_replayed)
		res->corruptions_fixed++;
	struct placed *p = malloc((s->nblocks ? s->nblocks : 1) * sizeof(*p));
	if (!p)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint64_t i = 0; i < s->nblocks; i++)
		if (s->block_host[i])
			p[n++] = (struct placed){s->block_host[i], i};
	qsort(p, n, sizeof(*p), by_host);
	for (uint64_t k = 1; k < n; k++)
		if (p[k].host < p[k - 1].host + s->block_size) {
			res->corruptions++;
			mimg__check_report(res,
					   "ERROR: block %llu at 0x%llx "
					   "overlaps block %llu at 0x%llx",
					   (unsigned long long)p[k].block,
					   (unsigned long long)p[k].host,
					   (unsigned long long)p[k - 1].block,
					   (unsigned long long)p[k - 1].host);
		}
	free(p);
	res->supported = true;
	return 0;
}
