/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_input.h"

static char fuzz_dir[4096];
static char fuzz_path[4200];

static void remove_fuzz_files(void)
{
	unlink(fuzz_path);
	rmdir(fuzz_dir);
}

const char *fuzz_input_write(const uint8_t *data, size_t size,
			     const char *name)
{
	if (!fuzz_dir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/mimg-fuzz-XXXXXX",
			 base && *base ? base : "/tmp");
		if (!mkdtemp(fuzz_dir)) {
			fuzz_dir[0] = 0;
			return NULL;
		}
		snprintf(fuzz_path, sizeof(fuzz_path), "%s/%s", fuzz_dir,
			 name);
		atexit(remove_fuzz_files);
	}
	int fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		      0600);
	if (fd < 0)
		return NULL;
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return NULL;
		}
		done += (size_t)n;
	}
	close(fd);
	return fuzz_path;
}
