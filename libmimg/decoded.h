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
struct mimg_file;

/* One unit of a format: where it is stored and how it decodes. */
struct mimg_decode_unit {
	uint64_t key;	     /* the format's name for it */
	uint64_t at;	     /* its stored bytes in the file */
	size_t stored, size; /* stored and decoded bytes */
	const char *what;    /* names it when the file is shorter */
	/* Decode IN (STORED bytes) into OUT, all SIZE bytes of it: 0, or a
	 * negative errno with the error set. */
	int (*decode)(void *arg, const struct mimg_decode_unit *u,
		      const uint8_t *in, uint8_t *out);
	void *arg;
};

/* Copy LEN bytes of unit U from its byte SKIP into IOV at byte DONE: from
 * the kept unit when it is U, else read from F, decoded and kept.  0 or a
 * negative errno (with the error set). */
int mimg__decoded_read(struct mimg_decoded *d, struct mimg_file *f,
		       const struct mimg_decode_unit *u, uint64_t skip,
		       const struct iovec *iov, int iovcnt, size_t done,
		       size_t len);

#endif
