/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg checksum: a digest of an image's guest-visible content, the same
 * for every format and conversion of it (mimg_checksum), printed as
 * sha256sum prints ("HEX  FILE") or as JSON.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void checksum_help(void)
{
	printf("Usage: mimg checksum [-f fmt] [--output human|json] [-p] "
	       "[-a algorithm] [-T threads] FILE\n"
	       "\n"
	       "Print a digest of the content FILE shows its guest (through "
	       "its backing\nchain), equal for an image and every conversion "
	       "of it.  Ranges that\nread as zeroes are not read.  The "
	       "construction is blkhash's (see mimg(1)).\n"
	       "\n"
	       "  -f FMT              the image format (default: probe)\n"
	       "  --output FMT        human (\"HEX  FILE\", default) or json\n"
	       "  -a, --algorithm ALG a libcrypto digest (default sha256)\n"
	       "  -T, --threads N     hashing threads (default 4, at most 16)\n"
	       "  -p                  show progress\n"
	       "  --image-opts        FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n" CLI_HELP_OBJECT
	       "  -h, --help          this help\n");
}

static void put_json_string(const char *p)
{
	putchar('"');
	for (; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void print_json(const char *alg, const char *hex, const char *path)
{
	printf("{\n    \"algorithm\": ");
	put_json_string(alg);
	printf(",\n    \"checksum\": \"%s\",\n    \"filename\": ", hex);
	put_json_string(path);
	printf("\n}\n");
}

int cmd_checksum(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"algorithm", required_argument, NULL, 'a'},
		{"threads", required_argument, NULL, 'T'},
		{NULL, 0, NULL, 0},
	};
	struct cli_args ca = {.cmd = "checksum",
			      .help = checksum_help,
			      .longopts = CLI_FORMAT | CLI_OUTPUT |
					  CLI_FORCE_SHARE | CLI_IMAGE_OPTS};
	struct mimg_checksum_opts o = {.size = sizeof(o)};
	struct cli_progress prog;
	unsigned char md[MIMG_CHECKSUM_MAX];
	char hex[2 * MIMG_CHECKSUM_MAX + 1];
	unsigned mdlen = 0;
	struct mimg *img;
	int c, r;

	while ((c = cli_getopt(&ca, argc, argv, ":f:a:T:pUh", longopts)) >= 0) {
		switch (c) {
		case 'a': o.algorithm = optarg; break;
		case 'T': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*end || n == 0 || n > 16)
				return cli_error("Invalid thread count '%s' "
						 "(1 to 16)",
						 optarg);
			o.threads = (unsigned)n;
			break;
		}
		}
	}
	if (!cli_one_file(&ca, c, argc, argv))
		return ca.status;
	if (cli_open_arg(&img, &ca, argv[optind], 0) < 0)
		return cli_error("%s", cli_errmsg());
	cli_progress_init(&prog, ca.progress);
	o.progress = cli_progress_cb;
	o.opaque = &prog;
	r = mimg_checksum(img, &o, md, &mdlen);
	cli_progress_end(&prog, r >= 0);
	if (r < 0) {
		cli_error("%s", mimg_errmsg());
		mimg_close(img);
		return EXIT_ERR;
	}
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	/* The file name, also when --image-opts named it. */
	const char *name = mimg_filename(img);
	if (ca.output == OUTPUT_JSON)
		print_json(o.algorithm ? o.algorithm : "sha256", hex, name);
	else
		printf("%s  %s\n", hex, name);
	mimg_close(img);
	return EXIT_OK;
}
