/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg info: describe an image (and optionally its backing chain).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static void info_help(void)
{
	printf("Usage: mimg info [-f fmt] [--output human|json] "
	       "[--backing-chain] [-U] [--untrusted] FILE\n"
	       "\n"
	       "Show the format, sizes, backing file and format-specific "
	       "details of FILE.\n"
	       "\n"
	       "  -f, --format FMT    the image format (default: probe)\n"
	       "  --output FMT        human (default) or json (qemu-img's "
	       "keys)\n"
	       "  --backing-chain     describe every image of the backing "
	       "chain\n"
	       "  -U, --force-share   accepted for qemu-img compatibility\n"
	       "  --untrusted         refuse images that refer to other "
	       "files\n" CLI_HELP_OBJECT
	       "  --image-opts      FILE is driver=FMT,file.filename=PATH,key-secret=ID\n"
	       "  --ova-disk N|NAME   the disk of an OVA to describe: index "
	       "from 0, file\n"
	       "                      name or disk id (default 0)\n"
	       "  -h, --help          this help\n");
}

/* The images of a chain, described before anything is printed (as
 * qemu-img does: a failure part-way prints nothing but the error). */
struct chain {
	struct mimg_value *info[MIMG_MAX_CHAIN_DEPTH + 1];
	dev_t dev[MIMG_MAX_CHAIN_DEPTH + 1];
	ino_t ino[MIMG_MAX_CHAIN_DEPTH + 1];
	int n;
};

/* --ova-disk: which disk of an OVA the top image is. */
static const char *ova_disk;

static void chain_free(struct chain *c)
{
	for (int i = 0; i < c->n; i++)
		mimg_value_free(c->info[i]);
}

/* Name the image PATH of FORMAT in INFO as qemu-img does when an option
 * string gave it options its file name cannot say (a "json:" name). */
static void rename_image(struct mimg_value *info, const char *path,
			 const char *format)
{
	/* mimg_value trees are plain data their owner may change. */
	struct mimg_value *f = (struct mimg_value *)mimg_value_get(info,
								   "filename");
	char *name = cli_image_json_name(path, format);
	if (!name || !f || f->type != MIMG_VALUE_STRING) {
		free(name);
		return;
	}
	free(f->v.s);
	f->v.s = name;
}

/* Describe PATH, and with CHAIN every backing file below it. */
static int collect_chain(struct chain *c, const char *path, const char *fmt,
			 unsigned flags, bool chain)
{
	char *cur = strdup(path), *curfmt = fmt ? strdup(fmt) : NULL;
	int status = EXIT_OK;

	if (!cur || (fmt && !curfmt)) {
		status = cli_error("out of memory");
		goto out;
	}
	while (cur) {
		struct mimg *img = NULL;
		struct stat st = {0};
		if (stat(cur, &st) == 0) {
			for (int i = 0; i < c->n; i++)
				if (c->dev[i] == st.st_dev &&
				    c->ino[i] == st.st_ino) {
					status =
						cli_error("Backing file '%s' "
							  "creates an infinite "
							  "loop.",
							  cur);
					goto out;
				}
		}
		if (c->n > MIMG_MAX_CHAIN_DEPTH) {
			status = cli_error("%s: backing chain is deeper than "
					   "%d images",
					   path, MIMG_MAX_CHAIN_DEPTH);
			goto out;
		}
		int r = ova_disk && c->n == 0
				? mimg_open_ova_disk(
					  &img, cur, curfmt,
					  flags | MIMG_OPEN_NO_BACKING,
					  ova_disk)
				: cli_open_header(&img, cur, curfmt,
						  flags | MIMG_OPEN_NO_BACKING);
		if (r < 0 || mimg_info(img, &c->info[c->n]) < 0) {
			status = cli_error("%s", cli_errmsg());
			mimg_close(img);
			goto out;
		}
		if (c->n == 0)
			rename_image(c->info[0], cur, mimg_format(img));
		mimg_close(img);
		c->dev[c->n] = st.st_dev;
		c->ino[c->n] = st.st_ino;
		const struct mimg_value *info = c->info[c->n++];
		const struct mimg_value *full =
			mimg_value_get(info, "full-backing-filename");
		const struct mimg_value *bfmt =
			mimg_value_get(info, "backing-filename-format");
		free(cur);
		free(curfmt);
		cur = curfmt = NULL;
		if (chain && full) {
			cur = strdup(full->v.s);
			curfmt = bfmt ? strdup(bfmt->v.s) : NULL;
			if (!cur || (bfmt && !curfmt)) {
				status = cli_error("out of memory");
				goto out;
			}
		}
	}
out:
	free(cur);
	free(curfmt);
	return status;
}

static int print_chain(const char *path, const char *fmt, unsigned flags,
		       bool chain, enum output_format output)
{
	struct chain c = {.n = 0};
	int status = collect_chain(&c, path, fmt, flags, chain);

	if (status != EXIT_OK) {
		chain_free(&c);
		return status;
	}
	if (output == OUTPUT_JSON && chain)
		printf("[\n");
	for (int i = 0; i < c.n; i++) {
		if (output == OUTPUT_JSON) {
			char *json = mimg_value_to_json(c.info[i]);
			if (!json) {
				chain_free(&c);
				return cli_error("out of memory");
			}
			if (chain) {
				/* indent the object by one level */
				printf("%s    ", i ? ",\n" : "");
				for (char *p = json; *p; p++) {
					putchar(*p);
					if (*p == '\n')
						fputs("    ", stdout);
				}
			} else {
				printf("%s\n", json);
			}
			free(json);
		} else {
			if (i)
				printf("\n");
			cli_print_info_human(stdout, c.info[i]);
		}
	}
	if (output == OUTPUT_JSON && chain)
		printf("\n]\n");
	chain_free(&c);
	return EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
	enum { OPT_CHAIN = 256, OPT_OVA_DISK };
	static const struct option longopts[] = {
		{"backing-chain", no_argument, NULL, OPT_CHAIN},
		{"ova-disk", required_argument, NULL, OPT_OVA_DISK},
		{NULL, 0, NULL, 0},
	};
	/* An image convert would stream is described without a temporary
	 * file, its archive still read and checked whole. */
	struct cli_args ca = {.cmd = "info",
			      .help = info_help,
			      .longopts = CLI_FORMAT | CLI_OUTPUT |
					  CLI_FORCE_SHARE | CLI_UNTRUSTED |
					  CLI_IMAGE_OPTS,
			      .open_flags = MIMG_OPEN_INSPECT};
	bool chain = false;
	int c;

	while ((c = cli_getopt(&ca, argc, argv, ":f:hU", longopts)) >= 0) {
		switch (c) {
		case OPT_CHAIN: chain = true; break;
		case OPT_OVA_DISK: ova_disk = optarg; break;
		}
	}
	if (!cli_one_file(&ca, c, argc, argv))
		return ca.status;
	const char *file = argv[optind], *fmt = ca.fmt;
	if (cli_image_arg(&ca, &file, &fmt, false, NULL) < 0)
		return EXIT_ERR;
	int status = print_chain(file, fmt, ca.open_flags | ca.image_flags,
				 chain, ca.output);
	cli_args_free(&ca);
	return status;
}
