/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Corpus replay driver: links with one fuzz target and feeds it every file
 * found (recursively) under the directories or files named on the command
 * line, so that the corpus runs as a regression test under `meson test`
 * without libFuzzer.  Inputs run in sorted order, so a failure is
 * reproducible; the name of each input is printed before it runs when
 * MIMG_REPLAY_VERBOSE is set, and always on stderr when it is too large.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* libFuzzer's default -max_len is far below this; anything larger in a
 * corpus is a mistake, not an input. */
#define REPLAY_MAX_INPUT (16u << 20)

static unsigned long inputs_run;
static int verbose;

static int read_whole_file(const char *path, uint8_t **bufp, size_t *lenp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < 0 ||
	    (uint64_t)st.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr,
			"replay: %s: cannot stat or larger than %u "
			"bytes\n",
			path, REPLAY_MAX_INPUT);
		close(fd);
		return -1;
	}
	size_t len = (size_t)st.st_size;
	/* One spare byte so that empty inputs still get a valid pointer. */
	uint8_t *buf = malloc(len + 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	if (fuzz_io_all(fd, buf, len, false) != 0) {
		fprintf(stderr, "replay: %s: short read\n", path);
		free(buf);
		close(fd);
		return -1;
	}
	close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;
}

static int run_file(const char *path)
{
	uint8_t *buf;
	size_t len;
	if (read_whole_file(path, &buf, &len) != 0)
		return -1;
	if (verbose)
		fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	inputs_run++;
	return 0;
}

static int skip_entry(const struct dirent *d)
{
	return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

static int run_path(const char *path, int depth)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) ? run_file(path) : 0;
	if (depth > 32) {
		fprintf(stderr, "replay: %s: directories nested too deep\n",
			path);
		return -1;
	}
	struct dirent **names;
	int n = scandir(path, &names, skip_entry, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int ret = 0;
	for (int i = 0; i < n; i++) {
		size_t need = strlen(path) + strlen(names[i]->d_name) + 2;
		char *child = malloc(need);
		if (!child) {
			ret = -1;
		} else {
			snprintf(child, need, "%s/%s", path, names[i]->d_name);
			if (run_path(child, depth + 1) != 0)
				ret = -1;
			free(child);
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
		return 2;
	}
	verbose = getenv("MIMG_REPLAY_VERBOSE") != NULL;
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	int ret = 0;
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], 0) != 0)
			ret = 1;
	printf("replay: %lu inputs ran\n", inputs_run);
	if (inputs_run == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	return ret;
}
