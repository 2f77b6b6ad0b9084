/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Option parsing every command shares: the common options (-f, -p, -q, -U,
 * -t, -h/--help, --object, --image-opts, --output, --untrusted) and the usage
 * errors, handled once so that each command's loop holds only its own.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The shared long options, with the CLI_* bit that turns each on (0:
 * every command takes it). */
static const struct {
	unsigned bit;
	struct option opt;
} common_longopts[] = {
	{0, {"help", no_argument, NULL, 'h'}},
	{0, {"object", required_argument, NULL, OPT_OBJECT}},
	{CLI_FORMAT, {"format", required_argument, NULL, 'f'}},
	{CLI_OUTPUT, {"output", required_argument, NULL, OPT_OUTPUT}},
	{CLI_FORCE_SHARE, {"force-share", no_argument, NULL, 'U'}},
	{CLI_IMAGE_OPTS, {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS}},
	{CLI_UNTRUSTED, {"untrusted", no_argument, NULL, OPT_UNTRUSTED}},
};

#define N_COMMON (sizeof(common_longopts) / sizeof(common_longopts[0]))

/* The command's long options followed by the shared ones it takes. */
static void build_table(struct cli_args *a, const struct option *own)
{
	size_t n = 0, max = sizeof(a->table) / sizeof(a->table[0]) - 1;
	for (; own && own[n].name; n++) {
		if (n >= max - N_COMMON)
			abort(); /* a command outgrew the table */
		a->table[n] = own[n];
	}
	for (size_t i = 0; i < N_COMMON; i++)
		if ((a->longopts & common_longopts[i].bit) ==
		    common_longopts[i].bit)
			a->table[n++] = common_longopts[i].opt;
	a->table[n] = (struct option){NULL, 0, NULL, 0};
}

/* The exit status of a command that fails before opening an image. */
static int fail_status(const struct cli_args *a)
{
	return a->fail_status ? a->fail_status : EXIT_ERR;
}

/* Take C when it is shared: 0 when taken, 1 when it is the command's,
 * -1 when the command must stop with a->status. */
static int take_common(struct cli_args *a, int c, char **argv)
{
	switch (c) {
	case 'f': a->fmt = optarg; return 0;
	case 'q': a->quiet = true; return 0;
	case 'p': a->progress = true; return 0;
	/* Nothing is locked: sharing is the default.  Kept for commands
	 * that refuse it where qemu-img does. */
	case 'U': a->force_share = true; return 0;
	case OPT_IMAGE_OPTS: a->image_opts = true; return 0;
	case OPT_UNTRUSTED: a->open_flags |= MIMG_OPEN_UNTRUSTED; return 0;
	case 't':
		if (!(a->longopts & CLI_CACHE))
			return 1;
		if (cli_cache_flags(optarg, &a->cache_flags, false) == 0)
			return 0;
		a->status = EXIT_ERR;
		return -1;
	case OPT_OUTPUT:
		if (cli_parse_output(optarg, &a->output))
			return 0;
		a->status = EXIT_ERR;
		return -1;
	case OPT_OBJECT:
		if (cli_object_add(optarg) == 0)
			return 0;
		a->status = fail_status(a);
		return -1;
	case 'h':
		a->help();
		a->status = EXIT_OK;
		return -1;
	case ':':
	case '?': a->status = cli_bad_option(a->cmd, c, argv); return -1;
	default: return 1;
	}
}

int cli_getopt(struct cli_args *a, int argc, char **argv, const char *shortopts,
	       const struct option *longopts)
{
	if (!a->table[0].name) {
		build_table(a, longopts);
		optind = 1;
	}
	for (;;) {
		int c = getopt_long(argc, argv, shortopts, a->table, NULL);
		if (c == -1)
			return -1;
		int r = take_common(a, c, argv);
		if (r > 0)
			return c;
		if (r < 0)
			return CLI_ARGS_STOP;
	}
}

const char *cli_one_file(struct cli_args *a, int c, int argc, char **argv)
{
	if (c == CLI_ARGS_STOP)
		return NULL;
	if (argc - optind != 1) {
		a->status = cli_usage_error(a->cmd,
					    "Expecting one image file name");
		return NULL;
	}
	return argv[optind];
}

void cli_args_free(struct cli_args *a)
{
	free(a->image_path);
	free(a->image_fmt);
	free(a->image_secret);
	a->image_path = a->image_fmt = a->image_secret = NULL;
}

int cli_append_opts(char **acc, const char *text)
{
	size_t n = (*acc ? strlen(*acc) + 1 : 0) + strlen(text) + 1;
	char *t = malloc(n);
	if (!t)
		return cli_error("out of memory");
	snprintf(t, n, "%s%s%s", *acc ? *acc : "", *acc ? "," : "", text);
	free(*acc);
	*acc = t;
	return 0;
}

int cli_parse_onoff(const char *v, bool *out)
{
	static const char *const yes[] = {"on", "yes", "true", "y"};
	static const char *const no[] = {"off", "no", "false", "n"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
			*out = strcmp(v, yes[i]) == 0;
			return 0;
		}
	}
	return -1;
}

int cli_parse_num(const char *what, const char *text, uint64_t min,
		  uint64_t max, uint64_t *out)
{
	uint64_t v;
	int r = mimg_parse_size(text, &v);
	if (r < 0 && r != -ERANGE) {
		/* two lines, as qemu-img prints them */
		cli_error("Invalid %s specified. You may use k, M, G, T, P or "
			  "E suffixes for",
			  what);
		return cli_error("kilobytes, megabytes, gigabytes, terabytes, "
				 "petabytes and exabytes.");
	}
	if (r < 0 || v < min || v > max)
		return cli_error(
			"Invalid %s specified. Must be between %" PRIu64
			" and %" PRIu64 ".",
			what, min, max);
	*out = v;
	return 0;
}
