/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The last decoded unit of a format (decoded.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "decoded.h"
#include "error.h"
#include "file.h"
#include "iov.h"

void mimg__decoded_init(struct mimg_decoded *d)
{
	pthread_mutex_init(&d->lock, NULL);
	d->buf = NULL;
	d->key = 0;
}

void mimg__decoded_destroy(struct mimg_decoded *d)
{
	free(d->buf);
	d->buf = NULL;
	pthread_mutex_destroy(&d->lock);
}

static bool copy_kept(struct mimg_decoded *d, uint64_t key, uint64_t skip,
		      const struct iovec *iov, int iovcnt, size_t done,
		      size_t len)
{
	pthread_mutex_lock(&d->lock);
	bool hit = d->buf && d->key == key;
	if (hit)
		iov_from_buf(iov, iovcnt, done, d->buf + skip, len);
	pthread_mutex_unlock(&d->lock);
	return hit;
}

static void keep(struct mimg_decoded *d, uint64_t key, uint8_t *buf,
		 uint64_t skip, const struct iovec *iov, int iovcnt,
		 size_t done, size_t len)
{
	iov_from_buf(iov, iovcnt, done, buf + skip, len);
	pthread_mutex_lock(&d->lock);
	free(d->buf);
	d->buf = buf;
	d->key = key;
	pthread_mutex_unlock(&d->lock);
}

int mimg__decoded_read(struct mimg_decoded *d, struct mimg_file *f,
		       const struct mimg_decode_unit *u, uint64_t skip,
		       const struct iovec *iov, int iovcnt, size_t done,
		       size_t len)
{
	int r = 0;
	if (copy_kept(d, u->key, skip, iov, iovcnt, done, len))
		return 0;
	uint8_t *in = malloc(u->stored ? u->stored : 1), *out = malloc(u->size);
	if (!in || !out)
		r = mimg_err(-ENOMEM, "out of memory");
	if (r == 0)
		r = mimg_file_pread_exact(f, in, u->stored, u->at, u->what);
	if (r == 0)
		r = u->decode(u->arg, u, in, out);
	free(in);
	if (r < 0) {
		free(out);
		return r;
	}
	keep(d, u->key, out, skip, iov, iovcnt, done, len);
	return 0;
}
