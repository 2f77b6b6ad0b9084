/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Emptying an image in place (after commit), as qemu's make_empty does.
 * A version 3 image holding nothing but its mappings is reset to the
 * layout of a fresh one in the same file: header cluster kept (with its
 * backing file and extensions), refcount table in cluster 1, one
 * refcount block in cluster 2, an empty L1 table of the same size from
 * cluster 3 on, the file cut after it.  The dirty bit covers the steps
 * in between: a crash leaves an image whose refcounts are rebuilt on the
 * next read-write open or check -r.  Every other image (version 2,
 * snapshots, bitmaps, an external data file, an L1 table too large for
 * one refcount block) has each cluster unmapped instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"

static int write_zeroes(struct qcow2 *s, uint64_t off, uint64_t len)
{
	int r = mimg_file_zero_range(s->file, off, len, false);
	if (r != -ENOTSUP)
		return r;
	uint8_t *z = calloc(1, s->cluster_size);
	if (!z)
		return mimg_err(-ENOMEM, "out of memory");
	for (r = 0; len && r == 0;) {
		size_t n = (size_t)min_u64(len, s->cluster_size);
		r = mimg_file_pwrite(s->file, z, n, off);
		off += n;
		len -= n;
	}
	free(z);
	return r;
}

static bool can_reset(const struct qcow2 *s, uint64_t l1_clusters)
{
	return s->version >= 3 && s->nb_snapshots == 0 && s->nb_bitmaps == 0 &&
	       !s->data_file_name && 3 + l1_clusters <= s->rb_entries;
}

/* Point the header at an empty refcount table (cluster 1) whose first
 * entry names the block in cluster 2, and at the L1 table in cluster 3;
 * all of them were zeroed. */
static int write_fresh_layout(struct qcow2 *s, uint64_t l1_clusters)
{
	uint64_t cs = s->cluster_size;
	uint64_t *rt = calloc(cs / 8, sizeof(*rt));
	uint8_t h[20];
	if (!rt)
		return mimg_err(-ENOMEM, "out of memory");
	st_be64(h, 3 * cs);
	st_be64(h + 8, cs);
	st_be32(h + 16, 1);
	int r = mimg_file_pwrite(s->file, h, 20, 40);
	if (r == 0)
		r = mimg_file_flush(s->file);
	st_be64(h, 2 * cs);
	if (r == 0)
		r = mimg_file_pwrite(s->file, h, 8, cs);
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r < 0) {
		free(rt);
		return r;
	}
	rt[0] = 2 * cs;
	qcow2_use_reftable(s, &rt, cs, 1);
	s->l1_offset = 3 * cs;
	s->l1_alloc = (uint32_t)(l1_clusters * cs / 8);
	s->free_hint = 0;
	s->free_byte = 0;
	return 0;
}

static int reset_locked(struct qcow2 *s, uint64_t l1_clusters)
{
	uint64_t cs = s->cluster_size, rc;
	int r;
	if ((r = qcow2_resv_release(s)) < 0 ||
	    (r = qcow2_metadata_sync(s)) < 0 ||
	    (r = qcow2_refcount_writeback(s)) < 0 ||
	    (r = qcow2_write_incompat(s, s->incompat | QCOW2_INCOMPAT_DIRTY)) <
		    0 ||
	    (r = mimg_file_flush(s->file)) < 0)
		return r;
	qcow2_cache_clear(&s->l2c);
	qcow2_cache_clear(&s->rbc);
	/* From here on the refcounts mean nothing until the end. */
	if ((r = write_zeroes(s, s->l1_offset, l1_clusters * cs)) < 0)
		return r;
	qcow2_readers_block(s);
	memset(s->l1, 0, (size_t)s->l1_size * 8);
	qcow2_readers_unblock(s);
	if ((r = write_zeroes(s, cs, (2 + l1_clusters) * cs)) < 0 ||
	    (r = write_fresh_layout(s, l1_clusters)) < 0)
		return r;
	for (uint64_t c = 0; c < 3 + l1_clusters; c++)
		if ((r = qcow2_refcount_add(s, c, 1, &rc)) < 0)
			return r;
	if ((r = qcow2_refcount_writeback(s)) < 0 ||
	    (r = mimg_file_flush(s->file)) < 0 ||
	    (r = qcow2_write_incompat(s, s->incompat & ~QCOW2_INCOMPAT_DIRTY)) <
		    0 ||
	    (r = mimg_file_flush(s->file)) < 0)
		return r;
	(void)mimg_file_truncate(s->file, (3 + l1_clusters) * cs);
	if (s->meta_tracked) {
		qcow2_meta_free(s);
		r = qcow2_meta_build(s);
	}
	return r;
}

int qcow2_make_empty(struct mimg *img)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t l1_clusters = div_round_up_u64((uint64_t)s->l1_size * 8,
						s->cluster_size);
	int r = qcow2_refuse_if_corrupt(s);
	if (r < 0)
		return r;
	if (can_reset(s, l1_clusters)) {
		pthread_mutex_lock(&s->lock);
		r = reset_locked(s, l1_clusters);
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	if (img->size)
		r = qcow2_unmap_clusters(s, 0,
					 (img->size - 1) >> s->cluster_bits);
	if (r == 0)
		r = qcow2_flush(img);
	return r;
}
