/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Steps every fuzz target takes on an opened image, bounded whatever the
 * image declares: a hostile virtual size must not turn one input into
 * minutes of work.
 */
#ifndef MIMG_FUZZ_UTIL_H
#define MIMG_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

struct mimg;

/* Read up to LEN (at most 64 KiB) bytes at OFF, clipped to the image. */
void fuzz_read_range(struct mimg *img, uint64_t off, size_t len);
/* Reads at the start, a third of the way in and at the end. */
void fuzz_read_spread(struct mimg *img);
/* Walk at most 256 block-status runs from the start of the image. */
void fuzz_walk_block_status(struct mimg *img);
/* Build the info tree and render it as JSON, as mimg info does. */
void fuzz_describe(struct mimg *img);
/* Run a check with FLAGS (0: report only). */
void fuzz_check(struct mimg *img, unsigned flags);

#endif
