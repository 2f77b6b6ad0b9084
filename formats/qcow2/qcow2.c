/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The qcow2 driver: probe, open, close and the driver table entry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"

/* Any version from 2 up is qcow2 (1 is the older qcow format), so that a
 * future version is refused by open with its number, as qemu does,
 * instead of being taken for raw. */
static int qcow2_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)filename;
	if (len >= 8 && ld_be32(buf) == QCOW2_MAGIC && ld_be32(buf + 4) >= 2)
		return 100;
	return 0;
}

static int open_data_file(struct qcow2 *s)
{
	char *path = NULL;
	int r = mimg__resolve_ref(s->img, s->data_file_name, true, "data file",
				  &path);
	if (r < 0)
		return r;
	r = mimg__open_extra_file(s->img, path, false, &s->data_own);
	free(path);
	if (r < 0)
		return mimg_err_prefix(r, "%s: qcow2: cannot open data file",
				       qcow2_path(s));
	s->data = s->data_own;
	return 0;
}

static unsigned cache_entries(uint32_t cluster_size, uint32_t budget,
			      unsigned cap)
{
	uint64_t n = budget / cluster_size;
	if (n < 4)
		n = 4;
	if (n > cap)
		n = cap;
	return (unsigned)n;
}

/* Unknown autoclear bits are cleared before the image is modified, as
 * the spec asks; the bitmaps are kept up to date (qcow2-bitmap-track.c)
 * and keep theirs. */
static int clear_autoclear(struct qcow2 *s)
{
	uint64_t keep = s->autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW;
	uint8_t b[8];
	if (s->has_bitmaps_ext && s->nb_bitmaps)
		keep |= QCOW2_AUTOCLEAR_BITMAPS;
	if (s->version < 3 || s->autoclear == keep)
		return 0;
	st_be64(b, keep);
	int r = mimg_file_pwrite(s->file, b, 8, 88);
	if (r == 0)
		s->autoclear = keep;
	return r;
}

/* Before the last flush of a writable image: its bitmaps, and a file
 * that compressed data left ending inside a sector extended to the
 * sector's end, as qemu-img convert leaves it (for readers that read
 * whole sectors). */
static int qcow2_close_prepare(struct mimg *img)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t size;
	int r = qcow2_bitmaps_close(img);
	if (r == 0 && s->free_byte &&
	    (r = mimg_file_size(s->file, &size)) == 0 && size % 512)
		r = mimg_file_truncate(s->file, size + 512 - size % 512);
	return r;
}

static void qcow2_close(struct mimg *img)
{
	struct qcow2 *s = qcow2_of(img);
	if (!s)
		return;
	qcow2_cache_free(&s->l2c);
	qcow2_cache_free(&s->rbc);
	free(s->l1);
	free(s->l1_active);
	free(s->reftable);
	qcow2_free_snapshots(s);
	qcow2_free_bitmaps(s);
	free(s->pending);
	qcow2_meta_free(s);
	qcow2_crypt_close(s);
	free(s->data_file_name);
	if (s->data_own)
		mimg_file_close(s->data_own);
	if (s->lock_init) {
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
	}
	mimg_readers_destroy(&s->map_readers);
	memset(s, 0, sizeof(*s));
}

static int qcow2_open(struct mimg *img)
{
	struct qcow2 *s = qcow2_of(img);
	unsigned flags = img->flags;
	int r;
	s->img = img;
	s->file = img->file;
	s->data = img->file;
	s->snapshot_selected = -1;
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		return mimg_err(-ENOMEM, "mutex init failed");
	if (pthread_cond_init(&s->cond, NULL) != 0) {
		pthread_mutex_destroy(&s->lock);
		return mimg_err(-ENOMEM, "condvar init failed");
	}
	s->lock_init = true;
	if ((r = mimg_readers_init(&s->map_readers)) < 0)
		return r;
	if ((r = qcow2_read_header(s, flags)) < 0)
		return r;
	if ((r = qcow2_crypt_open(s)) < 0)
		return r;
	s->exit_safe = !img->read_only && (flags & MIMG_OPEN_EXIT_SAFE);
	if ((r = qcow2_cache_init(&s->l2c,
				  cache_entries(s->cluster_size, 8u << 20, 128),
				  s->cluster_size)) < 0)
		return r;
	s->l2c.make_room = qcow2_sync_make_room;
	s->l2c.opaque = s;
	s->l2c.change = qcow2_l2c_change;
	if ((r = qcow2_refcount_init(s)) < 0)
		return r;
	if ((r = qcow2_read_snapshots(s)) < 0)
		return r;
	if ((r = qcow2_read_bitmaps(s)) < 0)
		return r;
	if (s->data_file_name && (r = open_data_file(s)) < 0)
		return r;
	if (!img->read_only && !(flags & MIMG_OPEN_CHECK) &&
	    (r = qcow2_meta_build(s)) < 0)
		return r;
	if (!img->read_only) {
		if ((r = clear_autoclear(s)) < 0)
			return r;
		if ((s->incompat & QCOW2_INCOMPAT_DIRTY) &&
		    !(flags & MIMG_OPEN_CHECK) &&
		    (r = qcow2_rebuild_dirty(s)) < 0)
			return r;
		if (!(flags & MIMG_OPEN_CHECK) &&
		    (r = qcow2_bitmaps_track(s)) < 0)
			return r;
	}
	return 0;
}

static bool qcow2_has_zero_init(struct mimg *img)
{
	struct qcow2 *s = qcow2_of(img);
	return !img->backing_name && !s->data_file_name;
}

const struct mimg_driver mimg_qcow2_driver = {
	.name = "qcow2",
	.priv_size = sizeof(struct qcow2),
	.probe = qcow2_probe,
	.open = qcow2_open,
	.close = qcow2_close,
	.create = qcow2_create,
	.create_opts = qcow2_create_opts,
	.create_secret = qcow2_create_secret,
	.preadv = qcow2_preadv,
	.pwritev = qcow2_pwritev,
	.flush = qcow2_flush,
	.pwrite_zeroes = qcow2_pwrite_zeroes,
	.discard = qcow2_discard,
	.block_status = qcow2_block_status,
	.host_file = qcow2_host_file,
	.truncate = qcow2_truncate,
	.check = qcow2_check,
	.info = qcow2_info,
	.select_snapshot = qcow2_select_snapshot,
	.has_zero_init = qcow2_has_zero_init,
	.compress_unit = qcow2_compress_unit,
	.compress = qcow2_compress,
	.write_compressed = qcow2_write_compressed,
	.set_backing = qcow2_set_backing,
	.snapshot_create = qcow2_snapshot_create,
	.snapshot_apply = qcow2_snapshot_apply,
	.snapshot_delete = qcow2_snapshot_delete,
	.make_empty = qcow2_make_empty,
	.amend_opts = qcow2_amend_opts,
	.amend = qcow2_amend,
	.close_prepare = qcow2_close_prepare,
	.bitmap_add = qcow2_bitmap_add,
	.bitmap_remove = qcow2_bitmap_remove,
	.bitmap_clear = qcow2_bitmap_clear,
	.bitmap_enable = qcow2_bitmap_enable,
	.bitmap_merge = qcow2_bitmap_merge,
	.bitmap_status = qcow2_bitmap_status,
};
