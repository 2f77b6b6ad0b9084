/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Packed output (an OVA's tar, a compressed raw image) written in order
 * into a host file, and the errors of libarchive's writer.
 */
#ifndef MIMG_ARCHIVE_SINK_H
#define MIMG_ARCHIVE_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "dynlib.h"
#include "file.h"

/* The output file and how much has been written to it. */
struct mimg_sink {
	struct mimg_file *f;
	uint64_t pos;
};

/* Append N bytes of BUF.  Returns 0 or a negative errno (message set). */
int mimg__sink_append(struct mimg_sink *s, const void *buf, size_t n);

/* archive_write_open2's write callback for a struct mimg_sink. */
la_ssize_t mimg__sink_archive_write(struct archive *a, void *sink,
				    const void *buf, size_t n);

/* The last error of the archive writer A as a negative errno, with the
 * message "PATH: WHAT: reason". */
int mimg__archive_write_fail(struct archive *a, const char *path,
			     const char *what);

#endif
