/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg bench: a simple I/O benchmark on one image handle, modelled on
 * qemu-img bench so the two can be run on the same files.  COUNT requests
 * of BUFFER_SIZE bytes go to OFFSET, OFFSET+STEP, ... (wrapping inside the
 * image as qemu-img does), DEPTH of them in flight at once, each in flight
 * request being served by its own thread on the shared handle.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void bench_help(void)
{
	printf("Usage: mimg bench [-c COUNT] [-d DEPTH] [-f FMT] "
	       "[--flush-interval=N] [--no-drain] [--exit-safe]\n"
	       "                  [-i AIO] [-n] [-o OFFSET] [--pattern=BYTE] "
	       "[-q] [-s BUFFER_SIZE]\n"
	       "                  [-S STEP_SIZE] [-t CACHE] [-w] [-U]\n"
	       "                  [--image-opts] FILE\n"
	       "\n"
	       "Send COUNT requests (default 75000) of BUFFER_SIZE bytes "
	       "(default 4096)\nto FILE, DEPTH (default 64) in parallel "
	       "threads, the first at OFFSET and\neach next one STEP_SIZE "
	       "(default BUFFER_SIZE) further, wrapping around.\n"
	       "\n"
	       "  --image-opts        FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  -w                  write (default: read)\n"
	       "  --pattern=BYTE      byte written (default 0)\n"
	       "  -t CACHE            none, writeback (default), writethrough, "
	       "directsync, unsafe\n"
	       "  --flush-interval=N  flush whenever the number of remaining "
	       "requests is a\n"
	       "                      multiple of N, after draining the "
	       "requests in flight\n"
	       "  --no-drain          flush without draining\n"
	       "  --exit-safe         open as hypervisors do: each completed "
	       "write is in\n"
	       "                      the file before it completes "
	       "(MIMG_OPEN_EXIT_SAFE)\n"
	       "  -i AIO, -n, -U      accepted for compatibility, ignored\n"
	       "  -q                  quiet\n" CLI_HELP_OBJECT);
}

struct bench {
	struct mimg *img;
	bool write;
	int pattern;
	size_t bufsize;
	uint64_t offset, step, wrap; /* wrap: offsets are taken modulo it */
	uint64_t count, flush_interval;
	bool drain;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t next; /* index of the next request to send */
	uint64_t inflight;
	bool flushing; /* a draining flush is under way */
	int err;       /* first failure, stops everyone */
	bool stop;     /* err is set (read without the lock) */
	char errmsg[512];
};

/* Offset of request I: OFFSET for the first, then each STEP further,
 * reduced modulo the image size as qemu-img bench does (a request that
 * then crosses the end fails, as there). */
static uint64_t request_offset(const struct bench *b, uint64_t i)
{
	if (i == 0)
		return b->offset;
	if (b->wrap == 0)
		return 0;
	/* OFFSET + I * STEP can pass 2^64 for large offsets: use 128 bits. */
	unsigned __int128 off = (unsigned __int128)b->offset +
				(unsigned __int128)i * b->step;
	return (uint64_t)(off % b->wrap);
}

/* Under b->lock: the first failure stops every worker; WHY says what
 * went wrong (NULL: the library's message). */
static void fail(struct bench *b, int err, const char *what, const char *why)
{
	__atomic_store_n(&b->stop, true, __ATOMIC_RELAXED);
	if (b->err == 0) {
		b->err = err;
		snprintf(b->errmsg, sizeof(b->errmsg), "%s: %s", what,
			 why ? why : mimg_errmsg());
	}
	pthread_cond_broadcast(&b->cond);
}

/* Request I: 0, or a negative errno with WHY (LEN bytes) set, or empty
 * for the library's message.  A read the end of the image cuts short
 * fails, as a write past it does (and as qemu-img's requests do). */
static int transfer(struct bench *b, void *buf, uint64_t i, char *why,
		    size_t len)
{
	uint64_t off = request_offset(b, i);
	ssize_t r = b->write ? mimg_pwrite(b->img, buf, b->bufsize, off, 0)
			     : mimg_pread(b->img, buf, b->bufsize, off, 0);
	*why = '\0';
	if (r < 0)
		return (int)r;
	if ((size_t)r < b->bufsize) {
		snprintf(why, len,
			 "%s: %s of %zu bytes at offset %" PRIu64
			 " is past the end of the image (%" PRIu64 " bytes)",
			 mimg_filename(b->img), b->write ? "write" : "read",
			 b->bufsize, off, mimg_size(b->img));
		return -EIO;
	}
	return 0;
}

/* Under b->lock: flush before request I when the flush interval says so. */
static void maybe_flush(struct bench *b, uint64_t i)
{
	if (!b->write || b->flush_interval == 0 || i == 0 ||
	    (b->count - i) % b->flush_interval != 0)
		return;
	if (b->drain) {
		b->flushing = true;
		while (b->inflight > 0 && b->err == 0)
			pthread_cond_wait(&b->cond, &b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	int r = mimg_flush(b->img, 0);
	pthread_mutex_lock(&b->lock);
	if (r < 0)
		fail(b, r, "Failed flush request", NULL);
	if (b->drain) {
		b->flushing = false;
		pthread_cond_broadcast(&b->cond);
	}
}

/*
 * Without flushes the requests are independent: claim them with an atomic
 * counter so that the benchmark's own bookkeeping takes no lock (a lock
 * holder preempted on a busy host would stall every other thread and the
 * run would measure that instead of the image).
 */
static void run_unlocked(struct bench *b, void *buf)
{
	while (!__atomic_load_n(&b->stop, __ATOMIC_RELAXED)) {
		uint64_t i = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED);
		if (i >= b->count)
			break;
		char why[256];
		int r = transfer(b, buf, i, why, sizeof(why));
		if (r < 0) {
			pthread_mutex_lock(&b->lock);
			fail(b, r, "Failed request", *why ? why : NULL);
			pthread_mutex_unlock(&b->lock);
		}
	}
}

static void *worker(void *opaque)
{
	struct bench *b = opaque;
	void *buf;

	/* Aligned so that -t none (O_DIRECT) works. */
	if (posix_memalign(&buf, 4096, b->bufsize) != 0) {
		pthread_mutex_lock(&b->lock);
		if (b->err == 0) {
			b->err = -ENOMEM;
			snprintf(b->errmsg, sizeof(b->errmsg),
				 "Failed to allocate a %zu-byte buffer",
				 b->bufsize);
		}
		__atomic_store_n(&b->stop, true, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&b->cond);
		pthread_mutex_unlock(&b->lock);
		return NULL;
	}
	memset(buf, b->pattern, b->bufsize);

	if (b->flush_interval == 0) {
		run_unlocked(b, buf);
		free(buf);
		return NULL;
	}
	pthread_mutex_lock(&b->lock);
	for (;;) {
		while (b->flushing && b->err == 0)
			pthread_cond_wait(&b->cond, &b->lock);
		if (b->err != 0 || b->next == b->count)
			break;
		uint64_t i = b->next++;
		maybe_flush(b, i);
		if (b->err != 0)
			break;
		b->inflight++;
		pthread_mutex_unlock(&b->lock);

		char why[256];
		int r = transfer(b, buf, i, why, sizeof(why));

		pthread_mutex_lock(&b->lock);
		b->inflight--;
		if (r < 0)
			fail(b, r, "Failed request", *why ? why : NULL);
		else if (b->inflight == 0)
			pthread_cond_broadcast(&b->cond);
	}
	pthread_mutex_unlock(&b->lock);
	free(buf);
	return NULL;
}

static bool parse_uint(const char *what, const char *arg, uint64_t max,
		       bool sized, uint64_t *out)
{
	uint64_t v;
	char *end;

	if (sized) {
		if (cli_parse_num(what, arg, 0, max, &v) != 0)
			return false;
	} else {
		errno = 0;
		unsigned long long l = strtoull(arg, &end, 0);
		if (errno || end == arg || *end || arg[0] == '-' || l > max) {
			cli_error("Invalid %s specified", what);
			return false;
		}
		v = l;
	}
	*out = v;
	return true;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the command line asks for, beside what struct bench holds. */
struct bench_args {
	uint64_t depth, step;
	const char *cache, *file;
	bool quiet, exit_safe;
	struct cli_args ca; /* FILE's format or --image-opts */
};

/* Parse the options into B and A.  Returns -1 when they are good, else
 * the exit status (help printed, or the error already reported). */
static int parse_bench_args(int argc, char **argv, struct bench *b,
			    struct bench_args *a)
{
	enum { OPT_FLUSH = 256, OPT_NO_DRAIN, OPT_PATTERN, OPT_EXIT_SAFE };
	static const struct option longopts[] = {
		{"flush-interval", required_argument, NULL, OPT_FLUSH},
		{"no-drain", no_argument, NULL, OPT_NO_DRAIN},
		{"exit-safe", no_argument, NULL, OPT_EXIT_SAFE},
		{"pattern", required_argument, NULL, OPT_PATTERN},
		{NULL, 0, NULL, 0},
	};
	/* The numeric options, as their errors name them; sized ones take
	 * a size suffix. */
	static const struct {
		int opt;
		const char *what;
		uint64_t max;
		bool sized;
	} numbers[] = {
		{'c', "request count", INT_MAX, false},
		{'d', "queue depth", 1024, false},
		{'o', "offset", INT64_MAX, true},
		{'s', "buffer size", INT_MAX, true},
		{'S', "step_size", INT_MAX, true}, /* qemu-img's spelling */
		{OPT_FLUSH, "flush interval", INT_MAX, false},
		{OPT_PATTERN, "pattern byte", 0xff, false},
	};
	struct cli_args *ca = &a->ca;
	uint64_t v = 0;
	int c;

	*ca = (struct cli_args){.cmd = "bench",
				.help = bench_help,
				.longopts = CLI_FORMAT | CLI_FORCE_SHARE |
					    CLI_IMAGE_OPTS};
	while ((c = cli_getopt(ca, argc, argv, ":hc:d:f:ni:o:qs:S:t:wU",
			       longopts)) >= 0) {
		size_t n = sizeof(numbers) / sizeof(numbers[0]);
		for (size_t i = 0; i < n; i++)
			if (numbers[i].opt == c &&
			    !parse_uint(numbers[i].what, optarg, numbers[i].max,
					numbers[i].sized, &v))
				return EXIT_ERR;
		switch (c) {
		case 'c': b->count = v; break;
		case 'd':
			if (v == 0)
				return cli_error("Invalid queue depth "
						 "specified");
			a->depth = v;
			break;
		case 'n':
			break; /* native AIO: every request is a thread here */
		case 'i':
			if (strcmp(optarg, "threads") != 0 &&
			    strcmp(optarg, "native") != 0 &&
			    strcmp(optarg, "io_uring") != 0)
				return cli_error("Invalid aio option: %s",
						 optarg);
			break;
		case 'o': b->offset = v; break;
		case 's':
			if (v == 0)
				return cli_error("Invalid buffer size "
						 "specified");
			b->bufsize = (size_t)v;
			break;
		case 'S': a->step = v; break;
		case 't': a->cache = optarg; break;
		case 'w': b->write = true; break;
		case OPT_FLUSH: b->flush_interval = v; break;
		case OPT_NO_DRAIN: b->drain = false; break;
		case OPT_EXIT_SAFE: a->exit_safe = true; break;
		case OPT_PATTERN: b->pattern = (int)v; break;
		}
	}
	if (!(a->file = cli_one_file(ca, c, argc, argv)))
		return ca->status;
	a->quiet = ca->quiet;
	return -1;
}

/* Check the combination of options; returns -1 when it is usable, else
 * the exit status after reporting why not. */
static int validate_bench_args(struct bench *b, struct bench_args *a)
{
	if (b->flush_interval && b->flush_interval < a->depth && b->drain)
		return cli_error("Flush interval can't be smaller than depth");
	if (b->flush_interval && !b->write)
		return cli_error("--flush-interval is only available in write "
				 "tests");
	if (!b->drain && !b->flush_interval)
		return cli_error("--no-drain requires --flush-interval");
	b->step = a->step ? a->step : b->bufsize;
	return -1;
}

/* Run DEPTH workers over B's requests; returns 0 or -1 with the failure
 * in b->errmsg.  *ELAPSED gets the seconds they took. */
static int run_workers(struct bench *b, uint64_t depth, double *elapsed)
{
	pthread_t *threads = calloc(depth, sizeof(*threads));
	if (!threads) {
		snprintf(b->errmsg, sizeof(b->errmsg),
			 "Out of memory for %" PRIu64 " threads", depth);
		return -1;
	}
	double start = now();
	uint64_t started = 0;
	for (; started < depth; started++) {
		int r = pthread_create(&threads[started], NULL, worker, b);
		if (r != 0) {
			pthread_mutex_lock(&b->lock);
			if (b->err == 0) {
				b->err = -r;
				__atomic_store_n(&b->stop, true,
						 __ATOMIC_RELAXED);
				snprintf(b->errmsg, sizeof(b->errmsg),
					 "Could not start thread: %s",
					 strerror(r));
			}
			pthread_cond_broadcast(&b->cond);
			pthread_mutex_unlock(&b->lock);
			break;
		}
	}
	for (uint64_t t = 0; t < started; t++)
		pthread_join(threads[t], NULL);
	*elapsed = now() - start;
	free(threads);
	return b->err != 0 ? -1 : 0;
}

int cmd_bench(int argc, char **argv)
{
	struct bench b = {
		.count = 75000,
		.bufsize = 4096,
		.drain = true,
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	struct bench_args a = {.depth = 64, .cache = "writeback"};
	unsigned flags = 0;
	int ret = EXIT_ERR;

	if ((ret = parse_bench_args(argc, argv, &b, &a)) >= 0 ||
	    (ret = validate_bench_args(&b, &a)) >= 0)
		return ret;
	if (!cli_cache_mode(a.cache, &flags))
		return cli_error("Invalid cache mode"); /* qemu-img's words */
	if (b.write)
		flags |= MIMG_OPEN_RDWR;
	if (a.exit_safe && b.write)
		flags |= MIMG_OPEN_EXIT_SAFE;

	int r = cli_open_arg(&b.img, &a.ca, a.file, flags);
	if (r < 0)
		return cli_error("%s", cli_errmsg());
	ret = EXIT_ERR;
	uint64_t size = mimg_size(b.img);
	b.wrap = size;
	if (b.offset + b.bufsize > size && b.count > 0) {
		cli_error("Offset %" PRIu64 " plus buffer size %zu is past the "
			  "end of '%s' (%" PRIu64 " bytes)",
			  b.offset, b.bufsize, a.file, size);
		goto out;
	}
	if (!a.quiet) {
		printf("Sending %" PRIu64
		       " %s requests, %zu bytes each, %" PRIu64
		       " in parallel (starting at offset %" PRIu64
		       ", step size %" PRIu64 ")\n",
		       b.count, b.write ? "write" : "read", b.bufsize, a.depth,
		       b.offset, b.step);
		if (b.flush_interval)
			printf("Sending flush every %" PRIu64 " requests\n",
			       b.flush_interval);
		fflush(stdout);
	}

	/* The depth asked is printed, as qemu-img prints it; threads past
	 * the count would only cost their start. */
	uint64_t workers = a.depth > b.count && b.count > 0 ? b.count : a.depth;
	double elapsed;
	if (run_workers(&b, workers, &elapsed) < 0) {
		cli_error("%s", b.errmsg);
		goto out;
	}
	if (!a.quiet)
		printf("Run completed in %3.3f seconds.\n", elapsed);
	ret = EXIT_OK;
out:
	r = mimg_close(b.img);
	if (r < 0 && ret == EXIT_OK)
		ret = cli_error("Closing '%s' failed: %s", a.file,
				mimg_errmsg());
	return ret;
}
