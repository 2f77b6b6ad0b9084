/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz blockif's legacy option string (bhyve's "-s N,virtio-blk,PATH,..."
 * tail): the input is everything after the path, which stays a 64 KiB raw
 * image in a temporary file, so no input can name another file.  The
 * options (nocache, direct, sync, ro, nodelete, sectorsize=L/P,
 * bootindex=N, format=, untrusted, unknown ones) must open the image or
 * be refused, never crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../vmm-blk/include/vmm-blk/block_if.h"

#define MAX_OPTS 4096

static char path[] = "/tmp/fuzz-blockif-opts-XXXXXX";

static void remove_image(void)
{
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char opts[sizeof(path) + 1 + MAX_OPTS + 1];
	static int ready;
	struct blockif_ctxt *bc;
	size_t n = size < MAX_OPTS ? size : MAX_OPTS;
	int len;

	if (!ready) {
		int fd = mkstemp(path);

		if (fd < 0 || ftruncate(fd, 65536) < 0)
			abort();
		close(fd);
		atexit(remove_image);
		ready = 1;
	}
	len = snprintf(opts, sizeof(opts), "%s,", path);
	memcpy(opts + len, data, n);
	opts[len + (int)n] = '\0';
	bc = blockif_open_optstr(opts, "fuzz");
	if (bc) {
		uint16_t c;
		uint8_t h, s;
		int psize, poff;

		blockif_chs(bc, &c, &h, &s);
		blockif_psectsz(bc, &psize, &poff);
		blockif_close(bc);
	}
	return 0;
}
