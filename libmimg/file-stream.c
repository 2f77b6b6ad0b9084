/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A read-only host file over decompressed data read in one pass, with no
 * temporary file: what a consumer reading in order (convert) needs from a
 * raw image inside an archive.  The most recent STREAM_RING bytes are
 * kept, so that a few readers working on neighbouring windows at once are
 * all served; a read of data already dropped is an error that says the
 * image needs random access.  The data must be exactly the size declared
 * (tar header, xz index, zstd frame header): shorter or longer is an
 * error, seen by the read that reaches the end.  Data of no declared size
 * (open_ended: a gzip file) ends where it ends, within a bound; the file
 * then takes that size, and what lies past it reads as zeroes, so that
 * its reader (one that finds the image's size in the image) sees the
 * end as it gets there.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "file-archive.h"
#include "file-impl.h"
#include "mimg.h"

struct stream_file {
	struct mimg_file f;
	pthread_mutex_t lock;
	struct mimg_stream_in in;
	uint8_t *ring;
	uint64_t base, pos; /* the ring holds [base, pos) */
	bool ended;	    /* the end was reached and checked */
	int err;	    /* a failed decode fails every later read */
	char errmsg[512];   /* with its message, whichever reader asks */
};

/* The ring, in huge pages where the system has them: filled once, it
 * would otherwise take a page fault per 4 KiB, which costs more than
 * copying the data in. */
static uint8_t *ring_alloc(void)
{
	void *p = NULL;
	if (posix_memalign(&p, 2u << 20, MIMG_STREAM_RING) != 0)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(p, MIMG_STREAM_RING, MADV_HUGEPAGE);
#endif
	return p;
}

static struct stream_file *stream_of(struct mimg_file *f)
{
	return (struct stream_file *)f;
}

/* Decode into the ring until it holds END (<= size). */
static int stream_fill(struct stream_file *s, uint64_t end)
{
	while (s->pos < end) {
		size_t at = (size_t)(s->pos % MIMG_STREAM_RING);
		size_t room = MIMG_STREAM_RING - at;
		if (room > end - s->pos)
			room = (size_t)(end - s->pos);
		ssize_t n = s->in.read(s->in.opaque, s->ring + at, room);
		if (n < 0)
			return (int)n;
		if (n == 0 && s->in.open_ended) {
			s->in.size = s->pos;
			s->in.open_ended = false;
			break;
		}
		if (n == 0)
			return mimg_err(-EIO,
					"%s: the unpacked image ends "
					"after %llu bytes, but its archive "
					"declares %llu",
					s->f.path, (unsigned long long)s->pos,
					(unsigned long long)s->in.size);
		int r = s->in.data(s->in.opaque, s->ring + at, (size_t)n);
		if (r < 0)
			return r;
		s->pos += (uint64_t)n;
		if (s->pos - s->base > MIMG_STREAM_RING)
			s->base = s->pos - MIMG_STREAM_RING;
	}
	if (s->pos == s->in.size && !s->ended) {
		/* Open-ended data that reaches its bound must end there. */
		int r = s->in.end(s->in.opaque);
		if (r < 0)
			return r;
		s->ended = true;
		s->in.open_ended = false;
	}
	return 0;
}

static void ring_copy(struct stream_file *s, uint8_t *dst, uint64_t off,
		      size_t n)
{
	while (n) {
		size_t at = (size_t)(off % MIMG_STREAM_RING);
		size_t k = MIMG_STREAM_RING - at < n ? MIMG_STREAM_RING - at
						     : n;
		memcpy(dst, s->ring + at, k);
		dst += k;
		off += k;
		n -= k;
	}
}

static int stream_read_locked(struct stream_file *s, uint8_t *buf, size_t len,
			      uint64_t off)
{
	size_t have = 0;
	if (off < s->in.size)
		have = s->in.size - off < len ? (size_t)(s->in.size - off)
					      : len;
	memset(buf + have, 0, len - have);
	if (!have)
		return 0;
	if (have > MIMG_STREAM_RING)
		return mimg_err(-EINVAL,
				"%s: a read of %zu bytes is larger "
				"than a streamed image serves at once (%u)",
				s->f.path, have, MIMG_STREAM_RING);
	if (off < s->base)
		return mimg_err(-ESPIPE,
				"%s: streamed image read at offset "
				"%llu, before the %llu bytes still held; this "
				"use needs random access (open it without "
				"MIMG_OPEN_SEQUENTIAL)",
				s->f.path, (unsigned long long)off,
				(unsigned long long)s->base);
	int r = stream_fill(s, off + have);
	if (r < 0)
		return r;
	if (off + have > s->in.size) { /* the data ended sooner */
		size_t held = off < s->in.size ? (size_t)(s->in.size - off) : 0;
		memset(buf + held, 0, have - held);
		have = held;
	}
	ring_copy(s, buf, off, have);
	return 0;
}

static int stream_preadv(struct mimg_file *f, const struct iovec *iov,
			 int iovcnt, uint64_t off)
{
	struct stream_file *s = stream_of(f);
	int r = 0;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < iovcnt && r == 0; i++) {
		if (s->err) {
			r = mimg_err(s->err, "%s", s->errmsg);
			break;
		}
		r = stream_read_locked(s, iov[i].iov_base, iov[i].iov_len, off);
		if (r < 0 && r != -ESPIPE && r != -EINVAL) {
			s->err = r;
			snprintf(s->errmsg, sizeof(s->errmsg), "%s",
				 mimg_errmsg());
		}
		off += iov[i].iov_len;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int mimg__stream_drain(struct mimg_file *f)
{
	struct stream_file *s = stream_of(f);
	int r = 0;
	pthread_mutex_lock(&s->lock);
	if (s->err) {
		r = mimg_err(s->err, "%s", s->errmsg);
	} else if (!s->ended && s->in.skip &&
		   (r = s->in.skip(s->in.opaque)) == 1) {
		/* Nothing of the data is held any more. */
		s->base = s->pos = s->in.size;
		r = s->in.end(s->in.opaque);
		s->ended = r == 0;
	} else if (r == 0) {
		r = stream_fill(s, s->in.size);
	}
	if (r < 0) {
		s->err = r;
		snprintf(s->errmsg, sizeof(s->errmsg), "%s", mimg_errmsg());
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int stream_size(struct mimg_file *f, uint64_t *sizep)
{
	struct stream_file *s = stream_of(f);
	pthread_mutex_lock(&s->lock);
	*sizep = s->in.size;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The host storage behind the image is its archive's. */
static int stream_allocated(struct mimg_file *f, uint64_t *bytesp)
{
	return mimg_file_allocated(stream_of(f)->in.archive, bytesp);
}

static int stream_close(struct mimg_file *f)
{
	struct stream_file *s = stream_of(f);
	s->in.release(s->in.opaque);
	mimg_file_close(s->in.archive);
	pthread_mutex_destroy(&s->lock);
	free(s->ring);
	free(s);
	return 0;
}

static const struct mimg_file_ops stream_ops = {
	.preadv = stream_preadv,
	.size = stream_size,
	.allocated = stream_allocated,
	.close = stream_close,
};

bool mimg_file_is_stream(const struct mimg_file *f)
{
	return f && f->ops == &stream_ops;
}

int mimg__stream_open(struct mimg_file **fp, const char *name,
		      const struct mimg_stream_in *in, const uint8_t *head,
		      size_t n)
{
	struct stream_file *s = calloc(1, sizeof(*s));
	int r;

	*fp = NULL;
	if (!s || !(s->ring = ring_alloc())) {
		free(s);
		return mimg_err(-ENOMEM, "%s: out of memory", name);
	}
	if (n > MIMG_STREAM_RING || n > in->size) {
		free(s->ring);
		free(s);
		return mimg_err(-EINVAL,
				"%s: %zu bytes do not start a "
				"stream of %llu",
				name, n, (unsigned long long)in->size);
	}
	if ((r = mimg__file_init(&s->f, &stream_ops, name, 0)) < 0) {
		free(s->ring);
		free(s);
		return r;
	}
	pthread_mutex_init(&s->lock, NULL);
	memcpy(s->ring, head, n);
	s->pos = n;
	s->in = *in;
	*fp = &s->f;
	return 0;
}
