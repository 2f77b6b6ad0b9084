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
/* Walk at most 256 block-status runs from the start of the image. */
void fuzz_walk_block_status(struct mimg *img);

#endif
