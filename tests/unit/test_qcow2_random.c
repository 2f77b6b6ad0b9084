/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Random operations (writes, zeroes, discards, compressed writes, reads)
 * on qcow2 images of many layouts, checked after every read against an
 * in-memory model, and at the end with qemu-img check and compare.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "mimg.h"
#include "testutil.h"

#define SZ (4u << 20)
#define NOPS 250

struct variant {
	const char *opts;
	bool backing;
	bool compressed; /* exercise compressed writes */
};

static const struct variant variants[] = {
	{"compat=1.1", false, true},
	{"compat=1.1", true, true},
	{"compat=0.10", false, true},
	{"cluster_size=512", true, true},
	{"cluster_size=512,refcount_bits=64", false, true},
	{"cluster_size=4k,refcount_bits=1", true, true},
	{"extended_l2=on", true, true},
	{"extended_l2=on,cluster_size=16k", false, true},
	{"compression_type=zstd", true, true},
	{"data_file=t.data", false, false},
	{"data_file=t.data,data_file_raw=on", false, false},
	{"cluster_size=2M", true, false},
	{"preallocation=metadata,extended_l2=on", true, false},
};

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void one_op(struct mimg *img, uint8_t *m, uint8_t *b, int i,
		   const struct variant *v)
{
	int op = (int)(rnd() % 10);
	uint64_t off = rnd() % SZ, len = 1 + rnd() % (op < 5 ? 200000 : 600000);
	uint32_t cs = mimg_cluster_size(img);
	if (rnd() % 3 == 0) {
		off &= ~511ull;
		len = (len + 511) & ~511ull;
	}
	if (off + len > SZ)
		len = SZ - off;
	if (op < 6) {
		tu_fill_random(b, len, rnd());
		ck_assert_msg(mimg_pwrite(img, b, len, off, 0) == (ssize_t)len,
			      "op %d write: %s", i, mimg_errmsg());
		memcpy(m + off, b, len);
	} else if (op == 6) {
		int r = mimg_pwrite_zeroes(img, off, len,
					   rnd() % 2 ? MIMG_ZERO_MAY_UNMAP : 0);
		ck_assert_msg(r == 0, "op %d zero: %s", i, mimg_errmsg());
		memset(m + off, 0, len);
	} else if (op == 7) {
		/* v3 discards read as zeroes; whole clusters only. */
		uint64_t a = (off + cs - 1) / cs * cs,
			 e = (off + len) / cs * cs;
		ck_assert_int_eq(mimg_discard(img, off, len, 0), 0);
		if (a < e)
			memset(m + a, 0, e - a);
	} else if (op == 8 && v->compressed) {
		uint64_t c = off / cs * cs;
		if (c + cs > SZ)
			return;
		for (uint32_t k = 0; k < cs; k++)
			b[k] = (uint8_t)(k / 100 + i);
		uint8_t *out = malloc(cs);
		ssize_t n = img->drv->compress(img, b, cs, out, cs);
		if (n > 0) {
			ck_assert_msg(img->drv->write_compressed(img, c, out,
								 (size_t)n,
								 true) == 0,
				      "op %d compressed: %s", i, mimg_errmsg());
			memcpy(m + c, b, cs);
		}
		free(out);
	} else {
		ck_assert_int_eq(mimg_pread(img, b, len, off, 0), (ssize_t)len);
		ck_assert_msg(memcmp(b, m + off, len) == 0,
			      "op %d: read %llu+%llu differs", i,
			      (unsigned long long)off, (unsigned long long)len);
	}
}

START_TEST(random_ops)
{
	if (!tu_have_program("qemu-img"))
		return;
	const struct variant *v = &variants[_i];
	uint8_t *m = calloc(1, SZ), *b = malloc(SZ);
	if (v->backing) {
		tu_fill_random(m, SZ, 99);
		tu_write_file("b.raw", m, SZ, 0);
		tu_sh("qemu-img create -q -f qcow2 -o "
		      "%s,backing_file=b.raw,backing_fmt=raw t.qcow2 4M",
		      v->opts);
	} else {
		tu_sh("qemu-img create -q -f qcow2 -o %s t.qcow2 4M", v->opts);
	}
	rnd_state = 0x9E3779B97F4A7C15ull + (uint64_t)_i;
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	for (int i = 0; i < NOPS; i++)
		one_op(img, m, b, i, v);
	ck_assert_int_eq(mimg_pread(img, b, SZ, 0, 0), (ssize_t)SZ);
	ck_assert(memcmp(b, m, SZ) == 0);
	ck_assert_int_eq(mimg_close(img), 0);
	tu_qemu_reads("t.qcow2", "qcow2", m, SZ);
	free(m);
	free(b);
}
END_TEST

/* Writes into clusters shared with an internal snapshot leave the
 * snapshot's content intact. */
START_TEST(random_ops_with_snapshot)
{
	if (!tu_have_qemu())
		return;
	static const struct variant v = {"", false, true};
	tu_sh("qemu-img create -q -f qcow2 t.qcow2 4M && qemu-io -c "
	      "'write -P 0x31 0 3M' -c 'write -c -P 7 3M 64k' t.qcow2 "
	      ">/dev/null && qemu-img snapshot -c s1 t.qcow2 && qemu-img "
	      "convert -O raw t.qcow2 s1.raw");
	uint8_t *m = malloc(SZ), *b = malloc(SZ);
	ck_assert(m && b);
	tu_read_at("s1.raw", m, SZ, 0);
	rnd_state = 12345;
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	for (int i = 0; i < NOPS; i++)
		one_op(img, m, b, i, &v);
	ck_assert_int_eq(mimg_close(img), 0);
	tu_qemu_reads("t.qcow2", "qcow2", m, SZ);
	tu_sh("qemu-img convert -l s1 -O raw t.qcow2 s1b.raw && cmp -s s1.raw "
	      "s1b.raw");
	free(m);
	free(b);
}
END_TEST

int main(void)
{
	return tu_main_loops("qcow2_random", "random",
			     TU_TESTS(random_ops_with_snapshot),
			     TU_LOOPS({random_ops, TU_NELEM(variants)}));
}
