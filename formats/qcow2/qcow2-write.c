/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 writes.  Order on disk for an allocating write, so that a crash
 * at any point leaks clusters at worst: guest data including
 * copy-on-write of the untouched parts, then at the next metadata sync
 * (qcow2-sync.c) the refcounts the allocator left in the cache, a flush,
 * the L2 entry (a new L2 table is durable before its L1 entry), and only
 * after another flush the refcount decrements of clusters the write
 * replaced.
 *
 * In exit-safe mode (qcow2-exitsafe.c) the L2 entry is written before
 * the write returns instead, from a flushed reservation, after an
 * O_DSYNC write of the copied cluster or after a group flush.
 *
 * A write registers the guest clusters it covers as in flight; writes,
 * zeroings and discards of overlapping clusters wait for it.  The metadata
 * lock is released while guest data moves.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "iov.h"
#include "qcow2.h"

void qcow2_inflight_begin(struct qcow2 *s, struct qcow2_inflight *r,
			  uint64_t first, uint64_t last)
{
again:
	for (struct qcow2_inflight *p = s->inflight; p; p = p->next) {
		if (p->first <= last && first <= p->last) {
			pthread_cond_wait(&s->cond, &s->lock);
			goto again;
		}
	}
	r->first = first;
	r->last = last;
	r->next = s->inflight;
	s->inflight = r;
}

void qcow2_inflight_end(struct qcow2 *s, struct qcow2_inflight *r)
{
	for (struct qcow2_inflight **pp = &s->inflight; *pp;
	     pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	pthread_cond_broadcast(&s->cond);
}

enum wkind {
	W_INPLACE, /* allocated, private, every touched subcluster valid */
	W_FIXUP,   /* private host cluster whose L2 entry must change */
	W_NEW,	   /* needs a new host cluster */
};

/* Bits of the subclusters overlapping in-cluster bytes [A, B). */
static uint64_t sc_bits_for(const struct qcow2 *s, uint64_t a, uint64_t b)
{
	if (b <= a)
		return 0;
	unsigned f = (unsigned)(a >> s->sc_bits);
	unsigned l = (unsigned)((b - 1) >> s->sc_bits);
	uint64_t hi = l >= 31 ? 0xffffffffull : (2ull << l) - 1;
	return hi & ~((1ull << f) - 1);
}

static bool entry_has_host(const struct qcow2 *s, uint64_t e)
{
	return (e & QCOW2_OFFSET_MASK) ||
	       (s->data_file_name && (e & QCOW2_OFLAG_COPIED));
}

static int classify(struct qcow2 *s, uint64_t gcl, uint64_t e, uint64_t bm,
		    uint64_t a, uint64_t b, enum wkind *k)
{
	int r = qcow2_validate_l2_entry(s, gcl, e, bm);
	if (r < 0)
		return r;
	if ((e & QCOW2_OFLAG_COMPRESSED) || !entry_has_host(s, e) ||
	    (!s->data_file_name && !(e & QCOW2_OFLAG_COPIED))) {
		*k = W_NEW;
		return 0;
	}
	if (s->extended_l2) {
		uint64_t t = sc_bits_for(s, a, b);
		*k = (bm & t) == t ? W_INPLACE : W_FIXUP;
	} else {
		*k = (s->version >= 3 && (e & QCOW2_OFLAG_ZERO)) ? W_FIXUP
								 : W_INPLACE;
	}
	return 0;
}

/* Whether a new cluster replacing entry E can keep subcluster
 * granularity (only when nothing of the old cluster must be copied). */
static bool partial_ok(const struct qcow2 *s, uint64_t e)
{
	return s->extended_l2 && !(e & QCOW2_OFLAG_COMPRESSED) &&
	       !entry_has_host(s, e);
}

struct run {
	uint64_t g0; /* first guest cluster */
	uint64_t n;  /* clusters */
	enum wkind kind;
	uint64_t *old_e, *old_bm;
	uint64_t host0; /* host offset of the first cluster */
	uint64_t h, t;	/* guest range written: [h, t) incl. COW */
};

/* Write the copied-on-write part BUF of a cluster.  Zeroes (the usual
 * case: a small write into an empty cluster) become one fallocate call
 * instead of a data write, as qemu does; the file system falls back to
 * writing them where it cannot.  *COPIED is set when BUF held data. */
static int write_cow(struct qcow2 *s, uint8_t *buf, size_t len, uint64_t host,
		     bool *copied)
{
	if (s->crypt_method) {
		/* Even zeroes are ciphertext on disk. */
		int r = qcow2_crypt(s, true, host, 0, buf, len);
		*copied = true;
		return r < 0 ? r : mimg_file_pwrite(s->data, buf, len, host);
	}
	if (buf_is_zero(buf, len)) {
		int r = mimg_file_zero_range(s->data, host, len, false);
		if (r != -ENOTSUP)
			return r;
	} else {
		*copied = true;
	}
	return mimg_file_pwrite(s->data, buf, len, host);
}

/* The copied head, the guest's bytes and the copied tail as one O_DSYNC
 * write at HOST: durable when this returns, without waiting for the rest
 * of the image's unflushed data as a flush would. */
static int write_run_dsync(struct qcow2 *s, const uint8_t *head, size_t hlen,
			   const struct iovec *iov, int iovcnt, size_t skip,
			   size_t len, const uint8_t *tail, size_t tlen,
			   uint64_t host)
{
	struct iovec st[16], *v, *all;
	int n = iov_slice(iov, iovcnt, skip, len, st, 16, &v), k = 0;
	if (n < 0)
		return mimg_err(n, "out of memory");
	all = malloc(((size_t)n + 2) * sizeof(*all));
	if (!all) {
		iov_slice_free(v, st);
		return mimg_err(-ENOMEM, "out of memory");
	}
	if (hlen)
		all[k++] = (struct iovec){(void *)head, hlen};
	memcpy(all + k, v, (size_t)n * sizeof(*v));
	k += n;
	if (tlen)
		all[k++] = (struct iovec){(void *)tail, tlen};
	int r = mimg_file_pwritev_dsync(s->data, all, k, host);
	free(all);
	iov_slice_free(v, st);
	return r;
}

/* Write [pos, end) of a run that needs COW and/or new clusters; *COPIED
 * tells whether old content other than zeroes was copied.  With DSYNC
 * (exit-safe mode), when the run's bytes must be durable before its L2
 * entries are written -- old content was copied, or MUST_SYNC because
 * the host range may not read as zeroes -- they are written so and
 * *SYNCED is set. */
static int write_run(struct qcow2 *s, struct run *run, const struct iovec *iov,
		     int iovcnt, size_t skip, uint64_t pos, uint64_t end,
		     bool dsync, bool must_sync, bool *copied, bool *synced)
{
	uint64_t cs = s->cluster_size, sc = 1ull << s->sc_bits;
	uint64_t c0 = run->g0 << s->cluster_bits;
	uint64_t cl = (run->g0 + run->n - 1) << s->cluster_bits;
	uint64_t e0 = run->old_e[0], b0 = run->old_bm[0];
	uint64_t el = run->old_e[run->n - 1], bl = run->old_bm[run->n - 1];
	uint8_t *head = NULL, *tail = NULL;
	int r = 0;

	/* Head and tail that must be copied from the old content. */
	if (run->kind == W_FIXUP && s->extended_l2) {
		uint64_t a = align_down_u64(pos, sc);
		run->h = (b0 >> ((pos - c0) >> s->sc_bits)) & 1 ? pos : a;
		uint64_t z;
		if (!ck_align_up_u64(end, sc, &z))
			z = end;
		uint64_t last_sc = (end - 1 - cl) >> s->sc_bits;
		run->t = (bl >> last_sc) & 1 ? end : z;
	} else if (run->kind == W_FIXUP) {
		run->h = c0;
		run->t = cl + cs;
	} else {
		run->h = partial_ok(s, e0) ? align_down_u64(pos, sc) : c0;
		if (partial_ok(s, el)) {
			uint64_t z;
			run->t = ck_align_up_u64(end, sc, &z) ? z : end;
		} else {
			run->t = cl + cs;
		}
	}
	if (run->t > cl + cs)
		run->t = cl + cs;
	size_t hlen = (size_t)(pos - run->h), tlen = (size_t)(run->t - end);
	if ((hlen && !(head = malloc(hlen))) ||
	    (tlen && !(tail = malloc(tlen)))) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	if (hlen &&
	    (r = qcow2_read_with_entry(s, run->h, hlen, e0, b0, head)) < 0)
		goto out;
	if (tlen && (r = qcow2_read_with_entry(s, end, tlen, el, bl, tail)) < 0)
		goto out;
	uint64_t host = run->host0 + (run->h - c0);
	if (dsync && (must_sync || (hlen && !buf_is_zero(head, hlen)) ||
		      (tlen && !buf_is_zero(tail, tlen)))) {
		*copied = *synced = true;
		r = write_run_dsync(s, head, hlen, iov, iovcnt, skip,
				    (size_t)(end - pos), tail, tlen, host);
		goto out;
	}
	if (hlen && (r = write_cow(s, head, hlen, host, copied)) < 0)
		goto out;
	if ((r = qcow2_data_io(s, true, iov, iovcnt, skip, (size_t)(end - pos),
			       host + hlen, 0)) < 0)
		goto out;
	if (tlen)
		r = write_cow(s, tail, tlen, host + hlen + (end - pos), copied);
out:
	free(head);
	free(tail);
	return r;
}

/* Refuse to drop a reference to metadata: a crafted entry E pointing at
 * an L2 table or refcount block would otherwise free it for reuse. */
static int guard_old_entry(struct qcow2 *s, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint64_t coff, clen;
		qcow2_compressed_extent(s, e, &coff, &clen);
		return qcow2_meta_guard(s, coff, clen, "freeing a cluster");
	}
	if ((e & QCOW2_OFFSET_MASK) && !s->data_file_name)
		return qcow2_meta_guard(s, e & QCOW2_OFFSET_MASK,
					s->cluster_size, "freeing a cluster");
	return 0;
}

/* Point the L2 entries of RUN at the new data, then release what they
 * replaced.  Under the lock. */
static int commit_run(struct qcow2 *s, struct run *run)
{
	uint64_t cs = s->cluster_size;
	int r;
	for (uint64_t i = 0; i < run->n; i++) {
		uint64_t g = run->g0 + i, c = g << s->cluster_bits;
		uint8_t *l2;
		uint32_t idx;
		if ((r = qcow2_get_l2(s, g, true, &l2, &idx)) < 0)
			return r;
		uint64_t oe = run->old_e[i], ob = run->old_bm[i];
		uint64_t host = run->host0 + i * cs;
		uint64_t a = max_u64(run->h, c) - c;
		uint64_t b = min_u64(run->t, c + cs) - c;
		uint64_t bits = sc_bits_for(s, a, b), nbm = 0;
		if (s->extended_l2) {
			if (run->kind == W_FIXUP)
				nbm = (ob | bits) & ~(bits << 32);
			else if (partial_ok(s, oe))
				nbm = bits |
				      (ob & ~(bits << 32) & QCOW2_BITMAP_ZERO);
			else
				nbm = QCOW2_BITMAP_ALLOC;
		}
		qcow2_set_l2(s, l2, idx, host | QCOW2_OFLAG_COPIED, nbm);
	}
	/* The L2 update reaches the disk at the next metadata sync; what
	 * it replaced is released after that. */
	if (run->kind != W_NEW)
		return 0;
	r = 0;
	for (uint64_t i = 0; i < run->n; i++) {
		uint64_t oe = run->old_e[i];
		if (oe & QCOW2_OFLAG_COMPRESSED) {
			uint64_t coff, clen;
			qcow2_compressed_extent(s, oe, &coff, &clen);
			r = qcow2_defer_free(s, coff, clen, false);
		} else if ((oe & QCOW2_OFFSET_MASK) && !s->data_file_name) {
			r = qcow2_defer_free(s, oe & QCOW2_OFFSET_MASK, cs,
					     false);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Handle the first piece of [pos, pos+len); returns bytes done. */
static ssize_t write_piece(struct qcow2 *s, const struct iovec *iov, int iovcnt,
			   size_t skip, uint64_t pos, uint64_t len)
{
	uint64_t cs = s->cluster_size;
	uint64_t l2_span = (uint64_t)s->l2_entries << s->cluster_bits;
	uint64_t end = min_u64(pos + len,
			       align_down_u64(pos, l2_span) + l2_span);
	uint64_t g0 = pos >> s->cluster_bits, gl = (end - 1) >> s->cluster_bits;
	struct qcow2_inflight inf;
	uint64_t *olds = NULL;
	uint8_t *l2;
	uint32_t idx;
	ssize_t ret;
	bool zeroed = false, copied = false, synced = false;
	int r;

	pthread_mutex_lock(&s->lock);
	qcow2_inflight_begin(s, &inf, g0, gl);
	if ((r = qcow2_refuse_if_corrupt(s)) < 0 ||
	    (r = qcow2_get_l2(s, g0, false, &l2, &idx)) < 0)
		goto fail;
	struct run run = {.g0 = g0, .n = 0};
	uint64_t e = l2 ? qcow2_l2_entry(s, l2, idx) : 0;
	uint64_t bm = l2 ? qcow2_l2_bitmap(s, l2, idx) : 0;
	uint64_t c0 = g0 << s->cluster_bits;
	uint64_t run_end = min_u64(end, c0 + cs);
	if ((r = classify(s, g0, e, bm, pos - c0, run_end - c0, &run.kind)) < 0)
		goto fail;

	if (run.kind == W_INPLACE) {
		uint64_t host = (e & QCOW2_OFFSET_MASK) + (pos - c0);
		uint64_t next_host = (e & QCOW2_OFFSET_MASK) + cs;
		for (uint64_t g = g0 + 1; g <= gl; g++) {
			uint32_t i = (uint32_t)(g & (s->l2_entries - 1));
			uint64_t ge = qcow2_l2_entry(s, l2, i);
			uint64_t gb = qcow2_l2_bitmap(s, l2, i);
			uint64_t gc = g << s->cluster_bits;
			enum wkind k;
			if (classify(s, g, ge, gb, 0,
				     min_u64(end, gc + cs) - gc, &k) < 0 ||
			    k != W_INPLACE ||
			    (ge & QCOW2_OFFSET_MASK) != next_host)
				break;
			next_host += cs;
			run_end = min_u64(end, gc + cs);
		}
		if (!s->data_file_name &&
		    (r = qcow2_meta_guard(s, host, run_end - pos,
					  "a guest data write")) < 0)
			goto fail;
		pthread_mutex_unlock(&s->lock);
		r = qcow2_data_io(s, true, iov, iovcnt, skip,
				  (size_t)(run_end - pos), host, 0);
		pthread_mutex_lock(&s->lock);
		ret = r < 0 ? r : (ssize_t)(run_end - pos);
		goto done;
	}

	/* Collect the run: one FIXUP cluster or consecutive NEW clusters. */
	uint64_t maxn = gl - g0 + 1;
	if (!(olds = malloc(2 * maxn * sizeof(*olds)))) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto fail;
	}
	run.old_e = olds;
	run.old_bm = olds + maxn;
	run.old_e[0] = e;
	run.old_bm[0] = bm;
	run.n = 1;
	if (run.kind == W_NEW) {
		/* Runs stay short enough for the allocator to find them
		 * between refcount blocks (small clusters, wide refcounts). */
		uint64_t cap = max_u64(1, s->rb_entries / 4);
		for (uint64_t g = g0 + 1; g <= gl && g - g0 < cap; g++) {
			uint32_t i = (uint32_t)(g & (s->l2_entries - 1));
			uint64_t ge = l2 ? qcow2_l2_entry(s, l2, i) : 0;
			uint64_t gb = l2 ? qcow2_l2_bitmap(s, l2, i) : 0;
			uint64_t gc = g << s->cluster_bits;
			enum wkind k;
			if (classify(s, g, ge, gb, 0,
				     min_u64(end, gc + cs) - gc, &k) < 0 ||
			    k != W_NEW)
				break;
			run.old_e[run.n] = ge;
			run.old_bm[run.n] = gb;
			run.n++;
		}
		run_end = min_u64(end, (g0 + run.n) << s->cluster_bits);
		for (uint64_t i = 0; i < run.n; i++)
			if ((r = guard_old_entry(s, run.old_e[i])) < 0)
				goto fail;
		/* The L2 table first, so data follows its table on disk as
		 * with qemu (a crash in between only leaks the table). */
		if ((r = qcow2_get_l2(s, g0, true, &l2, &idx)) < 0)
			goto fail;
		if (s->data_file_name)
			run.host0 = c0; /* the data file mirrors the guest */
		else if (s->exit_safe)
			r = qcow2_resv_take(s, run.n, &run.host0, &zeroed);
		else
			r = qcow2_alloc_data_clusters(s, run.n, &run.host0);
		if (r < 0)
			goto fail;
	} else {
		run.host0 = e & QCOW2_OFFSET_MASK;
		if (!s->data_file_name &&
		    (r = qcow2_meta_guard(s, run.host0, cs,
					  "a guest data write")) < 0)
			goto fail;
	}
	pthread_mutex_unlock(&s->lock);
	/* Exit-safe: the entry is published below, so what it exposes
	 * beyond the guest's own new bytes must be durable first: the run
	 * itself written O_DSYNC, or (encrypted) a flush. */
	r = write_run(s, &run, iov, iovcnt, skip, pos, run_end,
		      s->exit_safe && !s->crypt_method, !zeroed, &copied,
		      &synced);
	pthread_mutex_lock(&s->lock);
	if (r == 0 && s->exit_safe && !synced && (copied || !zeroed))
		r = qcow2_data_barrier(s);
	if (r == 0)
		r = commit_run(s, &run);
	if (r == 0)
		r = qcow2_publish_l2(s);
	else if (run.kind == W_NEW && !s->data_file_name)
		(void)qcow2_free_range(s, run.host0, run.n * cs, false);
	ret = r < 0 ? r : (ssize_t)(run_end - pos);
	goto done;
fail:
	ret = r;
done:
	qcow2_inflight_end(s, &inf);
	pthread_mutex_unlock(&s->lock);
	free(olds);
	return ret;
}

static int write_aligned(struct qcow2 *s, const struct iovec *iov, int iovcnt,
			 uint64_t off, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write_piece(s, iov, iovcnt, done, off + done,
					len - done);
		if (n < 0)
			return (int)n;
		done += (size_t)n;
	}
	return 0;
}

/* Part of one sector (SKIP bytes into it, N bytes from the iovec at DONE)
 * of an encrypted image: read, patch and write the whole sector, one
 * such change at a time so that neighbours do not lose each other's
 * bytes. */
static int write_partial_sector(struct mimg *img, const struct iovec *iov,
				int iovcnt, size_t done, uint64_t sector_off,
				size_t skip, size_t n)
{
	struct qcow2 *s = qcow2_of(img);
	uint8_t buf[MIMG_CRYPTO_SECTOR];
	struct iovec v = {buf, sizeof(buf)};
	pthread_mutex_lock(&s->crypt_rmw);
	int r = qcow2_preadv(img, &v, 1, sector_off, sizeof(buf));
	if (r == 0) {
		iov_to_buf(iov, iovcnt, done, buf + skip, n);
		r = write_aligned(s, &v, 1, sector_off, sizeof(buf));
	}
	pthread_mutex_unlock(&s->crypt_rmw);
	return r;
}

static int write_unaligned(struct mimg *img, const struct iovec *iov,
			   int iovcnt, uint64_t off, size_t len)
{
	struct qcow2 *s = qcow2_of(img);
	const uint64_t sec = MIMG_CRYPTO_SECTOR;
	size_t done = 0;
	int r = 0;
	while (done < len && r == 0) {
		uint64_t pos = off + done;
		uint64_t start = align_down_u64(pos, sec);
		size_t n;
		if (pos != start || len - done < sec) {
			size_t skip = (size_t)(pos - start);
			n = (size_t)min_u64(len - done, sec - skip);
			r = write_partial_sector(img, iov, iovcnt, done, start,
						 skip, n);
		} else {
			n = (size_t)align_down_u64(len - done, sec);
			struct iovec st[16], *v;
			int cnt = iov_slice(iov, iovcnt, done, n, st, 16, &v);
			if (cnt < 0)
				return mimg_err(cnt, "out of memory");
			r = write_aligned(s, v, cnt, pos, n);
			iov_slice_free(v, st);
		}
		done += n;
	}
	return r;
}

int qcow2_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
		  uint64_t off, size_t len)
{
	struct qcow2 *s = qcow2_of(img);
	qcow2_bitmaps_dirty(s, off, len);
	int r = qcow2_crypt_unaligned(s, off, len);
	if (r < 0)
		return r;
	if (r)
		return write_unaligned(img, iov, iovcnt, off, len);
	return write_aligned(s, iov, iovcnt, off, len);
}

static int write_zero_buf(struct mimg *img, uint64_t off, uint64_t len)
{
	static const uint8_t zeroes[65536];
	while (len) {
		size_t n = (size_t)min_u64(len, sizeof(zeroes));
		struct iovec v = {(void *)zeroes, n};
		int r = qcow2_pwritev(img, &v, 1, off, n);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/* New L2 entry/bitmap making all of cluster (old E, BM) read as zeroes
 * (ZERO) or unallocated (!ZERO); *FREE tells whether the old host cluster
 * must be released. */
static void zero_entry(struct qcow2 *s, uint64_t e, uint64_t bm, bool zero,
		       bool unmap, uint64_t *ne, uint64_t *nbm, bool *free_old)
{
	bool keep = !unmap && !(e & QCOW2_OFLAG_COMPRESSED) &&
		    entry_has_host(s, e) &&
		    (s->data_file_name || (e & QCOW2_OFLAG_COPIED));
	if (s->data_file_name && entry_has_host(s, e))
		keep = true; /* data file clusters are not refcounted */
	*free_old = !keep &&
		    ((e & QCOW2_OFLAG_COMPRESSED) || (e & QCOW2_OFFSET_MASK));
	uint64_t base = keep ? (e & (QCOW2_OFFSET_MASK | QCOW2_OFLAG_COPIED))
			     : 0;
	if (s->extended_l2) {
		*ne = base;
		*nbm = zero ? QCOW2_BITMAP_ZERO : 0;
	} else {
		*ne = base | (zero ? QCOW2_OFLAG_ZERO : 0);
		*nbm = 0;
	}
	(void)bm;
}

/* Make whole clusters [g0, g1] zero (or unallocated). */
static int zero_clusters(struct qcow2 *s, uint64_t g0, uint64_t g1, bool zero,
			 bool unmap)
{
	struct qcow2_inflight inf;
	pthread_mutex_lock(&s->lock);
	qcow2_inflight_begin(s, &inf, g0, g1);
	int r = qcow2_refuse_if_corrupt(s);
	for (uint64_t g = g0; g <= g1 && r == 0;) {
		uint8_t *l2;
		uint32_t idx;
		if ((r = qcow2_get_l2(s, g, false, &l2, &idx)) < 0)
			break;
		uint64_t span_end = min_u64(g1, g | (s->l2_entries - 1));
		if (!l2 && !zero) {
			g = span_end + 1; /* already unallocated */
			continue;
		}
		if ((r = qcow2_get_l2(s, g, true, &l2, &idx)) < 0)
			break;
		uint64_t nfree = 0, *frees = calloc(span_end - g + 1,
						    2 * sizeof(uint64_t));
		if (!frees) {
			r = mimg_err(-ENOMEM, "out of memory");
			break;
		}
		/* Readers without the lock wait once for the whole table,
		 * not once per entry. */
		qcow2_readers_block(s);
		for (uint64_t c = g; c <= span_end; c++) {
			uint32_t i = (uint32_t)(c & (s->l2_entries - 1));
			uint64_t e = qcow2_l2_entry(s, l2, i);
			uint64_t bm = qcow2_l2_bitmap(s, l2, i), ne, nbm;
			bool fr;
			if ((r = qcow2_validate_l2_entry(s, c, e, bm)) < 0)
				break;
			zero_entry(s, e, bm, zero, unmap, &ne, &nbm, &fr);
			if (ne == e && nbm == bm)
				continue;
			if (fr && (r = guard_old_entry(s, e)) < 0)
				break;
			qcow2_set_l2(s, l2, i, ne, nbm);
			if (fr) {
				if (e & QCOW2_OFLAG_COMPRESSED) {
					qcow2_compressed_extent(
						s, e, &frees[2 * nfree],
						&frees[2 * nfree + 1]);
				} else {
					frees[2 * nfree] = e &
							   QCOW2_OFFSET_MASK;
					frees[2 * nfree + 1] = s->cluster_size;
				}
				nfree++;
			}
		}
		qcow2_readers_unblock(s);
		for (uint64_t i = 0; r == 0 && i < nfree; i++)
			r = qcow2_defer_free(s, frees[2 * i], frees[2 * i + 1],
					     true);
		free(frees);
		g = span_end + 1;
	}
	if (r == 0)
		r = qcow2_publish_l2(s);
	qcow2_inflight_end(s, &inf);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int qcow2_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
			unsigned flags)
{
	struct qcow2 *s = qcow2_of(img);
	bool unmap = flags & MIMG_ZERO_MAY_UNMAP;
	uint64_t cs = s->cluster_size;
	qcow2_bitmaps_dirty(s, off, len);
	/* A raw data file must hold the guest's bytes itself. */
	if ((s->version < 3 && img->backing_name) || s->data_raw)
		return -ENOTSUP;
	uint64_t a, b = align_down_u64(off + len, cs);
	if (!ck_align_up_u64(off, cs, &a))
		return -ENOTSUP;
	if (a >= b)
		return write_zero_buf(img, off, len);
	int r = write_zero_buf(img, off, a - off);
	if (r == 0)
		r = zero_clusters(s, a >> s->cluster_bits,
				  (b >> s->cluster_bits) - 1, s->version >= 3,
				  unmap || s->version < 3);
	if (r == 0)
		r = write_zero_buf(img, b, off + len - b);
	return r;
}

int qcow2_unmap_clusters(struct qcow2 *s, uint64_t g0, uint64_t g1)
{
	return zero_clusters(s, g0, g1, false, true);
}

int qcow2_discard(struct mimg *img, uint64_t off, uint64_t len)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t cs = s->cluster_size, a, b = align_down_u64(off + len, cs);
	qcow2_bitmaps_dirty(s, off, len);
	if (!ck_align_up_u64(off, cs, &a) || a >= b)
		return 0;
	if (s->data_raw) {
		/* The raw data file is the guest disk: free its space and
		 * let the range read as zeroes there. */
		int r = mimg_file_zero_range(s->data, a, b - a, true);
		if (r == -ENOTSUP)
			r = write_zero_buf(img, a, b - a);
		return r;
	}
	return zero_clusters(s, a >> s->cluster_bits,
			     (b >> s->cluster_bits) - 1, s->version >= 3, true);
}

int qcow2_flush(struct mimg *img)
{
	struct qcow2 *s = qcow2_of(img);
	pthread_mutex_lock(&s->lock);
	int r = qcow2_resv_release(s);
	if (r == 0)
		r = qcow2_refcount_writeback(s);
	if (r == 0)
		r = qcow2_metadata_sync(s);
	pthread_mutex_unlock(&s->lock);
	if (r == 0 && s->data != s->file)
		r = mimg_file_flush(s->data);
	if (r == 0)
		r = mimg_file_flush(s->file);
	return r;
}

int qcow2_truncate(struct mimg *img, uint64_t size, enum mimg_prealloc prealloc)
{
	struct qcow2 *s = qcow2_of(img);
	uint8_t b[8];
	if (prealloc != MIMG_PREALLOC_OFF && s->crypt_method)
		return mimg_err(-ENOTSUP,
				"%s: qcow2: preallocation is not "
				"supported for encrypted images",
				qcow2_path(s));
	if (prealloc != MIMG_PREALLOC_OFF && s->snapshot_selected >= 0)
		return mimg_err(-EBUSY, "%s: qcow2: a snapshot is selected",
				qcow2_path(s));
	if (size > (uint64_t)INT64_MAX || size % 512)
		return mimg_err(-EINVAL,
				"%s: qcow2: new size %llu must be a "
				"multiple of 512",
				qcow2_path(s), (unsigned long long)size);
	/* Version 2 snapshots have no size of their own. */
	if (s->nb_snapshots && s->version < 3)
		return mimg_err(-ENOTSUP,
				"%s: qcow2: Can't resize a v2 image "
				"which has snapshots",
				qcow2_path(s));
	if (size < img->size && prealloc != MIMG_PREALLOC_OFF)
		return mimg_err(-EINVAL,
				"%s: qcow2: Preallocation can't be "
				"used for shrinking an image",
				qcow2_path(s));
	pthread_mutex_lock(&s->lock);
	int r = qcow2_bitmaps_load_all(s);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	if (size < img->size) {
		if ((r = qcow2_shrink(img, size)) < 0)
			return r;
		pthread_mutex_lock(&s->lock);
		r = qcow2_bitmaps_resize(s);
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	pthread_mutex_lock(&s->lock);
	r = qcow2_resize_l1(s, qcow2_l1_needed(s, size));
	/* A larger size must not be durable before the L1 that covers it. */
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r == 0) {
		st_be64(b, size);
		r = mimg_file_pwrite(s->file, b, 8, 24);
	}
	if (r == 0 && s->data_file_name)
		r = mimg_file_truncate(s->data, size);
	uint64_t old_size = img->size;
	if (r == 0)
		img->size = size;
	if (r == 0)
		r = qcow2_bitmaps_resize(s);
	pthread_mutex_unlock(&s->lock);
	/* The new range reads as zeroes even where a longer backing file
	 * has data, as with qemu. */
	struct mimg *below = img->backing;
	if (r == 0 && below && mimg_size(below) > old_size) {
		uint64_t end = min_u64(size, mimg_size(below));
		r = qcow2_pwrite_zeroes(img, old_size, end - old_size, 0);
		if (r == -ENOTSUP)
			r = write_zero_buf(img, old_size, end - old_size);
	}
	if (r == 0 && prealloc != MIMG_PREALLOC_OFF && size > old_size)
		r = qcow2_preallocate(img,
				      div_round_up_u64(old_size,
						       s->cluster_size) *
					      s->cluster_size,
				      prealloc);
	/* Preallocation left L2 updates in the cache; publish them in
	 * order before any exit-safe write does so without a flush. */
	if (r == 0 && s->exit_safe) {
		pthread_mutex_lock(&s->lock);
		r = qcow2_metadata_sync(s);
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}
