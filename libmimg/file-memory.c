/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Host files in memory, for tests and fuzzers: a private copy of the
 * caller's bytes that may grow up to a fixed limit when writable.  A
 * read-write lock lets reads run concurrently while writes may move the
 * buffer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "file-impl.h"

struct memory_file {
	struct mimg_file f;
	pthread_rwlock_t lock;
	uint8_t *buf;
	size_t len, cap, max;
};

static struct memory_file *memory_of(struct mimg_file *f)
{
	return (struct memory_file *)f;
}

static int memory_preadv(struct mimg_file *f, const struct iovec *iov,
			 int iovcnt, uint64_t off)
{
	struct memory_file *m = memory_of(f);
	pthread_rwlock_rdlock(&m->lock);
	for (int i = 0; i < iovcnt; i++) {
		size_t n = iov[i].iov_len, have = 0;
		if (off < m->len)
			have = m->len - off < n ? (size_t)(m->len - off) : n;
		if (have)
			memcpy(iov[i].iov_base, m->buf + off, have);
		memset((uint8_t *)iov[i].iov_base + have, 0, n - have);
		off += n;
	}
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

/* Make the buffer hold END bytes (new bytes zero); caller holds the lock
 * for writing. */
static int memory_grow(struct memory_file *m, uint64_t end)
{
	if (end <= m->len)
		return 0;
	if (end > m->max)
		return mimg_err(-ENOSPC,
				"%s: in-memory file cannot grow to "
				"%llu bytes (limit %zu)",
				m->f.path, (unsigned long long)end, m->max);
	if (end > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		while (cap < end)
			cap = cap > m->max / 2 ? m->max : cap * 2;
		uint8_t *b = realloc(m->buf, cap);
		if (!b)
			return mimg_err(-ENOMEM, "%s: out of memory",
					m->f.path);
		m->buf = b;
		m->cap = cap;
	}
	memset(m->buf + m->len, 0, (size_t)end - m->len);
	m->len = (size_t)end;
	return 0;
}

static int memory_pwritev(struct mimg_file *f, const struct iovec *iov,
			  int iovcnt, uint64_t off)
{
	struct memory_file *m = memory_of(f);
	uint64_t end = off;
	int r = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (end + iov[i].iov_len < end)
			return mimg_err(-EFBIG, "%s: write past 2^64", f->path);
		end += iov[i].iov_len;
	}
	pthread_rwlock_wrlock(&m->lock);
	if ((r = memory_grow(m, end)) == 0) {
		for (int i = 0; i < iovcnt; i++) {
			memcpy(m->buf + off, iov[i].iov_base, iov[i].iov_len);
			off += iov[i].iov_len;
		}
	}
	pthread_rwlock_unlock(&m->lock);
	return r;
}

static int memory_flush(struct mimg_file *f)
{
	(void)f;
	return 0;
}

static int memory_size(struct mimg_file *f, uint64_t *sizep)
{
	struct memory_file *m = memory_of(f);
	pthread_rwlock_rdlock(&m->lock);
	*sizep = m->len;
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

static int memory_truncate(struct mimg_file *f, uint64_t size)
{
	struct memory_file *m = memory_of(f);
	int r = 0;
	pthread_rwlock_wrlock(&m->lock);
	if (size < m->len)
		m->len = (size_t)size;
	else
		r = memory_grow(m, size);
	pthread_rwlock_unlock(&m->lock);
	return r;
}

/* Zero [off, off+len) that lies inside the buffer; the rest reads as
 * zeroes already. */
static int memory_zero(struct mimg_file *f, uint64_t off, uint64_t len,
		       bool may_unmap)
{
	struct memory_file *m = memory_of(f);
	(void)may_unmap;
	pthread_rwlock_wrlock(&m->lock);
	if (off < m->len) {
		size_t n = len < m->len - off ? (size_t)len
					      : m->len - (size_t)off;
		memset(m->buf + off, 0, n);
	}
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

static int memory_punch(struct mimg_file *f, uint64_t off, uint64_t len)
{
	return memory_zero(f, off, len, true);
}

static int memory_close(struct mimg_file *f)
{
	struct memory_file *m = memory_of(f);
	pthread_rwlock_destroy(&m->lock);
	free(m->buf);
	free(m);
	return 0;
}

static const struct mimg_file_ops memory_ops = {
	.preadv = memory_preadv,
	.pwritev = memory_pwritev,
	.flush = memory_flush,
	.size = memory_size,
	.allocated = memory_size,
	.truncate = memory_truncate,
	.punch = memory_punch,
	.zero = memory_zero,
	.close = memory_close,
};

int mimg_file_open_memory(struct mimg_file **fp, const void *buf, size_t len,
			  size_t max_size, const char *name, unsigned flags)
{
	struct memory_file *m;
	bool rw = flags & (MIMG_FILE_RDWR | MIMG_FILE_CREATE);
	unsigned caps = rw ? MIMG_FILE_CAN_WRITE | MIMG_FILE_CAN_PUNCH |
					MIMG_FILE_CAN_ZERO | MIMG_FILE_REGULAR
			   : MIMG_FILE_REGULAR;

	*fp = NULL;
	if (!rw || max_size < len)
		max_size = len;
	if (!(m = calloc(1, sizeof(*m))))
		return mimg_err(-ENOMEM, "%s: out of memory", name);
	if (mimg__file_init(&m->f, &memory_ops, name, caps) < 0) {
		free(m);
		return -ENOMEM;
	}
	m->max = max_size;
	if (len && !(m->buf = malloc(len))) {
		free(m->f.path);
		free(m);
		return mimg_err(-ENOMEM, "%s: out of memory for %zu bytes",
				name, len);
	}
	if (len)
		memcpy(m->buf, buf, len);
	m->len = m->cap = len;
	pthread_rwlock_init(&m->lock, NULL);
	*fp = &m->f;
	return 0;
}
