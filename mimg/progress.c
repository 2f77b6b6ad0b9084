/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The convert progress bar: drawn only on a terminal, redrawn when the
 * shown value changes; and the walk over an image's runs that draws it.
 */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

void cli_progress_init(struct cli_progress *p, bool requested)
{
	p->enabled = requested && isatty(STDERR_FILENO);
	p->last_permille = -1;
	if (p->enabled)
		cli_progress_cb(p, 0, 1);
}

void cli_progress_cb(void *opaque, uint64_t done, uint64_t total)
{
	struct cli_progress *p = opaque;
	if (!p->enabled)
		return;
	int permille = total ? (int)(done * 1000 / total) : 1000;
	if (permille == p->last_permille)
		return;
	p->last_permille = permille;
	int width = 40, filled = permille * width / 1000;
	fprintf(stderr, "\r    (%3d.%d/100%%) [", permille / 10, permille % 10);
	for (int i = 0; i < width; i++)
		fputc(i < filled ? '#' : ' ', stderr);
	fputc(']', stderr);
	fflush(stderr);
}

void cli_progress_end(struct cli_progress *p)
{
	if (p->enabled)
		fputc('\n', stderr);
}

int cli_progress_walk(uint64_t size, bool show,
		      int (*step)(void *opaque, uint64_t off, uint64_t left,
				  uint64_t *pnum),
		      void *opaque)
{
	struct cli_progress prog;
	uint64_t off = 0;
	int r = 0;
	cli_progress_init(&prog, show);
	while (off < size) {
		uint64_t n;
		if ((r = step(opaque, off, size - off, &n)) != 0)
			break;
		off += n;
		cli_progress_cb(&prog, off, size);
	}
	cli_progress_end(&prog);
	return r;
}
