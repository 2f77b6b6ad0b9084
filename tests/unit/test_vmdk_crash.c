/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VMDK crash safety.  A fixed workload on a delta link over a filled
 * parent (partial writes that copy the rest of the grain from the parent,
 * runs of whole grains, in-place overwrites, writes spanning grains,
 * zeroes, a flush) runs while the host-file fault hook lets only the
 * first K write-type operations through: the machine lost power after K
 * writes.  For every K:
 *   - mimg check finds no corruption (leaked grains are allowed) and
 *     qemu-img check accepts the image;
 *   - every sector holds its content from some state between the last
 *     completed flush and the end of the workload (writes are never
 *     torn inside a sector, never mixed with garbage);
 *   - qemu reads the same bytes as mimg.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultcut.h"
#include "mimg.h"
#include "testutil.h"

#define SIZE (4u << 20)
#define G 65536u

enum op_kind { OP_WRITE, OP_ZERO, OP_FLUSH };
struct op {
	enum op_kind kind;
	uint64_t off, len;
};

static const struct op workload[] = {
	{OP_WRITE, 1000, 200},		 /* partial grain: COW */
	{OP_WRITE, 3 * G, 3 * G},	 /* whole grains */
	{OP_WRITE, 3 * G + 5000, 10000}, /* overwrite in place */
	{OP_FLUSH, 0, 0},
	{OP_WRITE, 10 * G - 50, 100}, /* two partial grains */
	{OP_ZERO, 20 * G, 2 * G},
	{OP_WRITE, 2u << 20, 1u << 20}, /* a long run */
	{OP_WRITE, 21 * G + 7, 3},	/* into a zeroed grain */
};
#define NOPS (sizeof(workload) / sizeof(workload[0]))

/* states[i]: the content after the first i operations. */
static uint8_t *states[NOPS + 1];

static void build_states(const uint8_t *base)
{
	uint8_t *buf = malloc(SIZE);
	states[0] = malloc(SIZE);
	memcpy(states[0], base, SIZE);
	for (size_t i = 0; i < NOPS; i++) {
		const struct op *o = &workload[i];
		states[i + 1] = malloc(SIZE);
		memcpy(states[i + 1], states[i], SIZE);
		if (o->kind == OP_WRITE) {
			tu_fill_random(buf, o->len, i + 100);
			memcpy(states[i + 1] + o->off, buf, o->len);
		} else if (o->kind == OP_ZERO) {
			memset(states[i + 1] + o->off, 0, o->len);
		}
	}
	free(buf);
}

/* Runs the workload; returns the number of operations that completed and
 * sets *FLUSHED to the state index guaranteed on disk. */
static size_t run_workload(struct mimg *img, size_t *flushed)
{
	uint8_t *buf = malloc(SIZE);
	size_t i;
	*flushed = 0;
	for (i = 0; i < NOPS; i++) {
		const struct op *o = &workload[i];
		int r;
		if (o->kind == OP_WRITE) {
			tu_fill_random(buf, o->len, i + 100);
			r = mimg_pwrite(img, buf, o->len, o->off, 0) ==
					    (ssize_t)o->len
				    ? 0
				    : -EIO;
		} else if (o->kind == OP_ZERO) {
			r = mimg_pwrite_zeroes(img, o->off, o->len, 0);
		} else {
			r = mimg_flush(img, 0);
			if (r == 0)
				*flushed = i + 1;
		}
		if (r < 0)
			break;
	}
	free(buf);
	return i;
}

static void make_top(const char *opts)
{
	char o[256];
	struct mimg_opt *kv;
	snprintf(o, sizeof(o), "backing_file=base.vmdk,backing_fmt=vmdk%s%s",
		 opts ? "," : "", opts ? opts : "");
	int n = mimg_opts_parse(o, &kv);
	ck_assert_int_ge(n, 0);
	ck_assert_int_eq(mimg_create("top.vmdk", "vmdk", SIZE, kv, (size_t)n),
			 0);
	mimg_opts_free(kv, (size_t)n);
}

static void verify_cut(long cut, size_t flushed)
{
	struct mimg *img;
	uint8_t *got = malloc(SIZE);
	ck_assert_msg(mimg_open(&img, "top.vmdk", NULL, 0) == 0,
		      "cut %ld: open: %s", cut, mimg_errmsg());
	ck_assert_int_eq(mimg_pread(img, got, SIZE, 0, 0), (ssize_t)SIZE);
	struct mimg_check_result res = {.size = sizeof(res)};
	ck_assert_int_eq(mimg_check(img, 0, &res), 0);
	ck_assert_msg(res.corruptions == 0, "cut %ld: %s", cut,
		      res.messages ? res.messages[0] : "corrupt");
	mimg_check_result_free(&res);
	mimg_close(img);
	for (uint64_t s = 0; s < SIZE; s += 512) {
		bool ok = false;
		for (size_t k = flushed; k <= NOPS && !ok; k++)
			ok = memcmp(got + s, states[k] + s, 512) == 0;
		if (!ok) /* a passing check costs a write(2) */
			ck_abort_msg("cut %ld: sector at %llu holds no valid "
				     "state",
				     cut, (unsigned long long)s);
	}
	if (tu_have_program("qemu-img")) {
		tu_write_file("got.raw", got, SIZE, 0);
		ck_assert_msg(tu_system("qemu-img check -q top.vmdk") == 0,
			      "cut %ld: qemu-img check", cut);
		ck_assert_msg(tu_system("qemu-img compare -q -F raw top.vmdk "
					"got.raw") == 0,
			      "cut %ld: qemu reads differently", cut);
	}
	free(got);
}

static void crash_variant(const char *opts)
{
	uint8_t *base = malloc(SIZE);
	struct mimg *img;
	size_t flushed;

	tu_fill_random(base, SIZE, 1);
	ck_assert_int_eq(mimg_create("base.vmdk", "vmdk", SIZE, NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&img, "base.vmdk", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, base, SIZE, 0, 0), (ssize_t)SIZE);
	ck_assert_int_eq(mimg_close(img), 0);
	build_states(base);

	/* Count the operations of an uncut run. */
	make_top(opts);
	fc_begin(-1);
	ck_assert_int_eq(mimg_open(&img, "top.vmdk", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_uint_eq(run_workload(img, &flushed), NOPS);
	ck_assert_int_eq(mimg_close(img), 0);
	long total = fc_seen();
	fc_end();
	verify_cut(-1, NOPS);
	ck_assert_int_gt(total, 10);

	for (long cut = 0; cut < total; cut += tu_scaled_step()) {
		make_top(opts);
		fc_begin(cut);
		if (mimg_open(&img, "top.vmdk", NULL, MIMG_OPEN_RDWR) == 0) {
			run_workload(img, &flushed);
			mimg_close(img);
		}
		fc_end();
		verify_cut(cut, flushed);
	}
	for (size_t i = 0; i <= NOPS; i++)
		free(states[i]);
	free(base);
}

START_TEST(test_crash_sparse)
{
	crash_variant(NULL);
}
END_TEST
START_TEST(test_crash_zeroed_grain)
{
	crash_variant("zeroed_grain=on");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmdk_crash");
	TCase *tc = tu_tcase_of(s, "crash",
				TU_TESTS(test_crash_sparse,
					 test_crash_zeroed_grain));
	tcase_set_timeout(tc, 300);
	return tu_run_suite(s);
}
