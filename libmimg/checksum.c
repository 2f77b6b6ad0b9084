/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_checksum: a digest of an image's guest-visible content that does
 * not depend on the format, computed from block status.
 *
 * Construction (H is the chosen digest, SHA-256 by default):
 *   - the content is cut into blocks of 64 KiB (the last may be shorter);
 *     block i has the digest d_i = H(block i), and a whole block of
 *     zeroes the precomputed Z = H(65536 zero bytes), which is the same;
 *   - block i belongs to stream i mod 64; stream s has the digest
 *     R_s = H(d_s || d_{s+64} || d_{s+128} || ...) (H of nothing when it
 *     has no block);
 *   - the checksum is H(R_0 || R_1 || ... || R_63).
 * This is the block hash of blkhash/blksum (64 KiB blocks, 64 streams).
 *
 * Threads share the streams: thread t of T owns streams [t*64/T,
 * (t+1)*64/T), i.e. one contiguous slice of each 4 MiB group of blocks,
 * reads only its slices and appends to its own streams in order, so no
 * thread waits for another.  Runs that block status reports as zero are
 * never read: their Z digests are appended from a buffer of repeated Z,
 * so an empty terabyte costs hashing 32 bytes per 64 KiB.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "checked.h"
#include "dynlib.h"
#include "error.h"
#include "image.h"
#include "iov.h"
#include "mimg.h"

#define CK_BLOCK (64u * 1024)
#define CK_STREAMS 64u
#define CK_MAX_THREADS 16u
#define ZREP 256 /* copies of Z in the repeat buffer */

struct ck {
	struct mimg *img;
	const EVP_MD *md;
	unsigned md_len;
	unsigned threads, per; /* streams per thread */
	uint8_t zmd[EVP_MAX_MD_SIZE];
	uint8_t *zrep; /* ZREP copies of Z */
	uint64_t size;
	/* progress */
	pthread_mutex_t lock;
	uint64_t done;
	const struct mimg_checksum_opts *opts;
};

struct ck_worker {
	struct ck *ck;
	unsigned id;
	pthread_t thread;
	int err;
	char msg[256];
	EVP_MD_CTX *stream[CK_STREAMS];
	EVP_MD_CTX *block;
	uint8_t *buf;
};

static int digest_error(const char *what)
{
	return mimg_err(-EIO, "checksum: libcrypto failed to %s", what);
}

/* Append Z to stream S COUNT times. */
static int add_zero_digests(struct ck_worker *w, unsigned s, uint64_t count)
{
	struct ck *ck = w->ck;
	while (count) {
		uint64_t n = min_u64(count, ZREP);
		if (!mimg__libcrypto.EVP_DigestUpdate(w->stream[s], ck->zrep,
						      n * ck->md_len))
			return digest_error("hash");
		count -= n;
	}
	return 0;
}

static int add_block(struct ck_worker *w, unsigned s, const uint8_t *p,
		     size_t len)
{
	struct ck *ck = w->ck;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdl;
	if (len == CK_BLOCK && buf_is_zero(p, len))
		return mimg__libcrypto.EVP_DigestUpdate(w->stream[s], ck->zmd,
							ck->md_len)
			       ? 0
			       : digest_error("hash");
	if (!mimg__libcrypto.EVP_DigestInit_ex(w->block, ck->md, NULL) ||
	    !mimg__libcrypto.EVP_DigestUpdate(w->block, p, len) ||
	    !mimg__libcrypto.EVP_DigestFinal_ex(w->block, md, &mdl) ||
	    !mimg__libcrypto.EVP_DigestUpdate(w->stream[s], md, mdl))
		return digest_error("hash");
	return 0;
}

static void progress(struct ck *ck, uint64_t bytes)
{
	const struct mimg_checksum_opts *o = ck->opts;
	if (!o || !o->progress)
		return;
	pthread_mutex_lock(&ck->lock);
	ck->done += bytes;
	o->progress(o->opaque, ck->done, ck->size);
	pthread_mutex_unlock(&ck->lock);
}

/* Read and hash this worker's slice of group G. */
static int hash_slice(struct ck_worker *w, uint64_t g)
{
	struct ck *ck = w->ck;
	uint64_t a = (g * CK_STREAMS + (uint64_t)w->id * ck->per) * CK_BLOCK;
	uint64_t e = min_u64(a + (uint64_t)ck->per * CK_BLOCK, ck->size);
	ssize_t n = mimg_pread(ck->img, w->buf, (size_t)(e - a), a, 0);
	if (n < 0)
		return (int)n;
	for (unsigned i = 0; i < ck->per && a + (uint64_t)i * CK_BLOCK < e;
	     i++) {
		uint64_t off = (uint64_t)i * CK_BLOCK;
		size_t len = (size_t)min_u64(CK_BLOCK, e - a - off);
		int r = add_block(w, i, w->buf + off, len);
		if (r < 0)
			return r;
	}
	progress(ck, e - a);
	return 0;
}

/* Zero from this worker's slice of group G up to byte ZEND: append Z for
 * every whole slice of the run; returns the next group to look at. */
static int skip_zero_groups(struct ck_worker *w, uint64_t g, uint64_t zend,
			    uint64_t *nextp)
{
	struct ck *ck = w->ck;
	const uint64_t gbytes = (uint64_t)CK_STREAMS * CK_BLOCK;
	uint64_t slice0 = (uint64_t)w->id * ck->per * CK_BLOCK;
	uint64_t slice_len = (uint64_t)ck->per * CK_BLOCK;
	/* groups whose slice ends at or before ZEND, and whole (the image's
	 * last slice may be short: it is read) */
	uint64_t last = zend >= slice0 + slice_len
				? (zend - slice0 - slice_len) / gbytes
				: 0;
	uint64_t full_end = ck->size / gbytes; /* groups wholly inside */
	if (zend < slice0 + slice_len || last < g || g >= full_end) {
		*nextp = g;
		return 0;
	}
	last = min_u64(last, full_end - 1);
	for (unsigned s = 0; s < ck->per; s++) {
		int r = add_zero_digests(w, s, last - g + 1);
		if (r < 0)
			return r;
	}
	progress(ck, (last - g + 1) * slice_len);
	*nextp = last + 1;
	return 0;
}

static int run_worker(struct ck_worker *w)
{
	struct ck *ck = w->ck;
	const uint64_t gbytes = (uint64_t)CK_STREAMS * CK_BLOCK;
	uint64_t groups = div_round_up_u64(ck->size, gbytes);
	uint64_t g = 0;
	while (g < groups) {
		uint64_t a = g * gbytes + (uint64_t)w->id * ck->per * CK_BLOCK;
		uint64_t pnum, next;
		unsigned st;
		int r;
		if (a >= ck->size)
			break;
		r = mimg_block_status_chain(ck->img, a, ck->size - a, &pnum,
					    &st, NULL, NULL, 0);
		if (r < 0)
			return r;
		if (st & MIMG_BS_ZERO) {
			if ((r = skip_zero_groups(w, g, a + pnum, &next)) < 0)
				return r;
			if (next > g) {
				g = next;
				continue;
			}
		}
		if ((r = hash_slice(w, g)) < 0)
			return r;
		g++;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct ck_worker *w = arg;
	w->err = run_worker(w);
	if (w->err < 0)
		snprintf(w->msg, sizeof(w->msg), "%s", mimg_errmsg());
	return NULL;
}

static void worker_free(struct ck_worker *w)
{
	for (unsigned s = 0; s < CK_STREAMS; s++)
		mimg__libcrypto.EVP_MD_CTX_free(w->stream[s]);
	mimg__libcrypto.EVP_MD_CTX_free(w->block);
	free(w->buf);
}

static int worker_init(struct ck *ck, struct ck_worker *w, unsigned id)
{
	memset(w, 0, sizeof(*w));
	w->ck = ck;
	w->id = id;
	if (!(w->buf = malloc((size_t)ck->per * CK_BLOCK)) ||
	    !(w->block = mimg__libcrypto.EVP_MD_CTX_new()))
		return mimg_err(-ENOMEM, "out of memory");
	for (unsigned s = 0; s < ck->per; s++)
		if (!(w->stream[s] = mimg__libcrypto.EVP_MD_CTX_new()) ||
		    !mimg__libcrypto.EVP_DigestInit_ex(w->stream[s], ck->md,
						       NULL))
			return mimg_err(-ENOMEM, "out of memory");
	return 0;
}

static unsigned pick_threads(const struct mimg_checksum_opts *o)
{
	unsigned want = o && o->threads ? o->threads : 4, t = 1;
	/* a power of two dividing the 64 streams */
	while (t * 2 <= want && t * 2 <= CK_MAX_THREADS)
		t *= 2;
	return t;
}

static int setup(struct ck *ck, struct mimg *img,
		 const struct mimg_checksum_opts *o)
{
	const char *name = o && o->algorithm ? o->algorithm : "sha256";
	uint8_t *zero;
	memset(ck, 0, sizeof(*ck));
	ck->img = img;
	ck->opts = o;
	ck->size = mimg_size(img);
	if (!(ck->md = mimg__libcrypto.EVP_get_digestbyname(name)) ||
	    mimg__libcrypto.EVP_MD_get_size(ck->md) <= 0 ||
	    (mimg__libcrypto.EVP_MD_get_flags(ck->md) & EVP_MD_FLAG_XOF))
		return mimg_err(-EINVAL,
				"checksum: unknown digest algorithm "
				"'%s'",
				name);
	ck->md_len = (unsigned)mimg__libcrypto.EVP_MD_get_size(ck->md);
	ck->threads = pick_threads(o);
	ck->per = CK_STREAMS / ck->threads;
	if (!(zero = calloc(1, CK_BLOCK)))
		return mimg_err(-ENOMEM, "out of memory");
	int ok = mimg__libcrypto.EVP_Digest(zero, CK_BLOCK, ck->zmd, NULL,
					    ck->md, NULL);
	free(zero);
	if (!ok)
		return digest_error("hash");
	if (!(ck->zrep = malloc((size_t)ZREP * ck->md_len)))
		return mimg_err(-ENOMEM, "out of memory");
	for (unsigned i = 0; i < ZREP; i++)
		memcpy(ck->zrep + (size_t)i * ck->md_len, ck->zmd, ck->md_len);
	if (pthread_mutex_init(&ck->lock, NULL) != 0) {
		free(ck->zrep);
		return mimg_err(-ENOMEM, "mutex init failed");
	}
	return 0;
}

/* H(R_0 || ... || R_63), the streams in order across the workers. */
static int finish(struct ck *ck, struct ck_worker *w, unsigned char *md,
		  unsigned *mdlen)
{
	EVP_MD_CTX *root = mimg__libcrypto.EVP_MD_CTX_new();
	uint8_t r[EVP_MAX_MD_SIZE];
	unsigned rl;
	bool ok = root && mimg__libcrypto.EVP_DigestInit_ex(root, ck->md, NULL);
	for (unsigned t = 0; ok && t < ck->threads; t++)
		for (unsigned s = 0; ok && s < ck->per; s++)
			ok = mimg__libcrypto.EVP_DigestFinal_ex(w[t].stream[s],
								r, &rl) &&
			     mimg__libcrypto.EVP_DigestUpdate(root, r, rl);
	ok = ok && mimg__libcrypto.EVP_DigestFinal_ex(root, md, mdlen);
	mimg__libcrypto.EVP_MD_CTX_free(root);
	return ok ? 0 : digest_error("hash");
}

int mimg_checksum(struct mimg *img, const struct mimg_checksum_opts *opts,
		  unsigned char *md, unsigned *mdlen)
{
	struct ck_worker w[CK_MAX_THREADS];
	struct ck ck;
	unsigned started = 0, made = 0;
	int r;

	mimg_err_clear();
	if (opts && opts->size < offsetof(struct mimg_checksum_opts, opaque) +
					 sizeof(opts->opaque))
		return mimg_err(-EINVAL,
				"struct mimg_checksum_opts: size %zu "
				"is too small",
				opts->size);
	/* a newer header's options would be ignored here */
	if (opts && opts->size > sizeof(*opts))
		return mimg_err(-EINVAL,
				"struct mimg_checksum_opts: size %zu "
				"is unknown (at most %zu)",
				opts->size, sizeof(*opts));
	if ((r = mimg__crypto_lib_load("checksum")) < 0 ||
	    (r = setup(&ck, img, opts)) < 0)
		return r;
	for (; made < ck.threads; made++)
		if ((r = worker_init(&ck, &w[made], made)) < 0) {
			made++;
			goto out;
		}
	for (; started < ck.threads; started++)
		if (pthread_create(&w[started].thread, NULL, worker_main,
				   &w[started]) != 0) {
			r = mimg_err(-EAGAIN,
				     "checksum: cannot start a thread");
			break;
		}
	for (unsigned t = 0; t < started; t++) {
		pthread_join(w[t].thread, NULL);
		if (w[t].err < 0 && r == 0)
			r = mimg_err(w[t].err, "%s", w[t].msg);
	}
	if (r == 0)
		r = finish(&ck, w, md, mdlen);
out:
	for (unsigned t = 0; t < made; t++)
		worker_free(&w[t]);
	free(ck.zrep);
	pthread_mutex_destroy(&ck.lock);
	return r;
}
