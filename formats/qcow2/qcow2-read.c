/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 reads and block status.  The mapping is looked up without the
 * metadata lock when its L2 table is cached (else under it); the data
 * transfer runs without it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "error.h"
#include "iov.h"
#include "qcow2.h"

/* Map OFF as qcow2_map does: without the lock where its L2 table is
 * cached and nothing changes the tables, else under it. */
static int map_locked(struct qcow2 *s, uint64_t off, uint64_t len,
		      struct qcow2_map *m)
{
	unsigned slot;
	int r = 1;
	if (mimg_readers_try_enter(&s->map_readers, &slot)) {
		r = qcow2_map_cached(s, off, len, m);
		mimg_readers_leave(&s->map_readers, slot);
	}
	if (r <= 0)
		return r;
	pthread_mutex_lock(&s->lock);
	r = qcow2_map(s, off, len, m);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Decompress the cluster stored at HOST_OFF (CSIZE bytes) into OUT (one
 * cluster). */
static int read_compressed(struct qcow2 *s, uint64_t host_off, uint64_t csize,
			   uint8_t *out)
{
	uint8_t *in = malloc(csize);
	if (!in)
		return mimg_err(-ENOMEM, "out of memory");
	int r = mimg_file_pread(s->file, in, csize, host_off);
	if (r == 0)
		r = qcow2_decompress(s, in, csize, out, s->cluster_size);
	free(in);
	if (r < 0)
		return mimg_err_prefix(r,
				       "%s: qcow2: compressed cluster at "
				       "0x%llx",
				       qcow2_path(s),
				       (unsigned long long)host_off);
	return 0;
}

#define CRUN_MAX 32	     /* compressed clusters read together */
#define CRUN_SPAN (2u << 20) /* at most this many stored bytes */

/*
 * Whole compressed clusters from guest offset POS (the first mapped as
 * FIRST), decoded into the iovec at SKIP, up to LEFT bytes.  Clusters
 * stored back to back (as qemu-img convert -c and mimg write them) are
 * fetched with one read: one round trip instead of one per cluster when
 * the file is remote.  *DONEP gets the bytes decoded.
 */
static int read_compressed_run(struct qcow2 *s, const struct iovec *iov,
			       int iovcnt, size_t skip, uint64_t pos,
			       size_t left, const struct qcow2_map *first,
			       size_t *donep)
{
	uint64_t cs = s->cluster_size, start = first->host_off;
	uint64_t end = start + first->csize, host[CRUN_MAX], csize[CRUN_MAX];
	int n = 1, r = 0;

	host[0] = first->host_off;
	csize[0] = first->csize;
	while (n < CRUN_MAX && (uint64_t)(n + 1) * cs <= left) {
		struct qcow2_map m;
		if (map_locked(s, pos + n * cs, cs, &m) < 0) {
			mimg_err_clear(); /* read where it is met */
			break;
		}
		/* Next to (or overlapping, sectors rounded up) the run. */
		if (m.kind != QCOW2_COMPRESSED || m.host_off < start ||
		    m.host_off > end + 512 ||
		    max_u64(end, m.host_off + m.csize) - start > CRUN_SPAN)
			break;
		host[n] = m.host_off;
		csize[n++] = m.csize;
		end = max_u64(end, m.host_off + m.csize);
	}
	uint8_t *in = n > 1 ? malloc(end - start) : NULL;
	uint8_t *cbuf = NULL;
	if (!in) { /* one cluster, or no memory for many */
		*donep = cs;
		uint8_t *direct = iov_flat(iov, iovcnt, skip, cs);
		if (direct)
			return read_compressed(s, host[0], csize[0], direct);
		if (!(cbuf = malloc(cs)))
			return mimg_err(-ENOMEM, "out of memory");
		r = read_compressed(s, host[0], csize[0], cbuf);
		if (r == 0)
			iov_from_buf(iov, iovcnt, skip, cbuf, cs);
		free(cbuf);
		return r;
	}
	r = mimg_file_pread(s->file, in, end - start, start);
	for (int i = 0; i < n && r == 0; i++) {
		size_t at = skip + (size_t)i * cs;
		uint8_t *out = iov_flat(iov, iovcnt, at, cs);
		if (!out && !cbuf && !(cbuf = malloc(cs))) {
			r = mimg_err(-ENOMEM, "out of memory");
			break;
		}
		r = qcow2_decompress(s, in + (host[i] - start), csize[i],
				     out ? out : cbuf, cs);
		if (r < 0)
			r = mimg_err_prefix(r,
					    "%s: qcow2: compressed cluster "
					    "at 0x%llx",
					    qcow2_path(s),
					    (unsigned long long)host[i]);
		else if (!out)
			iov_from_buf(iov, iovcnt, at, cbuf, cs);
	}
	free(cbuf);
	free(in);
	*donep = (size_t)n * cs;
	return r;
}

/* A mapping returned as a value, and the two functions below kept out of
 * line: inlined into read_aligned, their objects would be objects of
 * read_aligned whose address is taken (see there). */
struct mapped {
	int r; /* map_locked's answer */
	struct qcow2_map m;
};

__attribute__((noinline)) static struct mapped map_value(struct qcow2 *s,
							 uint64_t off,
							 uint64_t len)
{
	struct mapped v;
	v.r = map_locked(s, off, len, &v.m);
	return v;
}

/* [OFF, OFF+LEN) piece by piece, the first mapped as FIRST. */
__attribute__((noinline)) static int read_pieces(struct mimg *img,
						 const struct iovec *iov,
						 int iovcnt, uint64_t off,
						 size_t len,
						 struct mapped first)
{
	struct qcow2 *s = qcow2_of(img);
	uint8_t *cbuf = NULL;
	size_t done = 0;
	int r = 0;

	while (done < len) {
		struct qcow2_map m;
		uint64_t pos = off + done;
		if (done == 0) {
			r = first.r;
			m = first.m;
		} else {
			r = map_locked(s, pos, len - done, &m);
		}
		if (r < 0)
			break;
		size_t n = (size_t)m.len;
		switch (m.kind) {
		case QCOW2_UNALLOCATED:
			r = mimg__read_below(img, iov, iovcnt, done, pos, n);
			break;
		case QCOW2_ZERO: iov_memset(iov, iovcnt, done, 0, n); break;
		case QCOW2_DATA:
			r = qcow2_data_io(s, false, iov, iovcnt, done, n,
					  m.host_off, pos);
			break;
		case QCOW2_COMPRESSED:
			/* Whole clusters decode in place, several read at
			 * once where they are stored together. */
			if (n == s->cluster_size) {
				r = read_compressed_run(s, iov, iovcnt, done,
							pos, len - done, &m,
							&n);
				break;
			}
			if (!cbuf && !(cbuf = malloc(s->cluster_size))) {
				r = mimg_err(-ENOMEM, "out of memory");
				break;
			}
			r = read_compressed(s, m.host_off, m.csize, cbuf);
			if (r == 0)
				iov_from_buf(iov, iovcnt, done,
					     cbuf + (pos - m.cluster_guest), n);
			break;
		}
		if (r < 0)
			break;
		done += n;
	}
	if (cbuf) /* rare: spare plain reads the call */
		free(cbuf);
	return r;
}

/*
 * Most reads map to one run of plain data: that run is read as this
 * function's last call, so that the host file's transfer returns
 * straight to our caller.  Each function left to return through after
 * the kernel has run costs a mispredicted return on hosts that clear the
 * return predictor on kernel entry (see file-posix.c).  No object here
 * has its address taken, which would keep the compiler from making the
 * call a jump.
 */
static int read_aligned(struct mimg *img, const struct iovec *iov, int iovcnt,
			uint64_t off, size_t len)
{
	struct qcow2 *s = qcow2_of(img);
	struct mapped first = map_value(s, off, len);
	if (first.r == 0 && first.m.kind == QCOW2_DATA && first.m.len == len &&
	    !s->crypt_method)
		return mimg_file_preadv(s->data, iov, iovcnt, first.m.host_off);
	return read_pieces(img, iov, iovcnt, off, len, first);
}

/* An encrypted image read in whole sectors through a bounce buffer. */
static int read_unaligned(struct mimg *img, const struct iovec *iov, int iovcnt,
			  uint64_t off, size_t len)
{
	size_t done = 0;
	uint8_t *buf = malloc(CRYPT_CHUNK);
	int r = 0;
	if (!buf)
		return mimg_err(-ENOMEM, "out of memory");
	while (done < len && r == 0) {
		uint64_t pos = off + done;
		uint64_t start = align_down_u64(pos, MIMG_CRYPTO_SECTOR);
		size_t skip = (size_t)(pos - start);
		size_t n = (size_t)min_u64(len - done, CRYPT_CHUNK - skip);
		size_t span = (size_t)div_round_up_u64(skip + n,
						       MIMG_CRYPTO_SECTOR) *
			      MIMG_CRYPTO_SECTOR;
		struct iovec v = {buf, span};
		r = read_aligned(img, &v, 1, start, span);
		if (r == 0)
			iov_from_buf(iov, iovcnt, done, buf + skip, n);
		done += n;
	}
	free(buf);
	return r;
}

int qcow2_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		 uint64_t off, size_t len)
{
	struct qcow2 *s = qcow2_of(img);
	int r = qcow2_crypt_unaligned(s, off, len);
	if (r < 0)
		return r;
	if (r)
		return read_unaligned(img, iov, iovcnt, off, len);
	return read_aligned(img, iov, iovcnt, off, len);
}

int qcow2_read_with_entry(struct qcow2 *s, uint64_t off, size_t len,
			  uint64_t entry, uint64_t bitmap, uint8_t *buf)
{
	uint64_t cl_start = align_down_u64(off, s->cluster_size);
	int r;
	if (len == 0)
		return 0;
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		uint64_t coff, clen;
		uint8_t *c = malloc(s->cluster_size);
		if (!c)
			return mimg_err(-ENOMEM, "out of memory");
		qcow2_compressed_extent(s, entry, &coff, &clen);
		r = read_compressed(s, coff, clen, c);
		if (r == 0)
			memcpy(buf, c + (off - cl_start), len);
		free(c);
		return r;
	}
	uint64_t host = entry & QCOW2_OFFSET_MASK;
	bool has_host = host ||
			(s->data_file_name && (entry & QCOW2_OFLAG_COPIED));
	uint64_t unit = 1ull << s->sc_bits;
	size_t done = 0;
	while (done < len) {
		uint64_t pos = off + done;
		unsigned sc = (unsigned)((pos - cl_start) >> s->sc_bits);
		size_t n = (size_t)min_u64(unit - (pos & (unit - 1)),
					   len - done);
		enum qcow2_kind k;
		if (s->extended_l2)
			k = (bitmap >> (32 + sc)) & 1 ? QCOW2_ZERO
			    : (bitmap >> sc) & 1      ? QCOW2_DATA
						      : QCOW2_UNALLOCATED;
		else if (s->version >= 3 && (entry & QCOW2_OFLAG_ZERO))
			k = QCOW2_ZERO;
		else
			k = has_host ? QCOW2_DATA : QCOW2_UNALLOCATED;
		switch (k) {
		case QCOW2_ZERO:
			memset(buf + done, 0, n);
			r = 0;
			break;
		case QCOW2_DATA:
			if (!s->crypt_method) {
				r = mimg_file_pread(s->data, buf + done, n,
						    host + (pos - cl_start));
				break;
			}
			r = mimg_file_pread_exact(s->data, buf + done, n,
						  host + (pos - cl_start),
						  "qcow2 encrypted data "
						  "cluster");
			if (r == 0)
				r = qcow2_crypt(s, false,
						host + (pos - cl_start), pos,
						buf + done, n);
			break;
		default:
			r = mimg__read_below_buf(s->img, buf + done, pos, n);
			break;
		}
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}

/* Whether S was preallocated with metadata only: its refcounts claim
 * clearly more clusters than its file has allocated (qemu's test: by a
 * ninth, and at least two).  Decided once, at the first block status,
 * as qemu does; an error means no. */
static bool metadata_preallocated(struct qcow2 *s)
{
	int v = __atomic_load_n(&s->metadata_prealloc, __ATOMIC_ACQUIRE);
	if (v)
		return v == 2;
	pthread_mutex_lock(&s->lock);
	if (!(v = s->metadata_prealloc)) {
		uint64_t size, alloc, used = 0;
		bool yes = false;
		if (mimg_file_size(s->file, &size) == 0 &&
		    mimg_file_allocated(s->file, &alloc) == 0) {
			uint64_t real = alloc >> s->cluster_bits;
			uint64_t threshold = max_u64(real * 10 / 9, real + 2);
			/* The scan is bounded: past 2^26 clusters without
			 * reaching the threshold, the image is taken as not
			 * preallocated (a sparse file claiming petabytes
			 * must not cost minutes here). */
			uint64_t end =
				min_u64(div_round_up_u64(size, s->cluster_size),
					1ull << 26);
			yes = qcow2_count_referenced(s, end, threshold,
						     &used) == 0 &&
			      used >= threshold;
		}
		mimg_err_clear();
		v = yes ? 2 : 1;
		__atomic_store_n(&s->metadata_prealloc, v, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&s->lock);
	return v == 2;
}

/* In a preallocated image, the parts of the data run at HOST (*PNUM
 * bytes) that are holes in the host file read as zeroes: *STATUS gains
 * MIMG_BS_ZERO for a hole, *PNUM stops where the file changes between
 * data and hole.  Only a hint: an error leaves the run as it is. */
static void host_holes(struct qcow2 *s, uint64_t host, uint64_t *pnum,
		       unsigned *status)
{
	bool data;
	uint64_t n;
	if (mimg_file_extent(s->data, host, *pnum, &data, &n) < 0) {
		mimg_err_clear();
		return;
	}
	if (!data)
		*status |= MIMG_BS_ZERO;
	*pnum = n;
}

struct mimg_file *qcow2_host_file(struct mimg *img, uint64_t off)
{
	(void)off;
	return qcow2_of(img)->data_own;
}

int qcow2_block_status(struct mimg *img, uint64_t off, uint64_t len,
		       uint64_t *pnum, unsigned *status, uint64_t *host_off)
{
	struct qcow2 *s = qcow2_of(img);
	struct qcow2_map m;
	int r = map_locked(s, off, len, &m);
	if (r < 0)
		return r;
	*pnum = m.len;
	if (host_off)
		*host_off = 0;
	switch (m.kind) {
	case QCOW2_UNALLOCATED:
	case QCOW2_ZERO:
	case QCOW2_DATA:
		if (m.kind == QCOW2_UNALLOCATED)
			*status = img->backing ? 0 : MIMG_BS_ZERO;
		else
			*status = MIMG_BS_ALLOCATED |
				  (m.kind == QCOW2_ZERO ? MIMG_BS_ZERO
							: MIMG_BS_DATA);
		/* Encrypted host bytes are not the guest's: no offset, as
		 * qemu-img map shows none either.  Zero and unallocated
		 * (sub)clusters have one where they lie in a host
		 * cluster. */
		if (s->crypt_method || (m.kind != QCOW2_DATA && !m.host_off))
			break;
		*status |= MIMG_BS_OFFSET_VALID;
		if (host_off)
			*host_off = m.host_off;
		if (m.kind == QCOW2_DATA && metadata_preallocated(s))
			host_holes(s, m.host_off, pnum, status);
		break;
	case QCOW2_COMPRESSED:
		*status = MIMG_BS_DATA | MIMG_BS_ALLOCATED | MIMG_BS_COMPRESSED;
		break;
	}
	return 0;
}
