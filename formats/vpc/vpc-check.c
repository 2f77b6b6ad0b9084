/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VHD consistency check (qemu-img has none for this format): the file
 * must end with the footer that is also at its start, and no two blocks
 * may share bytes.  Opening has already refused blocks past the
 * end of the file or over the headers and the BAT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "error.h"
#include "vpc.h"

/* The file must end with a copy of the footer.  Space between the last
 * block and that footer is what an interrupted allocation leaves: a
 * leak, harmless. */
static void check_end_footer(struct mimg *img, struct vpc *s,
			     struct mimg_check_result *res)
{
	uint8_t end[VPC_FOOTER_SIZE];
	uint64_t size;
	if (mimg_file_size(img->file, &size) < 0 || size < VPC_FOOTER_SIZE ||
	    mimg_file_pread(img->file, end, sizeof(end),
			    size - VPC_FOOTER_SIZE) < 0) {
		res->check_errors++;
		mimg__check_report(res, "ERROR cannot read the footer at the "
					"end of the file");
		return;
	}
	if (memcmp(end, s->footer, VPC_FOOTER_SIZE) != 0) {
		res->corruptions++;
		mimg__check_report(res,
				   "ERROR the footer at offset 0x%llx "
				   "does not match the copy at the start of "
				   "the file",
				   (unsigned long long)(size -
							VPC_FOOTER_SIZE));
	} else if (size - VPC_FOOTER_SIZE > s->next_free) {
		res->leaks++;
		mimg__check_report(res,
				   "Leaked %llu bytes between the last "
				   "block and the footer",
				   (unsigned long long)(size - VPC_FOOTER_SIZE -
							s->next_free));
	}
}

static void report_overlap(void *opaque, const struct mimg_host_range *p,
			   const struct mimg_host_range *q)
{
	struct mimg_check_result *res = opaque;
	res->corruptions++;
	mimg__check_report(res,
			   "ERROR blocks %u and %u overlap at offset 0x%llx",
			   p->unit, q->unit, (unsigned long long)q->start);
}

/* Sort the allocated blocks by position: neighbours must not overlap,
 * and a block that does not follow its predecessor in guest order counts
 * as fragmented. */
static int check_blocks(struct mimg *img, struct vpc *s,
			struct mimg_check_result *res)
{
	uint64_t span = (uint64_t)s->bitmap_size + s->block_size;
	struct mimg_host_range *refs = malloc((s->nblocks ? s->nblocks : 1) *
					      sizeof(*refs));
	size_t n = 0;

	if (!refs)
		return mimg_err(-ENOMEM, "out of memory");
	pthread_mutex_lock(&img->table_lock);
	for (uint32_t i = 0; i < s->nblocks; i++)
		if (s->bat[i] != VPC_BAT_UNUSED)
			refs[n++] =
				(struct mimg_host_range){(uint64_t)s->bat[i] *
								 VPC_SECTOR,
							 span, i};
	pthread_mutex_unlock(&img->table_lock);
	mimg__host_overlaps(refs, n, report_overlap, res);
	for (size_t i = 1; i < n; i++)
		if (refs[i].unit < refs[i - 1].unit)
			res->fragmented_clusters++;
	res->total_clusters = s->nblocks;
	res->allocated_clusters = n;
	free(refs);
	return 0;
}

int vpc_check(struct mimg *img, unsigned flags, struct mimg_check_result *res)
{
	struct vpc *s = img->priv;
	if (flags & (MIMG_CHECK_REPAIR_LEAKS | MIMG_CHECK_REPAIR_ERRORS))
		return mimg_err(-ENOTSUP,
				"%s: vpc: repairing is not "
				"supported",
				img->filename);
	if (s->fixed) {
		res->image_end_offset = img->size + VPC_FOOTER_SIZE;
		return 0;
	}
	int r = check_blocks(img, s, res);
	if (r < 0)
		return r;
	check_end_footer(img, s, res);
	res->image_end_offset = s->next_free + VPC_FOOTER_SIZE;
	return 0;
}
