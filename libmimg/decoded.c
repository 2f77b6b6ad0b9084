/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The last decoded unit of a format (decoded.h).
 */
#include <stdlib.h>

#include "decoded.h"
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

bool mimg__decoded_copy(struct mimg_decoded *d, uint64_t key, uint64_t skip,
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

void mimg__decoded_keep(struct mimg_decoded *d, uint64_t key, uint8_t *buf,
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
