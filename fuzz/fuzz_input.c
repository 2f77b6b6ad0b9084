/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_input.h"
#include "fuzz_io.h"

/* The files of one target: its input, and what goes with it. */
#define FUZZ_FILES 4

static char fuzz_dir[4096];
static char fuzz_paths[FUZZ_FILES][4200];

static void remove_fuzz_files(void)
{
	for (int i = 0; i < FUZZ_FILES; i++)
		if (fuzz_paths[i][0])
			unlink(fuzz_paths[i]);
	rmdir(fuzz_dir);
}

/* The path of NAME in the directory (made on the first call), or NULL. */
static char *fuzz_path(const char *name)
{
	if (!fuzz_dir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/mimg-fuzz-XXXXXX",
			 base && *base ? base : "/tmp");
		if (!mkdtemp(fuzz_dir)) {
			fuzz_dir[0] = 0;
			return NULL;
		}
		atexit(remove_fuzz_files);
	}
	char want[sizeof(fuzz_paths[0])];
	snprintf(want, sizeof(want), "%s/%s", fuzz_dir, name);
	for (int i = 0; i < FUZZ_FILES; i++) {
		if (!fuzz_paths[i][0])
			memcpy(fuzz_paths[i], want, sizeof(want));
		if (strcmp(fuzz_paths[i], want) == 0)
			return fuzz_paths[i];
	}
	return NULL;
}

const char *fuzz_input_write(const uint8_t *data, size_t size, const char *name)
{
	const char *path = fuzz_path(name);
	if (!path)
		return NULL;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	/* write(2) only reads DATA: dropping const is safe. */
	int r = fuzz_io_all(fd, (uint8_t *)(uintptr_t)data, size, true);
	close(fd);
	return r == 0 ? path : NULL;
}
