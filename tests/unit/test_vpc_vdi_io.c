/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VHD, VDI, VHDX and Parallels reads and writes through the library: random partial and
 * block-crossing writes against a reference buffer (and qemu-img reading
 * the result), writes from many threads at once, and crash safety: with
 * the host-file fault hook letting only the first K write operations
 * through, every K leaves an image that opens, checks clean and holds,
 * sector by sector, some state the workload went through.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultcut.h"
#include "mimg.h"
#include "testutil.h"

#define MIB (1u << 20)
#define SIZE (10u * MIB)

/* Each test runs for every format: _i picks one. */
struct format {
	const char *name, *file;
	const char *sparse, *full; /* creation options */
	uint64_t unit;		   /* allocation unit */
	/* The header says "in use" while a writer has the image open: an
	 * interrupted writer leaves it so, which check counts as one
	 * corruption (Parallels, as qemu-img counts it). */
	bool in_use_mark;
};

static const struct format formats[] = {
	{"vpc", "t.vhd", "subformat=dynamic", "subformat=fixed", 2 * MIB},
	{"vdi", "t.vdi", "static=off", "static=on", MIB},
	{"vhdx", "t.vhdx", "block_size=1M", "subformat=fixed,block_size=1M",
	 MIB},
	/* Parallels has no preallocation: small clusters that are not a
	 * power of two instead. */
	{"parallels", "t.hdd", "", "cluster_size=3000", MIB, true},
};
#define NFORMATS 4

/* Whether the Parallels image FILE's header says it is in use. */
static bool marked_in_use(const char *file)
{
	uint8_t v[4] = {0};
	FILE *fp = fopen(file, "rb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fseek(fp, 44, SEEK_SET), 0);
	ck_assert_uint_eq(fread(v, 1, 4, fp), 4);
	fclose(fp);
	return memcmp(v, "Ynot", 4) == 0;
}

static struct mimg *create_open(const struct format *f, const char *opts,
				uint64_t size)
{
	tu_create(f->file, f->name, size, opts, NULL);
	struct mimg *img;
	ck_assert_msg(mimg_open(&img, f->file, f->name, MIMG_OPEN_RDWR) == 0,
		      "%s", mimg_errmsg());
	return img;
}

static void random_writes(const struct format *f, const char *opts)
{
	struct mimg *img = create_open(f, opts, SIZE);
	uint64_t size = mimg_size(img);
	ck_assert_uint_ge(size, SIZE);
	uint8_t *ref = calloc(1, size), *buf = malloc(3 * MIB);
	uint64_t seed = 1;
	for (int i = 0; i < 60; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t off = (seed >> 20) % size;
		size_t len = (size_t)((seed >> 8) % (3 * MIB)) + 1;
		if (len > size - off)
			len = (size_t)(size - off);
		tu_fill_random(buf, len, seed);
		ck_assert_int_eq(mimg_pwrite(img, buf, len, off, 0),
				 (ssize_t)len);
		memcpy(ref + off, buf, len);
		if (f->in_use_mark)
			ck_assert(marked_in_use(f->file));
	}
	ck_assert_int_eq(mimg_pwrite_zeroes(img, MIB + 5, 2 * MIB, 0), 0);
	memset(ref + MIB + 5, 0, 2 * MIB);
	ck_assert_int_eq(mimg_close(img), 0);
	if (f->in_use_mark)
		ck_assert(!marked_in_use(f->file));

	ck_assert_int_eq(mimg_open(&img, f->file, NULL, 0), 0);
	uint8_t *got = malloc(size);
	ck_assert_int_eq(mimg_pread(img, got, size, 0, 0), (ssize_t)size);
	ck_assert(memcmp(got, ref, size) == 0);
	tu_assert_check(img, 0, 0, TU_ANY, NULL);
	ck_assert_int_eq(mimg_close(img), 0);
	tu_write_file("ref.raw", ref, size, 0);
	if (tu_have_program("qemu-img"))
		tu_sh("qemu-img compare -q -f %s -F raw %s ref.raw", f->name,
		      f->file);
	free(ref);
	free(buf);
	free(got);
}

START_TEST(random_writes_sparse)
{
	random_writes(&formats[_i], formats[_i].sparse);
}
END_TEST

START_TEST(random_writes_preallocated)
{
	random_writes(&formats[_i], formats[_i].full);
}
END_TEST

/* Eight threads write interleaved 64 KiB pieces of the same blocks, all
 * unallocated at first: each block is allocated once and keeps every
 * piece. */
struct worker {
	struct mimg *img;
	int id;
};

#define THREADS 8
#define PIECE 65536u

static void *write_pieces(void *p)
{
	struct worker *w = p;
	uint8_t buf[PIECE];
	for (uint64_t off = (uint64_t)w->id * PIECE; off + PIECE <= SIZE;
	     off += THREADS * PIECE) {
		memset(buf, (int)(off / PIECE) + 1, PIECE);
		if (mimg_pwrite(w->img, buf, PIECE, off, 0) != PIECE)
			return (void *)1;
	}
	return NULL;
}

START_TEST(concurrent_allocation)
{
	const struct format *f = &formats[_i];
	struct mimg *img = create_open(f, "", SIZE);
	pthread_t t[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){img, i};
		pthread_create(&t[i], NULL, write_pieces, &w[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		ck_assert_ptr_null(r);
	}
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, f->file, NULL, 0), 0);
	uint8_t buf[PIECE], want[PIECE];
	for (uint64_t off = 0; off + PIECE <= SIZE; off += PIECE) {
		ck_assert_int_eq(mimg_pread(img, buf, PIECE, off, 0), PIECE);
		/* one check a piece: a passing check costs a write(2) */
		memset(want, (int)(off / PIECE) + 1, PIECE);
		ck_assert_msg(memcmp(buf, want, PIECE) == 0,
			      "the piece at %llu lost its bytes",
			      (unsigned long long)off);
	}
	struct mimg_check_result res = {.size = sizeof(res)};
	ck_assert_int_eq(mimg_check(img, 0, &res), 0);
	ck_assert_uint_eq(res.corruptions, 0);
	if (res.total_clusters)
		ck_assert_uint_eq(res.allocated_clusters, SIZE / f->unit);
	mimg_check_result_free(&res);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

/* Crash safety. */
struct op {
	uint64_t off, len;
};

static const struct op workload[] = {
	{1000, 200},		 /* a partial new block */
	{2 * MIB, 2 * MIB},	 /* a whole new block */
	{2 * MIB + 5000, 10000}, /* in place */
	{6 * MIB - 50, 100},	 /* two new blocks at once */
	{700, 3000},		 /* in place again */
};
#define NOPS (sizeof(workload) / sizeof(workload[0]))
#define CSIZE (8u * MIB)

START_TEST(crash_at_every_write)
{
	const struct format *f = &formats[_i];
	static uint8_t *states[NOPS + 1];
	uint8_t *buf = malloc(2 * MIB);
	states[0] = calloc(1, CSIZE);
	for (size_t i = 0; i < NOPS; i++) {
		states[i + 1] = malloc(CSIZE);
		memcpy(states[i + 1], states[i], CSIZE);
		tu_fill_random(states[i + 1] + workload[i].off, workload[i].len,
			       i + 1);
	}
	bool qemu = tu_have_program("qemu-img");
	fc_begin(-1);
	bool completed = false;
	for (long k = 0; !completed; k += tu_scaled_step()) {
		fc_allow(-1);
		struct mimg *img = create_open(f, "", CSIZE);
		fc_allow(k);
		completed = true;
		for (size_t i = 0; i < NOPS; i++) {
			const struct op *o = &workload[i];
			memcpy(buf, states[i + 1] + o->off, o->len);
			if (mimg_pwrite(img, buf, o->len, o->off, 0) < 0) {
				completed = false;
				break;
			}
		}
		mimg_close(img);
		fc_allow(-1);
		ck_assert_msg(mimg_open(&img, f->file, NULL, 0) == 0,
			      "k=%ld: %s", k, mimg_errmsg());
		bool in_use = f->in_use_mark && marked_in_use(f->file);
		tu_assert_check(img, 0, in_use ? 1 : 0, TU_ANY, NULL);
		uint8_t *got = malloc(CSIZE);
		ck_assert_int_eq(mimg_pread(img, got, CSIZE, 0, 0), CSIZE);
		for (uint64_t s = 0; s < CSIZE; s += 512) {
			bool any = false;
			for (size_t j = 0; j <= NOPS && !any; j++)
				any = memcmp(got + s, states[j] + s, 512) == 0;
			if (!any) /* a passing check costs a write(2) */
				ck_abort_msg(
					"k=%ld: sector %llu holds no state", k,
					(unsigned long long)(s / 512));
		}
		free(got);
		ck_assert_int_eq(mimg_close(img), 0);
		if (qemu && k % 5 == 0)
			tu_sh("qemu-img info %s >/dev/null", f->file);
		ck_assert_int_lt(k, 1000);
	}
	fc_end();
	for (size_t i = 0; i <= NOPS; i++)
		free(states[i]);
	free(buf);
}
END_TEST

int main(void)
{
	return tu_main_loops("vpc_vdi_io", "vpc_vdi_io", NULL, 0,
			     TU_LOOPS({random_writes_sparse, NFORMATS},
				      {random_writes_preallocated, NFORMATS},
				      {concurrent_allocation, NFORMATS},
				      {crash_at_every_write, NFORMATS}));
}
