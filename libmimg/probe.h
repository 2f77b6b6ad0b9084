/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Format probing: every driver's probe, plus the formats that qemu-img
 * recognises and mimg has no driver for.  Those must never be mistaken
 * for raw (a VHDX read as raw is silently the wrong disk), so they are
 * recognised by the same rules as qemu-img 7.2 and refused by name.
 */
#ifndef MIMG_PROBE_H
#define MIMG_PROBE_H

#include <stddef.h>
#include <stdint.h>

struct mimg_driver;

/*
 * The highest-scoring driver for BUF, the first LEN bytes of a file
 * (LEN is short for a small file; 0 for an empty one).  FILENAME may be
 * NULL.  When a format without a driver scores higher than every driver,
 * returns NULL and sets *UNSUPPORTED (when not NULL) to its name;
 * otherwise *UNSUPPORTED is set to NULL.
 */
const struct mimg_driver *mimg__probe(const uint8_t *buf, size_t len,
				      const char *filename,
				      const char **unsupported);

/* Best score (0 when none) of the formats without a driver for BUF, with
 * the winner's name in *NAME. */
int mimg__probe_unsupported(const uint8_t *buf, size_t len,
			    const char *filename, const char **name);

#endif
