/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Probing.  Drivers score their own formats; the formats qemu-img 7.2
 * probes that mimg cannot open are recognised here, each by the same
 * fields and with the same score as qemu-img, so that such an image is
 * refused by name instead of being served as a raw disk.
 *
 * qemu-img probes a zero-padded 2048-byte buffer, so a short file counts
 * as followed by zeroes; an empty file is always raw.
 */
#include <stdbool.h>
#include <string.h>

#include "driver.h"
#include "endian.h"
#include "probe.h"

#define PAD_SIZE 2048

struct unsupported_format {
	const char *name;
	/* HDR: PAD_SIZE bytes, the file's first bytes then zeroes. */
	int (*probe)(const uint8_t *hdr, const char *filename);
};

/* A NUL-terminated string STR at P (a field of a fixed-size header). */
static bool str_at(const uint8_t *p, const char *str)
{
	return memcmp(p, str, strlen(str) + 1) == 0;
}

static int probe_bochs(const uint8_t *hdr, const char *filename)
{
	(void)filename;
	uint32_t version = ld_le32(hdr + 64);
	return str_at(hdr, "Bochs Virtual HD Image") &&
			       str_at(hdr + 32, "Redolog") &&
			       str_at(hdr + 48, "Growing") &&
			       (version == 0x00020000 || version == 0x00010000)
		       ? 100
		       : 0;
}

/* The shell preamble of a cloop 2.0 image; a weak guess, as in qemu. */
static int probe_cloop(const uint8_t *hdr, const char *filename)
{
	static const char preamble[] =
		"#!/bin/sh\n#V2.0 Format\n"
		"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";
	(void)filename;
	return memcmp(hdr, preamble, sizeof(preamble) - 1) == 0 ? 2 : 0;
}

static const struct unsupported_format unsupported[] = {{"bochs", probe_bochs},
							{"cloop", probe_cloop}};

int mimg__probe_unsupported(const uint8_t *buf, size_t len,
			    const char *filename, const char **name)
{
	uint8_t hdr[PAD_SIZE] = {0};
	int best = 0;

	*name = NULL;
	if (len == 0)
		return 0;
	memcpy(hdr, buf, len < PAD_SIZE ? len : PAD_SIZE);
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]);
	     i++) {
		int score = unsupported[i].probe(hdr, filename);
		if (score > best) {
			best = score;
			*name = unsupported[i].name;
		}
	}
	return best;
}

const struct mimg_driver *mimg__probe(const uint8_t *buf, size_t len,
				      const char *filename,
				      const char **unsupportedp)
{
	const struct mimg_driver *best = NULL;
	const char *other;
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
	int other_score = mimg__probe_unsupported(buf, len, filename, &other);
	if (unsupportedp)
		*unsupportedp = NULL;
	if (other_score > best_score) {
		if (unsupportedp)
			*unsupportedp = other;
		return NULL;
	}
	return best;
}
