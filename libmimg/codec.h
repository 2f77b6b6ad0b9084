/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Whole-buffer compression of one cluster or grain, for every format:
 * raw deflate with qcow2's 4 KiB window, zlib-wrapped deflate (VMDK) and
 * zstd frames.  Contexts are kept per thread (the convert engine and
 * vmm-blk call these from many threads) and freed at thread exit.
 *
 * Decoding goes through libdeflate when the build has it (about twice
 * zlib's speed); zlib then only judges streams libdeflate refuses, so
 * what is accepted is what zlib accepts.  zlib-wrapped compression uses
 * libdeflate too (a 32 KiB window is fine there); raw deflate for qcow2
 * stays with zlib, whose window can be limited to 4 KiB.
 *
 * Where the build has ISA-L, input whose bytes look random is first
 * tried with ISA-L's fastest level (a few percent of zlib's time on such
 * data): when even that does not fit, raw deflate reports -ENOSPC (the
 * caller stores the cluster uncompressed, as it would after zlib) and a
 * zlib stream is made of stored blocks, without running the compressor.
 *
 * Levels: 0 is the codec's default (the level qemu-img uses: deflate 6,
 * zstd 3); deflate takes 1-12 (10-12 only with libdeflate, zlib caps at
 * 9), zstd 1-22.  Out-of-range levels are clamped.
 */
#ifndef MIMG_CODEC_H
#define MIMG_CODEC_H

#include <stddef.h>
#include <sys/types.h>

#define CODEC_LEVEL_MAX 22

/* Inflate a raw deflate stream (qcow2's window bits -12) into exactly
 * OUTLEN bytes; input past the end of the stream is ignored, as is a
 * stream going on past OUTLEN bytes (qemu's rule).  0, -EIO (not one
 * cluster of valid data) or -ENOMEM. */
int codec_inflate_raw(const void *in, size_t inlen, void *out, size_t outlen);

/* Decompress one zstd frame into exactly OUTLEN bytes; a frame ending
 * short of OUTLEN or holding more is damaged.  0, -EIO or -ENOMEM. */
int codec_zstd_decompress(const void *in, size_t inlen, void *out,
			  size_t outlen);

/* Inflate a zlib stream that ends within OUTCAP bytes; *OUTLEN receives
 * its length.  0, -EIO (damaged, or longer than OUTCAP) or -ENOMEM. */
int codec_inflate_zlib(const void *in, size_t inlen, void *out, size_t outcap,
		       size_t *outlen);

/* Decompress one bzip2 stream of exactly OUTLEN bytes (a DMG chunk).
 * 0, -EIO (damaged, or not OUTLEN bytes), -ENOMEM, or -ENOTSUP in a
 * build without libbz2. */
int codec_bunzip2(const void *in, size_t inlen, void *out, size_t outlen);

/* Compress IN into OUT (OUTCAP bytes) as raw deflate with a 4 KiB window
 * (qcow2), a zlib stream (VMDK) or a zstd frame.  Returns the length,
 * -ENOSPC when it does not fit, or -ENOMEM. */
ssize_t codec_deflate_raw4k(int level, const void *in, size_t inlen, void *out,
			    size_t outcap);
ssize_t codec_deflate_zlib(int level, const void *in, size_t inlen, void *out,
			   size_t outcap);
ssize_t codec_zstd_compress(int level, const void *in, size_t inlen, void *out,
			    size_t outcap);

/* "libdeflate" or "zlib": what decodes deflate in this build. */
const char *codec_deflate_backend(void);

#endif
