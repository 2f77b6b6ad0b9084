/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Probing.  Drivers score their own formats, each by the same fields and
 * with the same score as qemu-img 7.2; every format qemu-img probes has
 * a driver, so an image in one of them is never served as a raw disk.
 *
 * qemu-img probes a zero-padded 2048-byte buffer, so a short file counts
 * as followed by zeroes; an empty file is always raw.
 */
#include "driver.h"
#include "probe.h"

const struct mimg_driver *mimg__probe(const uint8_t *buf, size_t len,
				      const char *filename)
{
	const struct mimg_driver *best = NULL;
	int best_score = 0;

	for (const struct mimg_driver *const *d = mimg_drivers; *d; d++) {
		if (!(*d)->probe)
			continue;
		int score = (*d)->probe(buf, len, filename);
		if (score > best_score) {
			best_score = score;
			best = *d;
		}
	}
	return best;
}
