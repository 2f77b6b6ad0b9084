/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VMDK reads and writes through libmimg against an in-memory model:
 * random unaligned writes into hosted sparse extents (both grain
 * directories kept in sync, checked by mimg_check and, when installed,
 * qemu-img check/compare), copy-on-write from a delta link's parent,
 * zeroed grains, multi-extent descriptors and concurrent allocating
 * writers.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimg.h"
#include "testutil.h"

#define MIB (1024u * 1024u)

static struct mimg *open_img(const char *path, unsigned flags)
{
	struct mimg *img = NULL;
	int r = mimg_open(&img, path, "vmdk", flags);
	ck_assert_msg(r == 0, "open %s: %s", path, mimg_errmsg());
	return img;
}

static void create(const char *path, uint64_t size, const char *opts)
{
	tu_create(path, "vmdk", size, opts, NULL);
}

static void verify(struct mimg *img, const uint8_t *model, uint64_t size)
{
	uint8_t *buf = malloc(size);
	ck_assert_int_eq(mimg_pread(img, buf, size, 0, 0), (ssize_t)size);
	for (uint64_t i = 0; i < size; i++)
		if (buf[i] != model[i])
			ck_abort_msg("byte %llu: got %u want %u",
				     (unsigned long long)i, buf[i], model[i]);
	free(buf);
}

/* qemu-img as the oracle, when installed: the image is consistent and
 * reads as the model. */
static void qemu_agrees(const char *path, const uint8_t *model, uint64_t size)
{
	if (tu_have_program("qemu-img"))
		tu_qemu_reads(path, "vmdk", model, size);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void random_writes(struct mimg *img, uint8_t *model, uint64_t size,
			  int n, uint64_t seed)
{
	uint8_t *buf = malloc(300 * 1024);
	uint64_t s = seed;
	for (int i = 0; i < n; i++) {
		uint64_t len = 1 + rng_next(&s) % (i % 3 ? 4096 : 300 * 1024);
		uint64_t off = rng_next(&s) % (size - len);
		tu_fill_random(buf, len, rng_next(&s));
		ck_assert_int_eq(mimg_pwrite(img, buf, len, off, 0),
				 (ssize_t)len);
		memcpy(model + off, buf, len);
	}
	free(buf);
}

/* NOPS random writes (SEED) to PATH, SIZE bytes, kept in MODEL too: the
 * image reads as MODEL before and after reopening, and checks clean. */
static void writes_verified(const char *path, uint8_t *model, uint64_t size,
			    int nops, uint64_t seed)
{
	struct mimg *img = open_img(path, MIMG_OPEN_RDWR);
	ck_assert_uint_eq(mimg_size(img), size);
	random_writes(img, model, size, nops, seed);
	verify(img, model, size);
	ck_assert_int_eq(mimg_close(img), 0);

	img = open_img(path, 0);
	verify(img, model, size);
	tu_assert_check(img, 0, 0, TU_ANY, NULL);
	mimg_close(img);
}

static void roundtrip(const char *opts)
{
	const uint64_t size = 6 * MIB + 512;
	uint8_t *model = calloc(1, size);
	create("d.vmdk", size, opts);
	writes_verified("d.vmdk", model, size, 120, 42);
	qemu_agrees("d.vmdk", model, size);
	free(model);
}

START_TEST(test_write_monolithic_sparse)
{
	roundtrip(NULL);
}
END_TEST
START_TEST(test_write_zeroed_grain)
{
	roundtrip("zeroed_grain=on");
}
END_TEST
START_TEST(test_write_flat)
{
	roundtrip("subformat=monolithicFlat");
}
END_TEST
START_TEST(test_write_split_sparse)
{
	roundtrip("subformat=twoGbMaxExtentSparse");
}
END_TEST
START_TEST(test_write_split_flat)
{
	roundtrip("subformat=twoGbMaxExtentFlat");
}
END_TEST

/* A descriptor with several extents of every writable kind: writes and
 * reads cross the boundaries. */
START_TEST(test_multi_extent)
{
	const uint64_t size = 3 * MIB;
	uint8_t *model = calloc(1, size);
	create("s1.vmdk", 1 * MIB, NULL);
	tu_make_sparse("flat file.img", 3 * MIB);
	FILE *f = fopen("multi.vmdk", "w");
	fprintf(f, "# Disk DescriptorFile\r\nversion=1\r\nCID=fffffffe\r\n"
		   "parentCID=ffffffff\r\ncreateType=\"vmfs\"\r\n\r\n"
		   /* qemu 7.2 reads an extent line twice when a blank line
		 * precedes it; VMware writes this comment there. */
		   "# Extent description\r\n"
		   "RW 2048 FLAT \"flat file.img\" 2048\r\n"
		   "RW 2048 SPARSE \"s1.vmdk\"\r\n"
		   "RW 2048 VMFS \"flat file.img\"\r\n");
	fclose(f);
	writes_verified("multi.vmdk", model, size, 60, 7);
	/* The first extent starts 1 MiB into the flat file. */
	uint8_t *flat = malloc(MIB);
	ck_assert_ptr_nonnull(flat);
	tu_read_at("flat file.img", flat, MIB, MIB);
	ck_assert_int_eq(memcmp(flat, model, MIB), 0);
	free(flat);
	qemu_agrees("multi.vmdk", model, size);
	free(model);
}
END_TEST

START_TEST(test_zero_extent_and_noaccess)
{
	FILE *f = fopen("z.vmdk", "w");
	fprintf(f, "# Disk DescriptorFile\nCID=1\nRW 100 ZERO\n"
		   "RDONLY 28 FLAT \"data.img\" 0\n");
	fclose(f);
	uint8_t data[28 * 512];
	tu_fill_random(data, sizeof(data), 3);
	tu_write_file("data.img", data, sizeof(data), 0);
	struct mimg *img = open_img("z.vmdk", MIMG_OPEN_RDWR);
	uint8_t buf[128 * 512];
	ck_assert_int_eq(mimg_pread(img, buf, sizeof(buf), 0, 0),
			 (ssize_t)sizeof(buf));
	for (size_t i = 0; i < 100 * 512; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_int_eq(memcmp(buf + 100 * 512, data, sizeof(data)), 0);
	ck_assert_int_lt(mimg_pwrite(img, buf, 512, 0, 0), 0);
	ck_assert_int_eq(mimg_pwrite(img, buf, 512, 100 * 512, 0), -EROFS);
	tu_assert_status(img, 0, 128 * 512, 100 * 512,
			 MIMG_BS_ZERO | MIMG_BS_ALLOCATED, 0);
	mimg_close(img);
}
END_TEST

/* base.vmdk of SIZE bytes holding pseudo-random data from SEED, which is
 * returned (malloc'ed) as the model of the disk. */
static uint8_t *make_base(uint64_t size, uint64_t seed)
{
	uint8_t *model = malloc(size);
	tu_fill_random(model, size, seed);
	create("base.vmdk", size, NULL);
	struct mimg *b = open_img("base.vmdk", MIMG_OPEN_RDWR);
	ck_assert_int_eq(mimg_pwrite(b, model, size, 0, 0), (ssize_t)size);
	ck_assert_int_eq(mimg_close(b), 0);
	return model;
}

/* Close T, then top.vmdk opened again reads as MODEL and checks clean. */
static void close_reopen_verify(struct mimg *t, const uint8_t *model,
				uint64_t size)
{
	ck_assert_int_eq(mimg_close(t), 0);
	t = open_img("top.vmdk", 0);
	verify(t, model, size);
	tu_assert_check(t, 0, 0, TU_ANY, NULL);
	mimg_close(t);
}

/* Partial writes into a delta link copy the rest of the grain from the
 * parent; whole-grain zeroes become zeroed-grain entries. */
START_TEST(test_delta_cow_and_zeroes)
{
	const uint64_t size = 2 * MIB;
	uint8_t *model = make_base(size, 11);

	struct mimg_opt o[] = {{"backing_file", "base.vmdk"},
			       {"backing_fmt", "vmdk"},
			       {"zeroed_grain", "on"}};
	struct mimg *b = open_img("base.vmdk", 0);
	ck_assert_msg(mimg_create("top.vmdk", "vmdk", size, o, 3) == 0, "%s",
		      mimg_errmsg());
	mimg_close(b);

	struct mimg *t = open_img("top.vmdk", MIMG_OPEN_RDWR);
	ck_assert_ptr_nonnull(mimg_backing(t));
	verify(t, model, size);
	uint8_t buf[100];
	memset(buf, 0xab, sizeof(buf));
	ck_assert_int_eq(mimg_pwrite(t, buf, sizeof(buf), 65536 + 1000, 0),
			 100);
	memcpy(model + 65536 + 1000, buf, sizeof(buf));
	ck_assert_int_eq(mimg_pwrite_zeroes(t, 4 * 65536, 2 * 65536, 0), 0);
	memset(model + 4 * 65536, 0, 2 * 65536);
	ck_assert_int_eq(mimg_pwrite_zeroes(t, 10 * 65536 + 5, 100, 0), 0);
	memset(model + 10 * 65536 + 5, 0, 100);
	verify(t, model, size);

	tu_assert_status(t, 4 * 65536, 4 * 65536, 2 * 65536,
			 MIMG_BS_ZERO | MIMG_BS_ALLOCATED, MIMG_BS_DATA);
	tu_assert_status(t, 0, 65536, 0, 0, MIMG_BS_ALLOCATED);
	close_reopen_verify(t, model, size);
	qemu_agrees("top.vmdk", model, size);
	free(model);
}
END_TEST

/* A partial write into a 4 MiB grain copies the rest of the grain from
 * the parent piece by piece. */
START_TEST(test_big_grain_cow)
{
	const uint64_t size = 8 * MIB;
	uint8_t *model = make_base(size, 21);
	tu_write_file("base.raw", model, size, 0);
	create("top.vmdk", size, "backing_file=base.vmdk,backing_fmt=vmdk");
	/* 8192-sector grains: one grain table still covers the image. */
	uint8_t g[8] = {0x00, 0x20, 0, 0, 0, 0, 0, 0};
	tu_write_file("top.vmdk", g, sizeof(g), 20);

	struct mimg *t = open_img("top.vmdk", MIMG_OPEN_RDWR);
	ck_assert_uint_eq(mimg_cluster_size(t), 4 * MIB);
	uint8_t *buf = malloc(3 * MIB);
	tu_fill_random(buf, 3 * MIB, 22);
	ck_assert_int_eq(mimg_pwrite(t, buf, 3 * MIB, 1536 * 1024 + 7, 0),
			 (ssize_t)(3 * MIB));
	memcpy(model + 1536 * 1024 + 7, buf, 3 * MIB);
	verify(t, model, size);
	close_reopen_verify(t, model, size);
	free(buf);
	free(model);
}
END_TEST

/* Threads write their own 4 KiB stripes, so they allocate the same grains
 * (and grain tables) at the same time. */
struct stripe_ctx {
	struct mimg *img;
	int id, n;
	uint8_t *model;
	uint64_t size;
};

static void *stripe_writer(void *arg)
{
	struct stripe_ctx *c = arg;
	uint8_t buf[4096];
	for (uint64_t off = (uint64_t)c->id * 4096; off < c->size;
	     off += (uint64_t)c->n * 4096) {
		tu_fill_random(buf, sizeof(buf), off + 1);
		if (mimg_pwrite(c->img, buf, sizeof(buf), off, 0) != 4096)
			return (void *)1;
		memcpy(c->model + off, buf, sizeof(buf));
	}
	return NULL;
}

START_TEST(test_concurrent_allocation)
{
	const uint64_t size = 8 * MIB;
	uint8_t *model = calloc(1, size);
	pthread_t th[6];
	struct stripe_ctx ctx[6];
	create("c.vmdk", size, NULL);
	struct mimg *img = open_img("c.vmdk", MIMG_OPEN_RDWR);
	for (int i = 0; i < 6; i++) {
		ctx[i] = (struct stripe_ctx){img, i, 6, model, size};
		pthread_create(&th[i], NULL, stripe_writer, &ctx[i]);
	}
	for (int i = 0; i < 6; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		ck_assert_ptr_null(ret);
	}
	verify(img, model, size);
	ck_assert_int_eq(mimg_close(img), 0);
	img = open_img("c.vmdk", 0);
	tu_assert_check(img, 0, 0, TU_ANY, NULL);
	verify(img, model, size);
	mimg_close(img);
	qemu_agrees("c.vmdk", model, size);
	free(model);
}
END_TEST

/* The first write gives the image a new CID (its content changed). */
START_TEST(test_cid_changes_on_write)
{
	create("cid.vmdk", MIB, NULL);
	struct mimg *img = open_img("cid.vmdk", MIMG_OPEN_RDWR);
	struct mimg_value *info;
	ck_assert_int_eq(mimg_info(img, &info), 0);
	const struct mimg_value *d =
		mimg_value_get(mimg_value_get(info, "format-specific"), "data");
	uint64_t cid = mimg_value_get(d, "cid")->v.u;
	mimg_value_free(info);
	uint8_t b[512] = {1};
	ck_assert_int_eq(mimg_pwrite(img, b, 512, 0, 0), 512);
	ck_assert_int_eq(mimg_close(img), 0);
	img = open_img("cid.vmdk", 0);
	ck_assert_int_eq(mimg_info(img, &info), 0);
	d = mimg_value_get(mimg_value_get(info, "format-specific"), "data");
	ck_assert_uint_ne(mimg_value_get(d, "cid")->v.u, cid);
	mimg_value_free(info);
	mimg_close(img);
}
END_TEST

int main(void)
{
	return tu_main("vmdk_io", "io",
		       TU_TESTS(test_write_monolithic_sparse,
				test_write_zeroed_grain, test_write_flat,
				test_write_split_sparse, test_write_split_flat,
				test_multi_extent,
				test_zero_extent_and_noaccess,
				test_delta_cow_and_zeroes, test_big_grain_cow,
				test_concurrent_allocation,
				test_cid_changes_on_write));
}
