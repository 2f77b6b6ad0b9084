/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Shrinking a qcow2 image the way qemu does: the clusters past the new
 * end are unmapped and freed, the L2 tables past it are dropped from the
 * L1 table (whose size field stays), refcount blocks left counting
 * nothing are dropped, the file is cut after its last used cluster, and
 * the new size goes into the header last.  A crash part-way leaves the
 * old size with its tail unmapped (reading from the backing file or as
 * zeroes) and at worst leaked clusters.
 */
#include <errno.h>
#include <stdlib.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"

/* Clear L1 entries [N, l1_size) on disk, then free their L2 tables. */
static int shrink_l1(struct qcow2 *s, uint64_t n)
{
	if (n >= s->l1_size)
		return 0;
	size_t bytes = (size_t)(s->l1_size - n) * 8;
	uint8_t *z = calloc(1, bytes);
	if (!z)
		return mimg_err(-ENOMEM, "out of memory");
	int r = mimg_file_pwrite(s->file, z, bytes, s->l1_offset + n * 8);
	free(z);
	if (r == 0)
		r = mimg_file_flush(s->file);
	for (uint64_t i = s->l1_size; r == 0 && i-- > n;) {
		uint64_t off = s->l1[i] & QCOW2_OFFSET_MASK;
		qcow2_readers_block(s);
		s->l1[i] = 0;
		qcow2_readers_unblock(s);
		if (off)
			r = qcow2_free_range(s, off, s->cluster_size, true);
	}
	return r;
}

/* Cut the file after the last cluster with a reference. */
static int truncate_tail(struct qcow2 *s)
{
	uint64_t fsize, c;
	int r = mimg_file_size(s->file, &fsize);
	if (r < 0)
		return r;
	for (c = div_round_up_u64(fsize, s->cluster_size); c-- > 0;) {
		uint64_t rc;
		if ((r = qcow2_get_refcount(s, c, &rc)) < 0)
			return r;
		if (rc)
			break;
	}
	if (c == UINT64_MAX)
		return mimg_err(-EIO,
				"%s: qcow2: there are no references in "
				"the refcount table",
				qcow2_path(s));
	uint64_t end = (c + 1) << s->cluster_bits;
	/* As with qemu, a file that cannot be cut stays longer. */
	if (end < fsize)
		(void)mimg_file_truncate(s->file, end);
	return 0;
}

int qcow2_shrink(struct mimg *img, uint64_t size)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t cs = s->cluster_size, old = img->size, start;
	int r = 0;
	if (!ck_align_up_u64(size, cs, &start))
		return mimg_err(-EINVAL, "%s: qcow2: bad size %llu",
				qcow2_path(s), (unsigned long long)size);
	if (start < old)
		r = qcow2_unmap_clusters(s, start >> s->cluster_bits,
					 (old - 1) >> s->cluster_bits);
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	if ((r = qcow2_resv_release(s)) == 0 &&
	    (r = qcow2_metadata_sync(s)) == 0 &&
	    (r = shrink_l1(s, qcow2_l1_needed(s, size))) == 0 &&
	    (r = qcow2_shrink_reftable(s)) == 0) {
		s->free_byte = 0;
		r = truncate_tail(s);
	}
	if (r == 0) {
		uint8_t b[8];
		st_be64(b, size);
		r = mimg_file_pwrite(s->file, b, 8, 24);
	}
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r == 0 && s->data_file_name)
		r = mimg_file_truncate(s->data, size);
	if (r == 0)
		img->size = size;
	pthread_mutex_unlock(&s->lock);
	return r;
}
