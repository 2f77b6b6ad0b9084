/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Reads and block status for an image whose format maps a guest offset
 * to a run of one kind: unallocated (read from the layer below), zeroes,
 * data stored plainly at a host offset, or data the format decodes
 * (compressed units).  The format says what the run at an offset is;
 * this layer walks a request run by run.  Read-only formats (qcow
 * version 1, QED, DMG, bochs, cloop) are built on it: their driver table
 * names their struct mimg_runs.
 */
#ifndef MIMG_RUNS_H
#define MIMG_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mimg;
struct mimg_decode_unit;

enum mimg_run_kind {
	MIMG_RUN_BELOW,	  /* unallocated here */
	MIMG_RUN_ZERO,	  /* reads as zeroes */
	MIMG_RUN_DATA,	  /* stored as it is at HOST */
	MIMG_RUN_DECODED, /* stored in a unit the format decodes */
};

struct mimg_run {
	enum mimg_run_kind kind;
	uint64_t len;	 /* bytes from the asked offset, at least 1 */
	uint64_t host;	 /* DATA: host offset of the asked byte */
	uint64_t unit;	 /* DECODED: the format's name for what to decode */
	uint64_t skip;	 /* DECODED: the asked byte's offset within it */
	bool compressed; /* DECODED: block status says compressed */
};

struct mimg_runs {
	/* The run at OFF, at most LEN bytes.  0 or a negative errno (with
	 * the error set). */
	int (*map)(struct mimg *img, uint64_t off, uint64_t len,
		   struct mimg_run *run);
	/* Where the unit of the DECODED run RUN is stored: U->at, and its
	 * U->stored bytes, which decode to U->size; the rest of *U is set
	 * (the key is RUN->unit).  0 or a negative errno (with the error
	 * set).  Optional when map gives no such run. */
	int (*unit)(struct mimg *img, const struct mimg_run *run,
		    struct mimg_decode_unit *u);
	/* How a unit decodes (decoded.h; its arg is the image), and what
	 * a unit is called when the file is shorter than it. */
	int (*decode)(void *img, const struct mimg_decode_unit *u,
		      const uint8_t *in, uint8_t *out);
	const char *what;
};

/* The driver ops of an image whose reads all go through the driver's
 * runs. */
int mimg__runs_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		      uint64_t off, size_t len);
/* BELOW: nothing (the layers below answer); ZERO: zero; DATA: data at its
 * offset; DECODED: data without an offset (compressed where it says). */
int mimg__runs_block_status(struct mimg *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, unsigned *status,
			    uint64_t *host_off);

#endif
