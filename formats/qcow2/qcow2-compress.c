/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Compressed clusters: raw deflate with a 4 KiB window (window bits -12)
 * or a zstd frame, as the header's compression_type says.  A compressed
 * cluster is stored at any byte offset and occupies whole 512-byte
 * sectors as far as the descriptor is concerned; trailing bytes after the
 * stream are ignored.  Decompression never writes past one cluster.
 *
 * Compression contexts are kept per thread (the convert engine calls
 * compress() from several threads) and released at thread exit.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "error.h"
#include "qcow2.h"

struct codec_ctx {
	z_stream def;
	bool def_init;
	z_stream inf;
	bool inf_init;
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
};

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *p)
{
	struct codec_ctx *c = p;
	if (!c)
		return;
	if (c->def_init)
		deflateEnd(&c->def);
	if (c->inf_init)
		inflateEnd(&c->inf);
	ZSTD_freeCCtx(c->zc);
	ZSTD_freeDCtx(c->zd);
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

static int inflate_raw(struct codec_ctx *c, const uint8_t *in, size_t inlen,
		       uint8_t *out, size_t outlen)
{
	if (!c->inf_init) {
		memset(&c->inf, 0, sizeof(c->inf));
		if (inflateInit2(&c->inf, -12) != Z_OK)
			return -ENOMEM;
		c->inf_init = true;
	} else if (inflateReset(&c->inf) != Z_OK) {
		return -EIO;
	}
	c->inf.next_in = (Bytef *)in;
	c->inf.avail_in = (uInt)inlen;
	c->inf.next_out = out;
	c->inf.avail_out = (uInt)outlen;
	int ret = inflate(&c->inf, Z_FINISH);
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) &&
	    c->inf.avail_out == 0)
		return 0;
	return -EIO;
}

static int zstd_decompress(struct codec_ctx *c, const uint8_t *in,
			   size_t inlen, uint8_t *out, size_t outlen)
{
	if (!c->zd && !(c->zd = ZSTD_createDCtx()))
		return -ENOMEM;
	ZSTD_DCtx_reset(c->zd, ZSTD_reset_session_only);
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, outlen, 0 };
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

int qcow2_decompress(struct qcow2 *s, const uint8_t *in, size_t inlen,
		     uint8_t *out, size_t outlen)
{
	struct codec_ctx *c = thread_ctx();
	if (!c)
		return mimg_err(-ENOMEM, "out of memory");
	int r = s->compression == QCOW2_COMPRESS_ZSTD ?
			zstd_decompress(c, in, inlen, out, outlen) :
			inflate_raw(c, in, inlen, out, outlen);
	if (r == -EIO)
		return mimg_err(-EIO, "%s data does not decompress to one "
				"cluster",
				s->compression == QCOW2_COMPRESS_ZSTD ?
					"zstd" :
					"deflate");
	if (r < 0)
		return mimg_err(r, "out of memory for decompression");
	return 0;
}

ssize_t qcow2_compress_buf(enum qcow2_compression type, const void *in,
			   size_t inlen, void *out, size_t outcap)
{
	struct codec_ctx *c = thread_ctx();
	if (!c)
		return -ENOMEM;
	if (type == QCOW2_COMPRESS_ZSTD) {
		if (!c->zc && !(c->zc = ZSTD_createCCtx()))
			return -ENOMEM;
		size_t n = ZSTD_compressCCtx(c->zc, out, outcap, in, inlen,
					     ZSTD_CLEVEL_DEFAULT);
		if (ZSTD_isError(n))
			return -ENOSPC;
		return (ssize_t)n;
	}
	if (!c->def_init) {
		memset(&c->def, 0, sizeof(c->def));
		if (deflateInit2(&c->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12,
				 9, Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		c->def_init = true;
	} else if (deflateReset(&c->def) != Z_OK) {
		return -EIO;
	}
	c->def.next_in = (Bytef *)in;
	c->def.avail_in = (uInt)inlen;
	c->def.next_out = out;
	c->def.avail_out = (uInt)outcap;
	int ret = deflate(&c->def, Z_FINISH);
	if (ret != Z_STREAM_END)
		return -ENOSPC;
	return (ssize_t)(outcap - c->def.avail_out);
}

uint32_t qcow2_compress_unit(struct mimg *img)
{
	struct qcow2 *s = qcow2_of(img);
	/* Compressed clusters are never encrypted: none in encrypted
	 * images, as qemu refuses them. */
	return s->data_file_name || s->crypt_method ? 0 : s->cluster_size;
}

ssize_t qcow2_compress(struct mimg *img, const void *in, size_t inlen,
		       void *out, size_t outcap)
{
	struct qcow2 *s = qcow2_of(img);
	/* Only worth it when it saves at least a byte of the cluster. */
	if (outcap > s->cluster_size - 1)
		outcap = s->cluster_size - 1;
	ssize_t n = qcow2_compress_buf(s->compression, in, inlen, out, outcap);
	if (n == -ENOSPC || (n >= 0 && (size_t)n >= inlen))
		return -ENOSPC;
	return n;
}

int qcow2_write_compressed(struct mimg *img, uint64_t off, const void *data,
			   size_t len, bool compressed)
{
	struct qcow2 *s = qcow2_of(img);
	if (!compressed) {
		struct iovec v = { (void *)data, len };
		return qcow2_pwritev(img, &v, 1, off, len);
	}
	if (s->data_file_name || s->crypt_method ||
	    (off & (s->cluster_size - 1)) || len == 0 ||
	    len >= s->cluster_size)
		return mimg_err(-EINVAL, "%s: qcow2: bad compressed write at "
				"%llu (%zu bytes)", qcow2_path(s),
				(unsigned long long)off, len);

	uint64_t gcl = off >> s->cluster_bits, host;
	struct qcow2_inflight inf;
	uint8_t *l2;
	uint32_t idx;
	int r;

	pthread_mutex_lock(&s->lock);
	qcow2_inflight_begin(s, &inf, gcl, gcl);
	r = qcow2_refuse_if_corrupt(s);
	if (r == 0)
		r = qcow2_alloc_bytes(s, len, &host);
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		r = mimg_file_pwrite(s->file, data, len, host);
	pthread_mutex_lock(&s->lock);
	/* Exit-safe: the refcount and data must be durable before the
	 * entry is published. */
	if (r == 0 && s->exit_safe)
		r = qcow2_data_barrier(s);
	if (r == 0)
		r = qcow2_get_l2(s, gcl, true, &l2, &idx);
	if (r == 0) {
		uint64_t old = qcow2_l2_entry(s, l2, idx);
		uint64_t extra = ((host + len - 1) >> 9) - (host >> 9);
		if (old & (QCOW2_OFLAG_COMPRESSED | QCOW2_OFFSET_MASK)) {
			uint64_t go = old & QCOW2_OFFSET_MASK, gl = s->cluster_size;
			if (old & QCOW2_OFLAG_COMPRESSED)
				qcow2_compressed_extent(s, old, &go, &gl);
			if ((r = qcow2_meta_guard(s, go, gl,
						  "freeing a cluster")) < 0)
				goto done;
		}
		uint64_t e = QCOW2_OFLAG_COMPRESSED | host |
			     (extra << s->csize_shift);
		qcow2_set_l2(s, l2, idx, e, 0);
		if (old & QCOW2_OFLAG_COMPRESSED) {
			uint64_t coff, clen;
			qcow2_compressed_extent(s, old, &coff, &clen);
			r = qcow2_defer_free(s, coff, clen, false);
		} else if (old & QCOW2_OFFSET_MASK) {
			r = qcow2_defer_free(s, old & QCOW2_OFFSET_MASK,
					     s->cluster_size, true);
		}
		if (r == 0)
			r = qcow2_publish_l2(s);
	}
done:
	qcow2_inflight_end(s, &inf);
	pthread_mutex_unlock(&s->lock);
	return r;
}
