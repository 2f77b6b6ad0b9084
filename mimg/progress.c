/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Progress as qemu-img prints it with -p: "    (NN.NN/100%)" and a
 * carriage return on standard output, at 0, at 100 and whenever the
 * value moved by more than one point, then a newline at the end; on a
 * terminal or not, so that the programs that run qemu-img and read its
 * progress from a pipe read mimg's.  And the walk over an image's runs
 * that reports it.
 */
#include <stdio.h>

#include "cli.h"

/* The same value again is printed only by the end's 100 (REPEAT): the
 * callers report 0 and the end of their work more than once. */
static void print_progress(struct cli_progress *p, float current, bool repeat)
{
	if (current > 100)
		current = 100;
	if (!repeat && p->printed && current == p->last)
		return;
	if (current > p->last + p->step || current < p->last - p->step ||
	    current == 0 || current == 100) {
		p->printed = true;
		p->last = current;
		printf("    (%3.2f/100%%)\r", (double)current);
		fflush(stdout);
	}
}

void cli_progress_init(struct cli_progress *p, bool requested)
{
	p->enabled = requested;
	p->last = 0;
	p->step = 1;
	p->printed = false;
	if (p->enabled)
		print_progress(p, 0, false);
}

void cli_progress_cb(void *opaque, uint64_t done, uint64_t total)
{
	struct cli_progress *p = opaque;
	if (p->enabled)
		print_progress(p,
			       total ? (float)(100.0 * (double)done /
					       (double)total)
				     : 100,
			       false);
}

void cli_progress_end(struct cli_progress *p, bool done)
{
	if (!p->enabled)
		return;
	if (done)
		print_progress(p, 100, true);
	putchar('\n');
	fflush(stdout);
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
	cli_progress_end(&prog, false); /* the walk's end printed 100 */
	return r;
}
