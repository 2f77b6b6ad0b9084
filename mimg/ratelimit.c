/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * -r RATE (convert, commit): its parsing, with qemu-img's message, and
 * the pacing of commit's copy, which runs in the command (convert's is
 * mimg_convert_opts.rate_limit, in the library).
 */
#include <errno.h>
#include <time.h>

#include "cli.h"

int cli_parse_rate(const char *arg, uint64_t *rate)
{
	return cli_parse_num("rate limit", arg, 0, CLI_NUM_MAX, rate);
}

static double now_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void cli_rate_init(struct cli_rate *r, uint64_t rate)
{
	*r = (struct cli_rate){.rate = rate, .start = now_seconds()};
}

void cli_rate_wait(struct cli_rate *r, uint64_t bytes)
{
	if (!r->rate)
		return;
	/* This transfer may start once the bytes before it had their
	 * time at the rate. */
	double wait = r->start + (double)r->bytes / (double)r->rate -
		      now_seconds();
	r->bytes += bytes;
	if (wait <= 0)
		return;
	if (wait > 1e9)
		wait = 1e9; /* decades: the same as forever, and a time_t */
	struct timespec d = {.tv_sec = (time_t)wait,
			     .tv_nsec = (long)((wait - (double)(time_t)wait) *
					       1e9)};
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
}
