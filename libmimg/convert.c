/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The convert engine.  Worker threads claim windows of the source in
 * ascending order.  Runs that read as zeroes are skipped outright when the
 * target already reads as zeroes, so the work is proportional to the data.
 * Data windows are read (and compressed) in parallel; writes happen in
 * window order unless out-of-order writes are allowed.  Memory is bounded
 * by the workers' buffers and a byte budget for parked output.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "checked.h"
#include "codec.h"
#include "error.h"
#include "file-archive.h"
#include "image.h"
#include "iov.h"

#define WINDOW (2u << 20)	  /* bytes read per job */
#define ZERO_JOB_MAX (1ull << 30) /* largest write-zeroes request */
#define DEFAULT_PARALLEL 8	  /* enough requests in flight for I/O */
#define DEFAULT_PARALLEL_MAX 32	  /* one per CPU up to this, by default */
#define MAX_PARALLEL 64
/* Compressed jobs that may wait for their turn to be written while their
 * workers go on compressing: eight per worker, at most MAX_PARKED.
 * Windows of random data, text and zeroes take very different times to
 * compress: with two per worker, 16 workers kept 9 cores busy; with
 * eight, 14 to 15. */
#define PARKED_PER_WORKER 8
#define MAX_PARKED 128
/* Memory: a worker's buffers hold a window and its compressed output,
 * about 4.3 MiB when the data does not compress (measured: 32 workers
 * holding 32 jobs' buffers peaked at 277 MiB on random data).  Workers
 * and parked jobs together stay within MAX_BUFFERED_JOBS such sets,
 * which keeps a conversion under 256 MiB whatever -m asks: a parked job
 * keeps a copy of its output alone and is counted by its bytes, so a
 * set's worth holds several parked jobs when the data compresses. */
#define MAX_BUFFERED_JOBS 48
#define JOB_BUFFER_BYTES ((size_t)4 << 20)
#define MAX_IN_FLIGHT (MAX_PARALLEL + MAX_PARKED + 1)
#define JOB_PARKED 2	       /* run_job: written later, by another worker */
#define MAX_SPARSE (16u << 20) /* largest -S, as qemu-img */
#define MAX_LAYERS 16	       /* source layers copied from in the host */

struct cunit {
	ssize_t clen; /* compressed length; -1: zero, skip */
	uint8_t *out; /* the bytes to store (compressed or not) */
};

/* A worker's buffers: the window it read, the units compressed from it
 * and their descriptors (whose .out points into one of the two). */
struct bufs {
	uint8_t *buf, *cbuf;
	struct cunit *units;
};

/* A compressed job that has finished compressing before its turn to be
 * written came: a copy of its output waits here, and whichever worker
 * writes the job before it writes this one too, so that no worker sits
 * idle behind a slower one. */
struct parked {
	bool full;
	uint64_t off, len;
	uint64_t n;	     /* units */
	struct cunit *units; /* .out point into data */
	uint8_t *data;
	size_t bytes; /* of data */
};

struct conv {
	struct mimg *src, *dst;
	uint64_t size;	  /* bytes to convert (source size) */
	uint64_t sparse;  /* zero-detection granularity, 0 = off */
	uint64_t align;	  /* window alignment (target cluster) */
	uint32_t unit;	  /* compressed write unit, 0 = plain */
	bool target_zero; /* target reads as zeroes already */
	bool ordered;
	bool top_only; /* -B: copy what SRC's top layer defines */
	bool offload;  /* -C, while copy_file_range works */
	uint64_t doff; /* where SRC's byte 0 goes in DST */
	/* A raw target takes the data runs of plain output straight from
	 * the source's host files while copy_range holds: layer_file[D]
	 * is layer D's file where its data lies there at the host offsets
	 * block status gives (else NULL). */
	struct mimg_file *layer_file[MAX_LAYERS];
	int nlayers;
	bool copy_range;

	pthread_mutex_t lock;
	/* Job SEQ waits for its turn to write on turn[SEQ % nslots]: jobs
	 * in flight (one per worker plus the parked ones) are fewer than
	 * the slots, so their slots differ and finishing a job wakes
	 * exactly the next one. */
	pthread_cond_t turn[MAX_IN_FLIGHT];
	int nslots;
	struct parked *parked; /* nparked slots, by seq % nparked */
	uint64_t nparked;
	size_t parked_bytes, parked_budget; /* held by parked jobs, at most */
	size_t cstride;			    /* bytes for one compressed unit */
	uint64_t next_off;		    /* first byte not yet claimed */
	uint64_t next_seq;  /* sequence number of the next claimed job */
	uint64_t write_seq; /* job allowed to write next (ordered) */
	uint64_t done;	    /* bytes finished, for progress */
	/* -r: source data bytes read since START (CLOCK_MONOTONIC). */
	uint64_t rate_bytes;
	struct timespec rate_start;
	int err;
	char errmsg[1024];
	const struct mimg_convert_opts *opts;
};

struct job {
	uint64_t off, len, seq;
	bool zero; /* make the range read as zeroes */
};

/* Where a job's source bytes lie as one stretch of a host file: guest
 * offset GUEST is at HOST in FILE. */
struct src_host {
	struct mimg_file *file;
	uint64_t guest, host;
};

/* Record the first failure with its message (messages are thread-local,
 * so copy it for the caller's thread). */
static void conv_fail(struct conv *c, int err)
{
	pthread_mutex_lock(&c->lock);
	if (!c->err) {
		c->err = err;
		strncpy(c->errmsg, mimg_errmsg(), sizeof(c->errmsg) - 1);
	}
	for (int i = 0; i < c->nslots; i++)
		pthread_cond_broadcast(&c->turn[i]);
	pthread_mutex_unlock(&c->lock);
}

static void conv_progress(struct conv *c, uint64_t bytes)
{
	/* caller holds c->lock */
	c->done += bytes;
	if (c->opts->progress)
		c->opts->progress(c->opts->opaque, c->done, c->size);
}

/* Report a salvaged error through the caller's warn callback. */
static void conv_warn(struct conv *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void conv_warn(struct conv *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	if (!c->opts->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->opts->warn(c->opts->opaque, msg);
}

/*
 * Claim the next job under c->lock.  Leading runs that need no write are
 * consumed here; returns false when nothing is left (or after an error).
 */
static int src_status(struct conv *c, uint64_t off, uint64_t *pnum,
		      unsigned *st)
{
	return c->top_only ? mimg_block_status(c->src, off, c->size - off, pnum,
					       st, NULL, 0)
			   : mimg_block_status_chain(c->src, off, c->size - off,
						     pnum, st, NULL, NULL, 0);
}

/*
 * The data window at OFF, whose first run is PNUM bytes, goes on over
 * the data runs that follow up to WEND: formats report runs that end
 * where nothing needs to (compressed clusters one at a time, a zero run
 * too short to skip), and every window is a read request of its own, a
 * round trip when the source is remote.  It stops before a run that
 * reads as zeroes or is not the source's, which may need no read.
 */
static uint64_t with_following_data(struct conv *c, uint64_t off, uint64_t pnum,
				    uint64_t wend)
{
	uint64_t end = off + pnum;
	while (end < wend && end < c->size) {
		uint64_t more;
		unsigned st;
		if (src_status(c, end, &more, &st) < 0) {
			mimg_err_clear(); /* met again when claimed */
			break;
		}
		if (!(st & MIMG_BS_DATA) || more == 0)
			break;
		end += more;
	}
	return end - off;
}

static bool claim_job(struct conv *c, struct job *j)
{
	while (!c->err && c->next_off < c->size) {
		uint64_t off = c->next_off, pnum;
		unsigned st;
		int r = src_status(c, off, &pnum, &st);
		if (r < 0 && c->opts->salvage) {
			/* read it as data: the read says what is lost */
			conv_warn(c,
				  "error while reading block status at "
				  "offset %llu: %s",
				  (unsigned long long)off, strerror(-r));
			st = MIMG_BS_DATA;
			pnum = min_u64(512, c->size - off);
		} else if (r < 0) {
			c->err = r;
			strncpy(c->errmsg, mimg_errmsg(),
				sizeof(c->errmsg) - 1);
			return false;
		}
		if (c->top_only && !(st & (MIMG_BS_DATA | MIMG_BS_ZERO))) {
			/* left to the target's backing file */
			c->next_off = off + pnum;
			conv_progress(c, pnum);
			continue;
		}
		bool zero = (st & MIMG_BS_ZERO) && (c->sparse || c->top_only);
		if (zero) {
			/* Whole aligned units only, so that data windows
			 * start on a target cluster. */
			uint64_t end = off + pnum;
			if (end < c->size)
				end = align_down_u64(end, c->align);
			if (end > off) {
				if (c->target_zero) {
					c->next_off = end;
					conv_progress(c, end - off);
					continue;
				}
				if (!c->unit || c->top_only) {
					j->off = off;
					j->len = min_u64(end - off,
							 ZERO_JOB_MAX);
					j->zero = true;
					j->seq = c->next_seq++;
					c->next_off = off + j->len;
					return true;
				}
			}
		}
		/* A data window: this run (in whole target clusters), up to
		 * the next WINDOW boundary.  Not beyond the run: the next
		 * one may be a hole that needs neither reading nor writing. */
		uint64_t wend = align_down_u64(off, WINDOW) + WINDOW, rend;
		pnum = with_following_data(c, off, pnum, wend);
		if (!ck_align_up_u64(off + pnum, c->align, &rend))
			rend = c->size;
		j->off = off;
		j->len = min_u64(min_u64(wend, rend), c->size) - off;
		j->zero = false;
		j->seq = c->next_seq++;
		c->next_off = off + j->len;
		return true;
	}
	return false;
}

/* Wait until job SEQ may write (always true for unordered writes). */
static int wait_turn(struct conv *c, uint64_t seq)
{
	pthread_mutex_lock(&c->lock);
	while (c->ordered && c->write_seq != seq && !c->err)
		pthread_cond_wait(&c->turn[seq % (uint64_t)c->nslots],
				  &c->lock);
	int err = c->err;
	pthread_mutex_unlock(&c->lock);
	return err;
}

/* Copy the LEN source bytes at OFF, which lie in the host file as H
 * says, to the raw target inside the host (a clone of the blocks where
 * the file system shares them): 1 when the files cannot, and copying
 * stops for the rest of the conversion. */
static int copy_run(struct conv *c, const struct src_host *h, uint64_t off,
		    uint64_t len)
{
	int r = mimg_file_copy_range(h->file, h->host + (off - h->guest),
				     c->dst->file, off + c->doff, len);
	if (r != -ENOTSUP)
		return r;
	__atomic_store_n(&c->copy_range, false, __ATOMIC_RELAXED);
	return 1;
}

/* Zero or write [off, off+len) of DST from BUF; H (may be NULL) says
 * where those bytes lie in a source host file. */
static int put_run(struct conv *c, const uint8_t *buf, const struct src_host *h,
		   uint64_t off, uint64_t len, bool zero)
{
	if (zero) {
		if (c->target_zero)
			return 0;
		/* over a backing file, zeroes must be stored as zeroes */
		return mimg_pwrite_zeroes(c->dst, off + c->doff, len,
					  c->top_only ? 0
						      : MIMG_ZERO_MAY_UNMAP);
	}
	if (h && __atomic_load_n(&c->copy_range, __ATOMIC_RELAXED)) {
		int cr = copy_run(c, h, off, len);
		if (cr <= 0)
			return cr;
	}
	ssize_t r = mimg_pwrite(c->dst, buf, (size_t)len, off + c->doff, 0);
	return r < 0 ? (int)r : 0;
}

/* Write BUF (the source's bytes [off, off+len), in a host file as H
 * says where H is not NULL), skipping zero runs of at least c->sparse
 * bytes on sparse-aligned boundaries. */
static int write_plain(struct conv *c, const uint8_t *buf,
		       const struct src_host *h, uint64_t off, uint64_t len)
{
	if (!c->sparse)
		return put_run(c, buf, h, off, len, false);
	/* A window shorter than the granularity is skipped when it is all
	 * zeroes, as qemu-img skips such requests (-S above the window). */
	if (len < c->sparse && buf_is_zero(buf, (size_t)len))
		return put_run(c, buf, h, off, len, true);
	uint64_t pos = 0, run_start = 0;
	bool run_zero = false, have_run = false;
	while (pos < len) {
		/* Chunks end on absolute multiples of the granularity. */
		uint64_t cend = min_u64((off + pos) / c->sparse * c->sparse +
						c->sparse - off,
					len);
		bool z = buf_is_zero(buf + pos, (size_t)(cend - pos)) &&
			 cend - pos == c->sparse;
		if (!have_run) {
			run_start = pos;
			run_zero = z;
			have_run = true;
		} else if (z != run_zero) {
			int r = put_run(c, buf + run_start, h, off + run_start,
					pos - run_start, run_zero);
			if (r < 0)
				return r;
			run_start = pos;
			run_zero = z;
		}
		pos = cend;
	}
	return have_run ? put_run(c, buf + run_start, h, off + run_start,
				  len - run_start, run_zero)
			: 0;
}

/* Store the N units of the job at OFF, in its turn. */
static int write_units(struct conv *c, uint64_t off, const struct cunit *units,
		       uint64_t n)
{
	const struct mimg_driver *d = c->dst->drv;
	int r = 0;

	for (uint64_t i = 0; i < n && r >= 0; i++) {
		uint64_t uoff = off + i * c->unit + c->doff;
		if (units[i].clen == -1)
			continue;
		if (units[i].clen == -3)
			r = put_run(c, NULL, NULL, uoff - c->doff,
				    min_u64(c->unit,
					    c->size - (uoff - c->doff)),
				    true);
		else if (units[i].clen == -2)
			r = d->write_compressed(c->dst, uoff, units[i].out,
						c->unit, false);
		else
			r = d->write_compressed(c->dst, uoff, units[i].out,
						(size_t)units[i].clen, true);
	}
	return r < 0 ? r : 0;
}

static void bufs_free(struct bufs *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b->cbuf);
	free(b->units);
	free(b);
}

/* A worker's buffers; NULL when out of memory. */
static struct bufs *bufs_new(const struct conv *c)
{
	struct bufs *b = calloc(1, sizeof(*b));
	size_t nunits = c->unit ? WINDOW / c->unit + 1 : 0;
	if (!b)
		return NULL;
	/* page-aligned: O_DIRECT targets take it without a bounce copy */
	if (posix_memalign((void **)&b->buf, 4096,
			   WINDOW + (c->unit ? c->unit : 0)) != 0)
		b->buf = NULL;
	if (c->unit) {
		b->cbuf = malloc(nunits * c->cstride);
		b->units = calloc(nunits, sizeof(*b->units));
	}
	if (!b->buf || (c->unit && (!b->cbuf || !b->units))) {
		bufs_free(b);
		return NULL;
	}
	return b;
}

/* Pages for a parked job's output, mapped and unmapped whole: from the
 * heap, blocks freed by the writing thread stayed with the parking one's
 * arena, and a conversion grew past its bound.  NULL when none are
 * free. */
static uint8_t *parked_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void parked_free(uint8_t *data, size_t bytes)
{
	if (data)
		munmap(data, bytes ? bytes : 1);
}

/* Bytes of unit U's output. */
static size_t unit_bytes(const struct conv *c, const struct cunit *u)
{
	return u->clen > 0 ? (size_t)u->clen : u->clen == -2 ? c->unit : 0;
}

/* May job J, whose output is BYTES long, be parked now?  Under c->lock. */
static bool parkable(const struct conv *c, const struct job *j, size_t bytes)
{
	return c->write_seq != j->seq && !c->err &&
	       j->seq - c->write_seq < c->nparked &&
	       !c->parked[j->seq % c->nparked].full &&
	       c->parked_bytes + bytes <= c->parked_budget;
}

/* Park job J, whose N units are in B, when its turn has not come and a
 * slot and the bytes for a copy of its output are free: 1 when parked, 0
 * when the worker must write the units itself. */
static int park_job(struct conv *c, const struct job *j, const struct bufs *b,
		    uint64_t n)
{
	size_t bytes = 0, at = 0;
	if (!c->nparked)
		return 0;
	for (uint64_t i = 0; i < n; i++)
		bytes += unit_bytes(c, &b->units[i]);
	pthread_mutex_lock(&c->lock);
	bool park = parkable(c, j, bytes);
	pthread_mutex_unlock(&c->lock);
	if (!park)
		return 0;
	struct cunit *units = malloc(n * sizeof(*units));
	uint8_t *data = parked_alloc(bytes);
	if (!units || !data) { /* no memory to spare: write it in turn */
		free(units);
		parked_free(data, bytes);
		return 0;
	}
	for (uint64_t i = 0; i < n; i++) {
		size_t k = unit_bytes(c, &b->units[i]);
		units[i] = b->units[i];
		if (k) {
			memcpy(data + at, b->units[i].out, k);
			units[i].out = data + at;
			at += k;
		}
	}
	/* Checked again: the turn may have come while copying. */
	pthread_mutex_lock(&c->lock);
	park = parkable(c, j, bytes);
	if (park) {
		c->parked[j->seq % c->nparked] =
			(struct parked){.full = true,
					.off = j->off,
					.len = j->len,
					.n = n,
					.units = units,
					.data = data,
					.bytes = bytes};
		c->parked_bytes += bytes;
	}
	pthread_mutex_unlock(&c->lock);
	if (!park) {
		free(units);
		parked_free(data, bytes);
	}
	return park;
}

/* Job J is written: write the parked jobs that follow it while they are
 * there, then pass the turn on.  Finding no parked successor and passing
 * the turn happen under one lock, so that a job is either parked before
 * (and written here) or finds its turn come. */
static int finish_turn(struct conv *c, const struct job *j)
{
	uint64_t seq = j->seq, len = j->len;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		conv_progress(c, len);
		struct parked *p = c->nparked
					   ? &c->parked[(seq + 1) % c->nparked]
					   : NULL;
		if (!p || !p->full || c->err) {
			if (c->ordered) {
				c->write_seq = seq + 1;
				pthread_cond_signal(
					&c->turn[c->write_seq %
						 (uint64_t)c->nslots]);
			}
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		struct parked next = *p;
		p->full = false;
		pthread_mutex_unlock(&c->lock);
		int r = write_units(c, next.off, next.units, next.n);
		free(next.units);
		parked_free(next.data, next.bytes);
		pthread_mutex_lock(&c->lock);
		c->parked_bytes -= next.bytes;
		pthread_mutex_unlock(&c->lock);
		if (r < 0)
			return r;
		seq++;
		len = next.len;
	}
}

/* Compress job J and write it in its turn, or park it (JOB_PARKED). */
static int write_compressed_job(struct conv *c, const struct job *j,
				const struct bufs *bs)
{
	const struct mimg_driver *d = c->dst->drv;
	uint64_t n = div_round_up_u64(j->len, c->unit);
	uint8_t *buf = bs->buf, *cbuf = bs->cbuf;
	struct cunit *units = bs->units;
	size_t cstride = c->cstride;
	int r;

	for (uint64_t i = 0; i < n; i++) {
		uint8_t *in = buf + i * c->unit;
		units[i].out = cbuf + i * cstride;
		if (buf_is_zero(in, c->unit) &&
		    (c->target_zero || c->top_only)) {
			units[i].clen = c->target_zero ? -1 : -3;
			continue;
		}
		units[i].clen = d->compress(c->dst, in, c->unit, units[i].out,
					    cstride);
		if (units[i].clen == -ENOSPC) {
			units[i].clen = -2; /* store uncompressed */
			units[i].out = in;
		} else if (units[i].clen < 0) {
			return (int)units[i].clen;
		}
	}
	if (park_job(c, j, bs, n))
		return JOB_PARKED;
	if ((r = wait_turn(c, j->seq)) != 0)
		return r;
	return write_units(c, j->off, units, n);
}

/* -r: wait until reading LEN more bytes of source data keeps to the
 * rate: each read may start once the bytes read before it have had
 * their time.  Sleeps outside the lock. */
static void throttle(struct conv *c, uint64_t len)
{
	uint64_t rate = c->opts->rate_limit;
	if (!rate)
		return;
	pthread_mutex_lock(&c->lock);
	uint64_t before = c->rate_bytes;
	c->rate_bytes += len;
	pthread_mutex_unlock(&c->lock);
	/* Nanoseconds after the start: before / rate seconds, without
	 * overflow for any 64-bit byte count and rate. */
	uint64_t secs = before / rate;
	uint64_t ns = (uint64_t)((double)(before % rate) * 1e9 / (double)rate);
	struct timespec due = c->rate_start;
	if (secs > (uint64_t)INT32_MAX)
		secs = INT32_MAX; /* decades: the same as forever */
	due.tv_sec += (time_t)secs;
	due.tv_nsec += (long)ns;
	if (due.tv_nsec >= 1000000000L) {
		due.tv_sec++;
		due.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) ==
	       EINTR)
		;
}

/* Read the source; with --salvage, a failing read is retried a sector
 * at a time and what still fails reads as zeroes, with a warning. */
static ssize_t read_src(struct conv *c, uint8_t *buf, uint64_t len,
			uint64_t off)
{
	ssize_t got = mimg_pread(c->src, buf, (size_t)len, off, 0);
	if (got >= 0 || !c->opts->salvage)
		return got;
	for (uint64_t pos = 0; pos < len; pos += 512) {
		size_t n = (size_t)min_u64(512, len - pos);
		ssize_t r = mimg_pread(c->src, buf + pos, n, off + pos, 0);
		if (r < 0) {
			pthread_mutex_lock(&c->lock);
			conv_warn(c, "error while reading offset %llu: %s",
				  (unsigned long long)(off + pos),
				  strerror((int)-r));
			pthread_mutex_unlock(&c->lock);
			memset(buf + pos, 0, n);
		}
	}
	return (ssize_t)len;
}

/* -C: the job's data copied between the host files; 1 when the files
 * cannot do it (then copy offloading stops for the rest). */
static int offload_job(struct conv *c, const struct job *j)
{
	int r = wait_turn(c, j->seq);
	if (r != 0)
		return r;
	r = mimg_file_copy_range(c->src->file, j->off, c->dst->file,
				 j->off + c->doff, j->len);
	if (r == -ENOTSUP) {
		__atomic_store_n(&c->offload, false, __ATOMIC_RELAXED);
		return 1;
	}
	return r;
}

/* Whether job J's source bytes are one stretch of one layer's host file
 * (its data, not compressed), and where (*H).  The host offsets are the
 * ones block status gives, which the drivers have checked against the
 * file; a stretch past the file's end is refused by the copy. */
static bool job_in_host(struct conv *c, const struct job *j, struct src_host *h)
{
	uint64_t pos = j->off, end = j->off + j->len;
	int layer = -1;

	while (pos < end) {
		uint64_t pnum, host;
		unsigned st;
		int depth = 0;
		int r = c->top_only
				? mimg_block_status(c->src, pos, end - pos,
						    &pnum, &st, &host, 0)
				: mimg_block_status_chain(c->src, pos,
							  end - pos, &pnum, &st,
							  &depth, &host, 0);
		if (r < 0) {
			mimg_err_clear(); /* the job was read: copy it */
			return false;
		}
		if (!(st & MIMG_BS_OFFSET_VALID) || !(st & MIMG_BS_DATA) ||
		    (st & (MIMG_BS_COMPRESSED | MIMG_BS_ZERO)) || depth < 0 ||
		    depth >= c->nlayers || !c->layer_file[depth])
			return false;
		if (layer < 0) {
			layer = depth;
			*h = (struct src_host){c->layer_file[depth], j->off,
					       host};
		} else if (depth != layer || host != h->host + (pos - j->off)) {
			return false;
		}
		pos += pnum;
	}
	return layer >= 0;
}

static int run_job(struct conv *c, const struct job *j, const struct bufs *bs)
{
	uint8_t *buf = bs->buf;
	int r;

	if (j->zero) {
		if ((r = wait_turn(c, j->seq)) != 0)
			return r;
		return put_run(c, NULL, NULL, j->off, j->len, true);
	}
	if (c->unit) {
		/* Compressed units are whole: the window starts unit-aligned
		 * (see claim_job) and the image's tail is zero-padded. */
		size_t padded = (size_t)div_round_up_u64(j->len, c->unit) *
				c->unit;
		throttle(c, j->len);
		ssize_t got = read_src(c, buf, j->len, j->off);
		if (got < 0)
			return (int)got;
		memset(buf + got, 0, padded - (size_t)got);
		return write_compressed_job(c, j, bs);
	}
	throttle(c, j->len);
	if (__atomic_load_n(&c->offload, __ATOMIC_RELAXED) &&
	    (r = offload_job(c, j)) != 1)
		return r;
	/* The bytes are read all the same: which runs read as zeroes
	 * decides the target's holes. */
	ssize_t got = read_src(c, buf, j->len, j->off);
	if (got < 0)
		return (int)got;
	struct src_host h;
	bool in_host = __atomic_load_n(&c->copy_range, __ATOMIC_RELAXED) &&
		       job_in_host(c, j, &h);
	if ((r = wait_turn(c, j->seq)) != 0)
		return r;
	return write_plain(c, buf, in_host ? &h : NULL, j->off, j->len);
}

static void *worker(void *arg)
{
	struct conv *c = arg;
	struct bufs *bs = bufs_new(c);
	struct job j;

	if (!bs) {
		mimg_err(-ENOMEM, "out of memory for conversion buffers");
		conv_fail(c, -ENOMEM);
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&c->lock);
		bool have = claim_job(c, &j);
		pthread_mutex_unlock(&c->lock);
		if (!have)
			break;
		int r = run_job(c, &j, bs);
		if (r == JOB_PARKED)
			continue;
		if (r < 0) {
			conv_fail(c, r);
			break;
		}
		if (r > 0) /* another worker failed */
			break;
		if ((r = finish_turn(c, &j)) < 0) {
			conv_fail(c, r);
			break;
		}
	}
	bufs_free(bs);
	return NULL;
}

static int conv_setup(struct conv *c, struct mimg *src, struct mimg *dst,
		      const struct mimg_convert_opts *o)
{
	const struct mimg_driver *d = dst->drv;
	bool stream = d->stream_only && d->stream_only(dst);

	if (dst->read_only)
		return mimg_err(-EROFS, "%s: target is open read-only",
				dst->filename);
	/* qemu-img's words (the target is the only one), and its order */
	if ((o->compress || stream) &&
	    (!d->compress_unit || !d->compress || !d->write_compressed))
		return mimg_err(-ENOTSUP,
				"Compression not supported for this file "
				"format");
	if (dst->size < o->dst_offset || dst->size - o->dst_offset < src->size)
		return mimg_err(
			-ENOSPC,
			"%s: target (%llu bytes) is smaller "
			"than the source %s (%llu bytes) at offset %llu",
			dst->filename, (unsigned long long)dst->size,
			src->filename, (unsigned long long)src->size,
			(unsigned long long)o->dst_offset);
	c->src = src;
	c->dst = dst;
	c->opts = o;
	clock_gettime(CLOCK_MONOTONIC, &c->rate_start);
	c->size = src->size;
	c->sparse = o->sparse_size == MIMG_CONVERT_NO_SPARSE ? 0
		    : o->sparse_size			     ? o->sparse_size
				     : MIMG_CONVERT_DEFAULT_SPARSE;
	/* qemu-img's rule: multiples of 512 up to 16 MiB.  Runs longer
	 * than a window are only found as unallocated or zero ranges. */
	if (c->sparse && (c->sparse % 512 || c->sparse > MAX_SPARSE))
		return mimg_err(-EINVAL,
				"sparse size %llu must be a multiple "
				"of 512 up to %u",
				(unsigned long long)c->sparse, MAX_SPARSE);
	c->doff = o->dst_offset;
	c->top_only = o->target_has_backing;
	c->target_zero = !c->top_only &&
			 (o->target_is_zero ||
			  (!o->existing_target && mimg_has_zero_init(dst)));
	/* Host offsets are guest offsets in raw images only. */
	c->offload = o->copy_offload && !o->compress && !stream &&
		     mimg__raw_is_file(src) && mimg__raw_is_file(dst);
	c->ordered = !o->out_of_order || o->compress || stream;
	if (o->compression_level < 0 || o->compression_level > CODEC_LEVEL_MAX)
		return mimg_err(-EINVAL,
				"compression level %d is not "
				"between 1 and %d",
				o->compression_level, CODEC_LEVEL_MAX);
	if (o->compress || stream) {
		/* qemu-img's words for an image of such a format that has
		 * no compressed unit (flat VMDK extents). */
		if (!(c->unit = d->compress_unit(dst)))
			return mimg_err(-ENOTSUP,
					"%s: invalid cluster size: "
					"this %s image cannot be written "
					"compressed",
					dst->filename, d->name);
		if (!is_pow2_u64(c->unit) || c->unit > WINDOW)
			return mimg_err(-EINVAL,
					"%s: compressed unit %u is "
					"not usable",
					dst->filename, c->unit);
		if (!c->target_zero && !(c->top_only && !o->existing_target))
			return mimg_err(-ENOTSUP,
					"%s: compressed or stream "
					"output needs a fresh target",
					dst->filename);
		if (!c->sparse) /* zero units are still never stored */
			c->sparse = c->unit;
		if (c->doff % c->unit)
			return mimg_err(-EINVAL,
					"%s: compressed output needs "
					"every source but the last to end on "
					"a %u-byte boundary",
					dst->filename, c->unit);
	}
	/* Windows start on target clusters (and compressed units); the
	 * sparse granularity needs no alignment of its own: write_plain
	 * checks absolute multiples, and widening zero runs to it would
	 * write zeroes next to small data extents. */
	c->align = max_u64(max_u64(dst->cluster_size, c->unit), 1);
	c->cstride = c->unit ? c->unit + c->unit / 8 + 4096 : 0;
	if (!is_pow2_u64(c->align) || c->align > WINDOW)
		c->align = WINDOW;
	return 0;
}

/* Whether layer L reads its data at the host offsets block status gives,
 * from its own file and nothing else. */
static bool layer_in_own_file(const struct mimg *l)
{
	return (strcmp(l->drv->name, "raw") == 0 ||
		strcmp(l->drv->name, "qcow2") == 0) &&
	       l->file && !l->n_extra_ids && !l->archive && !l->in_memory &&
	       !l->remote;
}

/* Plain output into a raw target: find the source layers whose data
 * runs can be copied host file to host file (where the host can share
 * the blocks, nothing is copied at all).  Not with --salvage, which
 * reads through the format to report and replace what fails, nor into
 * a target probed as raw, whose first sector is checked when written.
 * Only while zero runs of a block or less become holes: a shared copy
 * keeps the source's holes, which -S 0 or a coarser -S writes out. */
static void find_copy_sources(struct conv *c)
{
	struct mimg *l = c->src;

	if (c->unit || c->opts->salvage || !c->sparse || c->sparse > 4096 ||
	    !mimg__raw_is_file(c->dst) || c->dst->probed_raw || !c->dst->file)
		return;
	for (int i = 0; l && i < MAX_LAYERS; i++, l = l->backing) {
		c->layer_file[i] = layer_in_own_file(l) ? l->file : NULL;
		c->nlayers = i + 1;
		if (c->top_only)
			break;
	}
	c->copy_range = true;
}

/* CPUs this process may run on: its affinity mask (taskset, cpusets,
 * containers) where the system has one, else every online CPU. */
static long usable_cpus(void)
{
#ifdef CPU_COUNT
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
#endif
	return sysconf(_SC_NPROCESSORS_ONLN);
}

/* Every usable CPU decompresses or compresses (at least DEFAULT_PARALLEL
 * requests in flight for plain copies). */
static int default_parallel(void)
{
	long n = usable_cpus();
	if (n <= DEFAULT_PARALLEL)
		return DEFAULT_PARALLEL;
	return n > DEFAULT_PARALLEL_MAX ? DEFAULT_PARALLEL_MAX : (int)n;
}

/* The first published layout of struct mimg_convert_opts (up to
 * compression_level): smaller sizes were never valid. */
#define CONVERT_OPTS_MIN_SIZE offsetof(struct mimg_convert_opts, rate_limit)

int mimg__convert_opts_get(const struct mimg_convert_opts *opts,
			   struct mimg_convert_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	if (!opts)
		return 0;
	if (opts->size < CONVERT_OPTS_MIN_SIZE || opts->size > sizeof(*o))
		return mimg_err(-EINVAL,
				"struct mimg_convert_opts: size %zu "
				"(this library takes %zu)",
				opts->size, sizeof(*o));
	memcpy(o, opts, opts->size);
	return 0;
}

int mimg_convert(struct mimg *src, struct mimg *dst,
		 const struct mimg_convert_opts *copts)
{
	struct mimg_convert_opts local, *opts = &local;
	struct conv c;
	pthread_t tids[MAX_PARALLEL];
	int nthreads, started = 0, r;

	memset(&c, 0, sizeof(c));
	if ((r = mimg__convert_opts_get(copts, &local)) < 0)
		return r;
	if ((r = mimg__check_overlap(src, dst)) < 0)
		return r;
	if ((r = conv_setup(&c, src, dst, opts)) < 0)
		return r;
	dst->compress_level = opts->compression_level;
	find_copy_sources(&c);
	nthreads = opts->parallel > 0 ? opts->parallel : default_parallel();
	if (nthreads > MAX_PARALLEL)
		nthreads = MAX_PARALLEL;
	/* A streamed source holds only its most recent bytes: readers may
	 * be at most that many windows apart. */
	if (src->archive && src->archive->streamed &&
	    nthreads > (int)(MIMG_STREAM_RING / WINDOW / 2))
		nthreads = (int)(MIMG_STREAM_RING / WINDOW / 2);
	if (c.unit && nthreads > MAX_BUFFERED_JOBS)
		nthreads = MAX_BUFFERED_JOBS;
	/* Parking lets a streamed source's readers drift apart further
	 * than its ring allows: not there. */
	if (c.unit && c.ordered && !(src->archive && src->archive->streamed)) {
		c.nparked = (uint64_t)nthreads * PARKED_PER_WORKER;
		if (c.nparked > MAX_PARKED)
			c.nparked = MAX_PARKED;
		c.parked_budget = (size_t)(MAX_BUFFERED_JOBS - nthreads) *
				  JOB_BUFFER_BYTES;
		if (!c.parked_budget)
			c.nparked = 0;
		c.parked = calloc(c.nparked, sizeof(*c.parked));
		if (!c.parked)
			c.nparked = 0;
	}
	pthread_mutex_init(&c.lock, NULL);
	c.nslots = nthreads + (int)c.nparked + 1;
	for (int i = 0; i < c.nslots; i++)
		pthread_cond_init(&c.turn[i], NULL);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&tids[i], NULL, worker, &c) != 0)
			break;
		started++;
	}
	if (started == 0) {
		mimg_err(-EAGAIN, "could not start conversion threads");
		conv_fail(&c, -EAGAIN);
	}
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (!c.err && opts->progress)
		opts->progress(opts->opaque, c.size, c.size);
	for (int i = 0; i < c.nslots; i++)
		pthread_cond_destroy(&c.turn[i]);
	for (uint64_t i = 0; i < c.nparked; i++) { /* left by a failure */
		if (c.parked[i].full) {
			free(c.parked[i].units);
			parked_free(c.parked[i].data, c.parked[i].bytes);
		}
	}
	free(c.parked);
	pthread_mutex_destroy(&c.lock);
	if (c.err)
		return mimg_err(c.err, "%s", c.errmsg);
	return 0;
}
