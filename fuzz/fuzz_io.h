/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Whole transfers on a file descriptor, for the fuzz input files and the
 * corpus replay driver.  Inline: each fuzz program links either or both.
 */
#ifndef MIMG_FUZZ_IO_H
#define MIMG_FUZZ_IO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

/* Write (WRITING) the LEN bytes of BUF to FD, or read LEN bytes from FD
 * into BUF, retrying after signals: 0, or -1 on an error or an early end
 * of file. */
static inline int fuzz_io_all(int fd, uint8_t *buf, size_t len, bool writing)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = writing ? write(fd, buf + done, len - done)
				    : read(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

#endif
