/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 */
/*
 * Random-read load for bench/randread.sh: THREADS threads each read BS
 * bytes at random BS-aligned offsets of FILE for SECONDS, either through
 * libmimg (one shared handle, as a hypervisor uses it) or with plain
 * pread(2) on the file, the floor that any image format is measured
 * against.
 *
 *   randread mimg|pread FILE FORMAT BS THREADS SECONDS
 *
 * FORMAT is ignored for pread.  Prints one line:
 *   RANDREAD how=H bs=N threads=N ops=N secs=S iops=X
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mimg.h>

#define MAX_THREADS 64

static struct mimg *img;
static int fd = -1;
static uint64_t span, bs;
static double seconds;
static atomic_bool stop;
static atomic_uint_fast64_t total_ops;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: cheap, and each thread's sequence differs by its seed. */
static uint64_t next_random(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static void *reader(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	uint64_t blocks = span / bs, ops = 0;
	char *buf = aligned_alloc(4096, bs);

	if (!buf)
		return (void *)1;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t off = next_random(&seed) % blocks * bs;
		ssize_t n = img ? mimg_pread(img, buf, bs, off, 0)
				: pread(fd, buf, bs, (off_t)off);
		if (n != (ssize_t)bs) {
			fprintf(stderr, "randread: read at %llu: %s\n",
				(unsigned long long)off,
				n < 0 ? (img ? mimg_errmsg() : strerror(errno))
				      : "short read");
			free(buf);
			return (void *)1;
		}
		ops++;
	}
	atomic_fetch_add(&total_ops, ops);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t tids[MAX_THREADS];
	int threads;

	if (argc != 7) {
		fprintf(stderr, "usage: randread mimg|pread FILE FORMAT BS "
				"THREADS SECONDS\n");
		return 2;
	}
	bool through_mimg = strcmp(argv[1], "mimg") == 0;
	bs = strtoull(argv[4], NULL, 0);
	threads = atoi(argv[5]);
	seconds = atof(argv[6]);
	if ((!through_mimg && strcmp(argv[1], "pread") != 0) || bs == 0 ||
	    threads < 1 || threads > MAX_THREADS || seconds <= 0) {
		fprintf(stderr, "randread: bad arguments\n");
		return 2;
	}
	if (through_mimg) {
		if (mimg_open(&img, argv[2], argv[3], 0) < 0) {
			fprintf(stderr, "randread: %s\n", mimg_errmsg());
			return 1;
		}
		span = mimg_size(img);
	} else {
		struct stat st;
		fd = open(argv[2], O_RDONLY);
		if (fd < 0 || fstat(fd, &st) < 0) {
			perror(argv[2]);
			return 1;
		}
		span = (uint64_t)st.st_size;
	}
	if (span < bs) {
		fprintf(stderr, "randread: %s is smaller than one block\n",
			argv[2]);
		return 1;
	}

	double t0 = now();
	for (int i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, reader,
				   (void *)(uintptr_t)i) != 0) {
			fprintf(stderr, "randread: cannot start a thread\n");
			return 1;
		}
	struct timespec ts = {(time_t)seconds,
			      (long)((seconds - (double)(time_t)seconds) *
				     1e9)};
	nanosleep(&ts, NULL);
	atomic_store(&stop, true);
	int failed = 0;
	for (int i = 0; i < threads; i++) {
		void *ret;
		pthread_join(tids[i], &ret);
		failed |= ret != NULL;
	}
	double secs = now() - t0;
	if (img)
		mimg_close(img);
	else
		close(fd);
	if (failed)
		return 1;
	uint64_t ops = atomic_load(&total_ops);
	printf("RANDREAD how=%s bs=%llu threads=%d ops=%llu secs=%.3f "
	       "iops=%.0f\n",
	       argv[1], (unsigned long long)bs, threads,
	       (unsigned long long)ops, secs, (double)ops / secs);
	return 0;
}
