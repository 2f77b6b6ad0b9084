/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The last unit a read decoded (a compressed chunk or cluster), kept for
 * the next read of it: conversions read a unit in several pieces.
 * Readers that miss decode outside the lock, so readers of different
 * units decode in parallel; the last to finish is kept.
 */
#ifndef MIMG_DECODED_H
#define MIMG_DECODED_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mimg_decoded {
	pthread_mutex_t lock;
	uint64_t key; /* the kept unit, when BUF */
	uint8_t *buf;
};

void mimg__decoded_init(struct mimg_decoded *d);
void mimg__decoded_destroy(struct mimg_decoded *d);
/* When unit KEY is the kept one, copy its LEN bytes from SKIP into IOV
 * at byte DONE and return true. */
bool mimg__decoded_copy(struct mimg_decoded *d, uint64_t key, uint64_t skip,
			const struct iovec *iov, int iovcnt, size_t done,
			size_t len);
/* Copy as mimg__decoded_copy from BUF, unit KEY just decoded, then keep
 * BUF (which D now owns) in place of the kept one. */
void mimg__decoded_keep(struct mimg_decoded *d, uint64_t key, uint8_t *buf,
			uint64_t skip, const struct iovec *iov, int iovcnt,
			size_t done, size_t len);

#endif
