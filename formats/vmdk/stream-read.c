/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Reading a streamOptimized extent in one pass, from a file read forward
 * only (an image streamed out of a compressed file or a tar, with no
 * temporary file).  The markers are walked in file order as the reader
 * asks for grains further on; each grain is then inflated from where its
 * marker lies (vmdk_sparse_read_compressed, as for any compressed
 * extent) while the file still holds those bytes, and the runs between
 * grains are unallocated: holes, never data.
 *
 * A reader with random access goes by the grain directory and tables,
 * not by the markers, so the two must agree or the stream is refused:
 *  - directory at the front (qemu-img and mimg write this): its tables
 *    lie before the first grain and are read first; a digest of their
 *    (grain, sector) entries must equal the digest of the markers' at
 *    the end-of-stream marker;
 *  - directory at the end (VMware's footer layout): each grain table
 *    marker follows the grains it lists and must list exactly them, the
 *    directory must name those tables, and the footer must repeat the
 *    header, in the last sectors of the file.
 * Without an end-of-stream marker (qemu-img 7.2 writes none), the end of
 * the file ends a stream whose directory is at the front.  The file's
 * size may be learnt only at its end (a gzip file declares none): it is
 * asked again after each read that may have reached the end.
 * A table entry of 1 is a zeroed grain when the header's flag says so,
 * as for any sparse extent: it has no marker.  With the directory at the
 * front, the tables say which grains are zeroed before the grains come;
 * at the end, they say it after the grains, which until then read as
 * unallocated (zeroes too, unless the image has a parent: then it is
 * refused).
 * Grains must come in ascending order, each once, within the capacity;
 * anything else is an error naming the marker.  Memory stays bounded:
 * the grains whose bytes the stream may still hold, one grain table, and
 * in the footer layout the sectors of the tables seen.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "file-archive.h"
#include "file.h"
#include "vmdk.h"

/* A grain marker takes at least a sector: the stream's memory holds at
 * most this many. */
#define INDEX_MAX (MIMG_STREAM_RING / VMDK_SECTOR)
#define DRAIN_CHUNK (1u << 20)
#define GD_CHUNK 4096u

struct grain_at {
	uint64_t grain;
	uint64_t off; /* bytes: the grain's marker */
};

struct vmdk_sread {
	uint64_t size;	 /* bytes of the file */
	uint64_t pos;	 /* the next marker */
	uint64_t grains; /* grains in the extent */
	bool footer;	 /* directory at the end */
	bool eos;	 /* end-of-stream marker reached and checked */
	bool have_next;	 /* NEXT parsed, not yet in the index */
	struct grain_at next;
	uint64_t min_grain; /* the next grain marker must be at least */
	/* The grains last passed, oldest at HEAD: those below FLOOR are
	 * forgotten. */
	struct grain_at *idx;
	size_t head, n;
	uint64_t floor;
	/* Directory at the front: (grain, sector) of markers and tables. */
	struct mimg_digests markers, tables;
	/* Directory at the end: the grains since the last table marker
	 * (all in table PEND_GDI), where each table's marker data is, and
	 * the tables that list nothing. */
	bool pending;
	uint64_t pend_gdi;
	uint32_t *pend_gt;
	uint32_t *gt_at;
	uint32_t *empty;
	size_t n_empty;
	uint8_t *gt_buf;
	uint64_t gd_sector;  /* 0 until the directory's marker */
	uint64_t footer_off; /* the footer's marker, 0 until seen */
	/* Per grain table, a bitmap of its zeroed grains, or NULL. */
	uint8_t **zeroed;
	uint64_t n_zeroed;
	int err; /* a failure fails every later lookup */
	char errmsg[512];
};

static int fail(struct vmdk_sread *sr, int r)
{
	sr->err = r;
	snprintf(sr->errmsg, sizeof(sr->errmsg), "%s", mimg_errmsg());
	return r;
}

/* The file's size, which a stream of unknown size learns at its end. */
static int refresh_size(struct vmdk_sparse *sp, struct vmdk_sread *sr)
{
	int r = mimg_file_size(sp->file, &sr->size);
	if (r == 0)
		sp->file_end = sr->size;
	return r;
}

/* Table GDI's entry J is a zeroed grain. */
static int mark_zeroed(struct vmdk_sparse *sp, struct vmdk_sread *sr,
		       uint64_t gdi, uint32_t j)
{
	if (!sr->zeroed &&
	    !(sr->zeroed = calloc(sp->gd_entries, sizeof(*sr->zeroed))))
		return mimg_err(-ENOMEM, "out of memory");
	sr->n_zeroed = sp->gd_entries;
	if (!sr->zeroed[gdi] &&
	    !(sr->zeroed[gdi] = calloc(1, sp->gt_entries / 8 + 1)))
		return mimg_err(-ENOMEM, "out of memory");
	sr->zeroed[gdi][j / 8] |= (uint8_t)(1u << (j % 8));
	return 0;
}

static bool is_zeroed(const struct vmdk_sparse *sp, const struct vmdk_sread *sr,
		      uint64_t grain)
{
	uint64_t gdi = grain / sp->gt_entries;
	uint32_t j = (uint32_t)(grain % sp->gt_entries);
	return sr->zeroed && gdi < sp->gd_entries && sr->zeroed[gdi] &&
	       (sr->zeroed[gdi][j / 8] >> (j % 8) & 1);
}

static void digest_pair(struct mimg_digests *d, uint64_t grain, uint64_t sector)
{
	uint8_t rec[16];
	st_le64(rec, grain);
	st_le64(rec + 8, sector);
	mimg__digests_update(d, rec, sizeof(rec));
}

/* Directory at the front: read every table, in directory order (their
 * order in the file as qemu-img and mimg place them), before the first
 * grain, into the tables' digest. */
static int front_tables(struct vmdk_sparse *sp, struct vmdk_sread *sr,
			uint64_t data_start)
{
	uint32_t *gt;
	int r;

	if ((r = vmdk_sparse_load_gd(sp, sp->gd_sector, &sp->gd,
				     "grain directory")) < 0)
		return r;
	if (sp->gd_sector * VMDK_SECTOR + sp->gd_entries * 4 > data_start)
		return mimg_err(-ENOTSUP,
				"%s: vmdk: the grain directory at "
				"sector %" PRIu64 " is not before the grains; "
				"this stream needs random access",
				sp->path, sp->gd_sector);
	if (!(gt = malloc(sp->gt_bytes)))
		return mimg_err(-ENOMEM, "out of memory");
	for (uint64_t i = 0; i < sp->gd_entries && r == 0; i++) {
		if (sp->gd[i] &&
		    (uint64_t)sp->gd[i] * VMDK_SECTOR + sp->gt_bytes >
			    data_start) {
			r = mimg_err(-ENOTSUP,
				     "%s: vmdk: grain table %" PRIu64
				     " at sector %" PRIu32 " is not before the "
				     "grains; this stream needs random access",
				     sp->path, i, sp->gd[i]);
			break;
		}
		if ((r = vmdk_sparse_read_gt(sp, sp->gd, i, gt)) < 0)
			break;
		for (uint32_t j = 0; j < sp->gt_entries && r == 0; j++) {
			uint64_t g = i * sp->gt_entries + j;
			if (gt[j] == VMDK_GTE_ZERO && sp->zero_grain)
				r = mark_zeroed(sp, sr, i, j);
			else if (gt[j] && g < sr->grains)
				digest_pair(&sr->tables, g, gt[j]);
		}
	}
	free(gt);
	return r;
}

int vmdk_sread_open(struct vmdk_sparse *sp)
{
	struct vmdk_sread *sr;
	uint64_t start;
	int r;

	if (!sp->compressed || !sp->markers)
		return mimg_err(-ENOTSUP,
				"%s: vmdk: only streamOptimized "
				"extents are read in one pass",
				sp->path);
	if (!ck_mul_u64(sp->overhead, VMDK_SECTOR, &start) || start == 0 ||
	    start > sp->file_end)
		return mimg_err(-EINVAL,
				"%s: vmdk: invalid overhead of %" PRIu64
				" sectors",
				sp->path, sp->overhead);
	if (!(sr = calloc(1, sizeof(*sr))))
		return mimg_err(-ENOMEM, "out of memory");
	sp->sr = sr;
	sr->size = sp->file_end;
	sr->pos = start;
	sr->grains = div_round_up_u64(sp->capacity, sp->grain_sectors);
	sr->footer = sp->gd_sector == VMDK_GD_AT_END;
	sp->gd_at_end = sr->footer;
	if (!(sr->idx = malloc(INDEX_MAX * sizeof(*sr->idx))))
		return mimg_err(-ENOMEM, "out of memory");
	if (sr->footer) {
		sr->pend_gt = calloc(sp->gt_entries, 4);
		sr->gt_at = calloc(sp->gd_entries, 4);
		sr->gt_buf = malloc(sp->gt_bytes);
		if (!sr->pend_gt || !sr->gt_at || !sr->gt_buf)
			return mimg_err(-ENOMEM, "out of memory");
		return 0;
	}
	if ((r = mimg__digests_init(&sr->markers)) < 0 ||
	    (r = mimg__digests_init(&sr->tables)) < 0)
		return r;
	return front_tables(sp, sr, start);
}

void vmdk_sread_free(struct vmdk_sread *sr)
{
	if (!sr)
		return;
	mimg__digests_free(&sr->markers);
	mimg__digests_free(&sr->tables);
	free(sr->idx);
	free(sr->pend_gt);
	free(sr->gt_at);
	free(sr->empty);
	free(sr->gt_buf);
	if (sr->zeroed)
		for (uint64_t i = 0; i < sr->n_zeroed; i++)
			free(sr->zeroed[i]);
	free(sr->zeroed);
	free(sr);
}

static void index_push(struct vmdk_sread *sr, struct grain_at g)
{
	if (sr->n == INDEX_MAX) {
		sr->floor = sr->idx[sr->head].grain + 1;
		sr->head = (sr->head + 1) % INDEX_MAX;
		sr->n--;
	}
	sr->idx[(sr->head + sr->n) % INDEX_MAX] = g;
	sr->n++;
}

/* The marker of GRAIN in the index, or NULL. */
static const struct grain_at *index_find(const struct vmdk_sread *sr,
					 uint64_t grain)
{
	size_t lo = 0, hi = sr->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct grain_at *g =
			&sr->idx[(sr->head + mid) % INDEX_MAX];
		if (g->grain == grain)
			return g;
		if (g->grain < grain)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A grain marker at sr->pos for LBA, CLEN bytes of deflate data. */
static int take_grain(struct vmdk_sparse *sp, struct vmdk_sread *sr,
		      uint64_t lba, uint32_t clen)
{
	uint64_t off = sr->pos, g = lba / sp->grain_sectors, end, sector;

	if (lba % sp->grain_sectors || g >= sr->grains)
		return mimg_err(-EINVAL,
				"%s: vmdk: grain marker at offset %" PRIu64
				" has LBA %" PRIu64 ", %s",
				sp->path, off, lba,
				g >= sr->grains ? "past the capacity"
						: "not at a grain boundary");
	if (g < sr->min_grain)
		return mimg_err(-EINVAL,
				"%s: vmdk: grain marker at offset %" PRIu64
				" is for grain %" PRIu64
				", after grain %" PRIu64
				": grains out of order or repeated; "
				"unpack the image to read it",
				sp->path, off, g, sr->min_grain - 1);
	if (clen > VMDK_MAX_COMPRESSED_GRAIN || 12 + clen > sr->size - off ||
	    !ck_align_up_u64(off + 12 + clen, VMDK_SECTOR, &end))
		return mimg_err(-EINVAL,
				"%s: vmdk: grain marker at offset %" PRIu64
				" has compressed size %" PRIu32 " past "
				"the end of the file (truncated?)",
				sp->path, off, clen);
	sector = off / VMDK_SECTOR;
	if (sector > UINT32_MAX)
		return mimg_err(-EINVAL,
				"%s: vmdk: grain marker at offset %" PRIu64
				" is past what a grain table can name",
				sp->path, off);
	if (sr->footer) {
		uint64_t gdi = g / sp->gt_entries;
		if (sr->pending && gdi != sr->pend_gdi)
			return mimg_err(-EINVAL,
					"%s: vmdk: grain %" PRIu64
					" at offset %" PRIu64 " follows grains "
					"of table %" PRIu64 " before that "
					"table's marker; unpack the image to "
					"read it",
					sp->path, g, off, sr->pend_gdi);
		sr->pending = true;
		sr->pend_gdi = gdi;
		sr->pend_gt[g % sp->gt_entries] = (uint32_t)sector;
	} else {
		digest_pair(&sr->markers, g, sector);
	}
	sr->next.grain = g;
	sr->next.off = off;
	sr->have_next = true;
	sr->min_grain = g + 1;
	sr->pos = min_u64(end, sr->size);
	return 0;
}

/* Footer layout: entry J of the table at OFF is a zeroed grain, which
 * read as unallocated until now.  Which table it is comes from the
 * directory, later; a zeroed grain in an empty table is rare enough
 * that only tables listing grains note theirs for later reads. */
static int zeroed_after(struct vmdk_sparse *sp, struct vmdk_sread *sr,
			uint64_t off, uint32_t j)
{
	if (sp->has_parent)
		return mimg_err(-ENOTSUP,
				"%s: vmdk: grain table at offset %" PRIu64
				" marks entry %" PRIu32 " zeroed after its "
				"grains were read as the parent's; unpack "
				"the image to read it",
				sp->path, off, j);
	return sr->pending ? mark_zeroed(sp, sr, sr->pend_gdi, j) : 0;
}

/* Footer layout: a grain table marker whose table is at OFF. */
static int take_table(struct vmdk_sparse *sp, struct vmdk_sread *sr,
		      uint64_t off)
{
	uint64_t sector = off / VMDK_SECTOR;
	int r = mimg_file_pread_exact(sp->file, sr->gt_buf, sp->gt_bytes, off,
				      "vmdk grain table");
	if (r < 0)
		return r;
	for (uint32_t j = 0; j < sp->gt_entries; j++) {
		uint32_t v = ld_le32(sr->gt_buf + 4 * j);
		uint32_t want = sr->pending ? sr->pend_gt[j] : 0;
		if (v == VMDK_GTE_ZERO && want == 0 && sp->zero_grain) {
			r = zeroed_after(sp, sr, off, j);
			if (r < 0)
				return r;
			continue;
		}
		if (v != want)
			return mimg_err(-EINVAL,
					"%s: vmdk: grain table at "
					"offset %" PRIu64
					" gives sector %" PRIu32
					" for entry %" PRIu32 " where "
					"the markers before it give %" PRIu32,
					sp->path, off, v, j, want);
	}
	if (!sr->pending) {
		if (sr->n_empty == sp->gd_entries)
			return mimg_err(-EINVAL,
					"%s: vmdk: more grain tables "
					"than the %" PRIu64 " the directory "
					"holds",
					sp->path, sp->gd_entries);
		if (!sr->empty && !(sr->empty = malloc(sp->gd_entries * 4)))
			return mimg_err(-ENOMEM, "out of memory");
		sr->empty[sr->n_empty++] = (uint32_t)sector;
		return 0;
	}
	sr->gt_at[sr->pend_gdi] = (uint32_t)sector;
	memset(sr->pend_gt, 0, sp->gt_bytes);
	sr->pending = false;
	sr->min_grain = max_u64(sr->min_grain,
				(sr->pend_gdi + 1) * sp->gt_entries);
	return 0;
}

static bool is_empty_table(const struct vmdk_sread *sr, uint32_t sector)
{
	size_t lo = 0, hi = sr->n_empty;
	while (lo < hi) { /* ascending: in file order */
		size_t mid = lo + (hi - lo) / 2;
		if (sr->empty[mid] == sector)
			return true;
		if (sr->empty[mid] < sector)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Footer layout: the grain directory marker, its data at OFF. */
static int take_directory(struct vmdk_sparse *sp, struct vmdk_sread *sr,
			  uint64_t off)
{
	uint8_t buf[GD_CHUNK];

	if (sr->gd_sector || sr->pending)
		return mimg_err(-EINVAL,
				"%s: vmdk: grain directory marker at "
				"offset %" PRIu64 " %s",
				sp->path, off - VMDK_SECTOR,
				sr->gd_sector
					? "is the second one"
					: "follows grains without their table");
	for (uint64_t i = 0; i < sp->gd_entries;) {
		size_t k = (size_t)min_u64(sp->gd_entries - i, GD_CHUNK / 4);
		int r = mimg_file_pread_exact(sp->file, buf, k * 4, off + i * 4,
					      "vmdk grain "
					      "directory");
		if (r < 0)
			return r;
		for (size_t j = 0; j < k; j++, i++) {
			uint32_t v = ld_le32(buf + 4 * j);
			if (sr->gt_at[i] ? v == sr->gt_at[i]
					 : v == 0 || is_empty_table(sr, v))
				continue;
			return mimg_err(-EINVAL,
					"%s: vmdk: grain directory "
					"entry %" PRIu64 " is sector %" PRIu32
					", not the grain table marked for "
					"those grains (%" PRIu32 ")",
					sp->path, i, v, sr->gt_at[i]);
		}
	}
	sr->gd_sector = off / VMDK_SECTOR;
	return 0;
}

/* Footer layout: the footer at OFF must repeat the header, naming the
 * directory read. */
static int take_footer(struct vmdk_sparse *sp, struct vmdk_sread *sr,
		       uint64_t off)
{
	uint8_t h[VMDK_SECTOR];
	int r;

	if (!sr->gd_sector || sr->footer_off)
		return mimg_err(-EINVAL,
				"%s: vmdk: footer marker at offset %" PRIu64
				" %s",
				sp->path, off - VMDK_SECTOR,
				sr->footer_off
					? "is the second one"
					: "comes before the grain directory");
	if ((r = mimg_file_pread_exact(sp->file, h, sizeof(h), off,
				       "vmdk footer")) < 0)
		return r;
	/* Everything up to the directory offset, and from the overhead to
	 * the compression algorithm, is what a reader takes from it. */
	if (memcmp(h, sp->header, 56) != 0 ||
	    memcmp(h + 64, sp->header + 64, 15) != 0)
		return mimg_err(-EINVAL,
				"%s: vmdk: the footer at offset %" PRIu64
				" differs from the header",
				sp->path, off);
	if (ld_le64(h + 56) != sr->gd_sector)
		return mimg_err(-EINVAL,
				"%s: vmdk: the footer names the grain "
				"directory at sector %" PRIu64 ", the stream "
				"has it at sector %" PRIu64,
				sp->path, ld_le64(h + 56), sr->gd_sector);
	sr->footer_off = off - VMDK_SECTOR;
	return 0;
}

/* Read the rest of the file, so that the stream checks its end (size,
 * what follows in a tar) and, when it declared none, knows its size. */
static int drain(struct vmdk_sparse *sp, struct vmdk_sread *sr, uint64_t from)
{
	uint8_t *buf = malloc(DRAIN_CHUNK);
	int r = 0;
	if (!buf)
		return mimg_err(-ENOMEM, "out of memory");
	/* The last byte at least: the read that reaches the end checks it. */
	if (sr->size)
		from = min_u64(from, sr->size - 1);
	while (r == 0 && from < sr->size) {
		size_t k = (size_t)min_u64(sr->size - from, DRAIN_CHUNK);
		r = mimg_file_pread(sp->file, buf, k, from);
		from += k;
		if (r == 0)
			r = refresh_size(sp, sr);
	}
	free(buf);
	return r;
}

/* The end-of-stream marker at OFF: everything the tables say must have
 * been seen. */
static int take_eos(struct vmdk_sparse *sp, struct vmdk_sread *sr, uint64_t off)
{
	int r;
	if (sr->footer) {
		if (sr->pending || !sr->footer_off)
			return mimg_err(
				-EINVAL,
				"%s: vmdk: end-of-stream "
				"marker at offset %" PRIu64 " before %s",
				sp->path, off,
				sr->pending
					? "the grain table of the last grains"
					: "the footer");
		/* Where the file ends is known once it is read. */
		if ((r = drain(sp, sr, off)) < 0)
			return r;
		if (sr->footer_off + 2 * VMDK_SECTOR != off ||
		    off + VMDK_SECTOR != sr->size)
			return mimg_err(-EINVAL,
					"%s: vmdk: the footer and "
					"end-of-stream marker are not the last "
					"sectors of the file",
					sp->path);
	} else {
		mimg__digests_final(&sr->markers);
		mimg__digests_final(&sr->tables);
		if (memcmp(sr->markers.md, sr->tables.md,
			   sizeof(sr->markers.md)) != 0)
			return mimg_err(-EINVAL,
					"%s: vmdk: the grain markers "
					"are not the grains the grain tables "
					"list (a table entry without its "
					"marker, or a marker without its "
					"entry)",
					sp->path);
	}
	sr->eos = true;
	return sr->footer ? 0 : drain(sp, sr, off);
}

/* Parse the marker at sr->pos. */
static int next_marker(struct vmdk_sparse *sp, struct vmdk_sread *sr)
{
	uint8_t m[VMDK_SECTOR];
	uint64_t off = sr->pos, data, end;
	int r;

	/* The marker's sector, past the end of the file read as zeroes:
	 * then the file knows where it ends. */
	if ((r = mimg_file_pread(sp->file, m, sizeof(m), off)) < 0 ||
	    (r = refresh_size(sp, sr)) < 0)
		return r;
	/* qemu-img writes no end-of-stream marker: with the directory at
	 * the front, the end of the file is the end of the stream. */
	if (!sr->footer && off == sr->size)
		return take_eos(sp, sr, off);
	if (off > sr->size || sr->size - off < VMDK_SECTOR)
		return mimg_err(-EINVAL,
				"%s: vmdk: the stream ends at offset %" PRIu64
				" without an end-of-stream marker "
				"(truncated?)",
				sp->path, off);
	uint64_t val = ld_le64(m);
	uint32_t size = ld_le32(m + 8), type = ld_le32(m + 12);
	if (size)
		return take_grain(sp, sr, val, size);
	data = off + VMDK_SECTOR;
	if (!ck_mul_u64(val, VMDK_SECTOR, &end) ||
	    !ck_add_u64(end, data, &end) || end > sr->size)
		return mimg_err(-EINVAL,
				"%s: vmdk: marker at offset %" PRIu64
				" covers %" PRIu64 " sectors past the end of "
				"the file (truncated?)",
				sp->path, off, val);
	sr->pos = end;
	if (type == VMDK_MARKER_EOS && val == 0)
		return take_eos(sp, sr, off);
	if (type > VMDK_MARKER_FOOTER || type == VMDK_MARKER_EOS)
		return mimg_err(-EINVAL,
				"%s: vmdk: marker at offset %" PRIu64
				" has unknown type %" PRIu32 " (size %" PRIu64
				")",
				sp->path, off, type, val);
	/* With the directory at the front, the reader never looks at the
	 * tables that follow grains. */
	if (!sr->footer)
		return 0;
	uint64_t need = type == VMDK_MARKER_GT	 ? sp->gt_bytes
			: type == VMDK_MARKER_GD ? sp->gd_entries * 4
						 : VMDK_SECTOR;
	if (end - data < need)
		return mimg_err(-EINVAL,
				"%s: vmdk: marker at offset %" PRIu64
				" holds %" PRIu64 " bytes, too few for its "
				"type %" PRIu32,
				sp->path, off, end - data, type);
	if (type == VMDK_MARKER_GT)
		return take_table(sp, sr, data);
	if (type == VMDK_MARKER_GD)
		return take_directory(sp, sr, data);
	return take_footer(sp, sr, data);
}

int vmdk_sread_lookup(struct vmdk_sparse *sp, uint64_t grain,
		      enum vmdk_grain_state *state, uint64_t *host_off)
{
	struct vmdk_sread *sr = sp->sr;
	const struct grain_at *g;
	int r = 0;

	*state = VMDK_GRAIN_UNALLOC;
	*host_off = 0;
	if (sr->err)
		return mimg_err(sr->err, "%s", sr->errmsg);
	while (!sr->eos && (!sr->have_next || sr->next.grain <= grain)) {
		if (sr->have_next) {
			index_push(sr, sr->next);
			sr->have_next = false;
		} else if ((r = next_marker(sp, sr)) < 0) {
			return fail(sr, r);
		}
	}
	if (grain < sr->floor)
		return mimg_err(-ESPIPE,
				"%s: vmdk: grain %" PRIu64 " of a "
				"streamed image read after the stream moved "
				"past it; this use needs random access",
				sp->path, grain);
	if ((g = index_find(sr, grain))) {
		*state = VMDK_GRAIN_DATA;
		*host_off = g->off;
	} else if (is_zeroed(sp, sr, grain)) {
		*state = VMDK_GRAIN_ZERO;
	}
	return 0;
}
