/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A gzip file decoded with zlib rather than by libarchive, whose gzip
 * reader checks neither a member's CRC-32 nor its length: damaged data
 * that still inflates would be read as the image.  Here every member's
 * trailer is checked (zlib does, in gzip mode), members may follow one
 * another (as gzip writes them when files are concatenated), zero bytes
 * may pad the end (tapes, block devices), anything else after the last
 * member is refused.  What the data expands to is bounded by the caller
 * (file-archive.c), which sees every decoded byte.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "error.h"
#include "file-archive.h"
#include "file.h"

#define GZIP_IN_CHUNK (256u << 10)

struct mimg_gzip {
	z_stream z;
	struct mimg_file *f;
	char *name;
	uint64_t size, pos; /* of the file; the next byte to read */
	bool ended;	    /* the last member's trailer checked */
	uint8_t in[GZIP_IN_CHUNK];
};

int mimg__gzip_open(struct mimg_gzip **gp, struct mimg_file *f,
		    const char *name)
{
	struct mimg_gzip *g = calloc(1, sizeof(*g));
	int r;

	*gp = NULL;
	if (!g || !(g->name = strdup(name))) {
		free(g);
		return mimg_err(-ENOMEM, "%s: out of memory", name);
	}
	g->f = f;
	if ((r = mimg_file_size(f, &g->size)) < 0) {
		free(g->name);
		free(g);
		return r;
	}
	/* 16 + MAX_WBITS: a gzip header and trailer, nothing else. */
	if (inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK) {
		free(g->name);
		free(g);
		return mimg_err(-ENOMEM, "%s: out of memory", name);
	}
	*gp = g;
	return 0;
}

static int gzip_fail(struct mimg_gzip *g, int err, const char *why)
{
	if (err == -ENOMEM)
		return mimg_err(err, "%s: out of memory", g->name);
	return mimg_err(err, "%s: unpacking: gzip data: %s", g->name, why);
}

/* More of the file into the input buffer: 1, 0 at its end, or a negative
 * errno. */
static int refill(struct mimg_gzip *g)
{
	if (g->pos == g->size)
		return 0;
	/* Bytes not yet consumed move to the front. */
	if (g->z.avail_in)
		memmove(g->in, g->z.next_in, g->z.avail_in);
	size_t room = GZIP_IN_CHUNK - g->z.avail_in;
	size_t k = g->size - g->pos < room ? (size_t)(g->size - g->pos) : room;
	int r = mimg_file_pread(g->f, g->in + g->z.avail_in, k, g->pos);
	if (r < 0)
		return r;
	g->z.next_in = g->in;
	g->z.avail_in += (uInt)k;
	g->pos += k;
	return 1;
}

/* After a member's trailer: another member, or zeroes to the end of the
 * file.  0 when the data goes on, 1 at its end, or a negative errno. */
static int after_member(struct mimg_gzip *g)
{
	int r;
	if (g->z.avail_in < 2 && (r = refill(g)) < 0)
		return r;
	if (g->z.avail_in >= 2 && g->z.next_in[0] == 0x1f &&
	    g->z.next_in[1] == 0x8b) {
		inflateReset(&g->z);
		return 0;
	}
	do {
		for (; g->z.avail_in; g->z.next_in++, g->z.avail_in--)
			if (g->z.next_in[0] != 0)
				return gzip_fail(g, -EINVAL,
						 "data after the end of the "
						 "gzip stream");
	} while ((r = refill(g)) > 0);
	return r < 0 ? r : 1;
}

ssize_t mimg__gzip_read(struct mimg_gzip *g, uint8_t *buf, size_t n)
{
	g->z.next_out = buf;
	g->z.avail_out = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
	size_t want = g->z.avail_out;
	while (!g->ended && g->z.avail_out == want && want) {
		if (g->z.avail_in == 0) {
			int r = refill(g);
			if (r < 0)
				return r;
			if (r == 0)
				return gzip_fail(g, -EINVAL,
						 "the gzip data is truncated");
		}
		int zr = inflate(&g->z, Z_NO_FLUSH);
		if (zr == Z_STREAM_END) {
			int r = after_member(g);
			if (r < 0)
				return r;
			g->ended = r == 1;
		} else if (zr == Z_MEM_ERROR) {
			return gzip_fail(g, -ENOMEM, "out of memory");
		} else if (zr != Z_OK && zr != Z_BUF_ERROR) {
			return gzip_fail(g, -EINVAL,
					 g->z.msg ? g->z.msg
						  : "the gzip data is corrupt");
		}
	}
	return (ssize_t)(want - g->z.avail_out);
}

uint64_t mimg__gzip_consumed(const struct mimg_gzip *g)
{
	return g->pos - g->z.avail_in;
}

void mimg__gzip_close(struct mimg_gzip *g)
{
	if (!g)
		return;
	inflateEnd(&g->z);
	free(g->name);
	free(g);
}
