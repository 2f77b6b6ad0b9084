/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg: inspect, create, convert and check virtual disk images.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;
} commands[] = {
	{"bench", cmd_bench,
	 "bench [-c count] [-d depth] [-f fmt] [--flush-interval=N] "
	 "[--no-drain] [-o offset] [--pattern=byte] [-q] [-s buffer_size] "
	 "[-S step_size] [-t cache] [-w] FILE"},
	{"check", cmd_check,
	 "check [-f fmt] [-r leaks|all] [--output human|json] [-q] FILE"},
	{"compare", cmd_compare,
	 "compare [-f fmt] [-F fmt] [-p] [-q] [-s] FILE1 FILE2"},
	{"convert", cmd_convert,
	 "convert [-f fmt] [-O fmt] [-o opts] [-c] [-p] [-q] [-n] [-S size] "
	 "[-m N] [-W] [-t cache] [-l snapshot] [--target-is-zero] SRC DST"},
	{"create", cmd_create,
	 "create [-f fmt] [-o opts] [-b backing [-F fmt]] [-q] FILE [SIZE]"},
	{"info", cmd_info,
	 "info [-f fmt] [--output human|json] [--backing-chain] FILE"},
	{"map", cmd_map,
	 "map [-f fmt] [--output human|json] [-s offset] [-l length] FILE"},
	{"resize", cmd_resize,
	 "resize [-f fmt] [--preallocation mode] [--shrink] [-q] FILE "
	 "[+|-]SIZE"},
};

int cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("mimg: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERR;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fputs("mimg: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'mimg %s%s--help' for more information\n",
		cmd ? cmd : "", cmd ? " " : "");
	return EXIT_ERR;
}

bool cli_parse_output(const char *arg, enum output_format *out)
{
	if (strcmp(arg, "human") == 0)
		*out = OUTPUT_HUMAN;
	else if (strcmp(arg, "json") == 0)
		*out = OUTPUT_JSON;
	else {
		cli_error("--output must be used with human or json as "
			  "argument.");
		return false;
	}
	return true;
}

static void usage(FILE *out)
{
	fprintf(out,
		"mimg %s - inspect, create, convert and check disk images\n"
		"\n"
		"Usage: mimg COMMAND [options] ...\n"
		"       mimg --help | --version\n"
		"\n"
		"Commands:\n",
		mimg_version());
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %s\n", commands[i].synopsis);
	fprintf(out, "\nFormats:");
	for (const char *const *f = mimg_formats(); *f; f++)
		fprintf(out, " %s", *f);
	fprintf(out,
		"\n\nSizes take an optional suffix: k, M, G, T, P, E "
		"(powers of 1024).\n"
		"Run 'mimg COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error(NULL, "Not enough arguments");
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("mimg version %s\n", mimg_version());
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return cli_usage_error(NULL, "Command not found: %s", cmd);
}
