/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * "-o help": a format's options listed the way qemu-img 7.2 lists them.
 */
#include <errno.h>
#include <string.h>

#include "cli.h"

/* "  name=<type>", padded to 24 columns, " - help", as qemu prints. */
static void print_opt(const struct mimg_opt_info *o)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "  %s=<%s>", o->name, o->type);
	if (n < 0)
		return;
	if (!o->help) {
		printf("%s\n", line);
		return;
	}
	printf("%s%*s - %s\n", line, n < 24 ? 24 - n : 0, "", o->help);
}

int cli_opts_help(const char *fmt, unsigned which)
{
	struct mimg_opt_info o = {.size = sizeof(o)};
	int r = mimg_format_opt_info(fmt, which, 0, &o);
	if (r < 0 && r != -ENOENT)
		return cli_error("%s", mimg_errmsg());
	if (which & MIMG_OPTS_AMEND)
		printf("Amend options for '%s':\n", fmt);
	else if (which & MIMG_OPTS_FILE)
		printf("Supported options:\n");
	else
		printf("Supported %s options:\n", fmt);
	for (size_t i = 0; r == 0;
	     r = mimg_format_opt_info(fmt, which, ++i, &o))
		print_opt(&o);
	if (!(which & (MIMG_OPTS_AMEND | MIMG_OPTS_FILE)))
		printf("\nThe protocol level may support further options.\n"
		       "Specify the target filename to include those "
		       "options.\n");
	return EXIT_OK;
}
