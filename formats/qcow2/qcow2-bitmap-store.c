/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The contents of persistent bitmaps: reading a bitmap table and its
 * data clusters into memory, and storing changed bitmaps with a new
 * directory.  A store never rewrites what the header points at: new
 * tables, data and directory go to fresh clusters, reach the disk, then
 * one header write switches to them and only then is the old space
 * freed.  A crash before the switch leaves the old directory (whose
 * tracked bitmaps are flagged in use, so nobody trusts them) and leaked
 * clusters; after it, the new state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"

#define BM_ENTRY_RESERVED 0xff000000000001feull

/* Bits of a bitmap of 2^GBITS granularity that cover the image. */
static uint64_t used_bits(const struct qcow2 *s, unsigned gbits)
{
	return s->img->size ? ((s->img->size - 1) >> gbits) + 1 : 0;
}

uint64_t qcow2_bitmap_bytes(const struct qcow2 *s, unsigned gbits)
{
	return div_round_up_u64(used_bits(s, gbits), 8);
}

void qcow2_bitmap_set_content(const struct qcow2 *s, struct qcow2_bitmap *b,
			      uint8_t *bits, uint64_t nbytes)
{
	/* Bits past the end of the image are never dirty. */
	uint64_t used = used_bits(s, b->granularity_bits);
	if (used % 8)
		bits[nbytes - 1] &= (uint8_t)((1u << (used % 8)) - 1);
	b->bits = bits;
	b->nbytes = nbytes;
}

/* The table of B, or NULL with the error set.  Entries are validated. */
static uint64_t *read_table(struct qcow2 *s, const struct qcow2_bitmap *b,
			    uint64_t file_size)
{
	size_t n = b->table_size;
	uint8_t *raw = malloc(n * 8);
	uint64_t *t = malloc(n * 8);
	int r = raw && t ? 0 : mimg_err(-ENOMEM, "out of memory");
	if (r == 0)
		r = mimg_file_pread_exact(s->file, raw, n * 8, b->table_offset,
					  "bitmap table");
	for (size_t i = 0; r == 0 && i < n; i++) {
		uint64_t e = ld_be64(raw + 8 * i);
		uint64_t off = e & QCOW2_OFFSET_MASK;
		t[i] = e;
		if (!(e & BM_ENTRY_RESERVED) && (!off || !(e & 1)) &&
		    is_aligned_u64(off, s->cluster_size) &&
		    ck_range_within(off, s->cluster_size, file_size))
			continue;
		r = mimg_err(-EINVAL,
			     "%s: qcow2: bitmap '%s': table entry "
			     "%zu (0x%llx) is invalid or points past the end "
			     "of the file",
			     qcow2_path(s), b->name, i, (unsigned long long)e);
	}
	free(raw);
	if (r < 0) {
		free(t);
		return NULL;
	}
	return t;
}

int qcow2_bitmap_load(struct qcow2 *s, struct qcow2_bitmap *b)
{
	uint64_t cs = s->cluster_size, nbytes;
	if (b->bits)
		return 0;
	nbytes = qcow2_bitmap_bytes(s, b->granularity_bits);
	if (b->table_offset == 0 || nbytes == 0) {
		/* Not stored yet: starts clean. */
		b->bits = calloc(1, nbytes ? nbytes : 1);
		b->nbytes = nbytes;
		return b->bits ? 0 : mimg_err(-ENOMEM, "out of memory");
	}
	if (div_round_up_u64(nbytes, cs) != b->table_size)
		return mimg_err(-EINVAL,
				"%s: qcow2: bitmap '%s' has a table "
				"of %u entries, but the image's size needs "
				"%llu",
				qcow2_path(s), b->name, b->table_size,
				(unsigned long long)div_round_up_u64(nbytes,
								     cs));
	uint64_t file_size;
	int r = mimg_file_size(s->file, &file_size);
	if (r < 0)
		return r;
	uint64_t *t = read_table(s, b, file_size);
	if (!t)
		return -EINVAL;
	uint8_t *bits = malloc(nbytes);
	if (!bits) {
		free(t);
		return mimg_err(-ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < b->table_size && r == 0; i++) {
		uint64_t pos = (uint64_t)i * cs;
		size_t len = (size_t)min_u64(cs, nbytes - pos);
		uint64_t off = t[i] & QCOW2_OFFSET_MASK;
		/* Guest data must never land on bitmap data either. */
		if (off && (r = qcow2_meta_add(s, off, cs)) == 0)
			r = mimg_file_pread_exact(s->file, bits + pos, len, off,
						  "bitmap data");
		else
			memset(bits + pos, (t[i] & 1) ? 0xff : 0, len);
	}
	free(t);
	if (r < 0) {
		free(bits);
		return r;
	}
	qcow2_bitmap_set_content(s, b, bits, nbytes);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Write B's content to fresh clusters: *TOFF gets the table's offset.
 * The table, and the directory below, are written as long as they are,
 * not to their clusters' ends, as qemu writes them: a file that ends
 * with them ends where they do. */
static int write_content(struct qcow2 *s, const struct qcow2_bitmap *b,
			 uint64_t *toff, uint32_t *tsize)
{
	uint64_t cs = s->cluster_size;
	uint32_t n = (uint32_t)div_round_up_u64(b->nbytes, cs);
	uint64_t tbytes = (uint64_t)n * 8;
	if (n == 0)
		return mimg_err(-EINVAL,
				"%s: qcow2: bitmap '%s' cannot be "
				"stored: the image is empty",
				qcow2_path(s), b->name);
	uint8_t *tab = calloc(1, div_round_up_u64(tbytes, cs) * cs);
	uint8_t *buf = malloc(cs);
	int r = tab && buf ? 0 : mimg_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n && r == 0; i++) {
		uint64_t pos = (uint64_t)i * cs, off;
		size_t len = (size_t)min_u64(cs, b->nbytes - pos);
		if (all_zero(b->bits + pos, len))
			continue;
		memset(buf, 0, cs);
		memcpy(buf, b->bits + pos, len);
		if ((r = qcow2_alloc_clusters(s, 1, &off)) == 0 &&
		    (r = qcow2_meta_add(s, off, cs)) == 0)
			r = mimg_file_pwrite(s->file, buf, cs, off);
		st_be64(tab + 8 * (size_t)i, off);
	}
	uint64_t off = 0, tcl = div_round_up_u64(tbytes, cs);
	if (r == 0 && (r = qcow2_alloc_clusters(s, tcl, &off)) == 0 &&
	    (r = qcow2_meta_add(s, off, tbytes)) == 0)
		r = mimg_file_pwrite(s->file, tab, tbytes, off);
	free(tab);
	free(buf);
	*toff = off;
	*tsize = n;
	return r;
}

/* Drop the table at OFF (SIZE entries) and the data it points at. */
static int free_table(struct qcow2 *s, uint64_t off, uint32_t size)
{
	uint64_t file_size;
	struct qcow2_bitmap b = {.name = "(replaced)",
				 .table_offset = off,
				 .table_size = size};
	int r = mimg_file_size(s->file, &file_size);
	if (r < 0)
		return r;
	uint64_t *t = read_table(s, &b, file_size);
	if (!t)
		return -EIO;
	for (uint32_t i = 0; i < size && r == 0; i++)
		if (t[i] & QCOW2_OFFSET_MASK)
			r = qcow2_free_range(s, t[i] & QCOW2_OFFSET_MASK,
					     s->cluster_size, true);
	free(t);
	if (r == 0)
		r = qcow2_free_range(s, off, (uint64_t)size * 8, true);
	return r;
}

static bool table_in_use(const struct qcow2 *s, uint64_t off)
{
	for (uint32_t i = 0; i < s->nb_bitmaps; i++)
		if (s->bitmaps[i].table_offset == off)
			return true;
	return false;
}

static uint64_t entry_size(const struct qcow2_bitmap *b)
{
	return (24ull + b->extra_len + strlen(b->name) + 7) & ~7ull;
}

/* The directory for the bitmaps with tables TOFF/TSIZE, in BUF. */
static void put_directory(const struct qcow2 *s, const uint64_t *toff,
			  const uint32_t *tsize, bool final, uint8_t *buf)
{
	uint64_t pos = 0;
	for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
		const struct qcow2_bitmap *b = &s->bitmaps[i];
		uint8_t *e = buf + pos;
		uint32_t flags = b->flags;
		if (b->tracked && !final)
			flags |= QCOW2_BM_IN_USE;
		size_t nlen = strlen(b->name);
		st_be64(e, toff[i]);
		st_be32(e + 8, tsize[i]);
		st_be32(e + 12, flags);
		e[16] = b->type;
		e[17] = (uint8_t)b->granularity_bits;
		st_be16(e + 18, (uint16_t)nlen);
		st_be32(e + 20, b->extra_len);
		if (b->extra_len)
			memcpy(e + 24, b->extra, b->extra_len);
		memcpy(e + 24 + b->extra_len, b->name, nlen);
		pos += entry_size(b);
	}
}

/* Point the header at the directory DOFF/DSIZE (none when N is 0). */
static int switch_header(struct qcow2 *s, uint32_t n, uint64_t doff,
			 uint64_t dsize)
{
	uint64_t old_off = s->bm_dir_offset, old_size = s->bm_dir_size;
	uint64_t old_ac = s->autoclear;
	bool old_ext = s->has_bitmaps_ext;
	s->has_bitmaps_ext = n != 0;
	s->bm_dir_offset = doff;
	s->bm_dir_size = dsize;
	if (n)
		s->autoclear |= QCOW2_AUTOCLEAR_BITMAPS;
	else
		s->autoclear &= ~QCOW2_AUTOCLEAR_BITMAPS;
	int r = qcow2_rewrite_header(s);
	if (r < 0) {
		s->bm_dir_offset = old_off;
		s->bm_dir_size = old_size;
		s->autoclear = old_ac;
		s->has_bitmaps_ext = old_ext;
	}
	return r;
}

static int free_replaced(struct qcow2 *s, uint64_t old_doff, uint64_t old_dsize)
{
	int r = 0;
	if (old_dsize)
		r = qcow2_free_range(s, old_doff, old_dsize, true);
	for (uint32_t i = 0; i < s->nb_bm_stored && r == 0; i++)
		if (!table_in_use(s, s->bm_stored[i].off))
			r = free_table(s, s->bm_stored[i].off,
				       s->bm_stored[i].size);
	if (r == 0)
		r = qcow2_bitmaps_note_stored(s);
	if (r == 0)
		r = qcow2_refcount_writeback(s);
	return r;
}

int qcow2_bitmaps_store(struct qcow2 *s, bool final)
{
	uint32_t n = s->nb_bitmaps;
	uint64_t *toff = calloc(n + 1, sizeof(*toff));
	uint32_t *tsize = calloc(n + 1, sizeof(*tsize));
	uint64_t dsize = 0, doff = 0;
	uint8_t *dir = NULL;
	int r = toff && tsize ? 0 : mimg_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n && r == 0; i++) {
		struct qcow2_bitmap *b = &s->bitmaps[i];
		toff[i] = b->table_offset;
		tsize[i] = b->table_size;
		if (b->bits && (b->changed || !b->table_offset))
			r = write_content(s, b, &toff[i], &tsize[i]);
		dsize += entry_size(b);
	}
	if (r == 0 && n) {
		uint64_t cs = s->cluster_size,
			 ncl = div_round_up_u64(dsize, cs);
		if (!(dir = calloc(1, ncl * cs)))
			r = mimg_err(-ENOMEM, "out of memory");
		if (r == 0)
			put_directory(s, toff, tsize, final, dir);
		if (r == 0 && (r = qcow2_alloc_clusters(s, ncl, &doff)) == 0 &&
		    (r = qcow2_meta_add(s, doff, dsize)) == 0)
			r = mimg_file_pwrite(s->file, dir, dsize, doff);
	}
	/* Refcounts and contents on disk before the header uses them. */
	if (r == 0)
		r = qcow2_refcount_writeback(s);
	if (r == 0)
		r = mimg_file_flush(s->file);
	uint64_t old_doff = s->bm_dir_offset;
	uint64_t old_dsize = s->has_bitmaps_ext ? s->bm_dir_size : 0;
	if (r == 0)
		r = switch_header(s, n, doff, dsize);
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r == 0) {
		uint64_t pos = 0;
		for (uint32_t i = 0; i < n; i++) {
			struct qcow2_bitmap *b = &s->bitmaps[i];
			b->table_offset = toff[i];
			b->table_size = tsize[i];
			b->dir_pos = pos + 12;
			b->changed = false;
			pos += entry_size(b);
		}
		r = free_replaced(s, old_doff, old_dsize);
	}
	free(dir);
	free(toff);
	free(tsize);
	return r;
}
