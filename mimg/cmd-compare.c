/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg compare: do two images read the same?  Exit 0 identical, 1
 * different, 2 error, as qemu-img compare.  Ranges both images report as
 * zeroes are not read.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMP_CHUNK (1u << 20)
#define SECTOR 512
enum { CMP_SAME = 0, CMP_DIFFERENT = 1, CMP_ERROR = 2 };

struct cmp {
	struct mimg *a, *b;
	uint8_t *ba, *bb;
	bool strict, quiet;
	struct cli_progress prog;
	uint64_t progress_total; /* the larger size, as qemu-img counts */
};

static int cmp_error(void)
{
	cli_error("%s", cli_errmsg());
	return CMP_ERROR;
}

/* First differing sector-aligned offset within the buffers, or -1. */
static int64_t first_diff(const uint8_t *x, const uint8_t *y, size_t n,
			  uint64_t base)
{
	for (size_t i = 0; i < n; i += SECTOR) {
		size_t m = n - i < SECTOR ? n - i : SECTOR;
		if (memcmp(x + i, y + i, m) != 0)
			return (int64_t)(base + i);
	}
	return -1;
}

/* What strict mode compares of a run of STATUS (N bytes at OFF of an
 * image of SIZE bytes): qemu-img compares its whole status word, which
 * also tells whether the run reaches the end of the image. */
static unsigned strict_status(unsigned status, uint64_t off, uint64_t n,
			      uint64_t size)
{
	enum { END_OF_IMAGE = 1u << 31 };
	return (status & (MIMG_BS_DATA | MIMG_BS_ZERO | MIMG_BS_ALLOCATED |
			  MIMG_BS_OFFSET_VALID)) |
	       (off + n == size ? END_OF_IMAGE : 0);
}

/* Compare [0, len) of both images. */
static int compare_common(struct cmp *c, uint64_t len)
{
	uint64_t off = 0;
	while (off < len) {
		uint64_t na, nb, n, ha, hb; /* host offsets: OFFSET_VALID */
		unsigned sa, sb;
		if (mimg_block_status_chain(c->a, off, len - off, &na, &sa,
					    NULL, &ha, 0) < 0 ||
		    mimg_block_status_chain(c->b, off, len - off, &nb, &sb,
					    NULL, &hb, 0) < 0)
			return cmp_error();
		n = na < nb ? na : nb;
		if (c->strict && strict_status(sa, off, na, len) !=
					 strict_status(sb, off, nb, len)) {
			if (!c->quiet)
				printf("Strict mode: Offset %" PRIu64
				       " block status mismatch!\n",
				       off);
			return CMP_DIFFERENT;
		}
		if ((sa & MIMG_BS_ZERO) && (sb & MIMG_BS_ZERO)) {
			off += n;
			cli_progress_cb(&c->prog, off, c->progress_total);
			continue;
		}
		if (n > CMP_CHUNK)
			n = CMP_CHUNK;
		if (mimg_pread(c->a, c->ba, n, off, 0) < 0 ||
		    mimg_pread(c->b, c->bb, n, off, 0) < 0)
			return cmp_error();
		int64_t d = first_diff(c->ba, c->bb, n, off);
		if (d >= 0) {
			if (!c->quiet)
				printf("Content mismatch at offset %" PRId64
				       "!\n",
				       d);
			return CMP_DIFFERENT;
		}
		off += n;
		cli_progress_cb(&c->prog, off, c->progress_total);
	}
	return CMP_SAME;
}

/* The part of the larger image past the smaller one must read as zeroes. */
static int compare_tail(struct cmp *c, struct mimg *big, uint64_t from)
{
	uint64_t off = from, end = mimg_size(big);
	while (off < end) {
		uint64_t n;
		unsigned st;
		if (mimg_block_status_chain(big, off, end - off, &n, &st, NULL,
					    NULL, 0) < 0)
			return cmp_error();
		if (!(st & MIMG_BS_ZERO)) {
			if (n > CMP_CHUNK)
				n = CMP_CHUNK;
			if (mimg_pread(big, c->ba, n, off, 0) < 0)
				return cmp_error();
			memset(c->bb, 0, n);
			int64_t d = first_diff(c->ba, c->bb, n, off);
			if (d >= 0) {
				if (!c->quiet)
					printf("Content mismatch at offset "
					       "%" PRId64 "!\n",
					       d);
				return CMP_DIFFERENT;
			}
		}
		off += n;
		cli_progress_cb(&c->prog, off, c->progress_total);
	}
	return CMP_SAME;
}

static void compare_help(void)
{
	printf("Usage: mimg compare [-f fmt] [-F fmt] [-p] [-q] [-s] [-T mode] "
	       "[--image-opts]\n"
	       "                    FILE1 FILE2\n"
	       "\n"
	       "Compare what two images read (backing chains included).  "
	       "Exit status:\n0 identical, 1 different, 2 error.  Images of "
	       "different sizes are\nidentical when the larger one's extra "
	       "part reads as zeroes (not with -s).\n"
	       "\n"
	       "  -f FMT    format of FILE1 (default: probe)\n"
	       "  -F FMT    format of FILE2 (default: probe)\n"
	       "  --image-opts\n"
	       "            FILE1 and FILE2 are driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  -s        strict: sizes and allocation must match too\n"
	       "  -T MODE   cache mode of the reads: writeback (default), "
	       "none, ...\n"
	       "  -p        show progress (on stdout, as qemu-img)\n"
	       "  -q        quiet\n" CLI_HELP_FORCE_SHARE CLI_HELP_OBJECT
	       "  -h        this help\n");
}

int cmd_compare(int argc, char **argv)
{
	/* A failed --object exits 2 as other errors, a usage error 1: as
	 * qemu-img does. */
	struct cli_args ca = {.cmd = "compare",
			      .help = compare_help,
			      .longopts = CLI_FORCE_SHARE | CLI_IMAGE_OPTS,
			      .fail_status = CMP_ERROR};
	const char *fb = NULL;
	struct cmp c = {0};
	unsigned src_flags = 0;
	int opt, status = CMP_ERROR;

	while ((opt = cli_getopt(&ca, argc, argv, ":f:F:T:pqsUh", NULL)) >= 0) {
		switch (opt) {
		case 'F': fb = optarg; break;
		case 's': c.strict = true; break;
		case 'T':
			if (cli_cache_flags(optarg, &src_flags, true) != 0)
				return CMP_ERROR;
			/* only the reads' own mode: no writes to sync */
			src_flags &= MIMG_OPEN_DIRECT;
			break;
		}
	}
	if (opt == CLI_ARGS_STOP)
		return ca.status;
	c.quiet = ca.quiet;
	if (argc - optind != 2)
		return cli_usage_error("compare",
				       "Expecting two image file names");
	/* FILE2 with -F, or as FILE1 an option string (where -F is
	 * refused). */
	struct cli_args cb = ca;
	cb.fmt = fb;
	if (cli_open_arg(&c.a, &ca, argv[optind], src_flags) < 0 ||
	    cli_open_arg(&c.b, &cb, argv[optind + 1], src_flags) < 0) {
		cmp_error();
		goto out;
	}
	c.ba = malloc(CMP_CHUNK);
	c.bb = malloc(CMP_CHUNK);
	if (!c.ba || !c.bb) {
		cli_error("out of memory");
		goto out;
	}
	uint64_t sa = mimg_size(c.a), sb = mimg_size(c.b);
	/* From here, as qemu-img: 0 first, then the work done. */
	cli_progress_init(&c.prog, ca.progress && !c.quiet);
	c.prog.step = 2; /* qemu-img's for compare */
	c.progress_total = sa > sb ? sa : sb;
	if (sa != sb) {
		if (c.strict) {
			if (!c.quiet)
				printf("Strict mode: Image size mismatch!\n");
			status = CMP_DIFFERENT;
			goto out;
		}
	}
	status = compare_common(&c, sa < sb ? sa : sb);
	/* As qemu-img: the warning only once the shared part matched. */
	if (status == CMP_SAME && sa != sb) {
		if (!c.quiet)
			printf("Warning: Image size mismatch!\n");
		status = compare_tail(&c, sa > sb ? c.a : c.b,
				      sa < sb ? sa : sb);
	}
	if (status == CMP_SAME && !c.quiet)
		printf("Images are identical.\n");
out:
	cli_progress_end(&c.prog, false); /* the walk printed 100 */
	free(c.ba);
	free(c.bb);
	mimg_close(c.a);
	mimg_close(c.b);
	return status;
}
