/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VMDK data I/O: requests are split along extents; sparse extents are
 * walked grain by grain, coalescing runs of grains that share a state
 * (and, for data, contiguous host space) into one host request.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "driver.h"
#include "error.h"
#include "file.h"
#include "image.h"
#include "iov-file.h"
#include "iov.h"
#include "vmdk.h"

static struct vmdk_extent *find_extent(struct vmdk_state *s, uint64_t off)
{
	size_t lo = 0, hi = s->n_ext;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->ext[mid].start <= off)
			lo = mid;
		else
			hi = mid;
	}
	return &s->ext[lo];
}

/* qemu's rule: data from the parent is only used while the parent's CID
 * is the one recorded in this image (otherwise the parent was modified
 * after the delta link was made). */
static int check_parent(struct mimg *img)
{
	struct vmdk_state *s = img->priv;
	struct mimg *b = img->backing;

	if (!b)
		return 0;
	if (!__atomic_load_n(&s->parent_checked, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&s->cid_lock);
		if (!s->parent_checked) {
			s->parent_err = 0;
			if (b->drv == &mimg_vmdk_driver) {
				struct vmdk_state *ps = b->priv;
				if (ps->desc.cid != s->desc.parent_cid)
					s->parent_err = -EINVAL;
			}
			__atomic_store_n(&s->parent_checked, true,
					 __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&s->cid_lock);
	}
	if (s->parent_err < 0) {
		struct vmdk_state *ps = b->priv;
		return mimg_err(s->parent_err,
				"%s: vmdk: parentCID %08" PRIx32
				" does not match CID %08" PRIx32 " of parent "
				"%s (the parent changed after this delta link "
				"was made)",
				img->filename, s->desc.parent_cid, ps->desc.cid,
				b->filename);
	}
	return 0;
}

static int read_below(struct mimg *img, const struct iovec *iov, int iovcnt,
		      size_t skip, uint64_t off, size_t len)
{
	int r = check_parent(img);
	if (r < 0)
		return r;
	return mimg__read_below(img, iov, iovcnt, skip, off, len);
}

/* Largest buffer used to build a partially written grain. */
#define COW_PIECE (1u << 20)
/* Larger grains (legal up to 1 GiB) are not written: one small write
 * would cost a huge copy. */
#define MAX_WRITABLE_GRAIN (16u << 20)

/*
 * The grain at extent offset EOFF: its state *ST and host offset *HOST,
 * and in *CHUNK the bytes from EOFF (at most LEN) to the end of the run
 * of grains that follow it in the same state (and on the host, for
 * data).  The run is that grain alone for compressed data, and for any
 * state but data with ONLY_DATA.
 */
static int grain_run(struct vmdk_sparse *sp, uint64_t eoff, size_t len,
		     bool only_data, enum vmdk_grain_state *st, uint64_t *host,
		     size_t *chunk)
{
	uint64_t gb = sp->grain_bytes, grain = eoff / gb, in = eoff % gb;
	size_t n = (size_t)min_u64(len, gb - in);
	int r = vmdk_sparse_lookup(sp, grain, st, host);
	if (r < 0)
		return r;
	bool alone = *st == VMDK_GRAIN_DATA ? sp->compressed : only_data;
	while (!alone && n < len) {
		enum vmdk_grain_state st2;
		uint64_t host2;
		if ((r = vmdk_sparse_lookup(sp, ++grain, &st2, &host2)) < 0)
			return r;
		if (st2 != *st ||
		    (st2 == VMDK_GRAIN_DATA && host2 != *host + in + n))
			break;
		n = (size_t)min_u64(len, n + gb);
	}
	*chunk = n;
	return 0;
}

static int read_sparse(struct mimg *img, struct vmdk_extent *e,
		       const struct iovec *iov, int iovcnt, size_t skip,
		       uint64_t eoff, size_t len)
{
	struct vmdk_sparse *sp = e->sp;
	int r;

	while (len) {
		uint64_t in = eoff % sp->grain_bytes, host;
		enum vmdk_grain_state st;
		size_t chunk;

		r = grain_run(sp, eoff, len, false, &st, &host, &chunk);
		if (r < 0)
			return r;
		if (st == VMDK_GRAIN_DATA && sp->compressed) {
			/* Inflate straight into the caller's buffer when the
			 * whole grain lands in one piece of it. */
			void *dst = iov_flat(iov, iovcnt, skip, chunk);
			void *tmp = dst ? NULL : malloc(chunk);
			if (!dst && !tmp)
				return mimg_err(-ENOMEM, "out of memory");
			uint64_t grain = eoff / sp->grain_bytes;
			r = vmdk_sparse_read_compressed(sp, grain, host, in,
							dst ? dst : tmp, chunk);
			if (r == 0 && tmp)
				iov_from_buf(iov, iovcnt, skip, tmp, chunk);
			free(tmp);
		} else if (st == VMDK_GRAIN_ZERO) {
			iov_memset(iov, iovcnt, skip, 0, chunk);
		} else if (st == VMDK_GRAIN_UNALLOC) {
			r = read_below(img, iov, iovcnt, skip, e->start + eoff,
				       chunk);
		} else {
			r = mimg__file_preadv_slice(e->file, iov, iovcnt, skip,
						    chunk, host + in);
		}
		if (r < 0)
			return r;
		skip += chunk;
		eoff += chunk;
		len -= chunk;
	}
	return 0;
}

int vmdk_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		uint64_t off, size_t len)
{
	struct vmdk_state *s = img->priv;
	size_t done = 0;
	int r = 0;

	while (done < len) {
		uint64_t pos = off + done;
		struct vmdk_extent *e = find_extent(s, pos);
		uint64_t eoff = pos - e->start;
		size_t n = (size_t)min_u64(len - done, e->size - eoff);

		switch (e->type) {
		case VMDK_EXT_ZERO: iov_memset(iov, iovcnt, done, 0, n); break;
		case VMDK_EXT_FLAT:
		case VMDK_EXT_VMFS:
			if (e->access == VMDK_NOACCESS)
				iov_memset(iov, iovcnt, done, 0, n);
			else
				r = mimg__file_preadv_slice(e->file, iov,
							    iovcnt, done, n,
							    e->flat_offset +
								    eoff);
			break;
		case VMDK_EXT_SPARSE:
		case VMDK_EXT_VMFSSPARSE: /* mapped to SPARSE at open */
			r = read_sparse(img, e, iov, iovcnt, done, eoff, n);
			break;
		}
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}

/* Is any grain of [FIRST, FIRST+N) being allocated by another writer?
 * (sp->lock held) */
static bool inflight_overlaps(struct vmdk_sparse *sp, uint64_t first,
			      uint64_t n)
{
	for (const struct vmdk_inflight *f = sp->inflight; f; f = f->next)
		if (first < f->first + f->n && f->first < first + n)
			return true;
	return false;
}

/* Write a partially written grain at HOST: the bytes not written come
 * from the layers below (or are zeroes when the grain was zeroed).  Built
 * in pieces so memory stays bounded for big grains. */
static int write_cow_grain(struct mimg *img, struct vmdk_extent *e,
			   enum vmdk_grain_state st, uint64_t grain,
			   uint64_t host, const struct iovec *iov, int iovcnt,
			   size_t skip, uint64_t in, size_t n, bool *copied)
{
	uint64_t gb = e->sp->grain_bytes, gstart = grain * gb;
	uint64_t valid = min_u64(gb, e->size - gstart);
	size_t piece = (size_t)min_u64(gb, COW_PIECE);
	uint8_t *buf = malloc(piece);
	int r = 0;

	if (!buf)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint64_t p = 0; p < gb && r == 0; p += piece) {
		size_t pl = (size_t)min_u64(piece, gb - p);
		memset(buf, 0, pl);
		if (st == VMDK_GRAIN_UNALLOC && p < valid) {
			struct iovec biov = {buf,
					     (size_t)min_u64(pl, valid - p)};
			r = read_below(img, &biov, 1, 0, e->start + gstart + p,
				       biov.iov_len);
			if (r == 0 && !buf_is_zero(buf, biov.iov_len))
				*copied = true;
		}
		/* Overlay the new bytes that fall in this piece. */
		uint64_t ws = max_u64(in, p), we = min_u64(in + n, p + pl);
		if (r == 0 && ws < we)
			iov_to_buf(iov, iovcnt, skip + (size_t)(ws - in),
				   buf + (ws - p), (size_t)(we - ws));
		if (r == 0)
			r = mimg_file_pwrite(e->file, buf, pl, host + p);
	}
	free(buf);
	return r;
}

/* Allocate grains for [EOFF, EOFF+LEN) of sparse extent E, which is
 * unallocated (or zeroed) at its first grain, and write the data: a run
 * of whole grains at once, or one partially written grain.  Space is
 * reserved and the grains marked in flight under the extent lock; the
 * data is written without it; then the tables are updated (data before
 * tables).  Returns the bytes consumed, 0 when another writer allocated
 * the grain meanwhile (the caller retries). */
static bool hits_metadata(const struct vmdk_sparse *sp, uint64_t host,
			  uint64_t len);
static int gt_sectors(struct vmdk_sparse *sp);

/* A grain table entry must not lead guest data onto the extent's header,
 * descriptor, directories or tables (a crafted image could make the guest
 * rewrite them). */
static int guard_data_write(struct vmdk_extent *e, uint64_t host, uint64_t len)
{
	struct vmdk_sparse *sp = e->sp;
	pthread_mutex_lock(&sp->lock);
	int r = gt_sectors(sp);
	if (r == 0 && hits_metadata(sp, host, len))
		r = mimg_err(-EIO,
			     "%s: vmdk: preventing a guest data write at "
			     "host offset %" PRIu64 " (%" PRIu64 " bytes): a "
			     "grain table entry points at the extent's "
			     "metadata",
			     sp->path, host, len);
	pthread_mutex_unlock(&sp->lock);
	return r;
}

static ssize_t alloc_write(struct mimg *img, struct vmdk_extent *e,
			   const struct iovec *iov, int iovcnt, size_t skip,
			   uint64_t eoff, size_t len)
{
	struct vmdk_sparse *sp = e->sp;
	uint64_t gb = sp->grain_bytes, grain = eoff / gb, in = eoff % gb;
	uint64_t host, k = 1;
	enum vmdk_grain_state st;
	struct vmdk_inflight me;
	bool copied = false;
	ssize_t done;
	int r;

	pthread_mutex_lock(&sp->lock);
	for (;;) {
		r = vmdk_sparse_lookup_locked(sp, grain, &st, &host);
		if (r < 0 || st == VMDK_GRAIN_DATA) {
			pthread_mutex_unlock(&sp->lock);
			return r;
		}
		if (!inflight_overlaps(sp, grain, 1))
			break;
		pthread_cond_wait(&sp->inflight_done, &sp->lock);
	}
	if (in == 0 && len >= gb) {
		/* Whole grains: take the unallocated ones that follow. */
		k = len / gb;
		for (uint64_t i = 1; i < k; i++) {
			enum vmdk_grain_state s2;
			uint64_t h2;
			r = vmdk_sparse_lookup_locked(sp, grain + i, &s2, &h2);
			if (r < 0 || s2 == VMDK_GRAIN_DATA ||
			    inflight_overlaps(sp, grain + i, 1)) {
				k = i;
				break;
			}
		}
	}
	if (!ck_align_up_u64(sp->file_end, VMDK_SECTOR, &host) ||
	    (host + k * gb) / VMDK_SECTOR > UINT32_MAX) {
		pthread_mutex_unlock(&sp->lock);
		return mimg_err(-EFBIG,
				"%s: vmdk: extent file too large for "
				"32-bit sector numbers",
				sp->path);
	}
	r = vmdk_sparse_reserve(sp, host - sp->file_end + k * gb);
	if (r < 0) {
		pthread_mutex_unlock(&sp->lock);
		return r;
	}
	sp->file_end = host + k * gb;
	me = (struct vmdk_inflight){grain, k, sp->inflight};
	sp->inflight = &me;
	pthread_mutex_unlock(&sp->lock);

	if (k > 1 || (in == 0 && len >= gb)) {
		done = (ssize_t)(k * gb);
		r = mimg__file_pwritev_slice(e->file, iov, iovcnt, skip, k * gb,
					     host);
	} else {
		done = (ssize_t)min_u64(len, gb - in);
		r = write_cow_grain(img, e, st, grain, host, iov, iovcnt, skip,
				    in, (size_t)done, &copied);
	}

	pthread_mutex_lock(&sp->lock);
	/* The parent's bytes copied into the grain must be durable before
	 * an entry that hides the parent can be (see vmdk_sparse_reserve). */
	if (r == 0 && copied)
		r = vmdk_sparse_barrier(sp);
	if (r == 0)
		r = vmdk_sparse_set_gtes(sp, grain, k,
					 (uint32_t)(host / VMDK_SECTOR), false);
	for (struct vmdk_inflight **pp = &sp->inflight; *pp; pp = &(*pp)->next)
		if (*pp == &me) {
			*pp = me.next;
			break;
		}
	pthread_cond_broadcast(&sp->inflight_done);
	pthread_mutex_unlock(&sp->lock);
	/* On failure the reserved space is leaked, never referenced. */
	return r < 0 ? r : done;
}

static int sparse_writable(struct mimg *img, struct vmdk_extent *e)
{
	struct vmdk_sparse *sp = e->sp;
	/* What keeps an extent from being written in place, and why. */
	const struct {
		bool refused;
		int err;
		const char *why;
	} rules[] = {
		{sp->cowd, -ENOTSUP, "VMFSSPARSE (COWD) extents are read-only"},
		{sp->compressed, -ENOTSUP,
		 "compressed (stream) extents cannot be modified in place"},
		{sp->primary_damaged, -EIO,
		 "the grain directory is damaged (reading through the "
		 "redundant copy); refusing to write"},
		{sp->version == 3, -EROFS,
		 "version 3 sparse extents (changed block tracking) are "
		 "read-only"},
		{sp->gd_at_end, -ENOTSUP,
		 "extents with the grain directory at the end cannot be "
		 "modified"},
	};
	if (sp->grain_bytes > MAX_WRITABLE_GRAIN)
		return mimg_err(-ENOTSUP,
				"%s: vmdk: grains of %" PRIu64
				" bytes are too large to write",
				sp->path, sp->grain_bytes);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].refused)
			return mimg_err(rules[i].err, "%s: vmdk: %s", sp->path,
					rules[i].why);
	return 0;
}

static int write_sparse(struct mimg *img, struct vmdk_extent *e,
			const struct iovec *iov, int iovcnt, size_t skip,
			uint64_t eoff, size_t len)
{
	struct vmdk_sparse *sp = e->sp;
	int r = sparse_writable(img, e);

	/* The descriptor may claim more sectors than the extent holds. */
	if (r == 0 && !ck_range_within(eoff, len, sp->capacity * VMDK_SECTOR))
		return mimg_err(-ENOSPC,
				"%s: vmdk: write at %" PRIu64 " is "
				"beyond the extent's capacity of %" PRIu64
				" sectors",
				sp->path, eoff, sp->capacity);

	while (r == 0 && len) {
		uint64_t in = eoff % sp->grain_bytes, host;
		enum vmdk_grain_state st;
		size_t chunk;

		r = grain_run(sp, eoff, len, true, &st, &host, &chunk);
		if (r < 0)
			break;
		if (st == VMDK_GRAIN_DATA) {
			r = guard_data_write(e, host + in, chunk);
			if (r == 0)
				r = mimg__file_pwritev_slice(e->file, iov,
							     iovcnt, skip,
							     chunk, host + in);
		} else {
			ssize_t n = alloc_write(img, e, iov, iovcnt, skip, eoff,
						len);
			if (n < 0)
				return (int)n;
			chunk = (size_t)n; /* 0: retry as allocated */
		}
		skip += chunk;
		eoff += chunk;
		len -= chunk;
	}
	return r;
}

static int extent_writable(struct vmdk_extent *e)
{
	if (e->access != VMDK_RW)
		return mimg_err(e->access == VMDK_RDONLY ? -EROFS : -EACCES,
				"vmdk: extent '%s' is %s",
				e->filename ? e->filename : "(zero)",
				e->access == VMDK_RDONLY ? "read-only"
							 : "not accessible");
	if (e->type == VMDK_EXT_ZERO)
		return mimg_err(-ENOTSUP,
				"vmdk: cannot write to a ZERO extent");
	return 0;
}

int vmdk_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
		 uint64_t off, size_t len)
{
	struct vmdk_state *s = img->priv;
	size_t done = 0;
	int r;

	if (s->sw)
		return vmdk_stream_pwritev(img, iov, iovcnt, off, len);
	r = vmdk_touch_cid(img);
	if (r < 0)
		return r;
	while (done < len) {
		uint64_t pos = off + done;
		struct vmdk_extent *e = find_extent(s, pos);
		uint64_t eoff = pos - e->start;
		size_t n = (size_t)min_u64(len - done, e->size - eoff);

		r = extent_writable(e);
		if (r < 0)
			return r;
		if (e->type == VMDK_EXT_SPARSE)
			r = write_sparse(img, e, iov, iovcnt, done, eoff, n);
		else
			r = mimg__file_pwritev_slice(e->file, iov, iovcnt, done,
						     n, e->flat_offset + eoff);
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}

/* Zeroes on a sparse extent: whole grains become zeroed-grain entries
 * (when the extent supports them) or stay unallocated (when nothing is
 * below); everything else is written as zero data. */
int vmdk_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
		       unsigned flags)
{
	struct vmdk_state *s = img->priv;
	static const uint8_t zero[4096];
	int r;

	if (s->sw)
		return -ENOTSUP;
	r = vmdk_touch_cid(img);
	if (r < 0)
		return r;
	while (len) {
		struct vmdk_extent *e = find_extent(s, off);
		uint64_t eoff = off - e->start;
		uint64_t n = min_u64(len, e->size - eoff);

		r = extent_writable(e);
		if (r < 0)
			return r;
		if (e->type == VMDK_EXT_SPARSE &&
		    (r = sparse_writable(img, e)) < 0)
			return r;
		uint64_t gb = e->type == VMDK_EXT_SPARSE ? e->sp->grain_bytes
							 : 0;
		if (gb && eoff % gb == 0 && n >= gb) {
			struct vmdk_sparse *sp = e->sp;
			uint64_t grain = eoff / gb, k = n / gb;
			for (uint64_t i = 0; i < k && r == 0; i++) {
				enum vmdk_grain_state st;
				uint64_t h;
				r = vmdk_sparse_lookup(sp, grain + i, &st, &h);
				if (r < 0 || st == VMDK_GRAIN_ZERO ||
				    (st == VMDK_GRAIN_UNALLOC && !img->backing))
					continue;
				if (sp->zero_grain) {
					pthread_mutex_lock(&sp->lock);
					r = vmdk_sparse_set_gtes(sp, grain + i,
								 1,
								 VMDK_GTE_ZERO,
								 true);
					pthread_mutex_unlock(&sp->lock);
				} else {
					for (uint64_t o = 0; o < gb && r == 0;
					     o += sizeof(zero)) {
						struct iovec v =
							{(void *)zero,
							 (size_t)min_u64(
								 sizeof(zero),
								 gb - o)};
						r = write_sparse(img, e, &v, 1,
								 0,
								 (grain +
								  i) * gb +
									 o,
								 v.iov_len);
					}
				}
			}
			n = k * gb;
		} else {
			uint64_t m = min_u64(n, sizeof(zero));
			if (gb)
				m = min_u64(m, gb - eoff % gb);
			struct iovec v = {(void *)zero, (size_t)m};
			if (gb)
				r = write_sparse(img, e, &v, 1, 0, eoff,
						 (size_t)m);
			else
				r = mimg__file_pwritev_slice(e->file, &v, 1, 0,
							     (size_t)m,
							     e->flat_offset +
								     eoff);
			n = m;
		}
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	(void)flags;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Collect the sorted sectors of every grain table of SP (both
 * directories) into sp->gt_sorted.  (sp->lock held) */
static int gt_sectors(struct vmdk_sparse *sp)
{
	if (sp->gt_sorted_valid)
		return 0;
	size_t n = 0, cap = sp->rgd ? 2 * sp->gd_entries : sp->gd_entries;
	uint32_t *v = cap ? malloc(cap * sizeof(*v)) : NULL;
	if (cap && !v)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint64_t i = 0; i < sp->gd_entries; i++) {
		if (sp->gd[i])
			v[n++] = sp->gd[i];
		if (sp->rgd && sp->rgd[i])
			v[n++] = sp->rgd[i];
	}
	qsort(v, n, sizeof(*v), cmp_u32);
	free(sp->gt_sorted);
	sp->gt_sorted = v;
	sp->n_gt_sorted = n;
	sp->gt_sorted_valid = true;
	return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Whether host bytes [HOST, HOST+LEN) touch the extent's own metadata: a
 * crafted grain table entry may point at a table or the directory, and
 * writing or punching there would destroy them.  (sp->lock held,
 * gt_sectors() done) */
static bool hits_metadata(const struct vmdk_sparse *sp, uint64_t host,
			  uint64_t len)
{
	const uint32_t *gts = sp->gt_sorted;
	size_t n = sp->n_gt_sorted;
	uint64_t gd_len = sp->gd_entries * 4;
	if (host < sp->overhead * VMDK_SECTOR ||
	    ranges_overlap(host, len, sp->gd_sector * VMDK_SECTOR, gd_len) ||
	    (sp->rgd_sector &&
	     ranges_overlap(host, len, sp->rgd_sector * VMDK_SECTOR, gd_len)))
		return true;
	/* The last table starting before the range's end. */
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((uint64_t)gts[mid] * VMDK_SECTOR < host + len)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 &&
	       (uint64_t)gts[lo - 1] * VMDK_SECTOR + sp->gt_bytes > host;
}

/* Discard whole grains [FIRST, FIRST+K) of sparse extent E: each becomes
 * unallocated, or a zeroed grain where a parent's data would show
 * through, and its host range is punched out of the file.  The entry is
 * written first: a crash in between leaks the space, never exposes a
 * freed range.  Grains stay where they are; new ones go to the end. */
static int discard_grains(struct mimg *img, struct vmdk_extent *e,
			  uint64_t first, uint64_t k)
{
	struct vmdk_sparse *sp = e->sp;
	uint32_t gte = img->backing ? VMDK_GTE_ZERO : 0;
	int r;

	if (img->backing && !sp->zero_grain)
		return 0; /* nothing can hide the parent's data */
	pthread_mutex_lock(&sp->lock);
	r = gt_sectors(sp);
	for (uint64_t g = first; g < first + k && r == 0;) {
		enum vmdk_grain_state st;
		uint64_t host;
		if (inflight_overlaps(sp, g, 1)) {
			pthread_cond_wait(&sp->inflight_done, &sp->lock);
			continue;
		}
		r = vmdk_sparse_lookup_locked(sp, g, &st, &host);
		if (r == 0 && st == VMDK_GRAIN_DATA) {
			r = vmdk_sparse_set_gtes(sp, g, 1, gte, true);
			if (r == 0 && (r = gt_sectors(sp)) == 0 &&
			    !hits_metadata(sp, host, sp->grain_bytes))
				(void)mimg_file_punch_hole(sp->file, host,
							   sp->grain_bytes);
		}
		g++;
	}
	pthread_mutex_unlock(&sp->lock);
	return r;
}

/* Only whole grains of writable sparse extents are discarded; the rest of
 * the range keeps its data, as discard allows. */
int vmdk_discard(struct mimg *img, uint64_t off, uint64_t len)
{
	struct vmdk_state *s = img->priv;
	int r;

	if (s->sw)
		return 0;
	while (len) {
		struct vmdk_extent *e = find_extent(s, off);
		uint64_t eoff = off - e->start;
		uint64_t n = min_u64(len, e->size - eoff);
		if (e->type == VMDK_EXT_SPARSE && extent_writable(e) == 0 &&
		    sparse_writable(img, e) == 0) {
			uint64_t gb = e->sp->grain_bytes, a;
			uint64_t b = align_down_u64(eoff + n, gb);
			if (ck_align_up_u64(eoff, gb, &a) && a < b) {
				if ((r = vmdk_touch_cid(img)) < 0 ||
				    (r = discard_grains(img, e, a / gb,
							(b - a) / gb)) < 0)
					return r;
			}
		}
		off += n;
		len -= n;
	}
	mimg_err_clear();
	return 0;
}

struct mimg_file *vmdk_host_file(struct mimg *img, uint64_t off)
{
	struct vmdk_state *s = img->priv;
	if (s->sw || !s->n_ext || off >= img->size)
		return NULL;
	return find_extent(s, off)->file;
}

int vmdk_block_status(struct mimg *img, uint64_t off, uint64_t len,
		      uint64_t *pnum, unsigned *status, uint64_t *host_off)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_extent *e = find_extent(s, off);
	uint64_t eoff = off - e->start;
	uint64_t n = min_u64(len, e->size - eoff);
	uint64_t h = 0;
	unsigned st = 0;
	int r;

	if (e->type == VMDK_EXT_ZERO || e->access == VMDK_NOACCESS) {
		st = MIMG_BS_ZERO | MIMG_BS_ALLOCATED;
	} else if (e->type != VMDK_EXT_SPARSE) {
		bool data;
		uint64_t m;
		r = mimg_file_extent(e->file, e->flat_offset + eoff, n, &data,
				     &m);
		if (r < 0)
			return r;
		n = m;
		/* As qemu: the extent's bytes, which read as zeroes in holes.
		 * Offsets are into the extent's own file. */
		st = MIMG_BS_ALLOCATED | MIMG_BS_DATA | MIMG_BS_OFFSET_VALID |
		     (data ? 0 : MIMG_BS_ZERO);
		h = e->flat_offset + eoff;
	} else {
		struct vmdk_sparse *sp = e->sp;
		uint64_t gb = sp->grain_bytes, grain = eoff / gb;
		uint64_t in = eoff % gb, host, host2;
		enum vmdk_grain_state gs, gs2;
		uint64_t run = min_u64(n, gb - in);

		r = vmdk_sparse_lookup(sp, grain, &gs, &host);
		if (r < 0)
			return r;
		while (run < n) {
			r = vmdk_sparse_lookup(sp, grain + 1, &gs2, &host2);
			if (r < 0)
				return r;
			if (gs2 != gs ||
			    (gs == VMDK_GRAIN_DATA &&
			     (sp->compressed || host2 != host + in + run)))
				break;
			run = min_u64(n, run + gb);
			grain++;
		}
		n = run;
		if (gs == VMDK_GRAIN_UNALLOC) {
			st = img->backing ? 0 : MIMG_BS_ZERO;
		} else if (gs == VMDK_GRAIN_ZERO) {
			st = MIMG_BS_ZERO | MIMG_BS_ALLOCATED;
		} else if (sp->compressed) {
			st = MIMG_BS_DATA | MIMG_BS_ALLOCATED |
			     MIMG_BS_COMPRESSED;
		} else {
			st = MIMG_BS_DATA | MIMG_BS_ALLOCATED |
			     MIMG_BS_OFFSET_VALID;
			h = host + in;
		}
	}
	*pnum = n;
	*status = st;
	if (host_off)
		*host_off = (st & MIMG_BS_OFFSET_VALID) ? h : 0;
	return 0;
}

int vmdk_flush(struct mimg *img)
{
	struct vmdk_state *s = img->priv;
	int r = 0;

	if (s->sw && (r = vmdk_stream_finish(img)) < 0)
		return r;

	for (size_t i = 0; i < s->n_ext; i++) {
		struct vmdk_extent *e = &s->ext[i];
		if (e->file && e->own_file) {
			int r2 = mimg_file_flush(e->file);
			if (r2 < 0 && r == 0)
				r = r2;
		}
	}
	if (!img->read_only) {
		int r2 = mimg_file_flush(img->file);
		if (r2 < 0 && r == 0)
			r = r2;
	}
	return r;
}
