/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg dd: copy a range of an image's content into a new image, with
 * dd(1)-style operands, as qemu-img dd does: the output is created with
 * the size of what is copied, from block SKIP up to block COUNT of the
 * input (blocks of BS bytes).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Bytes moved per read and write; the result does not depend on it. */
#define DD_CHUNK (4u << 20)

static void dd_help(void)
{
	printf("Usage: mimg dd [-f fmt] [-O fmt] [bs=BLOCK_SIZE] "
	       "[count=BLOCKS] [skip=BLOCKS]\n"
	       "               if=INPUT of=OUTPUT\n"
	       "\n"
	       "Create OUTPUT holding INPUT's content from block SKIP up to "
	       "block COUNT\n"
	       "(blocks of BLOCK_SIZE bytes, default 512), as qemu-img dd "
	       "does.\n"
	       "\n"
	       "  -f FMT            INPUT's format (default: probe)\n"
	       "  -O FMT            OUTPUT's format (default raw)\n"
	       "  -U                accepted for qemu-img compatibility\n"
	       "  --object secret,id=ID,data=TEXT|file=PATH[,format=raw|"
	       "base64]\n"
	       "                    a secret (LUKS passphrase)\n"
	       "  --image-opts      INPUT is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  -h, --help        this help\n");
}

struct dd_args {
	const char *in, *out, *fmt, *out_fmt;
	uint64_t bs, count, skip;
	bool have_count, have_skip;
	unsigned in_flags; /* --image-opts' cache flags */
};

/* One KEY=VALUE operand into A; EXIT_ERR with the message printed. */
static int dd_operand(struct dd_args *a, const char *arg)
{
	const char *eq = strchr(arg, '=');
	uint64_t v;

	if (!eq)
		return cli_error("unrecognized operand %s", arg);
	size_t klen = (size_t)(eq - arg);
	const char *val = eq + 1;
	if (klen == 2 && strncmp(arg, "if", 2) == 0) {
		a->in = val;
	} else if (klen == 2 && strncmp(arg, "of", 2) == 0) {
		a->out = val;
	} else if (klen == 2 && strncmp(arg, "bs", 2) == 0) {
		if (cli_parse_num("bs", val, 1, INT_MAX, &v) != 0)
			return EXIT_ERR;
		a->bs = v;
	} else if (klen == 5 && strncmp(arg, "count", 5) == 0) {
		if (cli_parse_num("count", val, 0, CLI_NUM_MAX, &v) != 0)
			return EXIT_ERR;
		a->count = v;
		a->have_count = true;
	} else if (klen == 4 && strncmp(arg, "skip", 4) == 0) {
		if (cli_parse_num("skip", val, 0, CLI_NUM_MAX, &v) != 0)
			return EXIT_ERR;
		a->skip = v;
		a->have_skip = true;
	} else {
		return cli_error("unrecognized operand %.*s", (int)klen, arg);
	}
	return EXIT_OK;
}

static bool known_format(const char *name)
{
	for (const char *const *f = mimg_formats(); *f; f++)
		if (strcmp(*f, name) == 0)
			return true;
	return false;
}

/*
 * qemu-img's arithmetic: the copy ends at COUNT blocks (or the end of the
 * input) and starts at SKIP blocks, so with both the output holds
 * COUNT-SKIP blocks.  A start past the end gives an empty output and a
 * message, not a failure.
 */
static void dd_range(const struct dd_args *a, uint64_t in_size,
		     uint64_t *startp, uint64_t *endp)
{
	uint64_t end = in_size, start;
	if (a->have_count && a->count <= INT64_MAX / a->bs &&
	    a->count * a->bs < end)
		end = a->count * a->bs;
	if (a->have_skip &&
	    (a->skip > INT64_MAX / a->bs || a->skip * a->bs > end)) {
		cli_error("%s: cannot skip to specified offset", a->in);
		start = end;
	} else {
		start = a->have_skip ? a->skip * a->bs : 0;
	}
	*startp = start;
	*endp = end;
}

static bool all_zero(const uint8_t *buf, size_t len)
{
	return len == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0);
}

/* Blocks of zeroes are not written to an output that reads as zeroes. */
static int dd_copy(struct mimg *in, struct mimg *out, uint64_t start,
		   uint64_t end)
{
	uint8_t *buf = malloc(DD_CHUNK);
	bool skip_zero = mimg_has_zero_init(out);
	int r = 0;

	if (!buf)
		return cli_error("out of memory");
	for (uint64_t pos = start; pos < end && r == 0;) {
		size_t n = end - pos < DD_CHUNK ? (size_t)(end - pos)
						: DD_CHUNK;
		ssize_t got = mimg_pread(in, buf, n, pos, 0);
		if (got >= 0 && !(skip_zero && all_zero(buf, n)))
			got = mimg_pwrite(out, buf, n, pos - start, 0);
		if (got < 0)
			r = cli_error("%s", mimg_errmsg());
		pos += n;
	}
	free(buf);
	return r;
}

static int run_dd(const struct dd_args *a)
{
	struct mimg *in = NULL, *out = NULL;
	uint64_t start, end;
	int status = EXIT_ERR;

	if (cli_open(&in, a->in, a->fmt, a->in_flags) < 0) {
		cli_error("%s", cli_errmsg());
		return EXIT_ERR;
	}
	if (!known_format(a->out_fmt)) {
		cli_error("Unknown file format");
		goto out;
	}
	dd_range(a, mimg_size(in), &start, &end);
	if (cli_create(a->out, a->out_fmt, end - start, NULL, 0, 0) < 0 ||
	    cli_open(&out, a->out, a->out_fmt,
		     MIMG_OPEN_RDWR | MIMG_OPEN_NO_BACKING) < 0) {
		cli_error("%s", cli_errmsg());
		goto out;
	}
	if (dd_copy(in, out, start, end) != 0)
		goto out;
	int r = mimg_close(out);
	out = NULL;
	if (r < 0) {
		cli_error("%s", mimg_errmsg());
		goto out;
	}
	status = EXIT_OK;
out:
	mimg_close(out);
	mimg_close(in);
	return status;
}

int cmd_dd(int argc, char **argv)
{
	struct cli_args ca = {.cmd = "dd",
			      .help = dd_help,
			      .longopts = CLI_FORCE_SHARE | CLI_IMAGE_OPTS};
	struct dd_args a = {.out_fmt = "raw", .bs = 512};
	int c, status;

	while ((c = cli_getopt(&ca, argc, argv, ":hf:O:U", NULL)) >= 0)
		if (c == 'O')
			a.out_fmt = optarg;
	if (c == CLI_ARGS_STOP)
		return ca.status;
	a.fmt = ca.fmt;
	for (int i = optind; i < argc; i++)
		if (dd_operand(&a, argv[i]) != EXIT_OK)
			return EXIT_ERR;
	if (!a.in || !a.out)
		return cli_error("Must specify both input and output files");
	if (cli_image_arg(&ca, &a.in, &a.fmt, false, NULL) < 0)
		return EXIT_ERR;
	a.in_flags = ca.image_flags;
	status = run_dd(&a);
	cli_args_free(&ca);
	return status;
}
