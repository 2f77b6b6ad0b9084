/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg: inspect, create, convert and check virtual disk images.
 */
#include <getopt.h>
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
	{"amend", cmd_amend,
	 "amend [-f fmt] [-p] [-q] [-t cache] [--object objectdef] "
	 "[--image-opts] [--force] -o options FILE"},
	{"bench", cmd_bench,
	 "bench [-c count] [-d depth] [-f fmt] [--flush-interval=N] "
	 "[--no-drain] [-o offset] [--pattern=byte] [-q] [-s buffer_size] "
	 "[-S step_size] [-t cache] [-w] [--image-opts] FILE"},
	{"bitmap", cmd_bitmap,
	 "bitmap (--merge SOURCE | --add | --remove | --clear | --enable | "
	 "--disable)... [-b SOURCE_FILE [-F SOURCE_FMT]] [-g GRANULARITY] "
	 "[--object objectdef] [--image-opts | -f fmt] FILE BITMAP"},
	{"check", cmd_check,
	 "check [-f fmt] [-r leaks|all] [--output human|json] [-q] "
	 "[--image-opts] FILE"},
	{"checksum", cmd_checksum,
	 "checksum [-f fmt] [--output human|json] [-p] [-a algorithm] "
	 "[--image-opts] FILE"},
	{"commit", cmd_commit,
	 "commit [-f fmt] [-t cache] [-b base] [-r rate] [-d] [-p] [-q] "
	 "[--image-opts] FILE"},
	{"compare", cmd_compare,
	 "compare [-f fmt] [-F fmt] [-p] [-q] [-s] [--image-opts] "
	 "FILE1 FILE2"},
	{"convert", cmd_convert,
	 "convert [-f fmt] [-O fmt] [-o opts] [-c] [-p] [-q] [-n] [-S size] "
	 "[-m N] [-W] [-t cache] [-T cache] [-l snapshot] [-B backing "
	 "[-F fmt]] [-C] [--salvage] [--bitmaps [--skip-broken-bitmaps]] "
	 "[--target-is-zero] [--image-opts] SRC [SRC...] DST"},
	{"dd", cmd_dd,
	 "dd [-f fmt] [-O fmt] [bs=N] [count=N] [skip=N] [--image-opts] "
	 "if=INPUT of=OUTPUT"},
	{"create", cmd_create,
	 "create [-f fmt] [-o opts] [-b backing [-F fmt]] [-q] FILE [SIZE]"},
	{"info", cmd_info,
	 "info [-f fmt] [--output human|json] [--backing-chain] "
	 "[--image-opts] FILE"},
	{"map", cmd_map,
	 "map [-f fmt] [--output human|json] [-s offset] [-l length] "
	 "[--image-opts] FILE"},
	{"measure", cmd_measure,
	 "measure [--output human|json] [-O fmt] [-o opts] "
	 "[--size N | [--image-opts | -f fmt] [-l snapshot] FILE]"},
	{"rebase", cmd_rebase,
	 "rebase [-f fmt] [-t cache] [-T src_cache] [-p] [-q] [-u] "
	 "-b backing_file [-F backing_fmt] [--image-opts] FILE"},
	{"resize", cmd_resize,
	 "resize [-f fmt] [--preallocation mode] [--shrink] [-q] "
	 "[--image-opts] FILE [+|-]SIZE"},
	{"snapshot", cmd_snapshot,
	 "snapshot [-f fmt] [-U] [-q] [-l | -a snapshot | -c snapshot | "
	 "-d snapshot] [--image-opts] FILE"},
};

/* "mimg", or "qemu-img" when run through a link of that name: tools that
 * call qemu-img parse its message prefixes and version line. */
const char *cli_prog = "mimg";

int cli_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERR;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cli_qemu_personality())
		cmd = NULL; /* qemu-img always points at its main help */
	fprintf(stderr, "\nTry '%s %s%s--help' for more information\n",
		cli_prog, cmd ? cmd : "", cmd ? " " : "");
	return EXIT_ERR;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
	/* qemu-img's words, naming the argument getopt stopped in */
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	if (c == ':')
		return cli_usage_error(cmd,
				       "missing argument for option "
				       "'%s'",
				       arg);
	return cli_usage_error(cmd, "unrecognized option '%s'", arg);
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
		"Usage: %s COMMAND [options] ...\n"
		"       %s --help | --version\n"
		"\n"
		"Commands:\n",
		mimg_version(), cli_prog, cli_prog);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %s\n", commands[i].synopsis);
	fprintf(out, "\nFormats:");
	for (const char *const *f = mimg_formats(); *f; f++)
		fprintf(out, " %s", *f);
	fprintf(out,
		"\n\nSizes take an optional suffix: k, M, G, T, P, E "
		"(powers of 1024).\n"
		"Run '%s COMMAND --help' for a command's options.\n"
		"Image names may carry a \"file:\" prefix; \"json:\" names "
		"are refused.\n",
		cli_prog);
}

bool cli_cache_mode(const char *mode, unsigned *flags)
{
	if (strcmp(mode, "unsafe") == 0)
		*flags = MIMG_OPEN_NO_FLUSH;
	else if (strcmp(mode, "writeback") == 0)
		*flags = 0;
	else if (strcmp(mode, "none") == 0 || strcmp(mode, "off") == 0)
		*flags = MIMG_OPEN_DIRECT;
	else if (strcmp(mode, "writethrough") == 0)
		*flags = MIMG_OPEN_SYNC;
	else if (strcmp(mode, "directsync") == 0)
		*flags = MIMG_OPEN_DIRECT | MIMG_OPEN_SYNC;
	else
		return false;
	return true;
}

int cli_cache_flags(const char *mode, unsigned *flags, bool source)
{
	if (!cli_cache_mode(mode, flags))
		return cli_error("Invalid %scache option: %s",
				 source ? "source " : "", mode);
	return 0;
}

char *cli_relative_to(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	size_t dlen = slash ? (size_t)(slash - image) + 1 : 0;
	if (name[0] == '/')
		dlen = 0;
	char *p = malloc(dlen + strlen(name) + 1);
	if (p) {
		memcpy(p, image, dlen);
		strcpy(p + dlen, name);
	}
	return p;
}

bool cli_qemu_personality(void)
{
	return strcmp(cli_prog, "qemu-img") == 0;
}

/* Image names as qemu-img takes them: "file:NAME" is the plain file NAME
 * (OpenStack passes such names), and "json:{...}" would describe arbitrary
 * block-layer nodes, which are never interpreted.  Every argument is
 * looked at, option values included ("-b file:base.qcow2"): no size,
 * format or option value starts with either prefix. */
static bool normalize_image_names(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "file:", 5) == 0 && argv[i][5]) {
			argv[i] += 5;
		} else if (strncmp(argv[i], "json:", 5) == 0) {
			cli_error("Could not open '%s': json: pseudo-protocol "
				  "image names are not supported; give the "
				  "image's file name",
				  argv[i]);
			return false;
		}
	}
	return true;
}

static void set_personality(const char *argv0)
{
	const char *base = strrchr(argv0, '/');
	base = base ? base + 1 : argv0;
	if (strcmp(base, "qemu-img") == 0)
		cli_prog = "qemu-img";
}

static void print_version(void)
{
	if (cli_qemu_personality())
		printf("qemu-img version %s (mimg %s)\n", CLI_QEMU_IMG_VERSION,
		       mimg_version());
	else
		printf("mimg version %s\n", mimg_version());
	printf("Copyright (c) 2026 The mimg authors; BSD-2-Clause\n");
}

int main(int argc, char **argv)
{
	set_personality(argv[0]);
	if (argc < 2)
		return cli_usage_error(NULL, "Not enough arguments");
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		print_version();
		return EXIT_OK;
	}
	if (!normalize_image_names(argc, argv))
		return EXIT_ERR;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return cli_usage_error(NULL, "Command not found: %s", cmd);
}
