/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg rebase: put an image on another backing file.  Safe mode first
 * writes into the image every range it does not allocate itself whose
 * content differs between the old and the new backing chain, so the guest
 * sees the same disk afterwards; -u only changes the name in the header.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* Bytes compared per step, and the granularity of what is written. */
#define REBASE_CHUNK (2u << 20)
#define REBASE_SECTOR 512u

static void rebase_help(void)
{
	printf("Usage: mimg rebase [-f fmt] [-t cache] [-T src_cache] [-p] "
	       "[-q] [-u]\n"
	       "                   -b BACKING [-F backing_fmt] [--image-opts] "
	       "FILE\n"
	       "\n"
	       "Make BACKING the backing file of FILE (\"\" for none).  "
	       "Without -u, the\nranges FILE does not allocate whose content "
	       "differs between the old and\nthe new backing chain are first "
	       "copied into FILE, so its content stays\nthe same.\n"
	       "\n"
	       "  -f FMT        FILE's format (default: probe)\n"
	       "  --image-opts  FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "                (BACKING stays a file name)\n"
	       "  -b BACKING    the new backing file, relative to FILE's "
	       "directory; \"\" makes\n"
	       "                FILE standalone\n"
	       "  -F FMT        the new backing file's format (required with "
	       "a backing file)\n"
	       "  -u            unsafe: only change the name in the header "
	       "(without -b:\n"
	       "                remove it)\n"
	       "  -t CACHE      FILE's cache mode (writeback, unsafe, none, "
	       "writethrough,\n"
	       "                directsync)\n"
	       "  -T CACHE      cache mode of the backing files\n"
	       "  -p            show progress\n"
	       "  -q            quiet\n" CLI_HELP_FORCE_SHARE CLI_HELP_OBJECT
	       "  -h, --help    this help\n");
}

struct rebase {
	const char *file, *fmt, *new_name, *new_fmt;
	unsigned flags, src_flags;
	bool unsafe, progress, quiet;
	struct mimg *img, *old, *new;
	uint8_t *obuf, *nbuf;
};

/* Length of the run at OFF (at most LEN) that reads as zeroes in IMG's
 * chain (NULL: no image, all zeroes), or 0 when OFF holds data. */
static int zero_run(struct mimg *img, uint64_t off, uint64_t len, uint64_t *run)
{
	uint64_t pnum;
	unsigned st;
	if (!img || off >= mimg_size(img)) {
		*run = len;
		return 0;
	}
	if (len > mimg_size(img) - off)
		len = mimg_size(img) - off;
	int r = mimg_block_status_chain(img, off, len, &pnum, &st, NULL, NULL,
					0);
	if (r < 0)
		return r;
	*run = (st & MIMG_BS_ZERO) ? pnum : 0;
	return 0;
}

/* Read LEN bytes at OFF of IMG's chain into BUF; past IMG's end (or
 * without an image) the content is zeroes. */
static int read_layer(struct mimg *img, uint8_t *buf, size_t len, uint64_t off)
{
	size_t have = 0;
	if (img && off < mimg_size(img)) {
		uint64_t avail = mimg_size(img) - off;
		size_t want = avail < len ? (size_t)avail : len;
		ssize_t n = mimg_pread(img, buf, want, off, 0);
		if (n < 0)
			return (int)n;
		have = (size_t)n;
	}
	memset(buf + have, 0, len - have);
	return 0;
}

/* Write the old content of the sectors of [OFF, OFF+LEN) whose old and
 * new content differ, so the image keeps showing it. */
static int copy_differences(struct rebase *rb, uint64_t off, size_t len)
{
	int r;
	if ((r = read_layer(rb->old, rb->obuf, len, off)) < 0 ||
	    (r = read_layer(rb->new, rb->nbuf, len, off)) < 0)
		return cli_error("error while reading image data at offset "
				 "%llu: %s",
				 (unsigned long long)off, mimg_errmsg());
	size_t i = 0;
	while (i < len) {
		size_t step = len - i < REBASE_SECTOR ? len - i : REBASE_SECTOR;
		if (memcmp(rb->obuf + i, rb->nbuf + i, step) == 0) {
			i += step;
			continue;
		}
		size_t start = i;
		while (i < len) {
			step = len - i < REBASE_SECTOR ? len - i
						       : REBASE_SECTOR;
			if (memcmp(rb->obuf + i, rb->nbuf + i, step) == 0)
				break;
			i += step;
		}
		if (mimg_pwrite(rb->img, rb->obuf + start, i - start,
				off + start, 0) < 0)
			return cli_error("error while writing to '%s': %s",
					 rb->file, mimg_errmsg());
	}
	return 0;
}

/* Handle [OFF, OFF+LEN), which the image does not allocate. */
static int rebase_range(struct rebase *rb, uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t zo, zn;
		if (zero_run(rb->old, off, len, &zo) < 0 ||
		    zero_run(rb->new, off, len, &zn) < 0)
			return cli_error("error while reading block status at "
					 "offset %llu: %s",
					 (unsigned long long)off,
					 mimg_errmsg());
		uint64_t n;
		if (zo && zn) { /* zeroes on both sides: nothing differs */
			n = zo < zn ? zo : zn;
		} else {
			n = len < REBASE_CHUNK ? len : REBASE_CHUNK;
			if (copy_differences(rb, off, (size_t)n) != 0)
				return EXIT_ERR;
		}
		off += n;
		len -= n;
	}
	return 0;
}

/* The run at OFF: handled when the image does not allocate it. */
static int rebase_step(void *opaque, uint64_t off, uint64_t left,
		       uint64_t *pnum)
{
	struct rebase *rb = opaque;
	unsigned st;
	if (mimg_block_status(rb->img, off, left, pnum, &st, NULL, 0) < 0)
		return cli_error("error while reading image metadata at offset "
				 "%llu: %s",
				 (unsigned long long)off, mimg_errmsg());
	if (!(st & MIMG_BS_ALLOCATED) && rebase_range(rb, off, *pnum))
		return EXIT_ERR;
	return 0;
}

static int rebase_data(struct rebase *rb)
{
	rb->old = mimg_backing(rb->img);
	if (!(rb->obuf = malloc(REBASE_CHUNK)) ||
	    !(rb->nbuf = malloc(REBASE_CHUNK)))
		return cli_error("out of memory");
	return cli_progress_walk(mimg_size(rb->img), rb->progress && !rb->quiet,
				 rebase_step, rb);
}

static int open_new_backing(struct rebase *rb)
{
	struct stat a, b;
	char *path = cli_relative_to(rb->file, rb->new_name);
	if (!path)
		return cli_error("out of memory");
	/* The image as its own backing file would make a loop. */
	if (stat(path, &a) == 0 && stat(rb->file, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		free(path);
		return cli_error("Could not open new backing file '%s': it is "
				 "the image itself",
				 rb->new_name);
	}
	int r = mimg_open(&rb->new, path, rb->new_fmt, rb->src_flags);
	free(path);
	if (r < 0)
		return cli_error("Could not open new backing file '%s': %s",
				 rb->new_name, mimg_errmsg());
	return 0;
}

static int run_rebase(struct rebase *rb)
{
	unsigned flags = MIMG_OPEN_RDWR | rb->flags;
	if (rb->unsafe)
		flags |= MIMG_OPEN_NO_BACKING;
	if (cli_open(&rb->img, rb->file, rb->fmt, flags) < 0)
		return cli_error("%s", cli_errmsg());
	/* qemu-img opens the new backing file before it asks for its
	 * format. */
	if (!rb->unsafe && *rb->new_name && open_new_backing(rb) != 0)
		return EXIT_ERR;
	if (*rb->new_name && !rb->new_fmt)
		return cli_error("Could not change the backing file to '%s': "
				 "backing format must be specified",
				 rb->new_name);
	/* Refuse before copying anything what would fail at the end (where
	 * qemu-img says so). */
	if (strcmp(mimg_format(rb->img), "qcow2") != 0)
		return cli_error("Could not change the backing file to '%s': "
				 "Operation not supported",
				 rb->new_name);
	if (!rb->unsafe && rebase_data(rb) != 0)
		return EXIT_ERR;
	if (mimg_set_backing(rb->img, rb->new_name, rb->new_fmt) < 0)
		return cli_error("Could not change the backing file to '%s': "
				 "%s",
				 rb->new_name, mimg_errmsg());
	return 0;
}

int cmd_rebase(int argc, char **argv)
{
	struct cli_args ca = {.cmd = "rebase",
			      .help = rebase_help,
			      .longopts = CLI_FORCE_SHARE | CLI_IMAGE_OPTS |
					  CLI_CACHE};
	struct rebase rb = {.new_name = NULL};
	int c, status = EXIT_ERR;

	while ((c = cli_getopt(&ca, argc, argv, ":hf:F:b:upqt:T:U", NULL)) >=
	       0) {
		switch (c) {
		case 'F': rb.new_fmt = *optarg ? optarg : NULL; break;
		case 'b': rb.new_name = optarg; break;
		case 'u': rb.unsafe = true; break;
		case 'T':
			if (cli_cache_flags(optarg, &rb.src_flags, true) != 0)
				return EXIT_ERR;
			break;
		}
	}
	if (!(rb.file = cli_one_file(&ca, c, argc, argv)))
		return ca.status;
	rb.fmt = ca.fmt;
	rb.flags = ca.cache_flags;
	rb.progress = ca.progress;
	rb.quiet = ca.quiet;
	if (!rb.unsafe && !rb.new_name)
		return cli_usage_error("rebase",
				       "Must specify backing file "
				       "(-b) or use unsafe mode (-u)");
	if (!rb.new_name)
		rb.new_name = "";
	if (!*rb.new_name)
		rb.new_fmt = NULL; /* no backing file: no format either */
	/* -b is relative to FILE's directory: keep the path the option
	 * string names. */
	if (cli_image_arg(&ca, &rb.file, &rb.fmt, true, NULL) < 0)
		return EXIT_ERR;
	rb.flags |= ca.image_flags;
	rb.src_flags &= ~(unsigned)MIMG_OPEN_NO_FLUSH;
	if (run_rebase(&rb) == 0)
		status = EXIT_OK;
	free(rb.obuf);
	free(rb.nbuf);
	mimg_close(rb.new);
	if (rb.img && mimg_close(rb.img) < 0 && status == EXIT_OK)
		status = cli_error("%s", mimg_errmsg());
	cli_args_free(&ca);
	return status;
}
