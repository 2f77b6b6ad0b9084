/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Writes never land on metadata.  Images made by qemu-img are then
 * crafted so that an L2 entry points at the L1 table, the refcount table,
 * a refcount block or the L2 table itself, or so that the active L2
 * table's refcount is 0.  A write through the library, the CLI (mimg
 * bench -w) or blockif must fail with EIO, leave the metadata untouched
 * and mark the image corrupt, as qemu does; qemu-img then reports it
 * corrupt.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mimg.h>

#include "blockif_run.h"
#include "testutil.h"
#include "vmm-blk/block_if.h"

#define CS 65536u

static uint64_t be64_at(int fd, uint64_t off)
{
	uint8_t b[8];
	ck_assert_int_eq(pread(fd, b, 8, (off_t)off), 8);
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void put_be(int fd, uint64_t off, uint64_t v, int bytes)
{
	uint8_t b[8];
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
	ck_assert_int_eq(pwrite(fd, b, (size_t)bytes, (off_t)off), bytes);
}

struct layout {
	uint64_t l1, reftable, refblock, l2;
};

/* A 64 MiB qcow2 with its first cluster written by qemu-io. */
static struct layout make_image(void)
{
	tu_sh("qemu-img create -q -f qcow2 a.qcow2 64M && qemu-io -c "
	      "'write -P 0x5a 0 64k' a.qcow2 >/dev/null");
	int fd = open("a.qcow2", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	struct layout l;
	l.l1 = be64_at(fd, 40);
	l.reftable = be64_at(fd, 48);
	l.refblock = be64_at(fd, l.reftable) & 0x00fffffffffffe00ull;
	l.l2 = be64_at(fd, l.l1) & 0x00fffffffffffe00ull;
	close(fd);
	ck_assert(l.l1 && l.reftable && l.refblock && l.l2);
	return l;
}

/* Point guest cluster 0's L2 entry at TARGET. */
static void aim_entry(const struct layout *l, uint64_t target)
{
	int fd = open("a.qcow2", O_RDWR);
	put_be(fd, l->l2, (1ull << 63) | target, 8);
	close(fd);
}

static uint8_t *read_cluster(uint64_t off)
{
	uint8_t *b = malloc(CS);
	int fd = open("a.qcow2", O_RDONLY);
	ck_assert_int_eq(pread(fd, b, CS, (off_t)off), CS);
	close(fd);
	return b;
}

/* The image is flagged corrupt: qemu-img says so, and mimg refuses to
 * open it for writing. */
static void assert_marked_corrupt(void)
{
	tu_sh("qemu-img info --output=json a.qcow2 | grep -q "
	      "'\"corrupt\": true'");
	struct mimg *img;
	ck_assert_int_lt(mimg_open(&img, "a.qcow2", NULL, MIMG_OPEN_RDWR), 0);
}

static void library_write_refused(uint64_t target, unsigned flags)
{
	struct layout l = make_image();
	if (target == 1)
		target = l.l1;
	else if (target == 2)
		target = l.reftable;
	else if (target == 3)
		target = l.refblock;
	else
		target = l.l2;
	aim_entry(&l, target);
	uint8_t *before = read_cluster(target);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.qcow2", NULL,
				   MIMG_OPEN_RDWR | flags),
			 0);
	uint8_t *b = malloc(CS);
	memset(b, 0xcc, CS);
	ck_assert_int_eq(mimg_pwrite(img, b, CS, 0, 0), -EIO);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "overlaps"));
	/* Writes elsewhere are refused too, until the image is repaired. */
	ck_assert_int_eq(mimg_pwrite(img, b, 4096, 1 << 20, 0), -EIO);
	mimg_close(img);
	uint8_t *after = read_cluster(target);
	ck_assert_msg(memcmp(before, after, CS) == 0,
		      "metadata at 0x%llx was overwritten",
		      (unsigned long long)target);
	assert_marked_corrupt();
	free(b);
	free(before);
	free(after);
}

START_TEST(entry_points_at_metadata)
{
	/* _i: 1 L1 table, 2 refcount table, 3 refcount block, 4 L2 table;
	 * both write modes. */
	library_write_refused((uint64_t)(_i % 4) + 1,
			      _i >= 4 ? MIMG_OPEN_EXIT_SAFE : 0);
}
END_TEST

/* The active L2 table's refcount is 0: the allocator must not hand it
 * out for guest data. */
START_TEST(l2_with_refcount_zero)
{
	struct layout l = make_image();
	int fd = open("a.qcow2", O_RDWR);
	put_be(fd, l.refblock + (l.l2 / CS) * 2, 0, 2);
	close(fd);
	uint8_t *before = read_cluster(l.l2);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.qcow2", NULL,
				   MIMG_OPEN_RDWR |
					   (_i ? MIMG_OPEN_EXIT_SAFE : 0)),
			 0);
	uint8_t *b = malloc(CS);
	memset(b, 0xcc, CS);
	/* Allocating writes until the allocator reaches the L2 cluster (a
	 * reservation of several clusters may step over the lone free one:
	 * then every write succeeds elsewhere). */
	ssize_t r = 0;
	for (int i = 1; i < 64 && r >= 0; i++)
		r = mimg_pwrite(img, b, CS, (uint64_t)i * CS, 0);
	mimg_close(img);
	uint8_t *after = read_cluster(l.l2);
	/* The table never received guest bytes and never points at itself. */
	ck_assert_int_eq(memcmp(before, after, 8), 0);
	for (unsigned i = 0; i < 64; i++) {
		uint64_t e = 0;
		for (int j = 0; j < 8; j++)
			e = e << 8 | after[i * 8 + j];
		ck_assert_uint_ne(e & 0x00fffffffffffe00ull, l.l2);
	}
	if (r < 0) {
		ck_assert_int_eq(r, -EIO);
		assert_marked_corrupt();
	}
	free(b);
	free(before);
	free(after);
}
END_TEST

/* The reproducer of qemu's own overlap check, through the CLI. */
START_TEST(cli_bench_write_refused)
{
	const char *mimg = getenv("MIMG");
	if (!mimg)
		mimg = "mimg";
	struct layout l = make_image();
	aim_entry(&l, l.l1);
	uint8_t *before = read_cluster(l.l1);
	ck_assert_int_ne(tu_system("%s bench -q -w -c 1 -d 1 -s 65536 -o 0 "
				   "--pattern=204 a.qcow2 2>/dev/null",
				   mimg),
			 0);
	uint8_t *after = read_cluster(l.l1);
	ck_assert_int_eq(memcmp(before, after, CS), 0);
	assert_marked_corrupt();
	free(before);
	free(after);
}
END_TEST

START_TEST(blockif_write_refused)
{
	struct layout l = make_image();
	aim_entry(&l, l.l1);
	uint8_t *before = read_cluster(l.l1);
	char path[4200];
	snprintf(path, sizeof(path), "%s/a.qcow2", tu_tmpdir());
	struct blockif_ctxt *bc = blockif_open_optstr(path, "overlap-test");
	ck_assert_ptr_nonnull(bc);
	uint8_t *b = malloc(CS);
	memset(b, 0xcc, CS);
	int err;
	ck_assert_int_eq(blockif_run(blockif_write, bc, b, CS, 0, &err), 0);
	ck_assert_int_eq(err, EIO);
	blockif_close(bc);
	uint8_t *after = read_cluster(l.l1);
	ck_assert_int_eq(memcmp(before, after, CS), 0);
	assert_marked_corrupt();
	free(b);
	free(before);
	free(after);
}
END_TEST

int main(void)
{
	return tu_main_qemu("qcow2_overlap", "overlap",
			    TU_TESTS(cli_bench_write_refused,
				     blockif_write_refused),
			    TU_LOOPS({entry_points_at_metadata, 8},
				     {l2_with_refcount_zero, 2}));
}
