/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Raw images written compressed, the way FreeBSD publishes them
 * (disk.raw.xz): the sources' content in order, zero runs included (a
 * compressor makes little of them), into one xz or gzip stream through
 * libarchive's filters, or one zstd frame through libzstd.  xz and zstd
 * use one thread per online CPU; xz then cuts the stream into blocks,
 * which lets decoders work in parallel too.  Each result declares the
 * size it unpacks to (xz index, zstd frame header, gzip ISIZE modulo
 * 2^32), so that readers, mimg among them, can stream it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "archive-sink.h"
#include "dynlib.h"
#include "error.h"
#include "image.h"
#include "file.h"
#include "mimg.h"

#define READ_CHUNK (4u << 20)

/* Where compressed bytes go: the output file, in order. */
struct packed_out {
	struct mimg_sink out;
	const char *path;
	/* one of these */
	struct archive *a;
	ZSTD_CCtx *z;
	uint8_t *zbuf;
	size_t zcap;
};

static int threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static int archive_fail(struct packed_out *o)
{
	return mimg__archive_write_fail(o->a, o->path, "compressing");
}

/* xz or gzip: libarchive's "raw" format is the one entry's bytes. */
static int archive_start(struct packed_out *o, const char *codec, int level,
			 uint64_t total)
{
	struct archive_entry *e;
	char text[16];
	bool xz = strcmp(codec, "xz") == 0;
	int r;

	if ((r = mimg__archive_lib_load(o->path)) < 0)
		return r;
	if (!(o->a = mimg__libarchive.archive_write_new()) ||
	    !(e = mimg__libarchive.archive_entry_new()))
		return mimg_err(-ENOMEM, "out of memory");
	r = xz ? mimg__libarchive.archive_write_add_filter_xz(o->a)
	       : mimg__libarchive.archive_write_add_filter_gzip(o->a);
	if (r == ARCHIVE_OK)
		r = mimg__libarchive.archive_write_set_format_raw(o->a);
	/* no padding after the compressed stream */
	if (r == ARCHIVE_OK)
		r = mimg__libarchive.archive_write_set_bytes_in_last_block(o->a,
									   1);
	if (r == ARCHIVE_OK && level) {
		snprintf(text, sizeof(text), "%d", level);
		r = mimg__libarchive.archive_write_set_filter_option(
			o->a, NULL, "compression-level", text);
	}
	/* a libarchive or liblzma without threads says so: one thread */
	if (r == ARCHIVE_OK && xz && threads() > 1) {
		snprintf(text, sizeof(text), "%d", threads());
		mimg__libarchive.archive_write_set_filter_option(o->a, "xz",
								 "threads",
								 text);
	}
	if (r == ARCHIVE_OK)
		r = mimg__libarchive
			    .archive_write_open2(o->a, &o->out, NULL,
						 mimg__sink_archive_write, NULL,
						 NULL);
	mimg__libarchive.archive_entry_set_pathname(e, "data");
	mimg__libarchive.archive_entry_set_filetype(e, AE_IFREG);
	mimg__libarchive.archive_entry_set_size(e, (la_int64_t)total);
	if (r == ARCHIVE_OK)
		r = mimg__libarchive.archive_write_header(o->a, e);
	mimg__libarchive.archive_entry_free(e);
	return r == ARCHIVE_OK ? 0 : archive_fail(o);
}

static int zstd_fail(struct packed_out *o, size_t rc)
{
	return mimg_err(-EIO, "%s: compressing: %s", o->path,
			ZSTD_getErrorName(rc));
}

static int zstd_start(struct packed_out *o, int level, uint64_t total)
{
	size_t rc;
	o->zcap = ZSTD_CStreamOutSize();
	if (!(o->z = ZSTD_createCCtx()) || !(o->zbuf = malloc(o->zcap)))
		return mimg_err(-ENOMEM, "out of memory");
	if (ZSTD_isError(rc = ZSTD_CCtx_setParameter(o->z,
						     ZSTD_c_compressionLevel,
						     level ? level : 3)) ||
	    ZSTD_isError(rc = ZSTD_CCtx_setParameter(o->z, ZSTD_c_checksumFlag,
						     1)) ||
	    ZSTD_isError(rc = ZSTD_CCtx_setPledgedSrcSize(o->z, total)))
		return zstd_fail(o, rc);
	/* a libzstd built without threads refuses workers: one thread */
	if (threads() > 1)
		ZSTD_CCtx_setParameter(o->z, ZSTD_c_nbWorkers, threads());
	return 0;
}

static int zstd_feed(struct packed_out *o, const void *buf, size_t n,
		     ZSTD_EndDirective end)
{
	ZSTD_inBuffer in = {buf, n, 0};
	size_t rc;
	do {
		ZSTD_outBuffer out = {o->zbuf, o->zcap, 0};
		rc = ZSTD_compressStream2(o->z, &out, &in, end);
		if (ZSTD_isError(rc))
			return zstd_fail(o, rc);
		int r = out.pos ? mimg__sink_append(&o->out, o->zbuf, out.pos)
				: 0;
		if (r < 0)
			return r;
	} while (end == ZSTD_e_end ? rc != 0 : in.pos < in.size);
	return 0;
}

static int feed(struct packed_out *o, const void *buf, size_t n)
{
	if (o->z)
		return zstd_feed(o, buf, n, ZSTD_e_continue);
	return mimg__libarchive.archive_write_data(o->a, buf, n) ==
			       (la_ssize_t)n
		       ? 0
		       : archive_fail(o);
}

static int finish(struct packed_out *o)
{
	if (o->z)
		return zstd_feed(o, NULL, 0, ZSTD_e_end);
	return mimg__libarchive.archive_write_close(o->a) == ARCHIVE_OK
		       ? 0
		       : archive_fail(o);
}

/* SRC's content in order: zero runs from a zero buffer, the rest read. */
static int feed_image(struct packed_out *o, struct mimg *src, uint8_t *buf,
		      const struct mimg_convert_opts *copts, uint64_t *done,
		      uint64_t total)
{
	uint64_t size = mimg_size(src);
	for (uint64_t off = 0, pnum; off < size; off += pnum) {
		uint64_t len = size - off < READ_CHUNK ? size - off
						       : READ_CHUNK;
		unsigned st;
		int r = mimg_block_status_chain(src, off, len, &pnum, &st, NULL,
						NULL, 0);
		if (r < 0)
			return r;
		if (st & MIMG_BS_ZERO) {
			memset(buf, 0, (size_t)pnum);
		} else {
			ssize_t got = mimg_pread(src, buf, (size_t)pnum, off,
						 0);
			if (got < 0)
				return (int)got;
		}
		if ((r = feed(o, buf, (size_t)pnum)) < 0)
			return r;
		*done += pnum;
		if (copts && copts->progress)
			copts->progress(copts->opaque, *done, total);
	}
	return 0;
}

int mimg_convert_packed(struct mimg *const *srcs, size_t n, const char *path,
			const char *codec,
			const struct mimg_convert_opts *copts)
{
	struct packed_out o = {.path = path};
	struct mimg_convert_opts co;
	uint64_t total = 0, done = 0;
	uint8_t *buf = NULL;
	int r;

	mimg_err_clear();
	if ((r = mimg__convert_opts_get(copts, &co)) < 0)
		return r;
	copts = &co;
	int level = copts->compression_level;
	if (!path || !codec || (n && !srcs))
		return mimg_err(-EINVAL, "mimg_convert_packed: no path, codec "
					 "or sources");
	if (strcmp(codec, "xz") && strcmp(codec, "zstd") &&
	    strcmp(codec, "gzip"))
		return mimg_err(-EINVAL,
				"%s: unknown compression '%.32s' "
				"(xz, zstd or gzip)",
				path, codec);
	if (level < 0 || level > (strcmp(codec, "zstd") == 0 ? 19 : 9))
		return mimg_err(-EINVAL, "%s: %s takes levels 1 to %d, not %d",
				path, codec,
				strcmp(codec, "zstd") == 0 ? 19 : 9, level);
	for (size_t i = 0; i < n; i++) {
		if (total + mimg_size(srcs[i]) < total)
			return mimg_err(-EFBIG, "the sources are too large "
						"together");
		total += mimg_size(srcs[i]);
	}
	if (!(buf = malloc(READ_CHUNK)))
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = mimg_file_open(&o.out.f, path,
				MIMG_FILE_RDWR | MIMG_FILE_CREATE)) < 0)
		goto out;
	r = strcmp(codec, "zstd") == 0 ? zstd_start(&o, level, total)
				       : archive_start(&o, codec, level, total);
	for (size_t i = 0; i < n && r == 0; i++)
		r = feed_image(&o, srcs[i], buf, copts, &done, total);
	if (r == 0)
		r = finish(&o);
	if (r == 0)
		r = mimg_file_truncate(o.out.f, o.out.pos);
out:
	if (o.a)
		mimg__libarchive.archive_write_free(o.a);
	ZSTD_freeCCtx(o.z);
	free(o.zbuf);
	if (o.out.f) {
		int r2 = mimg_file_close(o.out.f);
		if (r == 0)
			r = r2;
	}
	free(buf);
	return r;
}
