/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * An .xz file decoded with liblzma directly rather than through
 * libarchive, whose xz reader uses one thread: liblzma's multithreaded
 * decoder decodes the blocks of a file that has several (as xz -T
 * writes them, FreeBSD's images among them) on every core, within a
 * memory budget (XZ_MT_MEMLIMIT), where that pays off.  A streamed image is decoded straight into the stream's
 * memory.  The file is hostile: the decoder's memory is capped (a block
 * header may ask for a dictionary of 4 GiB), and what the data expands
 * to is bounded by the caller (file-archive.c), which sees every decoded
 * byte.
 */
#include <errno.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "file-archive.h"
#include "file.h"

#define XZ_IN_CHUNK (1u << 20)
/* What a dictionary of xz -9 needs many times over, as libarchive once
 * capped it; an image whose file needs more is refused. */
#define XZ_MEMLIMIT (1ull << 30)
/* Threads decode blocks ahead while their buffers fit in this: each
 * holds a whole block, in and out (12 MiB out at xz -3 -T, 48 MiB at
 * xz -9 -T), and peak RSS must stay bounded whatever the core count. */
#define XZ_MT_MEMLIMIT (128ull << 20)
#define XZ_MT_MIN_RATIO 3

struct mimg_xz {
	lzma_stream s;
	struct mimg_file *f;
	char *name;
	uint64_t size, pos; /* of the file; the next byte to read */
	bool ended;
	uint8_t in[XZ_IN_CHUNK];
};

static const char *lzma_what(lzma_ret r)
{
	switch (r) {
	case LZMA_MEM_ERROR: return "out of memory";
	case LZMA_MEMLIMIT_ERROR: return "needs more memory than allowed";
	case LZMA_FORMAT_ERROR: return "not xz data";
	case LZMA_OPTIONS_ERROR: return "unsupported options";
	case LZMA_DATA_ERROR: return "compressed data is corrupt";
	case LZMA_BUF_ERROR: return "unexpected end of input";
	case LZMA_UNSUPPORTED_CHECK: return "unsupported integrity check";
	default: return "decoder error";
	}
}

static int xz_fail(struct mimg_xz *x, lzma_ret r)
{
	if (r == LZMA_MEM_ERROR)
		return mimg_err(-ENOMEM, "%s: out of memory", x->name);
	if (r == LZMA_MEMLIMIT_ERROR)
		return mimg_err(-EFBIG,
				"%s: unpacking (xz data): its "
				"decoding needs more than the %llu bytes of "
				"memory allowed; refused",
				x->name, (unsigned long long)XZ_MEMLIMIT);
	return mimg_err(-EINVAL,
			"%s: unpacking (xz data, truncated or "
			"corrupt?): %s",
			x->name, lzma_what(r));
}

/* Threads pay off where decoding costs more than the copy out of each
 * block's buffer and that buffer's page faults: several blocks of data
 * that compressed well (measured on 2 cores: text and zero runs at 1:8,
 * 1.45 -> 1.04 s; compressed VMDK grains at 1:1, 0.36 -> 0.52 s). */
static bool decode_in_threads(struct mimg_file *f, uint64_t fsize)
{
	uint64_t size, blocks;
	return lzma_cputhreads() > 1 && mimg__xz_layout(f, &size, &blocks) &&
	       blocks > 1 && size / XZ_MT_MIN_RATIO > fsize;
}

int mimg__xz_open(struct mimg_xz **xp, struct mimg_file *f, const char *name)
{
	struct mimg_xz *x = calloc(1, sizeof(*x));
	lzma_stream init = LZMA_STREAM_INIT;
	lzma_ret lr;
	int r;

	*xp = NULL;
	if (!x || !(x->name = strdup(name))) {
		free(x);
		return mimg_err(-ENOMEM, "%s: out of memory", name);
	}
	x->s = init;
	x->f = f;
	if ((r = mimg_file_size(f, &x->size)) < 0) {
		mimg__xz_close(x);
		return r;
	}
	if (decode_in_threads(f, x->size)) {
		lzma_mt mt = {
			.flags = LZMA_CONCATENATED,
			.threads = lzma_cputhreads() ? lzma_cputhreads() : 1,
			.memlimit_threading = XZ_MT_MEMLIMIT,
			.memlimit_stop = XZ_MEMLIMIT,
		};
		lr = lzma_stream_decoder_mt(&x->s, &mt);
	} else {
		lr = lzma_stream_decoder(&x->s, XZ_MEMLIMIT, LZMA_CONCATENATED);
	}
	if (lr != LZMA_OK) {
		r = xz_fail(x, lr);
		mimg__xz_close(x);
		return r;
	}
	*xp = x;
	return 0;
}

ssize_t mimg__xz_read(struct mimg_xz *x, uint8_t *buf, size_t n)
{
	x->s.next_out = buf;
	x->s.avail_out = n;
	while (!x->ended && x->s.avail_out == n && n) {
		if (x->s.avail_in == 0 && x->pos < x->size) {
			size_t k = x->size - x->pos < XZ_IN_CHUNK
					   ? (size_t)(x->size - x->pos)
					   : XZ_IN_CHUNK;
			int r = mimg_file_pread(x->f, x->in, k, x->pos);
			if (r < 0)
				return r;
			x->s.next_in = x->in;
			x->s.avail_in = k;
			x->pos += k;
		}
		lzma_ret lr = lzma_code(&x->s, x->pos == x->size ? LZMA_FINISH
								 : LZMA_RUN);
		if (lr == LZMA_STREAM_END)
			x->ended = true;
		else if (lr != LZMA_OK)
			return xz_fail(x, lr);
	}
	return (ssize_t)(n - x->s.avail_out);
}

uint64_t mimg__xz_consumed(const struct mimg_xz *x)
{
	return x->pos - x->s.avail_in;
}

void mimg__xz_close(struct mimg_xz *x)
{
	if (!x)
		return;
	lzma_end(&x->s);
	free(x->name);
	free(x);
}
