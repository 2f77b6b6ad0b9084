/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg commit: copy what an overlay (and the layers between it and the
 * base) defines into its backing file, then empty the overlay in place as
 * qemu-img does, so that it reads everything from the base again.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define COMMIT_CHUNK (2u << 20)

static void commit_help(void)
{
	printf("Usage: mimg commit [-f fmt] [-t cache] [-b base] [-r rate] "
	       "[-d] [-p] [-q]\n"
	       "                   [--image-opts] FILE\n"
	       "\n"
	       "Write the data FILE and the images between it and BASE "
	       "define into BASE\n(default: FILE's backing file), then empty "
	       "FILE so it reads all of it\nfrom there.\n"
	       "\n"
	       "  -f FMT        FILE's format (default: probe)\n"
	       "  --image-opts  FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  -b BASE       the image of FILE's backing chain to commit "
	       "into; FILE is\n"
	       "                then left as it is\n"
	       "  -d            do not empty FILE\n"
	       "  -t CACHE      cache mode of BASE (writeback, unsafe, none, "
	       "writethrough,\n"
	       "                directsync)\n"
	       "  -r RATE       copy at most RATE bytes a second\n"
	       "  -p            show progress\n"
	       "  -q            quiet\n"
	       "  --object secret,id=ID,data=TEXT|file=PATH  passphrase of the\n"
	       "                encrypted images of the chain\n"
	       "  -h, --help    this help\n");
}

struct commit {
	const char *file, *fmt, *base_name;
	unsigned base_flags;
	unsigned top_flags; /* --image-opts' cache flags */
	bool keep, progress, quiet;
	struct cli_rate rate;	 /* -r: of the data copied */
	struct mimg *top, *base; /* base: a writable handle of its own */
	int base_depth;
	uint8_t *buf;
};

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Find the base in TOP's chain: -b names it (as a path, or relative to
 * FILE's directory as backing names are), else the backing file. */
static int find_base(struct commit *c, struct mimg **nodep)
{
	struct mimg *b = mimg_backing(c->top);
	if (!c->base_name) {
		if (!b)
			return cli_error("Image does not have a backing file");
		*nodep = b;
		c->base_depth = 1;
		return 0;
	}
	char *rel = cli_relative_to(c->file, c->base_name);
	if (!rel)
		return cli_error("out of memory");
	for (int depth = 1; b; b = mimg_backing(b), depth++) {
		if (same_file(mimg_filename(b), c->base_name) ||
		    same_file(mimg_filename(b), rel)) {
			free(rel);
			*nodep = b;
			c->base_depth = depth;
			return 0;
		}
	}
	free(rel);
	return cli_error("Did not find '%s' in the backing chain of '%s'",
			 c->base_name, c->file);
}

static int copy_run(struct commit *c, uint64_t off, uint64_t len, unsigned st)
{
	if (st & MIMG_BS_ZERO) {
		if (mimg_pwrite_zeroes(c->base, off, len, MIMG_ZERO_MAY_UNMAP) <
		    0)
			return -1;
		return 0;
	}
	while (len) {
		size_t n = len < COMMIT_CHUNK ? (size_t)len : COMMIT_CHUNK;
		cli_rate_wait(&c->rate, n);
		ssize_t got = mimg_pread(c->top, c->buf, n, off, 0);
		if (got < 0)
			return -1;
		if ((size_t)got < n)
			memset(c->buf + got, 0, n - (size_t)got);
		if (mimg_pwrite(c->base, c->buf, n, off, 0) < 0)
			return -1;
		off += n;
		len -= n;
	}
	return 0;
}

/* The run at OFF: copied when a layer above the base defines it. */
static int commit_step(void *opaque, uint64_t off, uint64_t left,
		       uint64_t *pnum)
{
	struct commit *c = opaque;
	unsigned st;
	int depth;
	if (mimg_block_status_chain(c->top, off, left, pnum, &st, &depth, NULL,
				    0) < 0 ||
	    ((st & MIMG_BS_ALLOCATED) && depth < c->base_depth &&
	     copy_run(c, off, *pnum, st) < 0))
		return cli_error("Block job failed: %s", mimg_errmsg());
	return 0;
}

/* Copy every run some layer above the base defines. */
static int commit_data(struct commit *c)
{
	uint64_t size = mimg_size(c->top);

	if (mimg_size(c->base) < size &&
	    mimg_truncate(c->base, size, MIMG_PREALLOC_OFF) < 0)
		return cli_error("Top image %s is larger than its base image; "
				 "could not grow the base: %s",
				 c->file, mimg_errmsg());
	if (!(c->buf = malloc(COMMIT_CHUNK)))
		return cli_error("out of memory");
	return cli_progress_walk(size, c->progress && !c->quiet, commit_step,
				 c);
}

/* Empty the committed FILE in place, keeping its file and inode, with
 * its format's make_empty as qemu-img does; a format without one (VMDK)
 * keeps its data, which now equals what the base holds. */
static int empty_top(const char *path, const char *fmt, unsigned flags)
{
	struct mimg *img;
	if (mimg_open(&img, path, fmt,
		      MIMG_OPEN_RDWR | MIMG_OPEN_NO_BACKING | flags) < 0)
		return cli_error("%s", mimg_errmsg());
	int r = mimg_make_empty(img);
	if (r < 0 && r != -ENOTSUP) {
		cli_error("%s", mimg_errmsg());
		mimg_close(img);
		return -1;
	}
	if (mimg_close(img) < 0) {
		cli_error("%s", mimg_errmsg());
		return -1;
	}
	return 0;
}

static int run_commit(struct commit *c)
{
	struct mimg *node = NULL;
	if (cli_open(&c->top, c->file, c->fmt, c->top_flags) < 0)
		return cli_error("%s", cli_errmsg());
	/* Read here, emptied later: qemu-img opens it to write at once. */
	if (!c->fmt && strcmp(mimg_format(c->top), "raw") == 0)
		cli_warn_probed_raw(c->file);
	if (find_base(c, &node) != 0)
		return EXIT_ERR;
	/* The base gets a writable handle of its own, with its backing
	 * chain: a write into part of one of its clusters copies the rest
	 * from there.  The read-only handle in the top's chain is only read
	 * where the base defines the content, which is not written. */
	if (cli_open(&c->base, mimg_filename(node), mimg_format(node),
		     MIMG_OPEN_RDWR | c->base_flags) < 0)
		return cli_error("%s", cli_errmsg());
	if (commit_data(c) != 0)
		return EXIT_ERR;
	int r = mimg_close(c->base);
	c->base = NULL;
	if (r < 0)
		return cli_error("%s", mimg_errmsg());
	return 0;
}

int cmd_commit(int argc, char **argv)
{
	struct cli_args ca = {.cmd = "commit",
			      .help = commit_help,
			      .longopts = CLI_IMAGE_OPTS | CLI_CACHE};
	struct commit c = {.file = NULL};
	int opt, status = EXIT_ERR;
	uint64_t rate = 0;

	while ((opt = cli_getopt(&ca, argc, argv, ":hf:t:b:dpqr:", NULL)) >=
	       0) {
		switch (opt) {
		case 'b': c.base_name = optarg; break;
		case 'd': c.keep = true; break;
		case 'r':
			if (cli_parse_rate(optarg, &rate) != 0)
				return EXIT_ERR;
			break;
		}
	}
	if (!(c.file = cli_one_file(&ca, opt, argc, argv)))
		return ca.status;
	c.fmt = ca.fmt;
	c.base_flags = ca.cache_flags;
	c.progress = ca.progress;
	c.quiet = ca.quiet;
	/* FILE is opened again to empty it, and -b is relative to it: keep
	 * the path the option string names. */
	if (cli_image_arg(&ca, &c.file, &c.fmt, true, NULL) < 0)
		return EXIT_ERR;
	c.top_flags = ca.image_flags;
	cli_rate_init(&c.rate, rate);
	if (run_commit(&c) == 0)
		status = EXIT_OK;
	free(c.buf);
	mimg_close(c.base);
	if (c.top)
		mimg_close(c.top);
	c.top = NULL;
	/* With -b the overlay is left as it is, as qemu-img leaves it. */
	if (status == EXIT_OK && !c.keep && !c.base_name &&
	    empty_top(c.file, c.fmt, c.top_flags) != 0)
		status = EXIT_ERR;
	if (status == EXIT_OK && !c.quiet)
		printf("Image committed.\n");
	cli_args_free(&ca);
	return status;
}
