/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The host-file fault hook: failing the Nth write-type operation makes
 * exactly that operation fail, without performing it, and the error comes
 * back through the public API (and out of the convert engine's worker
 * threads) with a message naming the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "file.h"
#include "mimg.h"
#include "testutil.h"

#define MIB (1024u * 1024u)

/* Fail the FAIL_AT-th operation of kind OP (counting from 1) with ERR;
 * record every call. */
struct fault {
	enum mimg_file_op op;
	int fail_at;
	int err;
	int seen;
	int failed;
	char path[256];
	uint64_t off, len;
};

static int hook(void *opaque, enum mimg_file_op op, const char *path,
		uint64_t off, uint64_t len)
{
	struct fault *f = opaque;
	if (op != f->op)
		return 0;
	if (__atomic_add_fetch(&f->seen, 1, __ATOMIC_SEQ_CST) != f->fail_at)
		return 0;
	__atomic_add_fetch(&f->failed, 1, __ATOMIC_SEQ_CST);
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->off = off;
	f->len = len;
	return f->err;
}

static void teardown_hook(void)
{
	mimg_file_set_fault_hook(NULL, NULL);
}

static void assert_msg_has(const char *needle)
{
	ck_assert_msg(strstr(mimg_errmsg(), needle) != NULL,
		      "message '%s' lacks '%s'", mimg_errmsg(), needle);
}

START_TEST(nth_write_fails)
{
	struct fault f = {.op = MIMG_FILE_OP_WRITE,
			  .fail_at = 3,
			  .err = -ENOSPC};
	uint8_t buf[4096];
	tu_make_sparse("a.img", MIB);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.img", "raw", MIMG_OPEN_RDWR), 0);
	mimg_file_set_fault_hook(hook, &f);
	for (int i = 1; i <= 5; i++) {
		memset(buf, i, sizeof(buf));
		ssize_t r = mimg_pwrite(img, buf, sizeof(buf),
					(uint64_t)i * 8192, 0);
		if (i == 3) {
			ck_assert_int_eq(r, -ENOSPC);
			assert_msg_has("a.img");
			assert_msg_has("injected fault");
		} else {
			ck_assert_int_eq(r, 4096);
		}
	}
	ck_assert_int_eq(f.failed, 1);
	ck_assert_str_eq(f.path, "a.img");
	ck_assert_uint_eq(f.off, 3 * 8192);
	ck_assert_uint_eq(f.len, 4096);
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_int_eq(mimg_close(img), 0);

	/* the failed write did not happen, the others did */
	int fd = open("a.img", O_RDONLY);
	for (int i = 1; i <= 5; i++) {
		ck_assert_int_eq(pread(fd, buf, 1, (off_t)i * 8192), 1);
		ck_assert_uint_eq(buf[0], i == 3 ? 0 : i);
	}
	close(fd);
}
END_TEST

START_TEST(positive_hook_value_is_eio)
{
	struct fault f = {.op = MIMG_FILE_OP_WRITE, .fail_at = 1, .err = 1};
	tu_make_sparse("a.img", 4096);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.img", "raw", MIMG_OPEN_RDWR), 0);
	mimg_file_set_fault_hook(hook, &f);
	ck_assert_int_eq(mimg_pwrite(img, "x", 1, 0, 0), -EIO);
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(flush_fault_reaches_close)
{
	struct fault f = {.op = MIMG_FILE_OP_FLUSH, .fail_at = 1, .err = -EIO};
	tu_make_sparse("a.img", 4096);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.img", "raw", MIMG_OPEN_RDWR), 0);
	mimg_file_set_fault_hook(hook, &f);
	ck_assert_int_eq(mimg_flush(img, 0), -EIO);
	assert_msg_has("a.img");
	ck_assert_int_eq(mimg_flush(img, 0), 0);
	/* close flushes too: fail that one */
	f.seen = 0;
	ck_assert_int_eq(mimg_close(img), -EIO);
	mimg_file_set_fault_hook(NULL, NULL);
	/* read-only handles never flush the host file */
	f.seen = 0;
	ck_assert_int_eq(mimg_open(&img, "a.img", "raw", 0), 0);
	mimg_file_set_fault_hook(hook, &f);
	ck_assert_int_eq(mimg_flush(img, 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(f.seen, 0);
}
END_TEST

START_TEST(space_operations_fault)
{
	struct mimg *img;
	tu_make_sparse("a.img", MIB);
	ck_assert_int_eq(mimg_open(&img, "a.img", "raw", MIMG_OPEN_RDWR), 0);

	struct fault t = {.op = MIMG_FILE_OP_TRUNCATE,
			  .fail_at = 1,
			  .err = -EIO};
	mimg_file_set_fault_hook(hook, &t);
	ck_assert_int_eq(mimg_truncate(img, 2 * MIB, MIMG_PREALLOC_OFF), -EIO);
	assert_msg_has("a.img");
	ck_assert_uint_eq(mimg_size(img), MIB); /* unchanged on failure */
	struct stat st;
	ck_assert_int_eq(stat("a.img", &st), 0);
	ck_assert_int_eq(st.st_size, MIB);

	struct fault a = {.op = MIMG_FILE_OP_ALLOCATE,
			  .fail_at = 1,
			  .err = -ENOSPC};
	mimg_file_set_fault_hook(hook, &a);
	ck_assert_int_eq(mimg_truncate(img, 2 * MIB, MIMG_PREALLOC_FALLOC),
			 -ENOSPC);

	struct fault d = {.op = MIMG_FILE_OP_DISCARD,
			  .fail_at = 1,
			  .err = -EIO};
	mimg_file_set_fault_hook(hook, &d);
	ck_assert_int_eq(mimg_discard(img, 0, 65536, 0), -EIO);
	ck_assert_int_eq(d.failed, 1);
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_int_eq(mimg_close(img), 0);

	/* creation with preallocation goes through the same layer */
	struct fault c = {.op = MIMG_FILE_OP_ALLOCATE,
			  .fail_at = 1,
			  .err = -ENOSPC};
	struct mimg_opt o = {"preallocation", "falloc"};
	mimg_file_set_fault_hook(hook, &c);
	ck_assert_int_eq(mimg_create("b.img", "raw", MIB, &o, 1), -ENOSPC);
	assert_msg_has("b.img");
	mimg_file_set_fault_hook(NULL, NULL);
}
END_TEST

START_TEST(convert_write_fault_propagates)
{
	/* 8 MiB of data: many windows, several workers */
	free(tu_random_file("src.img", 8 * MIB, 8));
	ck_assert_int_eq(mimg_create("dst.img", "raw", 8 * MIB, NULL, 0), 0);
	struct mimg *s, *d;
	ck_assert_int_eq(mimg_open(&s, "src.img", NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&d, "dst.img", "raw", MIMG_OPEN_RDWR), 0);
	struct fault f = {.op = MIMG_FILE_OP_WRITE,
			  .fail_at = 2,
			  .err = -EDQUOT};
	mimg_file_set_fault_hook(hook, &f);
	mimg_err_clear();
	ck_assert_int_eq(mimg_convert(s, d, NULL), -EDQUOT);
	/* the worker's message reaches the caller's thread */
	assert_msg_has("dst.img");
	assert_msg_has("injected fault");
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_int_eq(f.failed, 1);
	ck_assert_int_eq(mimg_close(d), 0);
	ck_assert_int_eq(mimg_close(s), 0);
}
END_TEST

/* Counts every operation by kind. */
static int count_hook(void *opaque, enum mimg_file_op op, const char *path,
		      uint64_t off, uint64_t len)
{
	int *counts = opaque;
	(void)path, (void)off, (void)len;
	counts[op]++;
	return 0;
}

/* A durable group: one flush after plain writes while little is
 * unflushed, O_DSYNC writes (no flush) once much is; the bytes land
 * either way, and a failed O_DSYNC write reports the file. */
START_TEST(durable_write_group)
{
	static uint8_t big[4 * MIB];
	const char a[] = "first piece", b[] = "second piece";
	struct mimg_file_write w[2] = {{a, sizeof(a), 4096},
				       {b, sizeof(b), 3 * MIB + 17}};
	int counts[MIMG_FILE_OP_WRITE_DSYNC + 1] = {0};
	char got[32];
	struct mimg_file *f;

	ck_assert_int_eq(mimg_file_open(&f, "d.img",
					MIMG_FILE_RDWR | MIMG_FILE_CREATE),
			 0);
	mimg_file_set_fault_hook(count_hook, counts);
	ck_assert_int_eq(mimg_file_pwrite_durable(f, w, 2), 0);
	ck_assert_int_eq(counts[MIMG_FILE_OP_WRITE], 2);
	ck_assert_int_eq(counts[MIMG_FILE_OP_FLUSH], 1);
	ck_assert_int_eq(counts[MIMG_FILE_OP_WRITE_DSYNC], 0);

	memset(counts, 0, sizeof(counts));
	ck_assert_int_eq(mimg_file_pwrite(f, big, sizeof(big), 8 * MIB), 0);
	ck_assert_int_eq(mimg_file_pwrite_durable(f, w, 2), 0);
	ck_assert_int_eq(counts[MIMG_FILE_OP_WRITE], 1);
	ck_assert_int_eq(counts[MIMG_FILE_OP_FLUSH], 0);
	ck_assert_int_eq(counts[MIMG_FILE_OP_WRITE_DSYNC], 2);
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_int_eq(mimg_file_pread(f, got, sizeof(a), 4096), 0);
	ck_assert_mem_eq(got, a, sizeof(a));
	ck_assert_int_eq(mimg_file_pread(f, got, sizeof(b), 3 * MIB + 17), 0);
	ck_assert_mem_eq(got, b, sizeof(b));

	struct fault flt = {.op = MIMG_FILE_OP_WRITE_DSYNC,
			    .fail_at = 1,
			    .err = -EIO};
	mimg_file_set_fault_hook(hook, &flt);
	mimg_err_clear();
	ck_assert_int_eq(mimg_file_pwrite_durable(f, w, 2), -EIO);
	ck_assert_int_eq(flt.failed, 1);
	assert_msg_has("d.img");
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

/* Records the operations on the image t.qcow2 (the O_DSYNC ones'
 * ranges too). */
struct op_log {
	int counts[MIMG_FILE_OP_WRITE_DSYNC + 1];
	uint64_t dsync_off, dsync_len;
};

static int log_hook(void *opaque, enum mimg_file_op op, const char *path,
		    uint64_t off, uint64_t len)
{
	struct op_log *l = opaque;
	if (!strstr(path, "t.qcow2"))
		return 0;
	l->counts[op]++;
	if (op == MIMG_FILE_OP_WRITE_DSYNC) {
		l->dsync_off = off;
		l->dsync_len = len;
	}
	return 0;
}

/* Several segments written O_DSYNC: one operation, the bytes in order. */
START_TEST(dsync_segments)
{
	char a[] = "one", b[] = "two", c[] = "three", got[16];
	struct iovec v[3] = {{a, 3}, {b, 3}, {c, 5}};
	struct op_log l = {{0}};
	struct mimg_file *f;

	ck_assert_int_eq(mimg_file_open(&f, "t.qcow2",
					MIMG_FILE_RDWR | MIMG_FILE_CREATE),
			 0);
	mimg_file_set_fault_hook(log_hook, &l);
	ck_assert_int_eq(mimg_file_pwritev_dsync(f, v, 3, 100), 0);
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_int_eq(l.counts[MIMG_FILE_OP_WRITE_DSYNC], 1);
	ck_assert_int_eq(l.counts[MIMG_FILE_OP_WRITE], 0);
	ck_assert_uint_eq(l.dsync_off, 100);
	ck_assert_uint_eq(l.dsync_len, 11);
	ck_assert_int_eq(mimg_file_pread(f, got, 11, 100), 0);
	ck_assert_mem_eq(got, "onetwothree", 11);
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

/* Exit-safe copy-on-write over a backing file: the new cluster (the
 * copied head and tail around the guest's bytes) is made durable by one
 * O_DSYNC write before its L2 entry is written, with no flush of the
 * whole image. */
START_TEST(exit_safe_cow_is_one_dsync_write)
{
	uint8_t *base = malloc(MIB), *buf = malloc(64 * 1024);
	struct mimg_opt o[2] = {{"backing_file", "b.raw"},
				{"backing_fmt", "raw"}};
	struct op_log l = {{0}};
	struct mimg *img;

	ck_assert(base && buf);
	tu_fill_random(base, MIB, 3);
	tu_write_file("b.raw", base, MIB, 0);
	ck_assert_int_eq(mimg_create("t.qcow2", "qcow2", MIB, o, 2), 0);
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", "qcow2",
				   MIMG_OPEN_RDWR | MIMG_OPEN_EXIT_SAFE),
			 0);
	/* A whole cluster first: the reservation and the L2 table. */
	memset(buf, 0x11, 65536);
	ck_assert_int_eq(mimg_pwrite(img, buf, 65536, 0, 0), 65536);
	memset(buf, 0x22, 4096);
	mimg_file_set_fault_hook(log_hook, &l);
	ck_assert_int_eq(mimg_pwrite(img, buf, 4096, 65536 + 8192, 0), 4096);
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_int_eq(l.counts[MIMG_FILE_OP_WRITE_DSYNC], 1);
	ck_assert_uint_eq(l.dsync_len, 65536);
	ck_assert_uint_eq(l.dsync_off % 65536, 0);
	ck_assert_int_eq(l.counts[MIMG_FILE_OP_FLUSH], 0);
	ck_assert_int_ge(l.counts[MIMG_FILE_OP_WRITE], 1); /* the L2 entry */
	ck_assert_int_eq(mimg_pread(img, buf, 65536, 65536, 0), 65536);
	ck_assert_mem_eq(buf, base + 65536, 8192);
	for (int i = 8192; i < 8192 + 4096; i++)
		ck_assert_uint_eq(buf[i], 0x22);
	ck_assert_mem_eq(buf + 12288, base + 65536 + 12288, 65536 - 12288);
	ck_assert_int_eq(mimg_close(img), 0);
	free(base);
	free(buf);
}
END_TEST

int main(void)
{
	return tu_main_cases("file_fault",
			     TU_TCASES(
				     {"file_fault",
				      TU_TESTS(nth_write_fails,
					       positive_hook_value_is_eio,
					       flush_fault_reaches_close,
					       space_operations_fault,
					       convert_write_fault_propagates,
					       dsync_segments,
					       exit_safe_cow_is_one_dsync_write,
					       durable_write_group),
				      NULL, 0, NULL, teardown_hook}));
}
