/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Persistent dirty bitmaps: the bitmap directory is read so that info
 * lists the bitmaps as qemu-img does and check counts their clusters.
 * The bitmaps themselves are not maintained: opening the image writable
 * marks every bitmap in use (inconsistent), so the structure stays valid
 * and nothing leaks, while no reader trusts the bits any more.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"
#include "value.h"

/* qemu's limits. */
#define BM_MAX_COUNT 65535u
#define BM_MAX_DIR_SIZE (64ull << 20)
#define BM_MAX_TABLE_SIZE 0x8000000u
#define BM_FLAG_IN_USE 1u
#define BM_FLAG_AUTO 2u

void qcow2_free_bitmaps(struct qcow2 *s)
{
	for (uint32_t i = 0; s->bitmaps && i < s->nb_bitmaps; i++)
		free(s->bitmaps[i].name);
	free(s->bitmaps);
	s->bitmaps = NULL;
	s->bitmaps_loaded = false;
}

int qcow2_read_bitmaps(struct qcow2 *s)
{
	const char *path = qcow2_path(s);
	if (!s->has_bitmaps_ext || !(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	if (s->nb_bitmaps == 0)
		return 0;
	if (s->nb_bitmaps > BM_MAX_COUNT || s->bm_dir_size > BM_MAX_DIR_SIZE ||
	    s->bm_dir_size < 24ull * s->nb_bitmaps ||
	    !is_aligned_u64(s->bm_dir_offset, s->cluster_size))
		return mimg_err(-EINVAL, "%s: qcow2: bitmap directory (%u "
				"bitmaps, %llu bytes at 0x%llx) is invalid",
				path, s->nb_bitmaps,
				(unsigned long long)s->bm_dir_size,
				(unsigned long long)s->bm_dir_offset);
	uint8_t *dir = malloc(s->bm_dir_size);
	s->bitmaps = calloc(s->nb_bitmaps, sizeof(*s->bitmaps));
	int r = 0;
	if (!dir || !s->bitmaps) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	if ((r = mimg_file_pread_exact(s->file, dir, s->bm_dir_size,
				       s->bm_dir_offset,
				       "bitmap directory")) < 0)
		goto out;
	uint64_t off = 0;
	for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
		struct qcow2_bitmap *b = &s->bitmaps[i];
		if (off + 24 > s->bm_dir_size) {
			r = mimg_err(-EINVAL, "%s: qcow2: bitmap directory "
				     "entry %u runs past the directory", path,
				     i);
			goto out;
		}
		const uint8_t *e = dir + off;
		b->table_offset = ld_be64(e);
		b->table_size = ld_be32(e + 8);
		b->flags = ld_be32(e + 12);
		b->dir_pos = off + 12;
		b->granularity_bits = e[17];
		uint16_t name_len = ld_be16(e + 18);
		uint32_t extra = ld_be32(e + 20);
		uint64_t len = 24ull + extra + name_len, alen;
		ck_align_up_u64(len, 8, &alen);
		if (off + len > s->bm_dir_size || b->granularity_bits > 63 ||
		    b->table_size > BM_MAX_TABLE_SIZE ||
		    !is_aligned_u64(b->table_offset, s->cluster_size)) {
			r = mimg_err(-EINVAL, "%s: qcow2: bitmap directory "
				     "entry %u is invalid", path, i);
			goto out;
		}
		if (!(b->name = strndup((const char *)e + 24 + extra,
					name_len))) {
			r = mimg_err(-ENOMEM, "out of memory");
			goto out;
		}
		off += alen;
	}
	s->bitmaps_loaded = true;
out:
	free(dir);
	if (r < 0)
		qcow2_free_bitmaps(s);
	return r;
}

int qcow2_info_bitmaps(struct qcow2 *s, struct mimg_value *data)
{
	if (!s->has_bitmaps_ext || !(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	struct mimg_value *arr = mimg_value_add(data, "bitmaps",
						MIMG_VALUE_ARRAY);
	if (!arr)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; s->bitmaps_loaded && i < s->nb_bitmaps; i++) {
		const struct qcow2_bitmap *b = &s->bitmaps[i];
		struct mimg_value *o = mimg_value_add(arr, NULL,
						      MIMG_VALUE_OBJECT);
		struct mimg_value *fl = o ? mimg_value_add(o, "flags",
							   MIMG_VALUE_ARRAY) :
					    NULL;
		bool ok = fl != NULL;
		if (ok && (b->flags & BM_FLAG_IN_USE))
			ok = mimg_value_add_str(fl, NULL, "in-use");
		if (ok && (b->flags & BM_FLAG_AUTO))
			ok = mimg_value_add_str(fl, NULL, "auto");
		ok = ok && mimg_value_add_str(o, "name", b->name);
		ok = ok && mimg_value_add_uint(o, "granularity",
					       1ull << b->granularity_bits);
		if (!ok)
			return mimg_err(-ENOMEM, "out of memory");
	}
	return 0;
}

int qcow2_bitmap_refs(struct qcow2 *s,
		      void (*inc)(void *opaque, uint64_t off, uint64_t len),
		      void *opaque)
{
	if (!s->bitmaps_loaded)
		return 0;
	inc(opaque, s->bm_dir_offset, s->bm_dir_size);
	for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
		const struct qcow2_bitmap *b = &s->bitmaps[i];
		uint64_t bytes = (uint64_t)b->table_size * 8;
		if (!bytes)
			continue;
		inc(opaque, b->table_offset, bytes);
		uint8_t *t = malloc(bytes);
		if (!t)
			return mimg_err(-ENOMEM, "out of memory");
		int r = mimg_file_pread_exact(s->file, t, bytes, b->table_offset,
					      "bitmap table");
		for (uint32_t j = 0; r == 0 && j < b->table_size; j++) {
			uint64_t off = ld_be64(t + 8 * (size_t)j) &
				       QCOW2_OFFSET_MASK;
			if (off)
				inc(opaque, off, s->cluster_size);
		}
		free(t);
		if (r < 0)
			return r;
	}
	return 0;
}

int qcow2_mark_bitmaps_in_use(struct qcow2 *s)
{
	for (uint32_t i = 0; s->bitmaps_loaded && i < s->nb_bitmaps; i++) {
		struct qcow2_bitmap *b = &s->bitmaps[i];
		uint8_t f[4];
		if (b->flags & BM_FLAG_IN_USE)
			continue;
		st_be32(f, b->flags | BM_FLAG_IN_USE);
		int r = mimg_file_pwrite(s->file, f, 4,
					 s->bm_dir_offset + b->dir_pos);
		if (r < 0)
			return r;
		b->flags |= BM_FLAG_IN_USE;
	}
	return 0;
}
