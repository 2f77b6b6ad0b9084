/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg create: make a new image.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void create_help(void)
{
	printf("Usage: mimg create [-f fmt] [-o opts] [-b backing [-F fmt]] "
	       "[-u] [-q] FILE [SIZE]\n"
	       "\n"
	       "Create FILE of SIZE bytes (suffixes k, M, G, T, P, E).  "
	       "With a backing\nfile, SIZE defaults to the backing file's "
	       "size.\n"
	       "\n"
	       "  -f FMT          format: raw (default), qcow2, vmdk ...\n"
	       "  -o OPTS         format options key=value[,key=value...]; "
	       "-o help lists them\n"
	       "  -b FILE         backing file (relative to FILE's "
	       "directory)\n"
	       "  -F FMT          backing file format (required with -b)\n"
	       "  -u              do not open the backing file (SIZE is "
	       "then required)\n"
	       "  -q              quiet\n" CLI_HELP_OBJECT
	       "  -h, --help      this help\n"
	       "\n"
	       "raw options: preallocation=off|falloc|full\n"
	       "luks options: key-secret=ID (required, see --object), "
	       "cipher-alg=aes-128|aes-192|aes-256,\n"
	       "  cipher-mode=xts|cbc, ivgen-alg=plain64|plain|essiv, "
	       "ivgen-hash-alg=sha256,\n"
	       "  hash-alg=sha256|sha1|sha512, iter-time=MS (default "
	       "2000)\n");
}

/* Append KEY=VALUE to the option array. */
static int push_opt(struct mimg_opt **opts, int *n, const char *key,
		    const char *value)
{
	struct mimg_opt *g = realloc(*opts, (size_t)(*n + 1) * sizeof(**opts));
	if (!g)
		return -1;
	*opts = g;
	g[*n].key = strdup(key);
	g[*n].value = strdup(value);
	if (!g[*n].key || !g[*n].value)
		return -1;
	(*n)++;
	return 0;
}

/* "-o size=..." gives the size too, as in qemu-img: take every such
 * option out of OPTS (*NOPTS of them), the last one's value into
 * *SIZE_COPY (NULL when there is none), which the caller frees. */
static void take_size_opt(struct mimg_opt *opts, int *nopts, char **size_copy)
{
	int kept = 0;

	*size_copy = NULL;
	for (int i = 0; i < *nopts; i++) {
		if (strcmp(opts[i].key, "size") != 0) {
			opts[kept++] = opts[i];
			continue;
		}
		free(*size_copy);
		*size_copy = (char *)opts[i].value;
		free((char *)opts[i].key);
	}
	*nopts = kept;
}

/* The line qemu-img prints for an image it creates: false when the
 * options do not parse (creating reports why).  Without a size given,
 * the created image's own (its backing file's) is listed, as qemu-img
 * lists it. */
static bool print_formatting(const char *file, const char *fmt, bool have_size,
			     uint64_t size, const struct mimg_opt *opts,
			     int nopts)
{
	char *summary = NULL;
	struct mimg *img;

	if (!have_size &&
	    mimg_open(&img, file, fmt, MIMG_OPEN_NO_BACKING) == 0) {
		size = mimg_size(img);
		mimg_close(img);
	}
	if (mimg_create_summary(fmt, size, opts, (size_t)nopts, &summary) < 0)
		return false;
	printf("Formatting '%s', fmt=%s %s\n", file, fmt, summary);
	fflush(stdout);
	free(summary);
	return true;
}

/* Whether the backing file NAME (relative to FILE's directory) of format
 * FMT opens, as creating will open it; *SIZE becomes its size (in whole
 * sectors, as creating takes it) unless HAVE_SIZE.  Why it does not open
 * is left to creating to say. */
static bool backing_opens(const char *file, const char *name, const char *fmt,
			  bool have_size, uint64_t *size)
{
	struct mimg *b;
	char *path;
	if (!fmt || strcmp(file, name) == 0 ||
	    !(path = cli_relative_to(file, name)))
		return false;
	int r = mimg_open(&b, path, fmt, 0);
	free(path);
	if (r < 0)
		return false;
	if (!have_size)
		*size = (mimg_size(b) + 511) / 512 * 512;
	mimg_close(b);
	return true;
}

int cmd_create(int argc, char **argv)
{
	struct cli_args ca = {.cmd = "create", .help = create_help};
	const char *fmt, *backing = NULL, *backing_fmt = NULL;
	struct mimg_opt *opts = NULL;
	int nopts = 0, c, r, status = EXIT_ERR;
	uint64_t size = 0;
	bool have_size, unsafe = false, help = false;
	const char *size_text;
	char *size_copy = NULL;

	while ((c = cli_getopt(&ca, argc, argv, ":f:o:b:F:quh", NULL)) >= 0) {
		switch (c) {
		case 'o': {
			struct mimg_opt *more;
			int n;
			if (mimg_opts_has_help(optarg)) {
				help = true;
				break;
			}
			n = mimg_opts_parse(optarg, &more);
			if (n < 0)
				goto err_msg;
			for (int i = 0; i < n; i++)
				if (push_opt(&opts, &nopts, more[i].key,
					     more[i].value) < 0) {
					mimg_opts_free(more, (size_t)n);
					cli_error("out of memory");
					goto out;
				}
			mimg_opts_free(more, (size_t)n);
			break;
		}
		case 'b': backing = optarg; break;
		case 'F': backing_fmt = optarg; break;
		case 'u': unsafe = true; break;
		}
	}
	if (c == CLI_ARGS_STOP) {
		status = ca.status;
		goto out;
	}
	fmt = ca.fmt ? ca.fmt : "raw";
	if (help) {
		/* With a file name, the host file's options too (qemu-img). */
		status = cli_opts_help(fmt, optind < argc ? MIMG_OPTS_FILE
							  : MIMG_OPTS_CREATE);
		goto out;
	}
	if (optind >= argc) {
		cli_usage_error("create", "Expecting image file name");
		goto out;
	}
	if (argc - optind > 2) {
		cli_usage_error("create", "Unexpected argument: %s",
				argv[optind + 2]);
		goto out;
	}
	if ((backing && push_opt(&opts, &nopts, "backing_file", backing) < 0) ||
	    (backing_fmt &&
	     push_opt(&opts, &nopts, "backing_fmt", backing_fmt) < 0)) {
		cli_error("out of memory");
		goto out;
	}
	have_size = argc - optind == 2;
	size_text = have_size ? argv[optind + 1] : NULL;
	take_size_opt(opts, &nopts, &size_copy);
	if (size_copy && have_size) {
		cli_error("%s: The image size must be specified only once",
			  argv[optind]);
		goto out;
	}
	if (size_copy && mimg_parse_size(size_copy, &size) < 0) {
		cli_error("%s: Parameter 'size' expects a non-negative number "
			  "below 2^64\nOptional suffix k, M, G, T, P or E "
			  "means kilo-, mega-, giga-, tera-, peta-\nand "
			  "exabytes, respectively.",
			  argv[optind]);
		goto out;
	}
	if (size_copy) {
		size_text = size_copy;
		have_size = true;
	}
	if (have_size &&
	    cli_parse_num("image size", size_text, 0, CLI_NUM_MAX, &size) != 0)
		goto out;
	bool empty_backing = false;
	for (int i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "backing_file") == 0) {
			backing = *opts[i].value ? opts[i].value : NULL;
			empty_backing = !backing;
		}
		if (strcmp(opts[i].key, "backing_fmt") == 0)
			backing_fmt = opts[i].value;
	}
	if (empty_backing) {
		cli_error("%s: Expected backing file name, got empty string",
			  argv[optind]);
		goto out;
	}
	if (!have_size && (!backing || unsafe)) {
		cli_error("%s: Image creation needs a size parameter",
			  argv[optind]);
		goto out;
	}
	/* qemu-img prints the line once the options parse, before the
	 * format refuses a value; a backing file it opens first (for its
	 * size, and to check it), and with one that does not open, or
	 * without its format, it prints no line. */
	uint64_t line_size = size;
	bool printed = !ca.quiet &&
		       (backing && !unsafe
				? backing_opens(argv[optind], backing,
						backing_fmt, have_size,
						&line_size)
				: have_size) &&
		       print_formatting(argv[optind], fmt, true, line_size,
					opts, nopts);
	r = cli_create(argv[optind], fmt, size, opts, (size_t)nopts,
		       unsafe ? MIMG_CREATE_UNSAFE_BACKING : 0);
	if (r < 0)
		goto err_msg;
	if (!ca.quiet && !printed &&
	    !print_formatting(argv[optind], fmt, have_size, size, opts, nopts))
		cli_error("%s", cli_errmsg()); /* created: not expected */
	status = EXIT_OK;
	goto out;
err_msg:
	cli_error("%s", cli_errmsg());
out:
	free(size_copy);
	mimg_opts_free(opts, (size_t)nopts);
	return status;
}
