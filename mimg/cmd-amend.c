/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg amend: change the format options of an existing image.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void amend_help(void)
{
	printf("Usage: mimg amend [-f fmt] [-p] [-q] [-t cache] "
	       "[--object objectdef] [--image-opts] [--force] -o OPTS FILE\n"
	       "\n"
	       "Change the format options of FILE (qcow2: compat, "
	       "lazy_refcounts, refcount_bits,\nsize, backing_file, "
	       "backing_fmt, data_file, data_file_raw).\n"
	       "\n"
	       "  -o OPTS         options key=value[,key=value...]; -o help "
	       "lists them\n"
	       "  -f FMT          image format (probed when not given)\n"
	       "  -p              show progress\n"
	       "  -q              quiet\n"
	       "  -t CACHE        cache mode (writeback, writethrough, "
	       "unsafe, none, directsync)\n" CLI_HELP_OBJECT
	       "  --image-opts    FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  --force         allow changes that may lose data (as "
	       "qemu-img)\n"
	       "  -h, --help      this help\n");
}

struct amend_args {
	const char *fmt, *file;
	char *opts_text;
	unsigned flags;
	bool progress, quiet, force;
};

/* "-o help": the format is -f's or the image's. */
static int amend_list(const struct amend_args *a)
{
	struct mimg *img;
	if (a->fmt)
		return cli_opts_help(a->fmt, MIMG_OPTS_AMEND);
	if (!a->file)
		return cli_error("Expecting one image file name");
	if (cli_open_header(&img, a->file, NULL, 0) < 0)
		return cli_error("%s", cli_errmsg());
	int status = cli_opts_help(mimg_format(img), MIMG_OPTS_AMEND);
	mimg_close(img);
	return status;
}

static int run_amend(const struct amend_args *a)
{
	struct mimg_opt *opts = NULL;
	struct mimg *img = NULL;
	struct cli_progress prog;
	int n, r;

	if ((n = mimg_opts_parse(a->opts_text, &opts)) < 0)
		return cli_error("%s", mimg_errmsg());
	if (cli_open(&img, a->file, a->fmt, MIMG_OPEN_RDWR | a->flags) < 0) {
		mimg_opts_free(opts, (size_t)n);
		return cli_error("%s", cli_errmsg());
	}
	cli_progress_init(&prog, a->progress && !a->quiet);
	struct mimg_named_secret named[16];
	size_t nnamed = cli_named_secrets(named, 16);
	r = mimg_amend_secrets(img, opts, (size_t)n,
			       a->force ? MIMG_AMEND_FORCE : 0, named, nnamed,
			       cli_progress_cb, &prog);
	cli_progress_end(&prog, r >= 0);
	mimg_opts_free(opts, (size_t)n);
	if (r < 0) {
		cli_error("%s", mimg_errmsg());
		mimg_close(img);
		return EXIT_ERR;
	}
	if (mimg_close(img) < 0)
		return cli_error("%s", mimg_errmsg());
	return EXIT_OK;
}

int cmd_amend(int argc, char **argv)
{
	enum { OPT_FORCE = 0x2000 };
	static const struct option longopts[] = {
		{"force", no_argument, NULL, OPT_FORCE},
		{NULL, 0, NULL, 0},
	};
	struct cli_args ca = {.cmd = "amend",
			      .help = amend_help,
			      .longopts = CLI_IMAGE_OPTS | CLI_CACHE};
	struct amend_args a = {.fmt = NULL};
	int c, status = EXIT_ERR;

	while ((c = cli_getopt(&ca, argc, argv, ":ho:f:t:pq", longopts)) >= 0) {
		switch (c) {
		case 'o':
			if (cli_append_opts(&a.opts_text, optarg) != 0)
				goto out;
			break;
		case OPT_FORCE: a.force = true; break;
		}
	}
	if (c == CLI_ARGS_STOP) {
		status = ca.status;
		goto out;
	}
	a.fmt = ca.fmt;
	a.flags = ca.cache_flags;
	a.progress = ca.progress;
	a.quiet = ca.quiet;
	if (!a.opts_text) {
		cli_usage_error("amend", "Must specify options (-o)");
		goto out;
	}
	a.file = argc - optind == 1 ? argv[optind] : NULL;
	if (a.file && cli_image_arg(&ca, &a.file, &a.fmt, true, NULL) < 0)
		goto out;
	a.flags |= ca.image_flags;
	if (mimg_opts_has_help(a.opts_text)) {
		status = amend_list(&a);
		goto out;
	}
	if (!a.file) {
		cli_error("Expecting one image file name");
		goto out;
	}
	status = run_amend(&a);
out:
	free(a.opts_text);
	cli_args_free(&ca);
	return status;
}
