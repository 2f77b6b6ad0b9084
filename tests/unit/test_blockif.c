/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif over a raw image: bhyve's option string, request semantics
 * (errors, br_resid, E2BIG, cancel, ordering of overlapping requests) and
 * a concurrent stress with verification.  Built with FreeBSD 12's
 * interface (VMMBLK_BLOCKIF_LEGACY_API: blockif_open takes the string).
 */
#define VMMBLK_BLOCKIF_LEGACY_API 1
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "blockif_assert.h"
#include "blockif_park.h"
#include "mimg.h"
#include "blockif_run.h"
#include "testutil.h"
#include "test_blockif_stress.h"
#include "vmm-blk/block_if.h"

#define DISK_SIZE (4u << 20)

static uint8_t *disk;

static void make_disk(void)
{
	disk = tu_random_file("disk.raw", DISK_SIZE, 1);
}

static struct blockif_ctxt *open_ok(const char *opts)
{
	struct blockif_ctxt *bc = blockif_open(opts, "test");

	ck_assert_msg(bc != NULL, "blockif_open(%s) failed", opts);
	return bc;
}

/* A fresh disk.raw (make_disk) opened with OPTS. */
static struct blockif_ctxt *open_disk(const char *opts)
{
	make_disk();
	return open_ok(opts);
}

/* A request and a way to wait for it. */
struct waiter {
	struct blockif_req br;
	struct blockif_completion done;
	uint8_t buf[65536];
};

static struct waiter *waiter_new(uint64_t off, size_t len)
{
	struct waiter *w = calloc(1, sizeof(*w));

	ck_assert_ptr_nonnull(w);
	ck_assert_uint_le(len, sizeof(w->buf));
	w->done = (struct blockif_completion)BLOCKIF_COMPLETION_INIT;
	w->br.br_callback = blockif_completed;
	w->br.br_param = &w->done;
	w->br.br_offset = (off_t)off;
	w->br.br_resid = (ssize_t)len;
	w->br.br_iovcnt = 1;
	w->br.br_iov[0].iov_base = w->buf;
	w->br.br_iov[0].iov_len = len;
	return w;
}

static int waiter_wait(struct waiter *w)
{
	return blockif_completion_wait(&w->done);
}

/* Submit W's request with OP (blockif_read, _write, ...), which queues
 * it; returns the error its completion reports. */
static int complete(int (*op)(struct blockif_ctxt *, struct blockif_req *),
		    struct blockif_ctxt *bc, struct waiter *w)
{
	ck_assert_int_eq(op(bc, &w->br), 0);
	return waiter_wait(w);
}

/* Close BC, then free the N waiters W and the disk's content. */
static void close_disk(struct blockif_ctxt *bc, struct waiter **w, int n)
{
	ck_assert_int_eq(blockif_close(bc), 0);
	for (int i = 0; i < n; i++)
		free(w[i]);
	free(disk);
}

START_TEST(open_options)
{
	struct blockif_ctxt *bc;
	uint16_t c;
	uint8_t h, s;

	bc = open_disk("disk.raw");
	ck_assert_int_eq(blockif_size(bc), DISK_SIZE);
	ck_assert_int_eq(blockif_sectsz(bc), 512);
	ck_assert_int_eq(blockif_is_ro(bc), 0);
	ck_assert_int_eq(blockif_queuesz(bc), BLOCKIF_RING_MAX + 7);
	blockif_chs(bc, &c, &h, &s);
	/* 8192 sectors: 17 sectors per track, 4 heads (VHD rules). */
	ck_assert_uint_eq(s, 17);
	ck_assert_uint_eq(h, 4);
	ck_assert_uint_eq(c, 8192 / 17 / 4);
	ck_assert_int_eq(blockif_close(bc), 0);

	bc = open_ok("disk.raw,ro,sectorsize=4096,format=raw");
	ck_assert_int_eq(blockif_is_ro(bc), 1);
	ck_assert_int_eq(blockif_candelete(bc), 0);
	blockif_assert_sectors(bc, 4096, 4096, 0);
	ck_assert_int_eq(blockif_close(bc), 0);

	bc = open_ok("disk.raw,sectorsize=512/4096,nodelete,sync");
	blockif_assert_sectors(bc, 512, 4096, 0);
	ck_assert_int_eq(blockif_candelete(bc), 0);
	ck_assert_int_eq(blockif_close(bc), 0);

	ck_assert_ptr_null(blockif_open_optstr("disk.raw,bogus", "t"));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(
		blockif_open_optstr("disk.raw,sectorsize=1000", "t"));
	ck_assert_ptr_null(
		blockif_open_optstr("disk.raw,sectorsize=4096/512", "t"));
	ck_assert_ptr_null(blockif_open_optstr("disk.raw,sectorsize=256", "t"));
	ck_assert_ptr_null(blockif_open_optstr("disk.raw,sectorsize=", "t"));
	ck_assert_ptr_null(
		blockif_open_optstr("disk.raw,sectorsize=99999999999999", "t"));
	ck_assert_ptr_null(blockif_open_optstr("disk.raw,format=nosuch", "t"));
	ck_assert_ptr_null(blockif_open_optstr(",ro", "t"));
	ck_assert_ptr_null(blockif_open_optstr("missing.raw", "t"));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_null(blockif_open_optstr(NULL, "t"));
	free(disk);
}
END_TEST

/* A raw disk of SIZE bytes has the geometry C/H/S. */
static void assert_chs(uint64_t size, uint16_t c, uint8_t h, uint8_t s)
{
	struct blockif_ctxt *bc;
	uint16_t gc;
	uint8_t gh, gs;

	tu_make_sparse("big.raw", size);
	bc = open_ok("big.raw,format=raw");
	blockif_chs(bc, &gc, &gh, &gs);
	ck_assert_uint_eq(gc, c);
	ck_assert_uint_eq(gh, h);
	ck_assert_uint_eq(gs, s);
	ck_assert_int_eq(blockif_close(bc), 0);
}

START_TEST(chs_large)
{
	assert_chs(1ull << 30, 2080, 16, 63);
	/* Past the CHS limit everything saturates. */
	assert_chs(1ull << 40, 65535, 16, 255);
}
END_TEST

START_TEST(read_write_resid)
{
	struct blockif_ctxt *bc;
	struct waiter *w = waiter_new(4096, 8192);

	bc = open_disk("disk.raw,format=raw");
	ck_assert_int_eq(complete(blockif_read, bc, w), 0);
	ck_assert_int_eq(w->br.br_resid, 0);
	ck_assert(memcmp(w->buf, disk + 4096, 8192) == 0);

	memset(w->buf, 0x3c, 8192);
	w->br.br_resid = 8192;
	ck_assert_int_eq(complete(blockif_write, bc, w), 0);
	ck_assert_int_eq(complete(blockif_flush, bc, w), 0);
	memset(w->buf, 0, 8192);
	ck_assert_int_eq(complete(blockif_read, bc, w), 0);
	for (int i = 0; i < 8192; i++)
		ck_assert_uint_eq(w->buf[i], 0x3c);

	/* Crossing the end, as bhyve over a disk: the part inside moves,
	 * br_resid keeps the rest, no error. */
	memset(w->buf, 0x5a, 8192);
	w->br.br_offset = DISK_SIZE - 4096;
	w->br.br_resid = 8192;
	ck_assert_int_eq(complete(blockif_read, bc, w), 0);
	ck_assert_int_eq(w->br.br_resid, 4096);
	ck_assert(memcmp(w->buf, disk + DISK_SIZE - 4096, 4096) == 0);
	ck_assert_uint_eq(w->buf[4096], 0x5a);
	w->br.br_resid = 8192;
	ck_assert_int_eq(complete(blockif_write, bc, w), 0);
	ck_assert_int_eq(w->br.br_resid, 4096);
	ck_assert_int_eq(blockif_size(bc), DISK_SIZE);
	/* At the end nothing moves; a write past it is EIO. */
	w->br.br_offset = DISK_SIZE;
	w->br.br_resid = 8192;
	ck_assert_int_eq(complete(blockif_read, bc, w), 0);
	ck_assert_int_eq(w->br.br_resid, 8192);
	ck_assert_int_eq(complete(blockif_write, bc, w), 0);
	ck_assert_int_eq(w->br.br_resid, 8192);
	w->br.br_offset = DISK_SIZE + 512;
	ck_assert_int_eq(complete(blockif_read, bc, w), 0);
	ck_assert_int_eq(complete(blockif_write, bc, w), EIO);
	/* Malformed requests are queued like any other and fail through
	 * the callback: bhyve's models only expect 0 or E2BIG back. */
	w->br.br_offset = 0;
	w->br.br_iovcnt = -1;
	ck_assert_int_eq(complete(blockif_read, bc, w), EINVAL);
	w->br.br_iovcnt = 1;
	w->br.br_offset = -512;
	ck_assert_int_eq(complete(blockif_write, bc, w), EINVAL);
	w->br.br_offset = 0;
	w->br.br_resid = -1;
	ck_assert_int_eq(blockif_delete(bc, &w->br), 0);
	ck_assert_int_eq(waiter_wait(w),
			 blockif_candelete(bc) ? EINVAL : EOPNOTSUPP);
	close_disk(bc, &w, 1);
}
END_TEST

START_TEST(read_only_and_delete)
{
	struct blockif_ctxt *bc;
	struct waiter *w = waiter_new(0, 4096);

	bc = open_disk("disk.raw,format=raw,ro");
	ck_assert_int_eq(complete(blockif_write, bc, w), EROFS);
	w->br.br_resid = 4096;
	ck_assert_int_eq(complete(blockif_delete, bc, w), EOPNOTSUPP);
	ck_assert_int_eq(blockif_write_zeroes(bc, &w->br, 0), 0);
	ck_assert_int_eq(waiter_wait(w), EROFS);
	ck_assert_int_eq(blockif_close(bc), 0);

	bc = open_ok("disk.raw,format=raw,nodelete");
	ck_assert_int_eq(blockif_candelete(bc), 0);
	w->br.br_resid = 4096;
	ck_assert_int_eq(complete(blockif_delete, bc, w), EOPNOTSUPP);
	ck_assert_int_eq(blockif_close(bc), 0);

	bc = open_ok("disk.raw,format=raw");
	w->br.br_offset = 65536;
	w->br.br_resid = 8192;
	ck_assert_int_eq(blockif_write_zeroes(bc, &w->br, 1), 0);
	ck_assert_int_eq(waiter_wait(w), 0);
	ck_assert_int_eq(w->br.br_resid, 0);
	if (blockif_candelete(bc)) {
		/* Discarded raw ranges read back as zeroes. */
		w->br.br_offset = 1 << 20;
		w->br.br_resid = 1 << 16;
		ck_assert_int_eq(complete(blockif_delete, bc, w), 0);
	}
	w->br.br_offset = 65536;
	w->br.br_resid = 8192;
	w->br.br_iov[0].iov_len = 8192;
	memset(w->buf, 0xff, 8192);
	ck_assert_int_eq(complete(blockif_read, bc, w), 0);
	for (int i = 0; i < 8192; i++)
		ck_assert_uint_eq(w->buf[i], 0);
	if (blockif_candelete(bc)) {
		w->br.br_offset = 1 << 20;
		w->br.br_resid = 8192;
		memset(w->buf, 0xff, 8192);
		ck_assert_int_eq(complete(blockif_read, bc, w), 0);
		for (int i = 0; i < 8192; i++)
			ck_assert_uint_eq(w->buf[i], 0);
	}
	close_disk(bc, &w, 1);
}
END_TEST

static int counted_calls;
static void count_cb(struct blockif_req *br, int err)
{
	(void)br;
	if (err == 0)
		__atomic_fetch_add(&counted_calls, 1, __ATOMIC_SEQ_CST);
}

/* REQ moves the LEN bytes of BUF at OFF; count_cb counts it. */
static void counted_req(struct blockif_req *req, uint8_t *buf, size_t len,
			off_t off)
{
	req->br_callback = count_cb;
	req->br_iovcnt = 1;
	req->br_iov[0].iov_base = buf;
	req->br_iov[0].iov_len = len;
	req->br_offset = off;
	req->br_resid = (ssize_t)len;
}

START_TEST(queue_full_and_cancel)
{
	struct blockif_ctxt *bc;
	struct blockif_req *reqs;
	uint8_t *bufs;
	int qsz, workers, slots, n;

	bc = open_disk("disk.raw,format=raw");
	/* bhyve's numbers: BLOCKIF_RING_MAX + 8 slots, one less reported. */
	qsz = blockif_queuesz(bc);
	ck_assert_int_eq(qsz, BLOCKIF_RING_MAX + 7);
	slots = qsz + 1;
	reqs = calloc((size_t)slots + 1, sizeof(*reqs));
	bufs = malloc(((size_t)slots + 1) * 512);
	ck_assert(reqs && bufs);
	/* A parked worker's request holds its slot until its callback
	 * returns, as in bhyve. */
	workers = park_workers(bc);
	ck_assert_int_ge(workers, 1);
	counted_calls = 0;
	for (int i = 0; i <= slots; i++)
		counted_req(&reqs[i], bufs + 512 * (size_t)i, 512,
			    512 * (i % 64));
	/* The parked flushes hold WORKERS slots. */
	n = slots - workers;
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(blockif_read(bc, &reqs[i]), 0);
	ck_assert_int_eq(blockif_read(bc, &reqs[n]), E2BIG);
	/* Queued requests cancel cleanly, once. */
	ck_assert_int_eq(blockif_cancel(bc, &reqs[5]), 0);
	ck_assert_int_eq(blockif_cancel(bc, &reqs[5]), EINVAL);
	ck_assert_int_eq(blockif_cancel(bc, &reqs[n]), EINVAL);
	/* A request whose callback is running: EBUSY, without waiting. */
	ck_assert_int_eq(blockif_cancel(bc, parked_request(0)), EBUSY);
	/* The freed slot takes a new request. */
	ck_assert_int_eq(blockif_read(bc, &reqs[n]), 0);
	ck_assert_int_eq(blockif_read(bc, &reqs[5]), E2BIG);
	release_workers();
	ck_assert_int_eq(blockif_close(bc), 0);
	ck_assert_int_eq(counted_calls, n);
	free(bufs);
	free(reqs);
	free(disk);
}
END_TEST

START_TEST(overlapping_requests_keep_order)
{
	struct blockif_ctxt *bc;
	struct waiter *w[6];

	bc = open_disk("disk.raw,format=raw");
	park_workers(bc);
	/* With every worker parked, queue write A, write B, zero C, read:
	 * once released, they run in parallel except where they overlap. */
	for (int i = 0; i < 6; i++)
		w[i] = waiter_new(8192, 16384);
	memset(w[0]->buf, 0xaa, 16384);
	memset(w[1]->buf, 0xbb, 16384);
	w[1]->br.br_offset = 8192 + 4096;
	w[1]->br.br_iov[0].iov_len = 8192;
	w[1]->br.br_resid = 8192;
	w[2]->br.br_offset = 8192 + 8192;
	w[2]->br.br_resid = 512;
	w[3]->br.br_iovcnt = 1;
	w[4]->br.br_offset = 1 << 20; /* unrelated read */
	ck_assert_int_eq(blockif_write(bc, &w[0]->br), 0);
	ck_assert_int_eq(blockif_write(bc, &w[1]->br), 0);
	ck_assert_int_eq(blockif_write_zeroes(bc, &w[2]->br, 0), 0);
	ck_assert_int_eq(blockif_read(bc, &w[3]->br), 0);
	ck_assert_int_eq(blockif_read(bc, &w[4]->br), 0);
	ck_assert_int_eq(blockif_flush(bc, &w[5]->br), 0);
	release_workers();
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(waiter_wait(w[i]), 0);
	for (int i = 0; i < 16384; i++) {
		uint8_t want = i < 4096		? 0xaa
			       : i < 8192	? 0xbb
			       : i < 8192 + 512 ? 0
			       : i < 12288	? 0xbb
						: 0xaa;

		if (w[3]->buf[i] != want)
			ck_abort_msg("byte %d is 0x%02x, want 0x%02x", i,
				     w[3]->buf[i], want);
	}
	ck_assert(memcmp(w[4]->buf, disk + (1 << 20), 16384) == 0);
	close_disk(bc, w, 6);
}
END_TEST

static bool waiter_done_now(struct waiter *w)
{
	bool done;

	pthread_mutex_lock(&w->done.lock);
	done = w->done.done;
	pthread_mutex_unlock(&w->done.lock);
	return done;
}

/* blockif_read_here / blockif_write_here run in the caller when nothing
 * else is unfinished, even with every worker busy in a callback; behind
 * an unfinished request they are queued like blockif_read / write. */
START_TEST(here_requests)
{
	struct blockif_ctxt *bc;
	struct waiter *w[4];

	bc = open_disk("disk.raw,format=raw");
	ck_assert_int_ge(park_workers(bc), 1);
	w[0] = waiter_new(4096, 8192);
	memset(w[0]->buf, 0x5a, 8192);
	ck_assert_int_eq(blockif_write_here(bc, &w[0]->br), 0);
	ck_assert(waiter_done_now(w[0]));
	ck_assert_int_eq(waiter_wait(w[0]), 0);
	ck_assert_int_eq(w[0]->br.br_resid, 0);
	w[1] = waiter_new(4096, 8192);
	ck_assert_int_eq(blockif_read_here(bc, &w[1]->br), 0);
	ck_assert(waiter_done_now(w[1]));
	ck_assert_int_eq(waiter_wait(w[1]), 0);
	ck_assert(memcmp(w[1]->buf, w[0]->buf, 8192) == 0);
	/* No worker can start W2, so W3 waits behind it. */
	w[2] = waiter_new(1 << 20, 4096);
	w[3] = waiter_new(2 << 20, 4096);
	ck_assert_int_eq(blockif_read(bc, &w[2]->br), 0);
	ck_assert_int_eq(blockif_read_here(bc, &w[3]->br), 0);
	ck_assert(!waiter_done_now(w[3]));
	release_workers();
	ck_assert_int_eq(waiter_wait(w[2]), 0);
	ck_assert_int_eq(waiter_wait(w[3]), 0);
	ck_assert(memcmp(w[2]->buf, disk + (1 << 20), 4096) == 0);
	ck_assert(memcmp(w[3]->buf, disk + (2 << 20), 4096) == 0);
	close_disk(bc, w, 4);
}
END_TEST

/* A 1 MiB request in 128 segments of 8 KiB, over BUF, with a callback
 * that counts its calls and, with CHECK, compares what the image file
 * holds at that moment with BUF. */
struct big_req {
	struct blockif_completion done; /* first: br_param is both */
	struct blockif_req br;
	const uint8_t *check;
	int fd;
	int calls;
	bool differs;
};

static void big_cb(struct blockif_req *br, int err)
{
	struct big_req *b = br->br_param;

	__atomic_fetch_add(&b->calls, 1, __ATOMIC_SEQ_CST);
	if (b->check) {
		uint8_t *now = malloc(1 << 20);

		b->differs = !now ||
			     pread(b->fd, now, 1 << 20, br->br_offset) !=
				     1 << 20 ||
			     memcmp(now, b->check, 1 << 20) != 0;
		free(now);
	}
	blockif_completed(br, err);
}

static void big_init(struct big_req *b, uint8_t *buf, uint64_t off)
{
	memset(b, 0, sizeof(*b));
	b->done = (struct blockif_completion)BLOCKIF_COMPLETION_INIT;
	b->br.br_callback = big_cb;
	b->br.br_param = b;
	b->br.br_offset = (off_t)off;
	b->br.br_resid = 1 << 20;
	b->br.br_iovcnt = BLOCKIF_IOV_MAX;
	for (int i = 0; i < BLOCKIF_IOV_MAX; i++) {
		b->br.br_iov[i].iov_base = buf + i * 8192;
		b->br.br_iov[i].iov_len = 8192;
	}
}

/* Large writes (and reads with nocache) are performed in parts by several
 * threads: the request completes once, after its last part, with the
 * error of any part. */
START_TEST(large_requests_in_parts)
{
	struct blockif_ctxt *bc;
	struct big_req b;
	uint8_t *buf = aligned_alloc(4096, 1 << 20), *file, *hole;
	int fd;
	size_t flen;

	ck_assert_ptr_nonnull(buf);
	make_disk();
	fd = open("disk.raw", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	bc = open_ok("disk.raw,format=raw");
	/* With every worker held, a request performed here is performed
	 * whole by the caller, parts and callback. */
	ck_assert_int_ge(park_workers(bc), 1);
	memset(buf, 0x6b, 1 << 20);
	big_init(&b, buf, 1 << 20);
	b.check = buf;
	b.fd = fd;
	ck_assert_int_eq(blockif_write_here(bc, &b.br), 0);
	ck_assert(b.done.done);
	ck_assert_int_eq(blockif_completion_wait(&b.done), 0);
	ck_assert(!b.differs);
	release_workers();
	/* Whichever thread finishes the last part, when the callback runs
	 * every part is in the file. */
	for (int i = 0; i < 40; i++) {
		memset(buf, 0x10 + i, 1 << 20);
		big_init(&b, buf, (uint64_t)(i % 3) << 20);
		b.check = buf;
		b.fd = fd;
		ck_assert_int_eq(i % 2 ? blockif_write_here(bc, &b.br)
				       : blockif_write(bc, &b.br),
				 0);
		ck_assert_int_eq(blockif_completion_wait(&b.done), 0);
		ck_assert_int_eq(b.calls, 1);
		ck_assert(!b.differs);
		ck_assert_int_eq(b.br.br_resid, 0);
		memcpy(disk + ((i % 3) << 20), buf, 1 << 20);
	}
	/* The first segment cannot be read from: the request fails, once,
	 * with that part's error, and (with the parts performed apart)
	 * the last part is written all the same. */
	hole = mmap(NULL, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(hole, MAP_FAILED);
	memset(buf, 0xe7, 1 << 20);
	big_init(&b, buf, 2 << 20);
	b.br.br_iov[0].iov_base = hole;
	ck_assert_int_eq(blockif_write(bc, &b.br), 0);
	ck_assert_int_eq(blockif_completion_wait(&b.done), EFAULT);
	ck_assert_int_eq(b.calls, 1);
	file = tu_read_file("disk.raw", &flen);
	ck_assert_uint_eq(flen, DISK_SIZE);
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		ck_assert_uint_eq(file[(3 << 20) - 1], 0xe7);
	free(file);

	/* With nocache reads are cut as well. */
	ck_assert_int_eq(blockif_close(bc), 0);
	bc = open_ok("disk.raw,format=raw,nocache");
	for (int here = 0; here < 2; here++) {
		memset(buf, 0, 1 << 20);
		big_init(&b, buf, 512 << 10);
		ck_assert_int_eq(here ? blockif_read_here(bc, &b.br)
				      : blockif_read(bc, &b.br),
				 0);
		ck_assert_int_eq(blockif_completion_wait(&b.done), 0);
		ck_assert_int_eq(b.calls, 1);
		ck_assert_int_eq(b.br.br_resid, 0);
		ck_assert(memcmp(buf, disk + (512 << 10), 1 << 20) == 0);
	}
	/* A segment of the last part cannot be written to. */
	for (int here = 0; here < 2; here++) {
		big_init(&b, buf, 0);
		b.br.br_iov[BLOCKIF_IOV_MAX - 3].iov_base = hole;
		ck_assert_int_eq(here ? blockif_read_here(bc, &b.br)
				      : blockif_read(bc, &b.br),
				 0);
		ck_assert_int_eq(blockif_completion_wait(&b.done), EFAULT);
		ck_assert_int_eq(b.calls, 1);
	}
	munmap(hole, 8192);
	ck_assert_int_eq(blockif_close(bc), 0);
	close(fd);
	free(buf);
	free(disk);
}
END_TEST

START_TEST(close_drains_queue)
{
	struct blockif_ctxt *bc;
	static struct blockif_req reqs[BLOCKIF_RING_MAX];
	static uint8_t buf[BLOCKIF_RING_MAX][4096];

	bc = open_disk("disk.raw,format=raw");
	counted_calls = 0;
	for (int i = 0; i < BLOCKIF_RING_MAX; i++) {
		counted_req(&reqs[i], buf[i], sizeof(buf[i]), 4096 * i);
		ck_assert_int_eq(blockif_read(bc, &reqs[i]), 0);
	}
	ck_assert_int_eq(blockif_close(bc), 0);
	ck_assert_int_eq(counted_calls, BLOCKIF_RING_MAX);
	free(disk);
}
END_TEST

START_TEST(stress_raw)
{
	uint8_t *shadow;

	make_disk();
	shadow = malloc(DISK_SIZE);
	ck_assert_ptr_nonnull(shadow);
	memcpy(shadow, disk, DISK_SIZE);
	stress_open("disk.raw,format=raw", shadow, DISK_SIZE, 4, 3000, 7);
	/* The file holds exactly what the shadow says. */
	stress_open("disk.raw,format=raw,ro", shadow, DISK_SIZE, 1, 0, 8);
	free(shadow);
	free(disk);
}
END_TEST

/* Encrypted images (LUKS qcow2, raw LUKS) served with keyfile=: the
 * passphrase comes from a file, never from the option string. */
START_TEST(encrypted_keyfile)
{
	static const char *const fmts[] = {"qcow2", "luks"};
	static const char pass[] = "blockif secret";
	struct mimg_secret sec = {.size = sizeof(sec),
				  .data = pass,
				  .len = sizeof(pass) - 1};
	struct mimg_opt qo[] = {{"encrypt.format", "luks"},
				{"encrypt.key-secret", "k"},
				{"encrypt.iter-time", "5"}};
	struct mimg_opt lo[] = {{"key-secret", "k"}, {"iter-time", "5"}};
	uint8_t *shadow = calloc(1, DISK_SIZE);

	tu_write_file("key.txt", pass, sizeof(pass) - 1, 0);
	tu_write_file("bad.txt", "nope", 4, 0);
	ck_assert_ptr_nonnull(shadow);
	for (int i = 0; i < 2; i++) {
		char opts[128];
		bool q = i == 0;
		const char *f = q ? "e.qcow2" : "e.luks";

		memset(shadow, 0, DISK_SIZE);
		ck_assert_int_eq(mimg_create_secret(f, fmts[i], DISK_SIZE,
						    q ? qo : lo, q ? 3 : 2,
						    &sec),
				 0);
		if (!q) {
			/* Never-written LUKS sectors decrypt to noise, as
			 * with qemu: start from what the image reads. */
			struct mimg *img;
			ck_assert_int_eq(mimg_open_secret(&img, f, NULL, 0,
							  &sec),
					 0);
			ck_assert_int_eq(mimg_pread(img, shadow, DISK_SIZE, 0,
						    0),
					 DISK_SIZE);
			mimg_close(img);
		}
		snprintf(opts, sizeof(opts), "%s,keyfile=key.txt", f);
		stress_open(opts, shadow, DISK_SIZE, 4, 2000, 11);
		snprintf(opts, sizeof(opts), "%s,ro,keyfile=key.txt", f);
		stress_open(opts, shadow, DISK_SIZE, 1, 0, 12);
		/* no key, a wrong key, a missing key file */
		ck_assert_ptr_null(blockif_open(f, "test"));
		snprintf(opts, sizeof(opts), "%s,keyfile=bad.txt", f);
		ck_assert_ptr_null(blockif_open(opts, "test"));
		snprintf(opts, sizeof(opts), "%s,keyfile=none.txt", f);
		ck_assert_ptr_null(blockif_open(opts, "test"));
	}
	free(shadow);
}
END_TEST

int main(void)
{
	return tu_main("blockif", "blockif",
		       TU_TESTS(open_options, chs_large, read_write_resid,
				read_only_and_delete, queue_full_and_cancel,
				overlapping_requests_keep_order, here_requests,
				large_requests_in_parts, close_drains_queue,
				stress_raw, encrypted_keyfile));
}
