/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg info: describe an image (and optionally its backing chain).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

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
	       "files\n"
	       "  -h, --help          this help\n");
}

/* Print one image's info; returns the next image of the chain to print
 * (opened by this call) or NULL. */
static int print_chain(const char *path, const char *fmt, unsigned flags,
		       bool chain, enum output_format output)
{
	struct mimg *img = NULL;
	struct mimg_value *info;
	char *json;
	int r, n = 0;
	char *cur = strdup(path), *curfmt = fmt ? strdup(fmt) : NULL;

	if (output == OUTPUT_JSON && chain)
		printf("[\n");
	while (cur) {
		r = mimg_open(&img, cur, curfmt, flags | MIMG_OPEN_NO_BACKING);
		if (r < 0) {
			free(cur);
			free(curfmt);
			return cli_error("%s", mimg_errmsg());
		}
		if ((r = mimg_info(img, &info)) < 0) {
			mimg_close(img);
			free(cur);
			free(curfmt);
			return cli_error("%s", mimg_errmsg());
		}
		free(cur);
		free(curfmt);
		cur = curfmt = NULL;
		if (output == OUTPUT_JSON) {
			if (!(json = mimg_value_to_json(info)))
				return cli_error("out of memory");
			if (chain) {
				/* indent the object by one level */
				printf("%s    ", n ? ",\n" : "");
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
			if (n)
				printf("\n");
			cli_print_info_human(stdout, info);
		}
		n++;
		const struct mimg_value *full =
			mimg_value_get(info, "full-backing-filename");
		const struct mimg_value *bfmt =
			mimg_value_get(info, "backing-filename-format");
		if (chain && full && n <= MIMG_MAX_CHAIN_DEPTH) {
			cur = strdup(full->v.s);
			curfmt = bfmt ? strdup(bfmt->v.s) : NULL;
		}
		mimg_value_free(info);
		mimg_close(img);
	}
	if (output == OUTPUT_JSON && chain)
		printf("\n]\n");
	return EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
	enum { OPT_OUTPUT = 256, OPT_CHAIN, OPT_UNTRUSTED };
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"output", required_argument, NULL, OPT_OUTPUT},
		{"backing-chain", no_argument, NULL, OPT_CHAIN},
		{"force-share", no_argument, NULL, 'U'},
		{"untrusted", no_argument, NULL, OPT_UNTRUSTED},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum output_format output = OUTPUT_HUMAN;
	const char *fmt = NULL;
	bool chain = false;
	unsigned flags = 0;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:hU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'U': break;
		case OPT_OUTPUT:
			if (!cli_parse_output(optarg, &output))
				return EXIT_ERR;
			break;
		case OPT_CHAIN: chain = true; break;
		case OPT_UNTRUSTED: flags |= MIMG_OPEN_UNTRUSTED; break;
		case 'h': info_help(); return EXIT_OK;
		default: return cli_usage_error("info", "invalid option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("info", "Expecting one image file name");
	return print_chain(argv[optind], fmt, flags, chain, output);
}
