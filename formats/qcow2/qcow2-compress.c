/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Compressed clusters: raw deflate with a 4 KiB window (window bits -12)
 * or a zstd frame, as the header's compression_type says.  A compressed
 * cluster is stored at any byte offset and occupies whole 512-byte
 * sectors as far as the descriptor is concerned; trailing bytes after the
 * stream are ignored.  Decompression never writes past one cluster.
 *
 * The codecs and their per-thread contexts are libmimg's (codec.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "error.h"
#include "qcow2.h"

int qcow2_decompress(struct qcow2 *s, const uint8_t *in, size_t inlen,
		     uint8_t *out, size_t outlen)
{
	int r = s->compression == QCOW2_COMPRESS_ZSTD
			? codec_zstd_decompress(in, inlen, out, outlen)
			: codec_inflate_raw(in, inlen, out, outlen);
	if (r == -EIO)
		return mimg_err(-EIO,
				"%s data does not decompress to one "
				"cluster",
				s->compression == QCOW2_COMPRESS_ZSTD
					? "zstd"
					: "deflate");
	if (r < 0)
		return mimg_err(r, "out of memory for decompression");
	return 0;
}

ssize_t qcow2_compress_buf(enum qcow2_compression type, int level,
			   const void *in, size_t inlen, void *out,
			   size_t outcap)
{
	if (type == QCOW2_COMPRESS_ZSTD)
		return codec_zstd_compress(level, in, inlen, out, outcap);
	return codec_deflate_raw4k(level, in, inlen, out, outcap);
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
	ssize_t n = qcow2_compress_buf(s->compression, img->compress_level, in,
				       inlen, out, outcap);
	if (n == -ENOSPC || (n >= 0 && (size_t)n >= inlen))
		return -ENOSPC;
	return n;
}

int qcow2_write_compressed(struct mimg *img, uint64_t off, const void *data,
			   size_t len, bool compressed)
{
	struct qcow2 *s = qcow2_of(img);
	if (!compressed) {
		struct iovec v = {(void *)data, len};
		return qcow2_pwritev(img, &v, 1, off, len);
	}
	qcow2_bitmaps_dirty(s, off, len);
	if (s->data_file_name || s->crypt_method ||
	    (off & (s->cluster_size - 1)) || len == 0 || len >= s->cluster_size)
		return mimg_err(-EINVAL,
				"%s: qcow2: bad compressed write at "
				"%llu (%zu bytes)",
				qcow2_path(s), (unsigned long long)off, len);

	uint64_t gcl = off >> s->cluster_bits, host;
	struct qcow2_inflight inf;
	uint8_t *l2;
	uint32_t idx;
	int r;

	pthread_mutex_lock(&s->lock);
	qcow2_inflight_begin(s, &inf, gcl, gcl);
	r = qcow2_refuse_if_corrupt(s);
	/* A new L2 table goes before the data, as qemu places it: the file
	 * then ends with the compressed bytes, not a table's full cluster
	 * (the table is looked up again below: the lock is let go). */
	if (r == 0)
		r = qcow2_get_l2(s, gcl, true, &l2, &idx);
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
			uint64_t go = old & QCOW2_OFFSET_MASK,
				 gl = s->cluster_size;
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
