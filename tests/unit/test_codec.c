/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The shared codecs (codec.c): round trips at every level, qcow2's 4 KiB
 * deflate window checked with zlib's own streaming inflate, the streams
 * qemu accepts or refuses for one cluster, zlib-wrapped grains,
 * incompressible input, and the convert option that sets the level.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "codec.h"
#include "mimg.h"
#include "testutil.h"

#define CS 65536

/* Text-like data with repeats both near and far (beyond 4 KiB). */
static uint8_t *make_data(size_t len)
{
	static const char words[] = "qcow2 vmdk grain cluster deflate zstd ";
	uint8_t *b = malloc(len);
	uint32_t x = 12345;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (x >> 27) == 0 ? (uint8_t)(x >> 16)
				      : (uint8_t)words[(i + (x >> 29)) %
						       (sizeof(words) - 1)];
	}
	/* A far repeat: 16 KiB copied from 20 KiB back. */
	if (len >= 40000)
		memcpy(b + 20480 + 16384, b + 16384, 16384);
	return b;
}

/* Inflate with zlib's streaming decoder and a 4 KiB window in 512-byte
 * steps: only a stream whose distances stay within 4 KiB decodes. */
static int inflate_4k_window(const uint8_t *z, size_t zlen, uint8_t *out,
			     size_t outlen)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(inflateInit2(&s, -12), Z_OK);
	s.next_in = (Bytef *)(uintptr_t)z;
	s.avail_in = (uInt)zlen;
	int r = Z_OK;
	while (r == Z_OK && s.total_out < outlen) {
		size_t step = outlen - s.total_out < 512 ? outlen - s.total_out
							 : 512;
		s.next_out = out + s.total_out;
		s.avail_out = (uInt)step;
		r = inflate(&s, Z_NO_FLUSH);
	}
	inflateEnd(&s);
	return (r == Z_OK || r == Z_STREAM_END) && s.total_out == outlen ? 0
									 : -1;
}

START_TEST(raw4k_round_trip)
{
	uint8_t *in = make_data(CS), *z = malloc(2 * CS), *out = malloc(CS);
	for (int level = 0; level <= 12; level++) {
		ssize_t n = codec_deflate_raw4k(level, in, CS, z, 2 * CS);
		ck_assert_msg(n > 0 && n < CS, "level %d gave %zd", level, n);
		memset(out, 0xaa, CS);
		ck_assert_int_eq(codec_inflate_raw(z, (size_t)n, out, CS), 0);
		ck_assert_int_eq(memcmp(in, out, CS), 0);
		ck_assert_msg(inflate_4k_window(z, (size_t)n, out, CS) == 0,
			      "level %d uses more than a 4 KiB window", level);
		ck_assert_int_eq(memcmp(in, out, CS), 0);
	}
	free(in);
	free(z);
	free(out);
}
END_TEST

/* qemu's rules for one cluster: trailing bytes after the stream and a
 * stream going on past the cluster are fine; a stream ending short of it
 * or garbage is damaged (EIO). */
START_TEST(raw_cluster_rules)
{
	uint8_t *in = make_data(2 * CS), *z = malloc(4 * CS), *out = malloc(CS);
	ssize_t n = codec_deflate_raw4k(0, in, CS, z, 4 * CS);
	ck_assert_int_gt(n, 0);
	memset(z + n, 0x5a, 700); /* rest of the last sectors */
	ck_assert_int_eq(codec_inflate_raw(z, (size_t)n + 700, out, CS), 0);
	ck_assert_int_eq(memcmp(in, out, CS), 0);

	n = codec_deflate_raw4k(0, in, 2 * CS, z, 4 * CS);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(codec_inflate_raw(z, (size_t)n, out, CS), 0);
	ck_assert_int_eq(memcmp(in, out, CS), 0);

	n = codec_deflate_raw4k(0, in, CS - 512, z, 4 * CS);
	ck_assert_int_eq(codec_inflate_raw(z, (size_t)n, out, CS), -EIO);
	/* Cut in the middle: not a cluster's worth of output. */
	n = codec_deflate_raw4k(0, in, CS, z, 4 * CS);
	ck_assert_int_eq(codec_inflate_raw(z, (size_t)n / 2, out, CS), -EIO);
	memset(z, 0xff, 1024);
	ck_assert_int_eq(codec_inflate_raw(z, 1024, out, CS), -EIO);
	free(in);
	free(z);
	free(out);
}
END_TEST

START_TEST(zlib_grains)
{
	uint8_t *in = make_data(CS), *z = malloc(2 * CS), *out = malloc(CS);
	size_t len;
	for (int level = 0; level <= 12; level++) {
		ssize_t n = codec_deflate_zlib(level, in, CS, z, 2 * CS);
		ck_assert_msg(n > 0 && n < CS, "level %d gave %zd", level, n);
		/* zlib itself reads it. */
		uLongf dl = CS;
		ck_assert_int_eq(uncompress(out, &dl, z, (uLong)n), Z_OK);
		ck_assert_uint_eq(dl, CS);
		ck_assert_int_eq(codec_inflate_zlib(z, (size_t)n, out, CS,
						    &len),
				 0);
		ck_assert_uint_eq(len, CS);
		ck_assert_int_eq(memcmp(in, out, CS), 0);
	}
	/* A short grain (end of a disk) and a grain larger than asked. */
	ssize_t n = codec_deflate_zlib(0, in, 1000, z, 2 * CS);
	ck_assert_int_eq(codec_inflate_zlib(z, (size_t)n, out, CS, &len), 0);
	ck_assert_uint_eq(len, 1000);
	n = codec_deflate_zlib(0, in, CS, z, 2 * CS);
	ck_assert_int_eq(codec_inflate_zlib(z, (size_t)n, out, CS / 2, &len),
			 -EIO);
	/* A damaged checksum. */
	z[n - 1] ^= 1;
	ck_assert_int_eq(codec_inflate_zlib(z, (size_t)n, out, CS, &len), -EIO);
	/* Output that does not fit is reported, not truncated. */
	ck_assert_int_eq(codec_deflate_zlib(0, in, CS, z, 16), -ENOSPC);
	ck_assert_int_eq(codec_deflate_raw4k(0, in, CS, z, 16), -ENOSPC);
	ck_assert_int_eq(codec_zstd_compress(0, in, CS, z, 16), -ENOSPC);
	free(in);
	free(z);
	free(out);
}
END_TEST

static uint8_t *make_random(size_t len)
{
	uint8_t *b = malloc(len);
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		b[i] = (uint8_t)(x >> 32);
	}
	return b;
}

/* Random bytes do not fit a cluster as deflate (stored uncompressed),
 * and as a zlib grain they come back as a stream zlib reads; random
 * bytes repeated within 4 KiB still compress. */
START_TEST(incompressible_input)
{
	uint8_t *in = make_random(CS), *z = malloc(2 * CS), *out = malloc(CS);
	size_t len;
	ck_assert_int_eq(codec_deflate_raw4k(0, in, CS, z, CS - 1), -ENOSPC);
	ck_assert_int_eq(codec_deflate_zlib(0, in, CS, z, CS), -ENOSPC);
	size_t sizes[] = {CS, 1000, 70000};
	uint8_t *big = make_random(70000);
	for (size_t k = 0; k < 3; k++) {
		const uint8_t *src = k == 2 ? big : in;
		ssize_t n = codec_deflate_zlib(0, src, sizes[k], z, 2 * CS);
		ck_assert_msg(n > (ssize_t)sizes[k], "%zu bytes gave %zd",
			      sizes[k], n);
		uLongf dl = 2 * CS;
		uint8_t *check = malloc(2 * CS);
		ck_assert_int_eq(uncompress(check, &dl, z, (uLong)n), Z_OK);
		ck_assert_uint_eq(dl, sizes[k]);
		ck_assert_int_eq(memcmp(check, src, sizes[k]), 0);
		if (sizes[k] <= CS) {
			ck_assert_int_eq(codec_inflate_zlib(z, (size_t)n, out,
							    CS, &len),
					 0);
			ck_assert_uint_eq(len, sizes[k]);
		}
		free(check);
	}
	/* Second half: the first's last 2 KiB over and over. */
	for (size_t i = CS / 2; i < CS; i++)
		in[i] = in[i - 2048];
	ssize_t n = codec_deflate_raw4k(0, in, CS, z, CS - 1);
	ck_assert_msg(n > 0 && n < CS * 3 / 4, "repeats gave %zd", n);
	ck_assert_int_eq(inflate_4k_window(z, (size_t)n, out, CS), 0);
	ck_assert_int_eq(memcmp(in, out, CS), 0);
	free(big);
	free(in);
	free(z);
	free(out);
}
END_TEST

static off_t convert_at_level(int level, const char *name)
{
	struct mimg *src, *dst;
	ck_assert_int_eq(mimg_create(name, "qcow2", 8u << 20, NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&src, "src.raw", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&dst, name, NULL, MIMG_OPEN_RDWR), 0);
	struct mimg_convert_opts co = {.size = sizeof(co),
				       .compress = 1,
				       .compression_level = level};
	int r = mimg_convert(src, dst, &co);
	ck_assert_msg(r == 0, "%s", mimg_errmsg());
	ck_assert_int_eq(mimg_close(dst), 0);
	ck_assert_int_eq(mimg_open(&dst, name, NULL, 0), 0);
	uint8_t *a = malloc(8u << 20), *b = malloc(8u << 20);
	ck_assert_int_eq(mimg_pread(src, a, 8u << 20, 0, 0), 8 << 20);
	ck_assert_int_eq(mimg_pread(dst, b, 8u << 20, 0, 0), 8 << 20);
	ck_assert_int_eq(memcmp(a, b, 8u << 20), 0);
	free(a);
	free(b);
	mimg_close(src);
	mimg_close(dst);
	struct stat st;
	ck_assert_int_eq(stat(name, &st), 0);
	return st.st_size;
}

START_TEST(convert_level_option)
{
	uint8_t *d = make_data(8u << 20);
	tu_write_file("src.raw", d, 8u << 20, 0);
	free(d);
	off_t fast = convert_at_level(1, "l1.qcow2");
	off_t best = convert_at_level(9, "l9.qcow2");
	ck_assert_msg(best < fast, "level 9: %lld bytes, level 1: %lld",
		      (long long)best, (long long)fast);

	struct mimg *src, *dst;
	ck_assert_int_eq(mimg_create("bad.qcow2", "qcow2", 8u << 20, NULL, 0),
			 0);
	ck_assert_int_eq(mimg_open(&src, "src.raw", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&dst, "bad.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	struct mimg_convert_opts co = {.size = sizeof(co),
				       .compress = 1,
				       .compression_level = 23};
	ck_assert_int_eq(mimg_convert(src, dst, &co), -EINVAL);
	co.compression_level = -1;
	ck_assert_int_eq(mimg_convert(src, dst, &co), -EINVAL);
	mimg_close(src);
	mimg_close(dst);
}
END_TEST

int main(void)
{
	return tu_main("codec", "codec",
		       TU_TESTS(raw4k_round_trip, raw_cluster_rules,
				zlib_grains, incompressible_input,
				convert_level_option));
}
