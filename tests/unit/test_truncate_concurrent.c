/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_truncate beside I/O on the same handle, as mimg.h defines it:
 * every call sees the old size or the new one, reads past the end that
 * a grow added read zeroes, and data below both sizes stays intact.
 * Part of the "threads" suite that scripts/test.sh --tsan runs under
 * ThreadSanitizer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)
#define SMALL (2 * MIB)
#define LARGE (4 * MIB)
#define WORKERS 4
#define CHUNK (4 * KIB)

struct shared {
	struct mimg *img;
	atomic_bool stop;
	atomic_int failures;
	int resizes;
};

struct worker {
	struct shared *sh;
	int id;
};

static void count_failure(struct shared *sh)
{
	atomic_fetch_add(&sh->failures, 1);
}

/* Writes its own 4K slots below SMALL and reads them back; reads and
 * maps the range a resize adds and drops; checks the size it sees. */
static void *io_worker(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	uint8_t buf[CHUNK], back[CHUNK];

	for (unsigned i = 0; !atomic_load(&sh->stop); i++) {
		uint64_t off = (uint64_t)w->id * 64 * KIB + (i % 16) * CHUNK;
		memset(buf, (int)(w->id * 16 + i % 16 + 1), sizeof(buf));
		if (mimg_pwrite(sh->img, buf, CHUNK, off, 0) != CHUNK ||
		    mimg_pread(sh->img, back, CHUNK, off, 0) != CHUNK ||
		    memcmp(buf, back, CHUNK) != 0)
			count_failure(sh);
		uint64_t size = mimg_size(sh->img);
		if (size != SMALL && size != LARGE)
			count_failure(sh);
		/* beyond SMALL: present or not, never anything but zeroes */
		ssize_t n = mimg_pread(sh->img, back, CHUNK, 3 * MIB, 0);
		if (n != 0 && n != CHUNK)
			count_failure(sh);
		for (ssize_t k = 0; k < n; k++)
			if (back[k])
				count_failure(sh);
		uint64_t pnum;
		unsigned st;
		if (mimg_block_status_chain(sh->img, SMALL - CHUNK, 2 * CHUNK,
					    &pnum, &st, NULL, NULL, 0) < 0)
			count_failure(sh);
		if (i % 64 == 0 && mimg_flush(sh->img, 0) < 0)
			count_failure(sh);
	}
	return NULL;
}

static void run(const char *fmt)
{
	struct shared sh = {.resizes = tu_scaled(200)};
	struct worker w[WORKERS];
	pthread_t t[WORKERS];
	char path[32];

	snprintf(path, sizeof(path), "t.%s", fmt);
	tu_create(path, fmt, SMALL, NULL, NULL);
	ck_assert_int_eq(mimg_open(&sh.img, path, fmt, MIMG_OPEN_RDWR), 0);
	for (int i = 0; i < WORKERS; i++) {
		w[i] = (struct worker){.sh = &sh, .id = i};
		ck_assert_int_eq(pthread_create(&t[i], NULL, io_worker, &w[i]),
				 0);
	}
	for (int i = 0; i < sh.resizes; i++) {
		uint64_t to = i % 2 ? SMALL : LARGE;
		ck_assert_msg(mimg_truncate(sh.img, to, MIMG_PREALLOC_OFF) == 0,
			      "%s: truncate to %llu: %s", fmt,
			      (unsigned long long)to, mimg_errmsg());
		ck_assert_uint_eq(mimg_size(sh.img), to);
	}
	atomic_store(&sh.stop, true);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&sh.failures), 0);
	ck_assert_int_eq(mimg_close(sh.img), 0);
}

START_TEST(raw_truncate_beside_io)
{
	run("raw");
}
END_TEST

START_TEST(qcow2_truncate_beside_io)
{
	if (!tu_have_format("qcow2"))
		return;
	run("qcow2");
}
END_TEST

int main(void)
{
	return tu_main("truncate_concurrent", "truncate_concurrent",
		       TU_TESTS(raw_truncate_beside_io,
				qcow2_truncate_beside_io));
}
