/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Many threads on one handle: 8 threads do random scatter-gather writes
 * and verified reads in regions they own, read the other threads'
 * regions, and mix in write-zeroes, block status and flushes.  Every
 * thread's region must end up exactly as its own record of it.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimg.h"
#include "testutil.h"

#define NTHREADS 8
#define REGION (1u << 20)
#define OPS 400
#define MAX_IO (64u * 1024u)
#define MAX_IOV 8

struct worker {
	struct mimg *img;
	int id;
	int round;
	uint8_t *shadow; /* what this thread's region must contain */
	pthread_barrier_t *start;
	char failure[256];
};

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Split LEN bytes at BUF into up to MAX_IOV random pieces. */
static int split_iov(struct iovec *iov, uint8_t *buf, size_t len, uint64_t *rng)
{
	int n = 0;
	while (len && n < MAX_IOV - 1) {
		size_t piece = (size_t)(next_rand(rng) % (len + 1));
		if (!piece)
			break;
		iov[n++] = (struct iovec){buf, piece};
		buf += piece;
		len -= piece;
	}
	if (len)
		iov[n++] = (struct iovec){buf, len};
	return n;
}

#define FAIL(w, ...)                                                           \
	do {                                                                   \
		snprintf((w)->failure, sizeof((w)->failure), __VA_ARGS__);     \
		return NULL;                                                   \
	} while (0)

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = 0x1234567ull * (uint64_t)(w->id + 1) +
		       7919ull * (uint64_t)w->round;
	uint64_t base = (uint64_t)w->id * REGION;
	uint8_t *buf = malloc(MAX_IO), *check = malloc(MAX_IO);
	struct iovec iov[MAX_IOV];

	if (!buf || !check)
		FAIL(w, "out of memory");
	pthread_barrier_wait(w->start);
	for (int op = 0; op < OPS; op++) {
		size_t len = 1 + (size_t)(next_rand(&rng) % MAX_IO);
		uint64_t off = next_rand(&rng) % (REGION - len + 1);
		int kind = (int)(next_rand(&rng) % 10);
		ssize_t r;
		int n;

		if (kind < 4) { /* write own region */
			tu_fill_random(buf, len, next_rand(&rng));
			n = split_iov(iov, buf, len, &rng);
			r = mimg_pwritev(w->img, iov, n, base + off, 0);
			if (r != (ssize_t)len)
				FAIL(w,
				     "thread %d: write %zu at %llu: %zd "
				     "(%s)",
				     w->id, len,
				     (unsigned long long)(base + off), r,
				     mimg_errmsg());
			memcpy(w->shadow + off, buf, len);
		} else if (kind < 7) { /* verified read of own region */
			n = split_iov(iov, check, len, &rng);
			r = mimg_preadv(w->img, iov, n, base + off, 0);
			if (r != (ssize_t)len)
				FAIL(w, "thread %d: read returned %zd", w->id,
				     r);
			if (memcmp(check, w->shadow + off, len) != 0)
				FAIL(w,
				     "thread %d: read at %llu (%zu bytes) "
				     "differs from what was written",
				     w->id, (unsigned long long)(base + off),
				     len);
		} else if (kind == 7) { /* read someone else's region */
			uint64_t other = next_rand(&rng) % NTHREADS;
			n = split_iov(iov, check, len, &rng);
			r = mimg_preadv(w->img, iov, n, other * REGION + off,
					0);
			if (r != (ssize_t)len)
				FAIL(w,
				     "thread %d: read of region %llu "
				     "returned %zd",
				     w->id, (unsigned long long)other, r);
		} else if (kind == 8) { /* zero a piece */
			if (mimg_pwrite_zeroes(w->img, base + off, len,
					       op & 1 ? MIMG_ZERO_MAY_UNMAP
						      : 0) != 0)
				FAIL(w, "thread %d: write zeroes: %s", w->id,
				     mimg_errmsg());
			memset(w->shadow + off, 0, len);
		} else { /* block status over everything, or a flush */
			uint64_t pnum;
			unsigned st;
			if (op & 1) {
				if (mimg_flush(w->img, 0) != 0)
					FAIL(w, "thread %d: flush: %s", w->id,
					     mimg_errmsg());
			} else if (mimg_block_status(w->img, off,
						     NTHREADS * REGION - off,
						     &pnum, &st, NULL,
						     0) != 0 ||
				   pnum == 0) {
				FAIL(w, "thread %d: block status: %s", w->id,
				     mimg_errmsg());
			}
		}
	}
	free(buf);
	free(check);
	return NULL;
}

static void run_threads(struct mimg *img, struct worker *w, int round)
{
	pthread_t tid[NTHREADS];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		w[i].img = img;
		w[i].id = i;
		w[i].round = round;
		w[i].start = &start;
		w[i].failure[0] = 0;
		ck_assert_int_eq(pthread_create(&tid[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(tid[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_msg(w[i].failure[0] == 0, "%s", w[i].failure);
}

/* Two rounds of random verified I/O on one handle of shared.img opened
 * with FORMAT, then check the file holds every thread's record. */
static void random_io(const char *format)
{
	struct worker w[NTHREADS];
	tu_make_sparse("shared.img", NTHREADS * REGION);
	for (int i = 0; i < NTHREADS; i++)
		w[i].shadow = calloc(1, REGION);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "shared.img", format, MIMG_OPEN_RDWR),
			 0);
	ck_assert_str_eq(mimg_format(img), "raw");
	run_threads(img, w, 0);
	/* a second round on the same handle, starting from the result */
	run_threads(img, w, 1);
	ck_assert_int_eq(mimg_close(img), 0);

	int fd = open("shared.img", O_RDONLY);
	uint8_t *got = malloc(REGION);
	for (int i = 0; i < NTHREADS; i++) {
		ck_assert_int_eq(pread(fd, got, REGION, (off_t)i * REGION),
				 REGION);
		ck_assert_msg(memcmp(got, w[i].shadow, REGION) == 0,
			      "region %d differs on disk", i);
		free(w[i].shadow);
	}
	free(got);
	close(fd);
}

START_TEST(random_verified_io_one_handle)
{
	random_io("raw");
}
END_TEST

/* Probed as raw, writes reaching sector 0 take the header-guard lock:
 * the same workload must behave the same. */
START_TEST(random_verified_io_probed_handle)
{
	random_io(NULL);
}
END_TEST

/* The first calls to mimg_formats() may come from many threads at once
 * (run under ThreadSanitizer to see races). */
static void *formats_twice(void *arg)
{
	const char *const *f = mimg_formats();
	*(const char *const **)arg = f;
	return mimg_formats() == f ? arg : NULL;
}

START_TEST(formats_from_many_threads)
{
	pthread_t tid[NTHREADS];
	const char *const *got[NTHREADS];
	void *ret;
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&tid[i], NULL, formats_twice,
						&got[i]),
				 0);
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(tid[i], &ret);
		ck_assert_ptr_nonnull(ret);
		ck_assert_ptr_eq(got[i], got[0]);
	}
	bool raw = false;
	for (const char *const *f = got[0]; *f; f++)
		raw = raw || strcmp(*f, "raw") == 0;
	ck_assert(raw);
}
END_TEST

int main(void)
{
	return tu_main("concurrency", "concurrency",
		       TU_TESTS(random_verified_io_one_handle,
				random_verified_io_probed_handle,
				formats_from_many_threads));
}
