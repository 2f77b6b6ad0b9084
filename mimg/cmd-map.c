/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg map: the allocation map of an image through its backing chain, in
 * qemu-img map's human and JSON layouts.
 */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"

/* One run of the map: where a range's content comes from. */
struct map_entry {
	uint64_t start, length, offset;
	int depth;
	bool present, zero, data, has_offset;
	const char *file;
};

/* The layer DEPTH images below TOP. */
static struct mimg *layer_at(struct mimg *top, int depth)
{
	struct mimg *img = top;
	while (depth-- > 0 && mimg_backing(img))
		img = mimg_backing(img);
	return img;
}

/* Status of [off, off+len) through the chain, with the defining layer's
 * host offset. */
static int chain_entry(struct mimg *top, uint64_t off, uint64_t len,
		       struct map_entry *e)
{
	uint64_t pnum, host;
	unsigned st;
	int depth;
	int r = mimg_block_status_chain(top, off, len, &pnum, &st, &depth,
					&host, 0);
	if (r < 0)
		return r;
	*e = (struct map_entry){
		.start = off,
		.length = pnum,
		.depth = depth,
		.present = st & MIMG_BS_ALLOCATED,
		.zero = st & MIMG_BS_ZERO,
		.data = st & MIMG_BS_DATA,
		.has_offset = (st & MIMG_BS_OFFSET_VALID) &&
			      !(st & MIMG_BS_COMPRESSED),
		.offset = host,
		.file = "",
	};
	/* The file the offset is in, where there is one (as qemu-img,
	 * which also merges runs only within one file). */
	if (e->has_offset)
		e->file = mimg_host_filename(layer_at(top, depth), off);
	return 0;
}

/* Can E extend P (same kind, contiguous host offsets)? */
static bool mergeable(const struct map_entry *p, const struct map_entry *e)
{
	return p->depth == e->depth && p->present == e->present &&
	       p->zero == e->zero && p->data == e->data &&
	       p->has_offset == e->has_offset &&
	       (!p->has_offset || p->offset + p->length == e->offset) &&
	       strcmp(p->file, e->file) == 0;
}

/* Print E; qemu-img's error, and -1, for data without a host offset in
 * human output, which could not say where it is. */
static int print_entry(const struct map_entry *e, enum output_format out,
		       bool first)
{
	if (out == OUTPUT_JSON) {
		printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
		       ", \"depth\": %d, \"present\": %s, \"zero\": %s, "
		       "\"data\": %s",
		       first ? "[" : ",\n", e->start, e->length, e->depth,
		       e->present ? "true" : "false",
		       e->zero ? "true" : "false", e->data ? "true" : "false");
		if (e->has_offset)
			printf(", \"offset\": %" PRIu64, e->offset);
		printf("}");
		return 0;
	}
	if (e->data && !e->has_offset) {
		cli_error("File contains external, encrypted or compressed "
			  "clusters.");
		return -1;
	}
	/* Data that reads as zeroes (a hole under a preallocated cluster)
	 * is left out, as qemu-img leaves it out. */
	if (e->data && !e->zero)
		printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
		       e->start, e->length, e->offset, e->file);
	return 0;
}

static void map_help(void)
{
	printf("Usage: mimg map [-f fmt] [--output human|json] "
	       "[--start-offset OFF] [--max-length LEN]\n"
	       "                [--image-opts] FILE\n"
	       "\n"
	       "Print which ranges of FILE hold data, read as zeroes or "
	       "come from the\nbacking chain (depth), with host offsets.\n"
	       "\n"
	       "  -f FMT              the image format (default: probe)\n"
	       "  --image-opts        FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  --output FMT        human (default: data ranges only) or "
	       "json\n"
	       "  -s, --start-offset  first byte to map\n"
	       "  -l, --max-length    bytes to map\n" CLI_HELP_FORCE_SHARE
		       CLI_HELP_OBJECT "  -h, --help          this help\n");
}

int cmd_map(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"start-offset", required_argument, NULL, 's'},
		{"max-length", required_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	struct cli_args ca = {.cmd = "map",
			      .help = map_help,
			      .longopts = CLI_FORMAT | CLI_OUTPUT |
					  CLI_FORCE_SHARE | CLI_IMAGE_OPTS};
	uint64_t start = 0, maxlen = UINT64_MAX;
	struct mimg *img;
	int c, r;

	while ((c = cli_getopt(&ca, argc, argv, ":f:s:l:Uh", longopts)) >= 0) {
		switch (c) {
		case 's':
			if (cli_parse_num("start offset", optarg, 0,
					  CLI_NUM_MAX, &start) != 0)
				return EXIT_ERR;
			break;
		case 'l':
			if (cli_parse_num("max length", optarg, 0, CLI_NUM_MAX,
					  &maxlen) != 0)
				return EXIT_ERR;
			break;
		}
	}
	if (!cli_one_file(&ca, c, argc, argv))
		return ca.status;
	if ((r = cli_open_arg(&img, &ca, argv[optind], 0)) < 0)
		return cli_error("%s", cli_errmsg());

	uint64_t end = mimg_size(img);
	if (maxlen < end && start + maxlen < end)
		end = start + maxlen;
	struct map_entry cur = {0}, e;
	bool have = false, first = true;
	if (ca.output == OUTPUT_HUMAN)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
		       "File");
	uint64_t off;
	for (off = start; off < end; off += e.length) {
		if (chain_entry(img, off, end - off, &e) < 0) {
			cli_error("%s", mimg_errmsg());
			mimg_close(img);
			return EXIT_ERR;
		}
		if (have && mergeable(&cur, &e)) {
			cur.length += e.length;
			continue;
		}
		if (have) {
			if (print_entry(&cur, ca.output, first) < 0)
				break;
			first = false;
		}
		cur = e;
		have = true;
	}
	/* Nothing to map (an empty image, a start at or past its end):
	 * qemu-img prints one empty entry at the start. */
	if (!have)
		cur = (struct map_entry){.start = start, .file = ""};
	int status = EXIT_OK;
	if (off < end || print_entry(&cur, ca.output, first) < 0)
		status = EXIT_ERR;
	else if (ca.output == OUTPUT_JSON)
		printf("]\n");
	mimg_close(img);
	return status;
}
