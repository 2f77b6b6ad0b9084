/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Packed output written in order into a host file (archive-sink.h).
 */
#include <errno.h>

#include "archive-sink.h"
#include "error.h"
#include "mimg.h"

int mimg__sink_append(struct mimg_sink *s, const void *buf, size_t n)
{
	int r = mimg_file_pwrite(s->f, buf, n, s->pos);
	if (r < 0)
		return r;
	s->pos += n;
	return 0;
}

la_ssize_t mimg__sink_archive_write(struct archive *a, void *sink,
				    const void *buf, size_t n)
{
	int r = mimg__sink_append(sink, buf, n);
	if (r < 0) {
		/* libarchive keeps the reason for mimg__archive_write_fail */
		mimg__libarchive.archive_set_error(a, -r, "%s", mimg_errmsg());
		return -1;
	}
	return (la_ssize_t)n;
}

int mimg__archive_write_fail(struct archive *a, const char *path,
			     const char *what)
{
	const char *msg = mimg__libarchive.archive_error_string(a);
	int e = mimg__libarchive.archive_errno(a);
	return mimg_err(e > 0 ? -e : -EIO, "%s: %s: %s", path, what,
			msg ? msg : "unknown error");
}
