/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 */
/*
 * Guest-side load generator for bench/vmm-blk.sh (busybox has no fio).
 * Built on the host with gcc -static and put into the guest's initramfs.
 *
 *   vmm-blk-iops DEV MODE BS SECONDS SPAN THREADS
 *
 * MODE: fill (one sequential write pass over SPAN, not time-bound),
 * read / write (sequential, wrapping at SPAN), randread / randwrite (BS
 * aligned random offsets below SPAN).  THREADS workers each keep one
 * synchronous O_DIRECT request in flight, so THREADS is the queue depth.
 * Writing modes end with fsync (a virtio-blk FLUSH), included in secs.
 * bench/randread.sh builds it on the host with -DWITH_LIBMIMG, where DEV
 * may also be file:PATH (plain pread/pwrite, page cache, no O_DIRECT) or
 * mimg:FORMAT:PATH (one libmimg handle shared by the threads), to set the
 * library's cost beside plain file I/O.
 * Prints one line:
 *   BENCH mode=M bs=N threads=N ops=N bytes=N secs=S sync_secs=S iops=X MBps=Y
 *     cpu_ns_per_op=C
 * C: the process's CPU time (user and system) per request, which a
 * machine busy with other work disturbs less than the rate.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifdef WITH_LIBMIMG
#include <mimg.h>
#endif

#define MAX_THREADS 64

enum mode { FILL, SEQ_READ, SEQ_WRITE, RAND_READ, RAND_WRITE };

static const char *dev;
static enum mode mode;
static uint64_t bs, span, nblocks;
static double seconds;
static int fd;
#ifdef WITH_LIBMIMG
static struct mimg *img;
#endif
static atomic_uint_fast64_t next_block;
static atomic_uint_fast64_t total_ops;
static atomic_int stop;
static atomic_int failed;

/* CPU seconds this process has used, user and system. */
static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	default: break;
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static int parse_mode(const char *s, enum mode *m)
{
	static const struct {
		const char *name;
		enum mode m;
	} modes[] = {
		{"fill", FILL},
		{"read", SEQ_READ},
		{"write", SEQ_WRITE},
		{"randread", RAND_READ},
		{"randwrite", RAND_WRITE},
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(s, modes[i].name) == 0) {
			*m = modes[i].m;
			return 0;
		}
	}
	return -1;
}

/* xorshift64*: cheap, and good enough to spread offsets. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* The next block index, or UINT64_MAX when a fill pass is complete. */
static uint64_t pick_block(uint64_t *seed)
{
	uint64_t b;

	switch (mode) {
	case FILL:
		b = atomic_fetch_add(&next_block, 1);
		return b < nblocks ? b : UINT64_MAX;
	case SEQ_READ:
	case SEQ_WRITE: return atomic_fetch_add(&next_block, 1) % nblocks;
	default: return rnd(seed) % nblocks;
	}
}

/* One BS-sized read or write at OFF: the byte count or -1 / -errno. */
static ssize_t transfer(int writing, void *buf, uint64_t off)
{
#ifdef WITH_LIBMIMG
	if (img)
		return writing ? mimg_pwrite(img, buf, bs, off, 0)
			       : mimg_pread(img, buf, bs, off, 0);
#endif
	return writing ? pwrite(fd, buf, bs, (off_t)off)
		       : pread(fd, buf, bs, (off_t)off);
}

static const char *error_text(ssize_t n)
{
#ifdef WITH_LIBMIMG
	if (img)
		return mimg_errmsg();
#endif
	(void)n;
	return strerror(errno);
}

/* Open DEV for MODE: O_DIRECT on a device, or (host builds) file:PATH
 * through the page cache, mimg:FORMAT:PATH through libmimg. */
static int open_target(void)
{
	int reading = mode == SEQ_READ || mode == RAND_READ;
	int flags = (reading ? O_RDONLY : O_RDWR) | O_DIRECT;
	const char *path = dev;

#ifdef WITH_LIBMIMG
	if (strncmp(dev, "mimg:", 5) == 0) {
		char fmt[32];
		const char *colon = strchr(dev + 5, ':');
		size_t n = colon ? (size_t)(colon - dev - 5) : 0;
		if (!colon || n == 0 || n >= sizeof(fmt)) {
			fprintf(stderr, "%s: expected mimg:FORMAT:PATH\n", dev);
			return -1;
		}
		memcpy(fmt, dev + 5, n);
		fmt[n] = 0;
		if (mimg_open(&img, colon + 1, fmt,
			      reading ? 0 : MIMG_OPEN_RDWR) < 0) {
			fprintf(stderr, "%s\n", mimg_errmsg());
			return -1;
		}
		return 0;
	}
	if (strncmp(dev, "file:", 5) == 0) {
		path = dev + 5;
		flags &= ~O_DIRECT;
	}
#endif
	fd = open(path, flags);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Make the writes durable (a FLUSH), then close. */
static int sync_and_close(int writing)
{
	int r = 0;
#ifdef WITH_LIBMIMG
	if (img) {
		if (writing && mimg_flush(img, 0) < 0) {
			fprintf(stderr, "%s: flush: %s\n", dev, mimg_errmsg());
			r = -1;
		}
		mimg_close(img);
		return r;
	}
#endif
	if (writing && fsync(fd)) {
		fprintf(stderr, "%s: fsync: %s\n", dev, strerror(errno));
		r = -1;
	}
	close(fd);
	return r;
}

static void *worker(void *arg)
{
	uint64_t seed = 0x9E3779B97F4A7C15ULL * ((uintptr_t)arg + 1);
	int writing = mode == FILL || mode == SEQ_WRITE || mode == RAND_WRITE;
	unsigned char *buf;
	uint64_t ops = 0;

	if (posix_memalign((void **)&buf, 4096, bs)) {
		atomic_store(&failed, 1);
		return NULL;
	}
	/* Non-zero data, so no layer can take a zero-detection shortcut. */
	for (uint64_t i = 0; i < bs; i += 8) {
		uint64_t v = rnd(&seed);
		memcpy(buf + i, &v, bs - i < 8 ? bs - i : 8);
	}
	while (!atomic_load(&stop)) {
		uint64_t b = pick_block(&seed);
		ssize_t n;

		if (b == UINT64_MAX)
			break;
		n = transfer(writing, buf, b * bs);
		if (n != (ssize_t)bs) {
			fprintf(stderr, "%s: %s at %llu: %s\n", dev,
				writing ? "write" : "read",
				(unsigned long long)(b * bs),
				n < 0 ? error_text(n) : "short transfer");
			atomic_store(&failed, 1);
			break;
		}
		ops++;
	}
	atomic_fetch_add(&total_ops, ops);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[MAX_THREADS];
	uint64_t threads;
	double t0, t_sync, elapsed, cpu0;

	if (argc != 7 || parse_mode(argv[2], &mode) ||
	    parse_size(argv[3], &bs) || parse_size(argv[5], &span) ||
	    parse_size(argv[6], &threads)) {
		fprintf(stderr,
			"usage: %s DEV fill|read|write|randread|randwrite BS SECONDS SPAN THREADS\n",
			argv[0]);
		return 2;
	}
	dev = argv[1];
	seconds = atof(argv[4]);
	if (bs == 0 || bs % 512 || span < bs || threads < 1 ||
	    threads > MAX_THREADS || seconds <= 0) {
		fprintf(stderr, "%s: bad BS, SPAN, SECONDS or THREADS\n",
			argv[0]);
		return 2;
	}
	nblocks = span / bs;
	if (open_target() < 0)
		return 1;

	t0 = now();
	cpu0 = cpu_seconds();
	for (uint64_t i = 0; i < threads; i++) {
		if (pthread_create(&th[i], NULL, worker,
				   (void *)(uintptr_t)i)) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
	}
	if (mode != FILL) {
		struct timespec ts =
			{(time_t)seconds,
			 (long)((seconds - (double)(time_t)seconds) * 1e9)};
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		atomic_store(&stop, 1);
	}
	for (uint64_t i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t_sync = now();
	if (sync_and_close(mode != SEQ_READ && mode != RAND_READ) < 0)
		return 1;
	elapsed = now() - t0;
	if (atomic_load(&failed))
		return 1;

	uint64_t ops = atomic_load(&total_ops);
	double cpu = cpu_seconds() - cpu0;
	printf("BENCH mode=%s bs=%llu threads=%llu ops=%llu bytes=%llu secs=%.3f sync_secs=%.3f "
	       "iops=%.0f MBps=%.1f cpu_ns_per_op=%.0f\n",
	       argv[2], (unsigned long long)bs, (unsigned long long)threads,
	       (unsigned long long)ops, (unsigned long long)(ops * bs), elapsed,
	       elapsed - (t_sync - t0), (double)ops / elapsed,
	       (double)(ops * bs) / elapsed / 1048576.0,
	       ops ? cpu * 1e9 / (double)ops : 0.0);
	return 0;
}
