/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Hosted sparse extents ("KDMV", versions 1-3): header, grain directory
 * (primary and redundant), grain tables, compressed grains.
 *
 * Layout: a 512-byte little-endian header; a grain directory (GD) of
 * 32-bit sector numbers of grain tables (GT); each GT holds gt_entries
 * 32-bit sector numbers of grains.  Entry 0 is unallocated, entry 1 is a
 * zeroed grain when the header has the zeroed-grain flag.  Compressed
 * extents store zlib streams, preceded by a 12-byte marker (LBA, size)
 * when the markers flag is set.  A GD offset of all ones means the real
 * header is a footer at the end of the file (streamOptimized).
 *
 * The grain tables are cached in a direct-mapped table of slots with a
 * fixed memory budget; updates are written through to the file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "codec.h"
#include "endian.h"
#include "error.h"
#include "file.h"
#include "vmdk.h"

/* A header field counting sectors, named FIELD, must be 1..MAX. */
static int check_sectors(const char *path, const char *field, uint64_t v,
			 uint64_t max)
{
	if (v == 0 || v > max)
		return mimg_err(-EINVAL,
				"%s: vmdk: invalid %s %" PRIu64 " sectors",
				path, field, v);
	return 0;
}

static int parse_header(struct vmdk_sparse *sp, const uint8_t *h,
			uint64_t file_size)
{
	const char *path = sp->path;

	if (ld_le32(h) != VMDK_MAGIC)
		return mimg_err(-EINVAL,
				"%s: vmdk: not a sparse extent (bad "
				"magic 0x%08" PRIx32 ")",
				path, ld_le32(h));
	sp->version = ld_le32(h + 4);
	sp->flags = ld_le32(h + 8);
	sp->capacity = ld_le64(h + 12);
	sp->grain_sectors = ld_le64(h + 20);
	sp->desc_sector = ld_le64(h + 28);
	sp->desc_sectors = ld_le64(h + 36);
	sp->gt_entries = ld_le32(h + 44);
	sp->rgd_sector = ld_le64(h + 48);
	sp->gd_sector = ld_le64(h + 56);
	sp->overhead = ld_le64(h + 64);

	if (sp->version < 1 || sp->version > 3)
		return mimg_err(-ENOTSUP,
				"%s: vmdk: sparse extent version %" PRIu32
				" is not supported",
				path, sp->version);
	int r;
	if ((r = check_sectors(path, "capacity", sp->capacity,
			       VMDK_MAX_SECTORS)) < 0 ||
	    (r = check_sectors(path, "grain size", sp->grain_sectors,
			       VMDK_MAX_GRAIN_SECTORS)) < 0)
		return r;
	if (sp->gt_entries == 0 || sp->gt_entries > VMDK_MAX_GT_ENTRIES)
		return mimg_err(-EINVAL,
				"%s: vmdk: invalid number of grain "
				"table entries %" PRIu32,
				path, sp->gt_entries);
	sp->grain_bytes = sp->grain_sectors * VMDK_SECTOR;
	/* qemu goes by the algorithm field, the specification by the flag:
	 * either makes the grains compressed. */
	uint16_t alg = ld_le16(h + 77);
	sp->compressed = (sp->flags & VMDK_FLAG_COMPRESSED) || alg == 1;
	sp->markers = sp->flags & VMDK_FLAG_MARKERS;
	sp->zero_grain = sp->flags & VMDK_FLAG_ZERO_GRAIN;
	if (sp->compressed) {
		if (alg != 1)
			return mimg_err(-ENOTSUP,
					"%s: vmdk: compression "
					"algorithm %u is not supported",
					path, alg);
		if (sp->grain_bytes > VMDK_MAX_COMPRESSED_GRAIN)
			return mimg_err(-ENOTSUP,
					"%s: vmdk: compressed grain "
					"size %" PRIu64 " bytes is too large",
					path, sp->grain_bytes);
	}
	sp->gt_bytes = (uint64_t)sp->gt_entries * 4;
	uint64_t span = (uint64_t)sp->gt_entries * sp->grain_sectors;
	sp->gd_entries = div_round_up_u64(sp->capacity, span);
	if (sp->gd_entries * 4 > VMDK_MAX_GD_BYTES)
		return mimg_err(-EINVAL,
				"%s: vmdk: grain directory of %" PRIu64
				" entries is too large",
				path, sp->gd_entries);
	(void)file_size;
	return 0;
}

/* The footer of a streamOptimized extent: footer marker, header copy and
 * end-of-stream marker in the last three sectors. */
static int read_footer(struct vmdk_sparse *sp, uint64_t file_size, uint8_t *h)
{
	uint8_t buf[3 * VMDK_SECTOR];
	int r;

	if (file_size < 4 * VMDK_SECTOR)
		return mimg_err(-EINVAL,
				"%s: vmdk: grain directory is at the "
				"end but the file is too short for a footer",
				sp->path);
	r = mimg_file_pread_exact(sp->file, buf, sizeof(buf),
				  file_size - sizeof(buf), "vmdk footer");
	if (r < 0)
		return r;
	const uint8_t *fm = buf, *fh = buf + VMDK_SECTOR,
		      *eos = buf + 2 * VMDK_SECTOR;
	if (ld_le32(fh) != VMDK_MAGIC || ld_le32(fm + 8) != 0 ||
	    ld_le32(fm + 12) != VMDK_MARKER_FOOTER || ld_le64(eos) != 0 ||
	    ld_le32(eos + 8) != 0 || ld_le32(eos + 12) != VMDK_MARKER_EOS)
		return mimg_err(-EINVAL,
				"%s: vmdk: streamOptimized footer "
				"not found at the end of the file (incomplete "
				"or truncated image?)",
				sp->path);
	memcpy(h, fh, VMDK_SECTOR);
	return 0;
}

int vmdk_sparse_load_gd(struct vmdk_sparse *sp, uint64_t sector, uint32_t **out,
			const char *what)
{
	uint64_t off, bytes = sp->gd_entries * 4;
	uint32_t *gd;
	int r;

	*out = NULL;
	if (!ck_mul_u64(sector, VMDK_SECTOR, &off) ||
	    !ck_range_within(off, bytes, sp->file_end))
		return mimg_err(-EINVAL,
				"%s: vmdk: %s at sector %" PRIu64
				" lies past the end of the file",
				sp->path, what, sector);
	gd = malloc(bytes);
	if (!gd)
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg_file_pread_exact(sp->file, gd, bytes, off, what);
	if (r < 0) {
		free(gd);
		return r;
	}
	for (uint64_t i = 0; i < sp->gd_entries; i++) {
		gd[i] = ld_le32(&gd[i]);
		uint64_t gt_off = (uint64_t)gd[i] * VMDK_SECTOR;
		if (gd[i] &&
		    !ck_range_within(gt_off, sp->gt_bytes, sp->file_end)) {
			r = mimg_err(-EINVAL,
				     "%s: vmdk: %s entry %" PRIu64
				     " points to grain table at sector %" PRIu32
				     " past the end of the file",
				     sp->path, what, i, gd[i]);
			free(gd);
			return r;
		}
	}
	*out = gd;
	return 0;
}

/* The ESX 3 sparse ("COWD") header: 32-bit fields after the magic;
 * 4096-entry grain tables, no redundant directory, no compression. */
static int parse_cowd(struct vmdk_sparse *sp, const uint8_t *h)
{
	uint32_t gd_n = ld_le32(h + 24);

	sp->cowd = true;
	sp->version = ld_le32(h + 4);
	sp->capacity = ld_le32(h + 12);
	sp->grain_sectors = ld_le32(h + 16);
	sp->gd_sector = ld_le32(h + 20);
	sp->gt_entries = VMDK_COWD_GT_ENTRIES;
	if (sp->version != 1)
		return mimg_err(-ENOTSUP,
				"%s: vmdk: COWD extent version %" PRIu32
				" is not supported",
				sp->path, sp->version);
	if (sp->capacity == 0)
		return mimg_err(-EINVAL, "%s: vmdk: invalid capacity 0 sectors",
				sp->path);
	if (sp->grain_sectors == 0 ||
	    sp->grain_sectors > VMDK_MAX_GRAIN_SECTORS)
		return mimg_err(-EINVAL,
				"%s: vmdk: invalid grain size %" PRIu64
				" sectors",
				sp->path, sp->grain_sectors);
	sp->grain_bytes = sp->grain_sectors * VMDK_SECTOR;
	sp->gt_bytes = (uint64_t)sp->gt_entries * 4;
	sp->gd_entries = div_round_up_u64(sp->capacity,
					  (uint64_t)sp->gt_entries *
						  sp->grain_sectors);
	/* Grains past the directory the header declares are unallocated. */
	sp->gd_entries = min_u64(sp->gd_entries, gd_n);
	if (sp->gd_entries == 0)
		return mimg_err(-EINVAL,
				"%s: vmdk: COWD grain directory has "
				"no entries",
				sp->path);
	return 0;
}

int vmdk_sparse_open(struct vmdk_sparse *sp, struct mimg_file *file,
		     const char *path, uint64_t file_size)
{
	uint8_t h[VMDK_SECTOR];
	int r;

	sp->file = file;
	sp->path = path;
	sp->file_end = file_size;
	sp->durable_end = file_size;
	r = mimg_file_pread_exact(file, h, sizeof(h), 0, "vmdk header");
	if (r < 0)
		return r;
	if (ld_le32(h) == VMDK_COWD_MAGIC) {
		r = parse_cowd(sp, h);
		if (r == 0)
			r = vmdk_sparse_load_gd(sp, sp->gd_sector, &sp->gd,
						"grain directory");
		goto cache;
	}
	if (mimg_file_is_stream(file)) {
		/* Read in one pass: the markers, checked against the
		 * tables as they come. */
		if ((r = parse_header(sp, h, file_size)) < 0)
			return r;
		memcpy(sp->header, h, sizeof(h));
		r = vmdk_sread_open(sp);
		goto cache;
	}
	if (ld_le32(h) == VMDK_MAGIC && ld_le64(h + 56) == VMDK_GD_AT_END) {
		/* The footer takes precedence over the header. */
		sp->gd_at_end = true;
		r = read_footer(sp, file_size, h);
		if (r < 0)
			return r;
	}
	r = parse_header(sp, h, file_size);
	if (r < 0)
		return r;
	memcpy(sp->header, h, sizeof(h));
	if (sp->gd_sector == VMDK_GD_AT_END)
		return mimg_err(-EINVAL,
				"%s: vmdk: footer has no grain "
				"directory offset",
				path);

	bool has_rgd = (sp->flags & VMDK_FLAG_RGD) && sp->rgd_sector != 0;
	int rp = vmdk_sparse_load_gd(sp, sp->gd_sector, &sp->gd,
				     "grain directory");
	if (has_rgd) {
		int rr = vmdk_sparse_load_gd(sp, sp->rgd_sector, &sp->rgd,
					     "redundant grain directory");
		if (rp < 0 && rr == 0) {
			/* The primary is damaged: read through the copy. */
			sp->gd = sp->rgd;
			sp->rgd = NULL;
			sp->gd_sector = sp->rgd_sector;
			sp->rgd_sector = 0;
			sp->primary_damaged = true;
			rp = 0;
		} else if (rr < 0) {
			sp->rgd_sector = 0;
		}
	} else {
		sp->rgd_sector = 0;
	}
	r = rp;
cache:
	if (r < 0)
		return r;
	uint64_t n = (sp->cache_budget ? sp->cache_budget
				       : VMDK_GT_CACHE_BUDGET) /
		     sp->gt_bytes;
	if (n == 0)
		n = 1;
	sp->nslots = (size_t)min_u64(n, sp->gd_entries);
	sp->slots = calloc(sp->nslots, sizeof(*sp->slots));
	if (!sp->slots)
		return mimg_err(-ENOMEM, "out of memory");
	pthread_mutex_init(&sp->lock, NULL);
	pthread_cond_init(&sp->inflight_done, NULL);
	return 0;
}

/* The file grows ahead of the grains in steps of this much. */
#define RESERVE_STEP (16u << 20)

/*
 * Power-cut ordering: a grain table entry is written right after its
 * grain, without a flush in between, so either may reach the disk first.
 * Grains and tables are therefore placed only below a file size made
 * durable beforehand: should the entry survive and the grain not, the
 * grain reads as the zeroes it replaced.  (Where that is not the same --
 * a partial grain whose other bytes came from the parent -- the writer
 * waits for vmdk_sparse_barrier() first.)  The file is cut back to its
 * real end when the extent is closed.
 */
int vmdk_sparse_reserve(struct vmdk_sparse *sp, uint64_t bytes)
{
	uint64_t need, end;
	if (!ck_add_u64(sp->file_end, bytes, &need))
		return mimg_err(-EFBIG, "%s: vmdk: file too large", sp->path);
	if (need <= sp->durable_end)
		return 0;
	end = max_u64(need, sp->file_end + RESERVE_STEP);
	end = min_u64(end, (uint64_t)UINT32_MAX * VMDK_SECTOR);
	end = max_u64(end, need);
	/* A zero sector written durably at the new end makes the size
	 * durable without a flush that would wait for all the grains
	 * written before. */
	static const uint8_t zero[VMDK_SECTOR];
	struct mimg_file_write w = {zero, sizeof(zero), end - VMDK_SECTOR};
	int r = mimg_file_pwrite_durable(sp->file, &w, 1);
	if (r == 0)
		sp->durable_end = end;
	return r;
}

int vmdk_sparse_barrier(struct vmdk_sparse *sp)
{
	return mimg_group_sync(&sp->gsync, &sp->lock, &sp->inflight_done,
			       &sp->file, 1);
}

void vmdk_sparse_close(struct vmdk_sparse *sp)
{
	/* Give back the room reserved past the last grain or table. */
	if (sp->durable_end > sp->file_end)
		(void)mimg_file_truncate(sp->file, sp->file_end);
	if (sp->slots) {
		for (size_t i = 0; i < sp->nslots; i++)
			free(sp->slots[i].gte);
		free(sp->slots);
		pthread_mutex_destroy(&sp->lock);
		pthread_cond_destroy(&sp->inflight_done);
	}
	free(sp->gd);
	free(sp->rgd);
	free(sp->gt_sorted);
	vmdk_sread_free(sp->sr);
}

int vmdk_sparse_read_gt(struct vmdk_sparse *sp, const uint32_t *gd,
			uint64_t gdi, uint32_t *out)
{
	uint64_t off = (uint64_t)gd[gdi] * VMDK_SECTOR;
	int r;

	if (gd[gdi] == 0) {
		memset(out, 0, sp->gt_bytes);
		return 0;
	}
	if (!ck_range_within(off, sp->gt_bytes, sp->file_end))
		return mimg_err(-EINVAL,
				"%s: vmdk: grain table %" PRIu64
				" at sector %" PRIu32 " is past the end of the "
				"file (truncated image?)",
				sp->path, gdi, gd[gdi]);
	r = mimg_file_pread_exact(sp->file, out, sp->gt_bytes, off,
				  "vmdk grain table");
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < sp->gt_entries; i++)
		out[i] = ld_le32(&out[i]);
	return 0;
}

/* The cached grain table for GD index GDI, loading it; NULL with an error
 * in *ERR.  Caller holds sp->lock. */
static uint32_t *get_gt(struct vmdk_sparse *sp, uint64_t gdi, int *err)
{
	struct vmdk_gt_slot *s = &sp->slots[gdi % sp->nslots];

	if (s->tag == gdi + 1)
		return s->gte;
	if (!s->gte) {
		s->gte = malloc(sp->gt_bytes);
		if (!s->gte) {
			*err = mimg_err(-ENOMEM, "out of memory");
			return NULL;
		}
	}
	s->tag = 0;
	*err = vmdk_sparse_read_gt(sp, sp->gd, gdi, s->gte);
	if (*err < 0)
		return NULL;
	s->tag = gdi + 1;
	return s->gte;
}

int vmdk_sparse_lookup(struct vmdk_sparse *sp, uint64_t grain,
		       enum vmdk_grain_state *state, uint64_t *host_off)
{
	pthread_mutex_lock(&sp->lock);
	int r = vmdk_sparse_lookup_locked(sp, grain, state, host_off);
	pthread_mutex_unlock(&sp->lock);
	return r;
}

int vmdk_sparse_lookup_locked(struct vmdk_sparse *sp, uint64_t grain,
			      enum vmdk_grain_state *state, uint64_t *host_off)
{
	uint64_t gdi = grain / sp->gt_entries;
	uint32_t gti = (uint32_t)(grain % sp->gt_entries);
	uint32_t v = 0;
	uint64_t end;
	int r = 0;

	if (sp->sr)
		return vmdk_sread_lookup(sp, grain, state, host_off);
	*state = VMDK_GRAIN_UNALLOC;
	*host_off = 0;
	if (gdi >= sp->gd_entries)
		return 0;
	if (sp->gd[gdi]) {
		uint32_t *gt = get_gt(sp, gdi, &r);
		if (gt)
			v = gt[gti];
	}
	end = sp->file_end;
	if (r < 0 || v == 0)
		return r;
	if (v == VMDK_GTE_ZERO && sp->zero_grain) {
		*state = VMDK_GRAIN_ZERO;
		return 0;
	}
	uint64_t off = (uint64_t)v * VMDK_SECTOR;
	uint64_t need = sp->compressed ? 12 : sp->grain_bytes;
	/* The last grain of an extent may be short. */
	uint64_t left = sp->capacity * VMDK_SECTOR - grain * sp->grain_bytes;
	if (!sp->compressed && left < need)
		need = left;
	if (!ck_range_within(off, need, end))
		return mimg_err(-EINVAL,
				"%s: vmdk: grain table entry for "
				"grain %" PRIu64 " points to sector %" PRIu32
				" past the end of the file",
				sp->path, grain, v);
	*state = VMDK_GRAIN_DATA;
	*host_off = off;
	return 0;
}

/* Read the compressed grain at HOST_OFF (marker and data, or just data)
 * and inflate it into OUT (grain_bytes); *GLEN is its inflated length. */
static int inflate_grain(struct vmdk_sparse *sp, uint64_t grain,
			 uint64_t host_off, uint8_t *out, size_t *glen)
{
	uint8_t head[4096], *cbuf = head, *big = NULL;
	uint64_t end, avail, clen, doff = 0;
	size_t hlen;
	int r;

	pthread_mutex_lock(&sp->lock);
	end = sp->file_end;
	pthread_mutex_unlock(&sp->lock);
	avail = end > host_off ? end - host_off : 0;
	/* Most compressed grains fit in one small read with their marker. */
	hlen = (size_t)min_u64(avail, sizeof(head));
	r = mimg_file_pread_exact(sp->file, head, hlen, host_off,
				  "vmdk compressed grain");
	if (r < 0)
		return r;
	if (sp->markers) {
		clen = hlen >= 12 ? ld_le32(head + 8) : 0;
		doff = 12;
		if (clen == 0 || clen > VMDK_MAX_COMPRESSED_GRAIN ||
		    avail < 12 || clen > avail - 12)
			return mimg_err(-EINVAL,
					"%s: vmdk: grain %" PRIu64
					" at offset %" PRIu64 " has invalid "
					"compressed size %" PRIu64,
					sp->path, grain, host_off, clen);
	} else {
		/* No size is stored: read what a grain can take. */
		clen = min_u64(avail, sp->grain_bytes * 2 + 4096);
	}
	if (doff + clen > hlen) {
		big = malloc(clen);
		if (!big)
			return mimg_err(-ENOMEM, "out of memory");
		memcpy(big, head + doff, hlen - doff);
		r = mimg_file_pread_exact(sp->file, big + (hlen - doff),
					  clen - (hlen - doff), host_off + hlen,
					  "vmdk compressed grain");
		cbuf = big;
	} else {
		cbuf = head + doff;
	}
	if (r == 0 &&
	    codec_inflate_zlib(cbuf, clen, out, sp->grain_bytes, glen))
		r = mimg_err(-EINVAL,
			     "%s: vmdk: compressed grain %" PRIu64
			     " at offset %" PRIu64 " is corrupt",
			     sp->path, grain, host_off);
	free(big);
	return r;
}

int vmdk_sparse_read_compressed(struct vmdk_sparse *sp, uint64_t grain,
				uint64_t host_off, uint64_t in_off, void *buf,
				size_t len)
{
	bool whole = in_off == 0 && len == sp->grain_bytes;
	uint8_t *gbuf = whole ? buf : malloc(sp->grain_bytes);
	size_t glen = 0;
	int r;

	if (!gbuf)
		return mimg_err(-ENOMEM, "out of memory");
	r = inflate_grain(sp, grain, host_off, gbuf, &glen);
	/* A short grain (end of a stream) reads as zeroes past its end. */
	if (r == 0 && whole) {
		memset((uint8_t *)buf + glen, 0, len - glen);
	} else if (r == 0) {
		size_t n = in_off < glen ? (size_t)min_u64(len, glen - in_off)
					 : 0;
		memcpy(buf, gbuf + in_off, n);
		memset((uint8_t *)buf + n, 0, len - n);
	}
	if (!whole)
		free(gbuf);
	return r;
}

static int write_le32s(struct vmdk_sparse *sp, const uint32_t *v, size_t n,
		       uint64_t off)
{
	uint32_t tmp[256];
	while (n) {
		size_t k = n < 256 ? n : 256;
		for (size_t i = 0; i < k; i++)
			st_le32(&tmp[i], v[i]);
		int r = mimg_file_pwrite(sp->file, tmp, k * 4, off);
		if (r < 0)
			return r;
		v += k;
		n -= k;
		off += k * 4;
	}
	return 0;
}

/* Append a zeroed grain table at the end of the file; its sector in *S. */
static int append_gt(struct vmdk_sparse *sp, uint32_t *s)
{
	uint64_t off = sp->file_end, len;
	int r;

	if (!ck_align_up_u64(sp->gt_bytes, VMDK_SECTOR, &len) ||
	    off / VMDK_SECTOR > UINT32_MAX)
		return mimg_err(-EFBIG,
				"%s: vmdk: file too large for 32-bit "
				"sector numbers",
				sp->path);
	/* A directory entry that survives a power cut without its table
	 * then points at zeroes: an empty table. */
	if ((r = vmdk_sparse_reserve(sp, len)) < 0)
		return r;
	void *z = calloc(1, len);
	if (!z)
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg_file_pwrite(sp->file, z, len, off);
	free(z);
	if (r < 0)
		return r;
	*s = (uint32_t)(off / VMDK_SECTOR);
	sp->file_end = off + len;
	return 0;
}

/* A new grain table for entry GDI of the directory DIR (on disk at
 * sector DIR_SECTOR): appended, then the entry pointed at it. */
static int add_gt(struct vmdk_sparse *sp, uint32_t *dir, uint64_t dir_sector,
		  uint64_t gdi)
{
	uint32_t s;
	int r = append_gt(sp, &s);
	if (r == 0)
		r = write_le32s(sp, &s, 1, dir_sector * VMDK_SECTOR + gdi * 4);
	if (r < 0)
		return r;
	dir[gdi] = s;
	/* A cached all-zero table for this index stays valid. */
	sp->gt_sorted_valid = false;
	return 0;
}

static int ensure_gt(struct vmdk_sparse *sp, uint64_t gdi)
{
	int r;

	if (sp->rgd && !sp->rgd[gdi] &&
	    (r = add_gt(sp, sp->rgd, sp->rgd_sector, gdi)) < 0)
		return r;
	if (!sp->gd[gdi])
		return add_gt(sp, sp->gd, sp->gd_sector, gdi);
	return 0;
}

int vmdk_sparse_set_gtes(struct vmdk_sparse *sp, uint64_t first, uint64_t n,
			 uint32_t host_sector, bool same_value)
{
	uint32_t vals[512];
	int r;

	while (n) {
		uint64_t gdi = first / sp->gt_entries;
		uint32_t gti = (uint32_t)(first % sp->gt_entries);
		uint64_t k = min_u64(n, sp->gt_entries - gti);
		uint32_t *gt;

		if (gdi >= sp->gd_entries)
			return mimg_err(-EINVAL,
					"%s: vmdk: grain %" PRIu64
					" is beyond the extent's capacity",
					sp->path, first);
		r = ensure_gt(sp, gdi);
		if (r < 0)
			return r;
		gt = get_gt(sp, gdi, &r);
		if (!gt)
			return r;
		for (uint64_t done = 0; done < k;) {
			size_t m = (size_t)min_u64(k - done, 512);
			for (size_t i = 0; i < m; i++) {
				uint32_t v =
					same_value
						? host_sector
						: host_sector +
							  (uint32_t)((done +
								      i) *
								     sp->grain_sectors);
				vals[i] = v;
				gt[gti + done + i] = v;
			}
			uint64_t eoff = (gti + done) * 4;
			if (sp->rgd) {
				r = write_le32s(sp, vals, m,
						(uint64_t)sp->rgd[gdi] *
								VMDK_SECTOR +
							eoff);
				if (r < 0)
					return r;
			}
			r = write_le32s(sp, vals, m,
					(uint64_t)sp->gd[gdi] * VMDK_SECTOR +
						eoff);
			if (r < 0)
				return r;
			done += m;
		}
		if (!same_value)
			host_sector += (uint32_t)(k * sp->grain_sectors);
		first += k;
		n -= k;
	}
	return 0;
}
