/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 reads of every cluster kind, on images written by qemu-img and
 * qemu-io, compared byte for byte with qemu-img's own raw conversion.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"

/* Read IMAGE fully through libmimg and compare with qemu-img's raw
 * conversion; also read in odd-sized pieces. */
static void compare_with_qemu(const char *image)
{
	size_t rlen;
	tu_sh("qemu-img convert -O raw %s ref.raw", image);
	uint8_t *ref = tu_read_file("ref.raw", &rlen);
	struct mimg *img;
	int r = mimg_open(&img, image, NULL, 0);
	ck_assert_msg(r == 0, "open: %s", mimg_errmsg());
	ck_assert_uint_eq(mimg_size(img), rlen);
	uint8_t *buf = malloc(rlen + 1);
	ck_assert_int_eq(mimg_pread(img, buf, rlen, 0, 0), (ssize_t)rlen);
	ck_assert_msg(memcmp(buf, ref, rlen) == 0, "%s differs", image);
	/* Unaligned pieces crossing cluster and subcluster edges. */
	size_t step = 12345;
	for (size_t off = 0; off < rlen; off += step) {
		size_t n = rlen - off < step ? rlen - off : step;
		memset(buf, 0xaa, n);
		ck_assert_int_eq(mimg_pread(img, buf, n, off, 0), (ssize_t)n);
		ck_assert_msg(memcmp(buf, ref + off, n) == 0,
			      "%s differs at %zu", image, off);
	}
	ck_assert_int_eq(mimg_close(img), 0);
	free(buf);
	free(ref);
}

static void make(const char *opts, const char *size)
{
	tu_sh("qemu-img create -q -f qcow2 %s%s t.qcow2 %s", *opts ? "-o " : "",
	      opts, size);
}

static void io(const char *cmds)
{
	tu_sh("qemu-io %s t.qcow2 >/dev/null", cmds);
}

static const char *patterns =
	"-c 'write -P 0x11 0 100k' -c 'write -P 0x22 300k 7k' "
	"-c 'write -z 1M 128k' -c 'write -P 3 2M 1M' -c 'discard 2M 64k' "
	"-c 'write -P 5 2100k 1k'";

START_TEST(read_default)
{
	make("", "4M");
	io(patterns);
	compare_with_qemu("t.qcow2");
}
END_TEST

START_TEST(read_v2)
{
	make("compat=0.10", "4M");
	io(patterns);
	compare_with_qemu("t.qcow2");
}
END_TEST

static const char *const cluster_sizes[] = {"512", "4k", "64k", "2M"};

START_TEST(read_cluster_sizes)
{
	char o[64];
	snprintf(o, sizeof(o), "cluster_size=%s", cluster_sizes[_i]);
	make(o, "5M");
	io(patterns);
	compare_with_qemu("t.qcow2");
}
END_TEST

static const char *const refbits[] = {"1", "2", "4", "8", "32", "64"};

START_TEST(read_refcount_bits)
{
	char o[64];
	snprintf(o, sizeof(o), "refcount_bits=%s", refbits[_i]);
	make(o, "4M");
	io(patterns);
	compare_with_qemu("t.qcow2");
	tu_sh("qemu-img check -q t.qcow2");
}
END_TEST

START_TEST(read_compressed_zlib_zstd)
{
	make("compression_type=zlib", "4M");
	io("-c 'write -c -P 0x44 0 64k' -c 'write -c -P 0x45 128k 64k' "
	   "-c 'write -P 9 140k 1k'");
	compare_with_qemu("t.qcow2");
	tu_sh("rm t.qcow2");
	make("compression_type=zstd", "4M");
	io("-c 'write -c -P 0x44 0 64k' -c 'write -c -P 0x46 192k 64k'");
	compare_with_qemu("t.qcow2");

	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	tu_assert_status(img, 0, 1 << 20, 65536,
			 MIMG_BS_COMPRESSED | MIMG_BS_DATA, 0);
	mimg_close(img);
}
END_TEST

START_TEST(read_extended_l2_subclusters)
{
	tu_sh("qemu-img create -q -f raw b.raw 4M && qemu-io -f raw -c "
	      "'write -P 0x77 0 4M' b.raw >/dev/null");
	make("extended_l2=on,cluster_size=64k,backing_file=b.raw,"
	     "backing_fmt=raw",
	     "4M");
	/* 2 KiB subclusters: data, zero and backing-defined ones mixed
	 * inside one cluster. */
	io("-c 'write -P 0x11 2k 2k' -c 'write -z 8k 4k' "
	   "-c 'write -P 0x12 63k 3k' -c 'discard 128k 64k' "
	   "-c 'write -P 0x13 200k 1k'");
	compare_with_qemu("t.qcow2");

	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	tu_assert_status(img, 0, 65536, 2048, 0, MIMG_BS_ALLOCATED);
	tu_assert_status(img, 2048, 65536, 2048, MIMG_BS_DATA, 0);
	tu_assert_status(img, 8192, 65536, 4096, MIMG_BS_ZERO, 0);
	mimg_close(img);
}
END_TEST

START_TEST(read_backing_chain)
{
	tu_sh("qemu-img create -q -f qcow2 base.qcow2 4M && qemu-io -c "
	      "'write -P 0x31 0 4M' base.qcow2 >/dev/null");
	make("backing_file=base.qcow2,backing_fmt=qcow2", "6M");
	io("-c 'write -P 0x32 100k 10k' -c 'write -z 1M 64k' "
	   "-c 'write -P 0x33 5M 4k'");
	compare_with_qemu("t.qcow2");
	struct mimg_value *info;
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	ck_assert_int_eq(mimg_info(img, &info), 0);
	const struct mimg_value *bf = mimg_value_get(info,
						     "backing-filename-format");
	ck_assert(bf && !strcmp(bf->v.s, "qcow2"));
	mimg_value_free(info);
	mimg_close(img);
}
END_TEST

START_TEST(read_data_file)
{
	make("data_file=t.data", "4M");
	io(patterns);
	compare_with_qemu("t.qcow2");
	tu_sh("rm -f t.qcow2 t.data");
	make("data_file=t.data,data_file_raw=on", "4M");
	io(patterns);
	compare_with_qemu("t.qcow2");
}
END_TEST

START_TEST(read_zero_flag_preallocated)
{
	make("preallocation=metadata", "2M");
	io("-c 'write -P 0x21 0 1M' -c 'write -z 128k 128k'");
	compare_with_qemu("t.qcow2");
}
END_TEST

START_TEST(refuses_data_file_outside_directory)
{
	tu_sh("mkdir sub && qemu-img create -q -f qcow2 -o "
	      "data_file=%s/outside.data sub/t.qcow2 1M",
	      tu_tmpdir());
	struct mimg *img;
	int r = mimg_open(&img, "sub/t.qcow2", NULL, 0);
	ck_assert_int_eq(r, -EPERM);
	r = mimg_open(&img, "sub/t.qcow2", NULL, MIMG_OPEN_ALLOW_EXTERNAL);
	ck_assert_msg(r == 0, "%s", mimg_errmsg());
	mimg_close(img);
}
END_TEST

int main(void)
{
	return tu_main_qemu("qcow2_read", "read",
			    TU_TESTS(read_default, read_v2,
				     read_compressed_zlib_zstd,
				     read_extended_l2_subclusters,
				     read_backing_chain, read_data_file,
				     read_zero_flag_preallocated,
				     refuses_data_file_outside_directory),
			    TU_LOOPS({read_cluster_sizes, 4},
				     {read_refcount_bits, 6}));
}
