/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 metadata writes are batched: allocating guest writes leave their
 * refcount increments in the cache for the next metadata sync instead of
 * writing the refcount block once per request (a conversion used to write
 * a sector of it before nearly every data write).  The increments must
 * still reach the file before the L2 entries that use them, and a failed
 * write of them must not lose them: the allocator would hand the same
 * clusters out again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "file.h"
#include "mimg.h"
#include "testutil.h"

#define CS 65536u
#define IMG_SIZE (64u << 20)
#define NWRITES 32

/* Writes into the first refcount block, and the one to fail (0: none). */
struct rb_watch {
	uint64_t rb_off;
	int writes;
	int fail_at;
	int failed;
};

static int watch_hook(void *opaque, enum mimg_file_op op, const char *path,
		      uint64_t off, uint64_t len)
{
	struct rb_watch *w = opaque;
	(void)path;
	if ((op != MIMG_FILE_OP_WRITE && op != MIMG_FILE_OP_WRITE_DSYNC) ||
	    off >= w->rb_off + CS || off + len <= w->rb_off)
		return 0;
	int n = __atomic_add_fetch(&w->writes, 1, __ATOMIC_SEQ_CST);
	if (n != w->fail_at)
		return 0;
	__atomic_add_fetch(&w->failed, 1, __ATOMIC_SEQ_CST);
	return -EIO;
}

/* Host offset of the first refcount block of the qcow2 file PATH. */
static uint64_t first_refblock(const char *path)
{
	size_t len;
	uint8_t *f = tu_read_file(path, &len);
	ck_assert_uint_ge(len, 104);
	uint64_t rt = ld_be64(f + 48);
	ck_assert_uint_ge(len, rt + 8);
	uint64_t rb = ld_be64(f + rt);
	free(f);
	ck_assert_uint_ne(rb, 0);
	return rb;
}

/* A new t.qcow2, open read-write with W watching the writes into its
 * first refcount block; *MODEL receives its content (zeroes). */
static struct mimg *create_and_watch(struct rb_watch *w, uint8_t **model)
{
	struct mimg *img;
	tu_create("t.qcow2", "qcow2", IMG_SIZE, "cluster_size=65536", NULL);
	w->rb_off = first_refblock("t.qcow2");
	int r = mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR);
	ck_assert_msg(r == 0, "open: %s", mimg_errmsg());
	*model = calloc(1, IMG_SIZE);
	ck_assert_ptr_nonnull(*model);
	mimg_file_set_fault_hook(watch_hook, w);
	return img;
}

/* Allocating writes of one cluster each, one cluster apart, so that
 * every one is a request and an allocation of its own. */
static void write_clusters(struct mimg *img, uint8_t *model, int first, int n)
{
	uint8_t *b = malloc(CS);
	ck_assert_ptr_nonnull(b);
	for (int i = first; i < first + n; i++) {
		uint64_t off = (uint64_t)i * 2 * CS;
		tu_fill_random(b, CS, 1000 + (uint64_t)i);
		ssize_t r = mimg_pwrite(img, b, CS, off, 0);
		ck_assert_msg(r == (ssize_t)CS, "write %d: %s", i,
			      mimg_errmsg());
		memcpy(model + off, b, CS);
	}
	free(b);
}

static void check_clean(struct mimg *img, const uint8_t *model)
{
	tu_assert_check(img, 0, 0, 0, NULL);
	uint8_t *got = malloc(IMG_SIZE);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(mimg_pread(img, got, IMG_SIZE, 0, 0), IMG_SIZE);
	ck_assert_msg(memcmp(got, model, IMG_SIZE) == 0,
		      "the image does not read back what was written");
	free(got);
}

/* Stop watching, close IMG and check that it reads back as MODEL, which
 * is freed. */
static void finish(struct mimg *img, uint8_t *model)
{
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	check_clean(img, model);
	ck_assert_int_eq(mimg_close(img), 0);
	if (tu_have_program("qemu-img"))
		tu_qemu_reads("t.qcow2", "qcow2", model, IMG_SIZE);
	free(model);
}

START_TEST(refcounts_written_per_sync)
{
	struct rb_watch w = {0};
	uint8_t *model;
	struct mimg *img = create_and_watch(&w, &model);
	write_clusters(img, model, 0, NWRITES);
	int before_flush = __atomic_load_n(&w.writes, __ATOMIC_SEQ_CST);
	/* The new L2 table's own refcount is written when it is made; the
	 * data clusters' wait for the flush. */
	ck_assert_msg(before_flush <= 2,
		      "%d writes into the refcount block "
		      "for %d allocating writes",
		      before_flush, NWRITES);
	ck_assert_int_eq(mimg_flush(img, 0), 0);
	int after_flush = __atomic_load_n(&w.writes, __ATOMIC_SEQ_CST);
	ck_assert_msg(after_flush == before_flush + 1,
		      "the flush wrote the "
		      "refcount block %d times",
		      after_flush - before_flush);
	finish(img, model);
}
END_TEST

START_TEST(failed_refcount_writeback_keeps_counts)
{
	struct rb_watch w = {0};
	uint8_t *model;
	struct mimg *img = create_and_watch(&w, &model);
	write_clusters(img, model, 0, NWRITES / 2);
	/* The flush's write of the waiting increments fails once. */
	w.fail_at = __atomic_load_n(&w.writes, __ATOMIC_SEQ_CST) + 1;
	ck_assert_int_lt(mimg_flush(img, 0), 0);
	ck_assert_int_eq(w.failed, 1);
	/* Later allocations must not take the clusters counted above. */
	write_clusters(img, model, NWRITES / 2, NWRITES / 2);
	ck_assert_msg(mimg_flush(img, 0) == 0, "flush: %s", mimg_errmsg());
	finish(img, model);
}
END_TEST

int main(void)
{
	return tu_main("qcow2_batching", "batching",
		       TU_TESTS(refcounts_written_per_sync,
				failed_refcount_writeback_keeps_counts));
}
