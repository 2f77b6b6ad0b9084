/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Format probing: every driver's probe.  Each format qemu-img 7.2 probes
 * has a driver and is recognised by the same rules, so that no image is
 * mistaken for raw (a VHDX read as raw is silently the wrong disk).
 */
#ifndef MIMG_PROBE_H
#define MIMG_PROBE_H

#include <stddef.h>
#include <stdint.h>

struct mimg_driver;

/*
 * The highest-scoring driver for BUF, the first LEN bytes of a file
 * (LEN is short for a small file; 0 for an empty one), or NULL when no
 * driver claims it.  FILENAME may be NULL.
 */
const struct mimg_driver *mimg__probe(const uint8_t *buf, size_t len,
				      const char *filename);

#endif
