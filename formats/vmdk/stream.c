/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Writing streamOptimized extents in one pass.  mimg creates them in the
 * layout of qemu-img and VMware's open-vmdk, which image inspectors
 * (OpenStack's among them) accept because the header names the grain
 * directory:
 *
 *   header (real grain directory offset) | descriptor | grain directory |
 *   every grain table, preallocated | padding to the overhead | grain
 *   marker + zlib data ... | end-of-stream marker
 *
 * An empty stream in VMware's footer layout (grain directory offset all
 * ones, no preallocated tables) is filled the way VMware's exporters write
 * it instead: grain tables after their grains behind GT markers, then the
 * GD marker and directory, the footer (header copy with the real offset)
 * and the end-of-stream marker.
 *
 * Grains are compressed by the convert engine's threads through
 * vmdk_compress() (thread-safe: codec.c, at qemu-img's level 6 by default,
 * or with libdeflate where built in at its level 7: no larger than zlib's
 * level 6 on text or binaries, and faster) and handed to
 * vmdk_write_compressed() in ascending order; the writer appends them to
 * a buffer written in large writes by a thread of its own (seqout.h), so
 * that the conversion's ordered part does not wait for the host file.  A grain table is written as soon as
 * the stream moves past it; in the footer layout tables without grains
 * are not written (their directory entry stays 0).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "codec.h"
#include "endian.h"
#include "error.h"
#include "file.h"
#include "image.h"
#include "iov.h"
#include "seqout.h"
#include "vmdk.h"

#define OBUF_SIZE (2u << 20)
/* The one being filled and up to three written or waiting: writing 2 MiB
 * into tmpfs took 0.8 ms here, and compressing the input that fills it
 * (about 4.5 MiB of the bench image) about 37 ms of CPU, 2.3 ms on 16
 * workers, so the writer keeps up with a few buffers. */
#define OBUF_COUNT 4

struct vmdk_stream_writer {
	struct vmdk_sparse *sp;
	uint64_t data_start; /* bytes */
	uint64_t pos;	     /* next file offset */
	uint64_t next_grain; /* grains below this are written */
	bool front;	     /* tables preallocated at the front */
	uint32_t *gd;	     /* front: where each table goes */
	uint32_t *rgd;	     /* front: the redundant tables, or NULL */
	uint32_t *gt;
	uint64_t cur_gdi;
	bool gt_used;
	bool started;
	bool dirty; /* grains written since the last tail */
	int err;
	struct mimg_seqout *out;
	uint8_t *obuf; /* pending output at pos - olen (out's buffer) */
	size_t olen;
	uint8_t *cbuf; /* for grains handed over uncompressed */
	/* Plain sequential writes (mimg_pwrite) collect a grain here. */
	pthread_mutex_t lock;
	uint8_t *pend;
	uint64_t pend_grain; /* NO_GRAIN when empty */
};

#define NO_GRAIN UINT64_MAX

/* Hand the pending output to the writing thread. */
static int obuf_flush(struct vmdk_stream_writer *w)
{
	int r = mimg__seqout_submit(w->out, &w->obuf, w->olen,
				    w->pos - w->olen);
	w->olen = 0;
	return r;
}

/* Everything appended is in the file (before writing elsewhere in it,
 * or truncating it). */
static int obuf_sync(struct vmdk_stream_writer *w)
{
	int r = obuf_flush(w);
	return r < 0 ? r : mimg__seqout_drain(w->out);
}

/* Append LEN bytes (padded with zeroes to a sector) to the output. */
static int emit(struct vmdk_stream_writer *w, const void *a, size_t alen,
		const void *b, size_t blen)
{
	size_t len = alen + blen;
	size_t padded = (len + VMDK_SECTOR - 1) & ~(size_t)(VMDK_SECTOR - 1);
	int r;

	if ((w->pos + padded) / VMDK_SECTOR > UINT32_MAX)
		return mimg_err(-EFBIG,
				"%s: vmdk: stream too large for 32-bit "
				"sector numbers",
				w->sp->path);
	if (w->olen + padded > OBUF_SIZE && (r = obuf_flush(w)) < 0)
		return r;
	if (padded > OBUF_SIZE) {
		/* Larger than the buffer: write directly. */
		uint8_t pad[VMDK_SECTOR] = {0};
		struct iovec v[3] = {{(void *)a, alen},
				     {(void *)b, blen},
				     {pad, padded - len}};
		r = mimg_file_pwritev(w->sp->file, v, 3, w->pos);
		if (r < 0)
			return r;
		w->pos += padded;
		return 0;
	}
	uint8_t *o = w->obuf + w->olen;
	memcpy(o, a, alen);
	if (blen)
		memcpy(o + alen, b, blen);
	memset(o + len, 0, padded - len);
	w->olen += padded;
	w->pos += padded;
	return 0;
}

static int emit_meta_marker(struct vmdk_stream_writer *w, uint64_t sectors,
			    uint32_t type)
{
	uint8_t m[16];
	st_le64(m, sectors);
	st_le32(m + 8, 0);
	st_le32(m + 12, type);
	return emit(w, m, sizeof(m), NULL, 0);
}

static int emit_table(struct vmdk_stream_writer *w, const uint32_t *t,
		      uint64_t n, uint32_t type, uint32_t *sector)
{
	uint64_t bytes = n * 4, sectors = div_round_up_u64(bytes, VMDK_SECTOR);
	uint32_t *le = malloc(bytes);
	int r;

	if (!le)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n; i++)
		st_le32(&le[i], t[i]);
	r = emit_meta_marker(w, sectors, type);
	if (r == 0) {
		*sector = (uint32_t)(w->pos / VMDK_SECTOR);
		r = emit(w, le, bytes, NULL, 0);
	}
	free(le);
	return r;
}

/* Write the current grain table where the front layout preallocated it
 * (and its redundant copy). */
static int write_gt_in_place(struct vmdk_stream_writer *w)
{
	struct vmdk_sparse *sp = w->sp;
	uint32_t *le = malloc(sp->gt_bytes);
	int r;

	if (!le)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < sp->gt_entries; i++)
		st_le32(&le[i], w->gt[i]);
	r = mimg_file_pwrite(sp->file, le, sp->gt_bytes,
			     (uint64_t)w->gd[w->cur_gdi] * VMDK_SECTOR);
	if (r == 0 && w->rgd)
		r = mimg_file_pwrite(sp->file, le, sp->gt_bytes,
				     (uint64_t)w->rgd[w->cur_gdi] *
					     VMDK_SECTOR);
	free(le);
	return r;
}

static int flush_gt(struct vmdk_stream_writer *w)
{
	int r;
	if (!w->gt_used)
		return 0;
	if (w->front)
		r = write_gt_in_place(w);
	else
		r = emit_table(w, w->gt, w->sp->gt_entries, VMDK_MARKER_GT,
			       &w->gd[w->cur_gdi]);
	memset(w->gt, 0, w->sp->gt_bytes);
	w->gt_used = false;
	return r;
}

/* True when every table of directory GD was preallocated below the
 * grains (at DATA_START bytes), so that appending grains never
 * overwrites one. */
static bool tables_before(const struct vmdk_sparse *sp, const uint32_t *gd,
			  uint64_t data_start)
{
	for (uint64_t i = 0; i < sp->gd_entries; i++)
		if (gd[i] == 0 ||
		    (uint64_t)gd[i] * VMDK_SECTOR + sp->gt_bytes > data_start)
			return false;
	return true;
}

static uint32_t *copy_gd(const struct vmdk_sparse *sp, const uint32_t *gd)
{
	uint32_t *c = malloc(sp->gd_entries * 4);
	if (c)
		memcpy(c, gd, sp->gd_entries * 4);
	return c;
}

/* 1 when every grain table of the directory is all zeroes (0 when not,
 * or a negative errno).  Tables that follow each other on disk, as they
 * do where qemu-img and mimg preallocate them, are read in large runs:
 * a fresh 1 TiB image has 32768 of them. */
static int tables_empty(struct vmdk_sparse *sp)
{
	const uint64_t max_run = 1u << 20;
	uint64_t i = 0;
	uint8_t *buf = malloc(max_run > sp->gt_bytes ? max_run : sp->gt_bytes);
	int r = 1;

	if (!buf)
		return mimg_err(-ENOMEM, "out of memory");
	while (i < sp->gd_entries && r == 1) {
		uint64_t n = 1, off = (uint64_t)sp->gd[i] * VMDK_SECTOR;
		if (sp->gd[i] == 0) {
			i++;
			continue;
		}
		while (i + n < sp->gd_entries &&
		       (n + 1) * sp->gt_bytes <= max_run &&
		       (uint64_t)sp->gd[i + n] * VMDK_SECTOR ==
			       off + n * sp->gt_bytes)
			n++;
		if (!ck_range_within(off, n * sp->gt_bytes, sp->file_end))
			r = mimg_err(-EINVAL,
				     "%s: vmdk: grain table %" PRIu64
				     " at sector %" PRIu32 " is past the end "
				     "of the file (truncated image?)",
				     sp->path, i, sp->gd[i]);
		else if ((r = mimg_file_pread_exact(sp->file, buf,
						    n * sp->gt_bytes, off,
						    "vmdk grain table")) == 0)
			r = buf_is_zero(buf, n * sp->gt_bytes) ? 1 : 0;
		i += n;
	}
	free(buf);
	return r;
}

int vmdk_stream_start(struct mimg *img)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_sparse *sp = s->ext[0].sp;
	struct vmdk_stream_writer *w;
	uint64_t start;

	/* Only an image without any grain is rewritten as a stream. */
	int r = tables_empty(sp);
	if (r <= 0)
		return r; /* not empty: read-only use */

	/* Grains go after the header and the descriptor. */
	uint64_t meta_end = 1, desc_end;
	if (sp->desc_sector && sp->desc_sectors &&
	    ck_add_u64(sp->desc_sector, sp->desc_sectors, &desc_end))
		meta_end = max_u64(meta_end, desc_end);
	if (!ck_mul_u64(sp->overhead, VMDK_SECTOR, &start) ||
	    sp->overhead < meta_end || start > sp->file_end)
		return mimg_err(-EINVAL,
				"%s: vmdk: invalid overhead of %" PRIu64
				" sectors",
				sp->path, sp->overhead);
	/* The header names the directory: its tables must be in place. */
	bool front = !sp->gd_at_end;
	if (front && (!tables_before(sp, sp->gd, start) ||
		      (sp->rgd && !tables_before(sp, sp->rgd, start))))
		return 0; /* read-only use */
	w = calloc(1, sizeof(*w));
	if (!w)
		return mimg_err(-ENOMEM, "out of memory");
	w->sp = sp;
	w->data_start = start;
	w->pos = start;
	w->cur_gdi = 0;
	w->pend_grain = NO_GRAIN;
	pthread_mutex_init(&w->lock, NULL);
	w->front = front;
	w->gd = front ? copy_gd(sp, sp->gd) : calloc(sp->gd_entries, 4);
	w->gt = calloc(1, sp->gt_bytes);
	if (front && sp->rgd)
		w->rgd = copy_gd(sp, sp->rgd);
	if (!w->gd || !w->gt || (front && sp->rgd && !w->rgd) ||
	    mimg__seqout_new(sp->file, OBUF_SIZE, OBUF_COUNT, &w->out,
			     &w->obuf) < 0) {
		vmdk_stream_free(w);
		return mimg_err(-ENOMEM, "out of memory");
	}
	s->sw = w;
	return 0;
}

void vmdk_stream_free(struct vmdk_stream_writer *w)
{
	if (!w)
		return;
	free(w->gd);
	free(w->rgd);
	free(w->gt);
	mimg__seqout_free(w->out);
	free(w->cbuf);
	free(w->pend);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

bool vmdk_stream_only(struct mimg *img)
{
	struct vmdk_state *s = img->priv;
	return s->sw != NULL;
}

/* Compressed writes to hosted sparse extents without compression are
 * plain writes, as in qemu-img 7.2 (convert -c to monolithicSparse or
 * twoGbMaxExtentSparse succeeds with plain grains).  Flat extents have no
 * unit: qemu-img refuses them ("invalid cluster size"). */
static uint64_t plain_sparse_unit(const struct vmdk_state *s)
{
	uint64_t unit = 0;
	for (size_t i = 0; i < s->n_ext; i++) {
		const struct vmdk_extent *e = &s->ext[i];
		if (e->type != VMDK_EXT_SPARSE || !e->sp || e->sp->compressed ||
		    (unit && e->sp->grain_bytes != unit))
			return 0;
		unit = e->sp->grain_bytes;
	}
	return unit;
}

uint32_t vmdk_compress_unit(struct mimg *img)
{
	struct vmdk_state *s = img->priv;
	uint64_t unit = s->sw ? s->sw->sp->grain_bytes : plain_sparse_unit(s);
	return unit > UINT32_MAX ? 0 : (uint32_t)unit;
}

static ssize_t deflate_grain(int level, const void *in, size_t inlen, void *out,
			     size_t outcap)
{
	ssize_t n = codec_deflate_zlib(level, in, inlen, out, outcap);
	if (n == -ENOMEM)
		return mimg_err(-ENOMEM, "out of memory for deflate");
	return n;
}

ssize_t vmdk_compress(struct mimg *img, const void *in, size_t inlen, void *out,
		      size_t outcap)
{
	struct vmdk_state *s = img->priv;
	if (!s->sw)
		return -ENOSPC; /* plain sparse: store it as it is */
	return deflate_grain(img->compress_level, in, inlen, out, outcap);
}

/* Append grain OFF/grain_bytes (w->lock held). */
static int put_grain(struct mimg *img, struct vmdk_stream_writer *w,
		     uint64_t off, const void *data, size_t len,
		     bool compressed)
{
	struct vmdk_sparse *sp;
	uint64_t grain, gdi;
	uint8_t m[12];
	int r;

	if (w->err)
		return w->err;
	sp = w->sp;
	grain = off / sp->grain_bytes;
	if (off % sp->grain_bytes || grain < w->next_grain ||
	    grain >= div_round_up_u64(sp->capacity, sp->grain_sectors))
		return mimg_err(-EINVAL,
				"%s: vmdk: stream write at %" PRIu64
				" is not at a new grain in ascending order",
				img->filename, off);
	if (!w->started) {
		/* Drop the empty image's metadata: the stream replaces it. */
		r = mimg_file_truncate(sp->file, w->data_start);
		if (r < 0)
			return r;
		w->started = true;
	}
	if (!compressed) {
		size_t cap = (size_t)sp->grain_bytes * 2 + 4096;
		if (!w->cbuf && !(w->cbuf = malloc(cap)))
			return mimg_err(-ENOMEM, "out of memory");
		uint8_t *g = NULL;
		if (len < sp->grain_bytes) {
			g = calloc(1, sp->grain_bytes);
			if (!g)
				return mimg_err(-ENOMEM, "out of memory");
			memcpy(g, data, len);
			data = g;
			len = sp->grain_bytes;
		}
		ssize_t n = deflate_grain(img->compress_level, data, len,
					  w->cbuf, cap);
		free(g);
		if (n < 0)
			return mimg_err((int)n,
					"%s: vmdk: cannot compress "
					"grain %" PRIu64,
					img->filename, grain);
		data = w->cbuf;
		len = (size_t)n;
	}
	gdi = grain / sp->gt_entries;
	if (gdi != w->cur_gdi) {
		if ((r = flush_gt(w)) < 0)
			goto fail;
		w->cur_gdi = gdi;
	}
	st_le64(m, grain * sp->grain_sectors);
	st_le32(m + 8, (uint32_t)len);
	w->gt[grain % sp->gt_entries] = (uint32_t)(w->pos / VMDK_SECTOR);
	w->gt_used = true;
	r = emit(w, m, sizeof(m), data, len);
	if (r < 0)
		goto fail;
	w->next_grain = grain + 1;
	w->dirty = true;
	return 0;
fail:
	w->err = r;
	return r;
}

/* Emit the grain collected by plain writes, unless it is all zeroes
 * (w->lock held). */
static int flush_pending(struct mimg *img, struct vmdk_stream_writer *w)
{
	uint64_t g = w->pend_grain;
	int r = 0;

	if (g == NO_GRAIN)
		return 0;
	w->pend_grain = NO_GRAIN;
	if (!buf_is_zero(w->pend, w->sp->grain_bytes))
		r = put_grain(img, w, g * w->sp->grain_bytes, w->pend,
			      w->sp->grain_bytes, false);
	if (r == 0 && w->next_grain <= g)
		w->next_grain = g + 1;
	return r;
}

int vmdk_write_compressed(struct mimg *img, uint64_t off, const void *data,
			  size_t len, bool compressed)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_stream_writer *w = s->sw;
	int r;

	if (!w && !compressed && plain_sparse_unit(s)) {
		struct iovec v = {(void *)(uintptr_t)data, len};
		return vmdk_pwritev(img, &v, 1, off, len);
	}
	if (!w)
		return mimg_err(-ENOTSUP,
				"%s: vmdk: not a fresh "
				"streamOptimized image",
				img->filename);
	pthread_mutex_lock(&w->lock);
	r = flush_pending(img, w);
	if (r == 0)
		r = put_grain(img, w, off, data, len, compressed);
	pthread_mutex_unlock(&w->lock);
	return r;
}

/* Plain writes into a fresh stream: ascending, any alignment; gaps read
 * as zeroes.  Each grain is compressed when the writes leave it. */
int vmdk_stream_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
			uint64_t off, size_t len)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_stream_writer *w = s->sw;
	uint64_t gb = w->sp->grain_bytes;
	uint64_t end_bytes = w->sp->capacity * VMDK_SECTOR;
	size_t skip = 0;
	int r = 0;

	pthread_mutex_lock(&w->lock);
	if (!w->pend && !(w->pend = malloc(gb)))
		r = mimg_err(-ENOMEM, "out of memory");
	while (r == 0 && skip < len) {
		uint64_t g = off / gb, in = off % gb;
		size_t n = (size_t)min_u64(len - skip, gb - in);
		if (g != w->pend_grain) {
			if (g < w->next_grain ||
			    (w->pend_grain != NO_GRAIN && g < w->pend_grain)) {
				r = mimg_err(-EINVAL,
					     "%s: vmdk: write at %" PRIu64
					     " goes back: streamOptimized "
					     "images are written sequentially",
					     img->filename, off);
				break;
			}
			if ((r = flush_pending(img, w)) < 0)
				break;
			w->pend_grain = g;
			memset(w->pend, 0, gb);
		}
		iov_to_buf(iov, iovcnt, skip, w->pend + in, n);
		skip += n;
		off += n;
		if (in + n == gb || off >= end_bytes)
			r = flush_pending(img, w);
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

/* The footer layout's tail before the end-of-stream marker: pending
 * grain table, GD and footer (w->lock held, output buffer flushed). */
static int write_footer_tail(struct vmdk_stream_writer *w)
{
	struct vmdk_sparse *sp = w->sp;
	uint8_t h[VMDK_SECTOR];
	uint32_t gd_sector = 0;
	int r = 0;

	uint32_t saved_gde = w->gd[w->cur_gdi];
	if (w->gt_used)
		r = emit_table(w, w->gt, sp->gt_entries, VMDK_MARKER_GT,
			       &w->gd[w->cur_gdi]);
	if (r == 0)
		r = emit_table(w, w->gd, sp->gd_entries, VMDK_MARKER_GD,
			       &gd_sector);
	w->gd[w->cur_gdi] = saved_gde;
	/* The header keeps "GD at end"; the footer has the real offset. */
	vmdk_fill_header(h, 3,
			 VMDK_FLAG_NL_DETECT | VMDK_FLAG_COMPRESSED |
				 VMDK_FLAG_MARKERS,
			 sp->capacity, sp->grain_sectors, sp->desc_sector,
			 sp->desc_sectors, sp->gt_entries, 0, VMDK_GD_AT_END,
			 sp->overhead);
	if (r == 0)
		r = mimg_file_pwrite(sp->file, h, sizeof(h), 0);
	st_le64(h + 56, gd_sector);
	if (r == 0)
		r = emit_meta_marker(w, 1, VMDK_MARKER_FOOTER);
	if (r == 0)
		r = emit(w, h, sizeof(h), NULL, 0);
	return r;
}

/* Write the tail after the grains written so far: the pending grain table
 * (in place, or in the footer layout with GD and footer) and the
 * end-of-stream marker.  The writer's position stays before the tail, so
 * more grains may follow (they overwrite it) and a later call writes it
 * again: flush makes the file complete at any point. */
int vmdk_stream_finish(struct mimg *img)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_stream_writer *w = s->sw;
	struct vmdk_sparse *sp;
	uint64_t tail;
	int r;

	if (!w)
		return 0;
	pthread_mutex_lock(&w->lock);
	r = flush_pending(img, w);
	if (r < 0 || !w->dirty || w->err) {
		r = r < 0 ? r : w->err;
		pthread_mutex_unlock(&w->lock);
		return r;
	}
	sp = w->sp;
	r = obuf_sync(w);
	if (r < 0)
		goto fail;
	tail = w->pos;
	if (w->front)
		r = w->gt_used ? write_gt_in_place(w) : 0;
	else
		r = write_footer_tail(w);
	if (r == 0)
		r = emit_meta_marker(w, 0, VMDK_MARKER_EOS);
	if (r == 0)
		r = obuf_sync(w);
	if (r == 0)
		r = mimg_file_truncate(sp->file, w->pos);
	if (r == 0)
		sp->file_end = w->pos;
	w->pos = tail;
	if (r < 0)
		goto fail;
	w->dirty = false;
	pthread_mutex_unlock(&w->lock);
	return 0;
fail:
	w->err = r;
	pthread_mutex_unlock(&w->lock);
	return mimg_err_prefix(r, "%s: vmdk: cannot finish the stream",
			       img->filename);
}
