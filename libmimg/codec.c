/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * One set of compression contexts per thread for every format (see
 * codec.h): creating a zlib or zstd context costs more than compressing
 * a 64 KiB cluster, so each thread keeps its own and resets it per call.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#ifdef MIMG_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif
#ifdef MIMG_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#ifdef MIMG_HAVE_BZIP2
#include <bzlib.h>
#endif

#include "codec.h"
#include "endian.h"

#define DEFLATE_DEFAULT_LEVEL 6 /* zlib's Z_DEFAULT_COMPRESSION, qemu's */
#define ZLIB_MAX_LEVEL 9
#define LIBDEFLATE_MAX_LEVEL 12
/* libdeflate's level 6 searches less than zlib's: on repetitive text its
 * output is about 9% larger, on binaries equal.  Its level 7 is no larger
 * than zlib's 6 on either (smaller by 1% on binaries) and still costs
 * less CPU, so the default stays what qemu-img writes at most. */
#define LIBDEFLATE_DEFAULT_LEVEL 7
#define QCOW2_WINDOW_BITS 12	/* qemu inflates with -12 */
#define STORED_BLOCK_MAX 65535u /* bytes in one stored deflate block */

/* A zlib stream created on first use and reset for each call after. */
struct zstream {
	z_stream zs;
	bool init;
	int level; /* deflate: the level it is set to */
};

struct codec_ctx {
	struct zstream inf_raw, inf_zlib, def_raw, def_zlib;
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
#ifdef MIMG_HAVE_LIBDEFLATE
	struct libdeflate_decompressor *ld;
	struct libdeflate_compressor *lc[LIBDEFLATE_MAX_LEVEL + 1];
#endif
};

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void zstream_end(struct zstream *s, int (*end)(z_streamp))
{
	if (s->init)
		end(&s->zs);
}

static void ctx_free(void *p)
{
	struct codec_ctx *c = p;
	if (!c)
		return;
	zstream_end(&c->inf_raw, inflateEnd);
	zstream_end(&c->inf_zlib, inflateEnd);
	zstream_end(&c->def_raw, deflateEnd);
	zstream_end(&c->def_zlib, deflateEnd);
	ZSTD_freeCCtx(c->zc);
	ZSTD_freeDCtx(c->zd);
#ifdef MIMG_HAVE_LIBDEFLATE
	libdeflate_free_decompressor(c->ld);
	for (int i = 0; i <= LIBDEFLATE_MAX_LEVEL; i++)
		libdeflate_free_compressor(c->lc[i]);
#endif
	free(c);
}

static void ctx_key_init(void)
{
	(void)pthread_key_create(&ctx_key, ctx_free);
}

static struct codec_ctx *thread_ctx(void)
{
	pthread_once(&ctx_once, ctx_key_init);
	struct codec_ctx *c = pthread_getspecific(ctx_key);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c && pthread_setspecific(ctx_key, c) != 0) {
			free(c);
			c = NULL;
		}
	}
	return c;
}

/* The calling thread's contexts, with the libdeflate decoder made where
 * the build has it; NULL when out of memory. */
static struct codec_ctx *decode_ctx(void)
{
	struct codec_ctx *c = thread_ctx();
#ifdef MIMG_HAVE_LIBDEFLATE
	if (c && !c->ld && !(c->ld = libdeflate_alloc_decompressor()))
		return NULL;
#endif
	return c;
}

/* The calling thread's contexts with its zstd encoder (COMPRESS) or
 * decoder made; NULL when out of memory. */
static struct codec_ctx *zstd_ctx(bool compress)
{
	struct codec_ctx *c = thread_ctx();
	if (!c)
		return NULL;
	if (compress ? !c->zc && !(c->zc = ZSTD_createCCtx())
		     : !c->zd && !(c->zd = ZSTD_createDCtx()))
		return NULL;
	return c;
}

static int clamp_level(int level, int def, int max)
{
	if (level <= 0)
		return def;
	return level > max ? max : level;
}

const char *codec_deflate_backend(void)
{
#ifdef MIMG_HAVE_LIBDEFLATE
	return "libdeflate";
#else
	return "zlib";
#endif
}

/* Inflate IN into OUT (OUTCAP bytes) with stream S for WBITS (window
 * and wrapper) in one Z_FINISH call: *ZRET receives zlib's verdict and
 * *OUTLEN the bytes produced, which the caller judges.  0, or -EIO or
 * -ENOMEM when the stream cannot be set up. */
static int zlib_inflate(struct zstream *s, int wbits, const void *in,
			size_t inlen, void *out, size_t outcap, size_t *outlen,
			int *zret)
{
	if (s->init) {
		if (inflateReset(&s->zs) != Z_OK)
			return -EIO;
	} else {
		memset(&s->zs, 0, sizeof(s->zs));
		if (inflateInit2(&s->zs, wbits) != Z_OK)
			return -ENOMEM;
		s->init = true;
	}
	s->zs.next_in = (Bytef *)(uintptr_t)in;
	s->zs.avail_in = (uInt)inlen;
	s->zs.next_out = out;
	s->zs.avail_out = (uInt)outcap;
	*zret = inflate(&s->zs, Z_FINISH);
	*outlen = outcap - s->zs.avail_out;
	return 0;
}

int codec_inflate_raw(const void *in, size_t inlen, void *out, size_t outlen)
{
	struct codec_ctx *c = decode_ctx();
	if (!c)
		return -ENOMEM;
#ifdef MIMG_HAVE_LIBDEFLATE
	size_t used;
	if (libdeflate_deflate_decompress_ex(c->ld, in, inlen, out, outlen,
					     &used, NULL) == LIBDEFLATE_SUCCESS)
		return 0;
		/* Streams cut short or running past the cluster: zlib decides. */
#endif
	size_t n;
	int zret, r = zlib_inflate(&c->inf_raw, -QCOW2_WINDOW_BITS, in, inlen,
				   out, outlen, &n, &zret);
	if (r < 0)
		return r;
	/* The stored length is only sector-exact: the stream may be cut
	 * short once the cluster is full. */
	return (zret == Z_STREAM_END || zret == Z_BUF_ERROR) && n == outlen
		       ? 0
		       : -EIO;
}

int codec_inflate_zlib(const void *in, size_t inlen, void *out, size_t outcap,
		       size_t *outlen)
{
	struct codec_ctx *c = decode_ctx();
	*outlen = 0;
	if (!c)
		return -ENOMEM;
#ifdef MIMG_HAVE_LIBDEFLATE
	size_t used;
	if (libdeflate_zlib_decompress_ex(c->ld, in, inlen, out, outcap, &used,
					  outlen) == LIBDEFLATE_SUCCESS)
		return 0;
#endif
	int zret, r = zlib_inflate(&c->inf_zlib, MAX_WBITS, in, inlen, out,
				   outcap, outlen, &zret);
	if (r < 0)
		return r;
	return zret == Z_STREAM_END ? 0 : -EIO;
}

int codec_bunzip2(const void *in, size_t inlen, void *out, size_t outlen)
{
#ifdef MIMG_HAVE_BZIP2
	/* The library's lengths are unsigned int: DMG chunks are at most
	 * 64 MiB stored or decoded, so larger ones are never asked for. */
	if (inlen > UINT32_MAX || outlen > UINT32_MAX)
		return -EIO;
	unsigned got = (unsigned)outlen;
	int r = BZ2_bzBuffToBuffDecompress((char *)out, &got, (char *)in,
					   (unsigned)inlen, 0, 0);
	if (r == BZ_MEM_ERROR)
		return -ENOMEM;
	return r == BZ_OK && got == outlen ? 0 : -EIO;
#else
	(void)in;
	(void)inlen;
	(void)out;
	(void)outlen;
	return -ENOTSUP;
#endif
}

static int zstd_stream_decompress(struct codec_ctx *c, const void *in,
				  size_t inlen, void *out, size_t outlen)
{
	ZSTD_DCtx_reset(c->zd, ZSTD_reset_session_only);
	ZSTD_inBuffer ib = {in, inlen, 0};
	ZSTD_outBuffer ob = {out, outlen, 0};
	size_t ret = 1;
	while (ob.pos < ob.size) {
		size_t last = ib.pos + ob.pos;
		ret = ZSTD_decompressStream(c->zd, &ob, &ib);
		if (ZSTD_isError(ret))
			return -EIO;
		if (ret == 0 && ob.pos < ob.size)
			return -EIO; /* frame ended short of a cluster */
		if (ib.pos + ob.pos == last)
			return -EIO; /* no progress: input exhausted */
	}
	/* A frame still going after one cluster of output holds more than a
	 * cluster: damaged, as qemu also decides. */
	return ret == 0 ? 0 : -EIO;
}

int codec_zstd_decompress(const void *in, size_t inlen, void *out,
			  size_t outlen)
{
	struct codec_ctx *c = zstd_ctx(false);
	if (!c)
		return -ENOMEM;
	/* One call straight into OUT when the frame is whole and exactly
	 * one cluster; anything else is judged by the streaming decoder,
	 * as qemu reads it. */
	size_t flen = ZSTD_findFrameCompressedSize(in, inlen);
	if (!ZSTD_isError(flen) &&
	    ZSTD_decompressDCtx(c->zd, out, outlen, in, flen) == outlen)
		return 0;
	return zstd_stream_decompress(c, in, inlen, out, outlen);
}

/* Deflate IN with stream S at LEVEL (WBITS: window and wrapper),
 * creating the stream on first use. */
static ssize_t zlib_deflate(struct zstream *s, int level, int wbits,
			    const void *in, size_t inlen, void *out,
			    size_t outcap)
{
	z_stream *zs = &s->zs;
	if (!s->init) {
		memset(zs, 0, sizeof(*zs));
		if (deflateInit2(zs, level, Z_DEFLATED, wbits, 9,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		s->init = true;
		s->level = level;
	} else if (deflateReset(zs) != Z_OK) {
		return -EIO;
	}
	if (level != s->level) {
		/* Nothing is compressed yet: this only switches tables. */
		if (deflateParams(zs, level, Z_DEFAULT_STRATEGY) != Z_OK)
			return -EIO;
		s->level = level;
	}
	zs->next_in = (Bytef *)(uintptr_t)in;
	zs->avail_in = (uInt)inlen;
	zs->next_out = out;
	zs->avail_out = (uInt)outcap;
	if (deflate(zs, Z_FINISH) != Z_STREAM_END)
		return -ENOSPC;
	return (ssize_t)(outcap - zs->avail_out);
}

#ifdef MIMG_HAVE_ISAL
/* Whether IN's bytes are about as evenly spread as random data's: the
 * sum of squared byte counts (collision entropy) at most 7% above what
 * uniform bytes give, plus room for the sampling noise of small inputs.
 * Cheap, and true for almost nothing that deflate shrinks. */
static bool bytes_look_random(const uint8_t *in, size_t len)
{
	uint32_t h[4][256] = {{0}};
	size_t i = 0;
	for (; i + 4 <= len; i += 4) { /* four tables: no store stalls */
		h[0][in[i]]++;
		h[1][in[i + 1]]++;
		h[2][in[i + 2]]++;
		h[3][in[i + 3]]++;
	}
	for (; i < len; i++)
		h[0][in[i]]++;
	uint64_t sq = 0, n = len;
	for (int b = 0; b < 256; b++) {
		uint64_t k = (uint64_t)h[0][b] + h[1][b] + h[2][b] + h[3][b];
		sq += k * k;
	}
	return 256 * sq <= n * (n + n / 14 + 512);
}

/*
 * Whether deflate with a window of 2^WBITS bytes cannot store IN in
 * fewer than MAXLEN bytes.  Compressing random data costs zlib as much
 * as compressing text and gains nothing; ISA-L's fastest level finds
 * out in a few percent of that time.  It asks only of inputs whose
 * bytes look random, and says no more than that its own output did not
 * fit: zlib's may be a little smaller, where both hardly compress.
 * OUT (MAXLEN bytes) is scratch.
 */
static bool deflate_would_not_fit(unsigned wbits, const void *in, size_t len,
				  void *out, size_t maxlen)
{
	if (len < 512 || len > UINT32_MAX || maxlen > UINT32_MAX ||
	    !bytes_look_random(in, len))
		return false;
	struct isal_zstream zs;
	isal_deflate_stateless_init(&zs);
	zs.level = 1;
	zs.hist_bits = (uint16_t)wbits;
	zs.end_of_stream = 1;
	zs.flush = NO_FLUSH;
	zs.next_in = (uint8_t *)(uintptr_t)in;
	zs.avail_in = (uint32_t)len;
	zs.next_out = out;
	zs.avail_out = (uint32_t)maxlen;
	return isal_deflate_stateless(&zs) == STATELESS_OVERFLOW;
}
#else
static bool deflate_would_not_fit(unsigned wbits, const void *in, size_t len,
				  void *out, size_t maxlen)
{
	(void)wbits, (void)in, (void)len, (void)out, (void)maxlen;
	return false; /* every input is compressed to find out */
}
#endif

/* IN as a zlib stream of stored (uncompressed) deflate blocks, what
 * zlib itself falls back to for incompressible input, for a fraction of
 * its work.  The length, or -ENOSPC when OUTCAP is too small. */
static ssize_t zlib_stored(const void *in, size_t inlen, void *out,
			   size_t outcap)
{
	size_t blocks = inlen ? (inlen + STORED_BLOCK_MAX - 1) /
					STORED_BLOCK_MAX
			      : 1;
	if (inlen > UINT32_MAX || outcap < 2 + 5 * blocks + 4 ||
	    outcap - (2 + 5 * blocks + 4) < inlen)
		return -ENOSPC;
	const uint8_t *p = in;
	uint8_t *o = out;
	size_t left = inlen;
	*o++ = 0x78; /* deflate, 32 KiB window */
	*o++ = 0x01; /* fastest level; header check bits */
	do {
		uint16_t n = (uint16_t)(left < STORED_BLOCK_MAX
						? left
						: STORED_BLOCK_MAX);
		left -= n;
		*o++ = left == 0; /* BFINAL, BTYPE 00 (stored) */
		st_le16(o, n);
		st_le16(o + 2, (uint16_t)~n);
		memcpy(o + 4, p, n);
		o += 4 + n;
		p += n;
	} while (left);
	st_be32(o, (uint32_t)adler32(adler32(0, NULL, 0), in, (uInt)inlen));
	return o + 4 - (uint8_t *)out;
}

ssize_t codec_deflate_raw4k(int level, const void *in, size_t inlen, void *out,
			    size_t outcap)
{
	struct codec_ctx *c = thread_ctx();
	if (!c)
		return -ENOMEM;
	level = clamp_level(level, DEFLATE_DEFAULT_LEVEL, ZLIB_MAX_LEVEL);
	if (deflate_would_not_fit(QCOW2_WINDOW_BITS, in, inlen, out, outcap))
		return -ENOSPC;
	return zlib_deflate(&c->def_raw, level, -QCOW2_WINDOW_BITS, in, inlen,
			    out, outcap);
}

ssize_t codec_deflate_zlib(int level, const void *in, size_t inlen, void *out,
			   size_t outcap)
{
	struct codec_ctx *c = thread_ctx();
	if (!c)
		return -ENOMEM;
	if (deflate_would_not_fit(MAX_WBITS, in, inlen, out,
				  outcap < inlen ? outcap : inlen))
		return zlib_stored(in, inlen, out, outcap);
#ifdef MIMG_HAVE_LIBDEFLATE
	level = clamp_level(level, LIBDEFLATE_DEFAULT_LEVEL,
			    LIBDEFLATE_MAX_LEVEL);
	if (!c->lc[level] &&
	    !(c->lc[level] = libdeflate_alloc_compressor(level)))
		return -ENOMEM;
	size_t n = libdeflate_zlib_compress(c->lc[level], in, inlen, out,
					    outcap);
	return n ? (ssize_t)n : -ENOSPC;
#else
	level = clamp_level(level, DEFLATE_DEFAULT_LEVEL, ZLIB_MAX_LEVEL);
	return zlib_deflate(&c->def_zlib, level, MAX_WBITS, in, inlen, out,
			    outcap);
#endif
}

ssize_t codec_zstd_compress(int level, const void *in, size_t inlen, void *out,
			    size_t outcap)
{
	struct codec_ctx *c = zstd_ctx(true);
	if (!c)
		return -ENOMEM;
	level = clamp_level(level, ZSTD_CLEVEL_DEFAULT, ZSTD_maxCLevel());
	size_t n = ZSTD_compressCCtx(c->zc, out, outcap, in, inlen, level);
	if (ZSTD_isError(n))
		return -ENOSPC;
	return (ssize_t)n;
}
