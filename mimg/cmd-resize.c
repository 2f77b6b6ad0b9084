/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg resize: change an image's virtual size.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A size mimg_parse_size finds out of range (past 2^63 - 1) that
 * qemu-img's parser still takes, being below 2^64: as a signed size it
 * is not positive. */
static bool below_2_64(const char *text)
{
	static const char suffixes[] = "bBkKmMgGtTpPeE";
	static const unsigned shifts[] = {0,  0,  10, 10, 20, 20, 30,
					  30, 40, 40, 50, 50, 60, 60};
	char *end;
	long double v = strtold(
		text,
		&end); /* exact to 2^64 with x86 or 128-bit long doubles */
	const char *sfx = *end ? strchr(suffixes, *end) : NULL;
	if (end == text || (*end && (!sfx || end[1])))
		return false;
	if (sfx)
		v *= (long double)(1ull << shifts[sfx - suffixes]);
	return v < 18446744073709551616.0L; /* 2^64 */
}

static void resize_help(void)
{
	printf("Usage: mimg resize [-f fmt] [--preallocation MODE] [--shrink] "
	       "[-q]\n"
	       "                   [--image-opts] FILE [+|-]SIZE\n"
	       "\n"
	       "Set FILE's virtual size to SIZE, or grow/shrink it by SIZE.  "
	       "Shrinking\ndeletes the data past the new end and needs "
	       "--shrink.\n"
	       "\n"
	       "  -f FMT                the image format (default: probe)\n"
	       "  --image-opts          FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  --preallocation MODE  off, metadata, falloc or full for "
	       "the new space\n"
	       "  --shrink              allow making the image smaller\n"
	       "  -q                    quiet\n" CLI_HELP_OBJECT
	       "  -h, --help            this help\n");
}

static const char *const prealloc_names[] = {"off", "metadata", "falloc",
					     "full"};

int cmd_resize(int argc, char **argv)
{
	enum { OPT_PREALLOC = 256, OPT_SHRINK };
	static const struct option longopts[] = {
		{"preallocation", required_argument, NULL, OPT_PREALLOC},
		{"shrink", no_argument, NULL, OPT_SHRINK},
		{NULL, 0, NULL, 0},
	};
	struct cli_args ca = {.cmd = "resize",
			      .help = resize_help,
			      .longopts = CLI_FORMAT | CLI_IMAGE_OPTS};
	enum mimg_prealloc prealloc = MIMG_PREALLOC_OFF;
	const char *arg;
	bool shrink = false;
	uint64_t delta, size;
	struct mimg *img;
	int c, sign = 0;

	/* The size is always last and "-1G" is a size, not an option: take
	 * it out before option parsing, as qemu-img does. */
	arg = argc > 1 ? argv[argc - 1] : NULL;
	if (arg && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)) {
		resize_help();
		return EXIT_OK;
	}
	if (argc < 3) /* qemu-img's first check: before the options' */
		return cli_usage_error("resize", "Not enough arguments");
	argc--;
	while ((c = cli_getopt(&ca, argc, argv, ":f:qh", longopts)) >= 0) {
		switch (c) {
		case OPT_SHRINK: shrink = true; break;
		case OPT_PREALLOC: {
			bool ok = false;
			for (int i = 0; i < 4; i++)
				if (strcmp(optarg, prealloc_names[i]) == 0) {
					prealloc = (enum mimg_prealloc)i;
					ok = true;
				}
			if (!ok)
				return cli_error("Invalid preallocation mode "
						 "'%s'",
						 optarg);
			break;
		}
		}
	}
	if (c == CLI_ARGS_STOP)
		return ca.status;
	if (argc - optind != 1 || !arg)
		return cli_usage_error("resize", "Expecting image file name "
						 "and size");
	if (*arg == '+' || *arg == '-')
		sign = *arg++ == '+' ? 1 : -1;
	/* qemu-img resize's messages (its option parser's, not create's) */
	int pr = mimg_parse_size(arg, &delta);
	bool not_positive = pr == -ERANGE && below_2_64(arg);
	if (pr == -ERANGE && !not_positive)
		return cli_error("Value '%s' is out of range for parameter "
				 "'size'",
				 arg);
	if (pr < 0 && !not_positive)
		return cli_error("Parameter 'size' expects a non-negative "
				 "number below 2^64\n"
				 "Optional suffix k, M, G, T, P or E means "
				 "kilo-, mega-, giga-, tera-, peta-\n"
				 "and exabytes, respectively.");
	if (cli_open_arg(&img, &ca, argv[optind], MIMG_OPEN_RDWR) < 0)
		return cli_error("%s", cli_errmsg());
	uint64_t cur = mimg_size(img);
	static const char need_shrink[] =
		"Use the --shrink option to perform a shrink operation.";
	const char *err = NULL;
	if (sign < 0)
		size = delta < cur ? cur - delta : 0;
	else
		size = sign > 0 ? cur + delta : delta;
	/* qemu-img's checks, in its order. */
	if (size == 0 || not_positive)
		err = "New image size must be positive";
	else if (prealloc != MIMG_PREALLOC_OFF && size <= cur)
		err = "Preallocation can only be used for growing images";
	else if (size < cur && !shrink)
		err = need_shrink;
	else if (size % 512 && strcmp(mimg_format(img), "qcow2") == 0)
		err = "The new size must be a multiple of 512";
	if (err) {
		mimg_close(img);
		cli_error("%s", err);
		if (err == need_shrink)
			cli_error(
				"warning: Shrinking an image will delete all "
				"data beyond the shrunken image's end. Before "
				"performing such an operation, make sure there "
				"is no important data there.");
		return EXIT_ERR;
	}
	if (size != cur && mimg_truncate(img, size, prealloc) < 0) {
		cli_error("%s", mimg_errmsg());
		mimg_close(img);
		return EXIT_ERR;
	}
	if (mimg_close(img) < 0)
		return cli_error("%s", mimg_errmsg());
	if (!ca.quiet)
		printf("Image resized.\n");
	return EXIT_OK;
}
