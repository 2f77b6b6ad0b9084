/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Persistent dirty bitmaps: the bitmap directory, checked as qemu checks
 * it, for info, check and the bitmaps' upkeep (qcow2-bitmap-store.c,
 * qcow2-bitmap-track.c, qcow2-bitmap-ops.c).
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
#define BM_MAX_DIR_SIZE (64ull << 20)
#define BM_MAX_TABLE_SIZE 0x8000000u
#define BM_MAX_PHYS_SIZE (512ull << 20)
#define BM_MIN_GRAN_BITS 9u
#define BM_MAX_GRAN_BITS 31u
#define BM_TYPE_DIRTY 1u
#define BM_RESERVED_FLAGS (~7u)

void qcow2_free_bitmaps(struct qcow2 *s)
{
	for (uint32_t i = 0; s->bitmaps && i < s->nb_bitmaps; i++) {
		free(s->bitmaps[i].name);
		free(s->bitmaps[i].extra);
		free(s->bitmaps[i].bits);
	}
	free(s->bitmaps);
	free(s->bm_stored);
	s->bm_stored = NULL;
	s->nb_bm_stored = 0;
	s->bitmaps = NULL;
	s->bitmaps_loaded = false;
	s->bm_tracking = false;
}

/* The checks qemu makes of a directory entry before it uses it. */
static int check_entry(struct qcow2 *s, const struct qcow2_bitmap *b,
		       uint32_t i, uint64_t file_size)
{
	const char *bad = NULL;
	uint64_t table_bytes = (uint64_t)b->table_size * 8;
	if (b->type != BM_TYPE_DIRTY)
		bad = "type";
	else if (b->granularity_bits < BM_MIN_GRAN_BITS ||
		 b->granularity_bits > BM_MAX_GRAN_BITS)
		bad = "granularity_bits";
	else if (b->flags & BM_RESERVED_FLAGS)
		bad = "flags";
	else if (b->table_size == 0 || b->table_size > BM_MAX_TABLE_SIZE ||
		 (uint64_t)b->table_size * s->cluster_size > BM_MAX_PHYS_SIZE)
		bad = "bitmap_table_size";
	else if (b->table_offset == 0 ||
		 !is_aligned_u64(b->table_offset, s->cluster_size) ||
		 !ck_range_within(b->table_offset, table_bytes, file_size))
		bad = "bitmap_table_offset";
	if (!bad)
		return 0;
	return mimg_err(-EINVAL,
			"%s: qcow2: bitmap directory entry %u ('%s') "
			"has an invalid %s (granularity_bits %u, table of %u "
			"entries at 0x%llx, flags 0x%x, type %u)",
			qcow2_path(s), i, b->name, bad, b->granularity_bits,
			b->table_size, (unsigned long long)b->table_offset,
			b->flags, b->type);
}

/* Parse entry I at DIR + *OFF (DIR_SIZE bytes in all) into B. */
static int parse_entry(struct qcow2 *s, const uint8_t *dir, uint64_t size,
		       uint64_t *off, uint32_t i, struct qcow2_bitmap *b)
{
	const char *path = qcow2_path(s);
	if (size - *off < 24)
		return mimg_err(-EINVAL,
				"%s: qcow2: bitmap directory entry %u "
				"runs past the directory",
				path, i);
	const uint8_t *e = dir + *off;
	b->table_offset = ld_be64(e);
	b->table_size = ld_be32(e + 8);
	b->flags = ld_be32(e + 12);
	b->dir_pos = *off + 12;
	b->type = e[16];
	b->granularity_bits = e[17];
	uint16_t name_len = ld_be16(e + 18);
	b->extra_len = ld_be32(e + 20);
	uint64_t len = 24ull + b->extra_len + name_len, alen;
	ck_align_up_u64(len, 8, &alen);
	if (name_len == 0 || name_len > QCOW2_BM_MAX_NAME || alen > size - *off)
		return mimg_err(-EINVAL,
				"%s: qcow2: bitmap directory entry %u "
				"(name of %u bytes, %u bytes of extra data) "
				"is invalid",
				path, i, name_len, b->extra_len);
	b->name = strndup((const char *)e + 24 + b->extra_len, name_len);
	if (b->extra_len)
		b->extra = malloc(b->extra_len);
	if (!b->name || (b->extra_len && !b->extra))
		return mimg_err(-ENOMEM, "out of memory");
	if (b->extra_len)
		memcpy(b->extra, e + 24, b->extra_len);
	*off += alen;
	return 0;
}

/* Remember the tables the stored directory uses, to free them once a
 * new directory replaces it. */
int qcow2_bitmaps_note_stored(struct qcow2 *s)
{
	struct qcow2_bm_table *t = NULL;
	if (s->nb_bitmaps && !(t = calloc(s->nb_bitmaps, sizeof(*t))))
		return mimg_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
		t[i].off = s->bitmaps[i].table_offset;
		t[i].size = s->bitmaps[i].table_size;
	}
	free(s->bm_stored);
	s->bm_stored = t;
	s->nb_bm_stored = s->nb_bitmaps;
	return 0;
}

int qcow2_read_bitmaps(struct qcow2 *s)
{
	const char *path = qcow2_path(s);
	if (s->has_bitmaps_ext && !(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS)) {
		/* Written by software that did not know bitmaps: the
		 * extension is stale and ignored (and dropped when the
		 * header is next rewritten), as the spec says. */
		s->has_bitmaps_ext = false;
		s->nb_bitmaps = 0;
	}
	if (!s->has_bitmaps_ext || s->nb_bitmaps == 0) {
		/* An empty directory is no directory: none of its fields
		 * are used (nor freed). */
		s->has_bitmaps_ext = false;
		s->nb_bitmaps = 0;
		s->bitmaps_loaded = true;
		return 0;
	}
	uint64_t file_size;
	int r = mimg_file_size(s->file, &file_size);
	if (r < 0)
		return r;
	if (s->nb_bitmaps > QCOW2_BM_MAX_COUNT ||
	    s->bm_dir_size > BM_MAX_DIR_SIZE ||
	    s->bm_dir_size < 24ull * s->nb_bitmaps ||
	    !is_aligned_u64(s->bm_dir_offset, s->cluster_size) ||
	    !ck_range_within(s->bm_dir_offset, s->bm_dir_size, file_size))
		return mimg_err(-EINVAL,
				"%s: qcow2: bitmap directory (%u "
				"bitmaps, %llu bytes at 0x%llx) is invalid",
				path, s->nb_bitmaps,
				(unsigned long long)s->bm_dir_size,
				(unsigned long long)s->bm_dir_offset);
	uint8_t *dir = malloc(s->bm_dir_size);
	s->bitmaps = calloc(s->nb_bitmaps, sizeof(*s->bitmaps));
	if (!dir || !s->bitmaps) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	if ((r = mimg_file_pread_exact(s->file, dir, s->bm_dir_size,
				       s->bm_dir_offset, "bitmap directory")) <
	    0)
		goto out;
	uint64_t off = 0;
	for (uint32_t i = 0; i < s->nb_bitmaps && r == 0; i++) {
		if ((r = parse_entry(s, dir, s->bm_dir_size, &off, i,
				     &s->bitmaps[i])) == 0)
			r = check_entry(s, &s->bitmaps[i], i, file_size);
		for (uint32_t j = 0; j < i && r == 0; j++)
			if (strcmp(s->bitmaps[j].name, s->bitmaps[i].name) == 0)
				r = mimg_err(-EINVAL,
					     "%s: qcow2: two bitmaps "
					     "are named '%s'",
					     path, s->bitmaps[i].name);
	}
	if (r == 0 && off != s->bm_dir_size)
		r = mimg_err(-EINVAL,
			     "%s: qcow2: bitmap directory of %llu "
			     "bytes holds %llu bytes of entries",
			     path, (unsigned long long)s->bm_dir_size,
			     (unsigned long long)off);
	if (r == 0)
		r = qcow2_bitmaps_note_stored(s);
	if (r == 0)
		s->bitmaps_loaded = true;
out:
	free(dir);
	if (r < 0)
		qcow2_free_bitmaps(s);
	return r;
}

int qcow2_info_bitmaps(struct qcow2 *s, struct mimg_value *data)
{
	if (!s->bitmaps_loaded || s->nb_bitmaps == 0)
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
							   MIMG_VALUE_ARRAY)
					  : NULL;
		bool ok = fl != NULL;
		if (ok && (b->flags & QCOW2_BM_IN_USE))
			ok = mimg_value_add_str(fl, NULL, "in-use");
		if (ok && (b->flags & QCOW2_BM_AUTO))
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
	if (!s->bitmaps_loaded || s->nb_bitmaps == 0)
		return 0;
	inc(opaque, s->bm_dir_offset, s->bm_dir_size);
	for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
		const struct qcow2_bitmap *b = &s->bitmaps[i];
		uint64_t bytes = (uint64_t)b->table_size * 8;
		if (!bytes || !b->table_offset)
			continue;
		inc(opaque, b->table_offset, bytes);
		uint8_t *t = malloc(bytes);
		if (!t)
			return mimg_err(-ENOMEM, "out of memory");
		int r = mimg_file_pread_exact(s->file, t, bytes,
					      b->table_offset, "bitmap table");
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
