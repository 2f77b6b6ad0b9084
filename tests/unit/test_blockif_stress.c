/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Concurrent blockif stress with verification (see test_blockif_stress.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../vmm-blk/blockif_impl.h"
#include "testutil.h"
#include "test_blockif_stress.h"

#define SLOTS 32
#define SMALL_SECTORS 64 /* 32 KiB: most requests */
/* One request in 16 up to 384 KiB, which blockif performs in parts. */
#define MAX_SECTORS 768
#define SECT 512

enum sop { SOP_READ, SOP_WRITE, SOP_ZEROES, SOP_FLUSH };

struct stress_thread;

struct sreq {
	struct blockif_req br;
	struct stress_thread *t;
	enum sop op;
	size_t len;
	uint8_t buf[MAX_SECTORS * SECT];
	uint8_t expect[MAX_SECTORS * SECT];
	bool busy;
};

struct stress_thread {
	struct blockif_ctxt *bc;
	uint8_t *shadow;
	uint64_t base, len; /* the slice this thread owns */
	unsigned nops;
	uint64_t rng;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned inflight;
	unsigned mismatches, errors;
	struct sreq slots[SLOTS];
};

/*
 * Submitters share blockif's queue.  A request holds its slot until its
 * callback returns, and at most one callback per worker runs at a time, so
 * keeping the requests not yet called back to the queue's size less one
 * slot per worker means blockif never answers E2BIG here.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int left;
} credits = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void credits_init(struct blockif_ctxt *bc)
{
	pthread_mutex_lock(&credits.lock);
	credits.left = blockif_queuesz(bc) + 1 - BLOCKIF_NUMTHR;
	pthread_mutex_unlock(&credits.lock);
}

static void credit_take(void)
{
	pthread_mutex_lock(&credits.lock);
	while (credits.left == 0)
		pthread_cond_wait(&credits.cond, &credits.lock);
	credits.left--;
	pthread_mutex_unlock(&credits.lock);
}

static void credit_give(void)
{
	pthread_mutex_lock(&credits.lock);
	credits.left++;
	pthread_cond_signal(&credits.cond);
	pthread_mutex_unlock(&credits.lock);
}

static uint64_t next_rand(uint64_t *s)
{
	/* splitmix64 */
	return tu_mix64(*s += 0x9e3779b97f4a7c15ull);
}

static void on_done(struct blockif_req *br, int err)
{
	struct sreq *r = br->br_param;
	struct stress_thread *t = r->t;

	pthread_mutex_lock(&t->lock);
	if (err || br->br_resid != 0)
		t->errors++;
	else if (r->op == SOP_READ && memcmp(r->buf, r->expect, r->len) != 0)
		t->mismatches++;
	r->busy = false;
	t->inflight--;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	credit_give();
}

static struct sreq *free_slot(struct stress_thread *t)
{
	pthread_mutex_lock(&t->lock);
	for (;;) {
		for (unsigned i = 0; i < SLOTS; i++)
			if (!t->slots[i].busy) {
				t->slots[i].busy = true;
				t->inflight++;
				pthread_mutex_unlock(&t->lock);
				return &t->slots[i];
			}
		pthread_cond_wait(&t->cond, &t->lock);
	}
}

/* Split R's buffer into 1..4 segments of whole sectors. */
static void set_segments(struct stress_thread *t, struct sreq *r)
{
	size_t sectors = r->len / SECT, done = 0;
	int n = 1 + (int)(next_rand(&t->rng) % 4);

	r->br.br_iovcnt = 0;
	for (int i = 0; i < n && done < sectors; i++) {
		size_t take = i == n - 1 ? sectors - done
					 : 1 + next_rand(&t->rng) %
							   (sectors - done);

		r->br.br_iov[i].iov_base = r->buf + done * SECT;
		r->br.br_iov[i].iov_len = take * SECT;
		r->br.br_iovcnt++;
		done += take;
	}
	if (done < sectors) /* extend the last segment */
		r->br.br_iov[r->br.br_iovcnt - 1].iov_len += (sectors - done) *
							     SECT;
}

static int submit(struct stress_thread *t, struct sreq *r)
{
	int err;

	credit_take();
	switch (r->op) {
	case SOP_READ: err = blockif_read(t->bc, &r->br); break;
	case SOP_WRITE: err = blockif_write(t->bc, &r->br); break;
	case SOP_ZEROES:
		err = blockif_write_zeroes(t->bc, &r->br,
					   next_rand(&t->rng) & 1);
		break;
	default: err = blockif_flush(t->bc, &r->br); break;
	}
	if (err)
		credit_give();
	return err;
}

static void *stress_main(void *arg)
{
	struct stress_thread *t = arg;

	for (unsigned i = 0; i < t->nops; i++) {
		struct sreq *r = free_slot(t);
		uint64_t pick = next_rand(&t->rng) % 100;
		uint64_t nsect = 1 +
				 next_rand(&t->rng) % (next_rand(&t->rng) % 16
							       ? SMALL_SECTORS
							       : MAX_SECTORS);
		/* Offsets cluster in a few hot spots so requests overlap. */
		uint64_t slice_sect = t->len / SECT;
		uint64_t sect = next_rand(&t->rng) % slice_sect;
		uint64_t off;

		if (next_rand(&t->rng) % 2)
			sect = sect % 64;
		if (sect + nsect > slice_sect)
			nsect = slice_sect - sect;
		off = t->base + sect * SECT;
		r->len = nsect * SECT;
		r->br.br_offset = (off_t)off;
		r->br.br_resid = (ssize_t)r->len;
		if (pick < 40) {
			r->op = SOP_READ;
			memcpy(r->expect, t->shadow + off, r->len);
			set_segments(t, r);
		} else if (pick < 85) {
			r->op = SOP_WRITE;
			tu_fill_random(r->buf, r->len, next_rand(&t->rng));
			memcpy(t->shadow + off, r->buf, r->len);
			set_segments(t, r);
		} else if (pick < 97) {
			r->op = SOP_ZEROES;
			memset(t->shadow + off, 0, r->len);
			r->br.br_iovcnt = 0;
		} else {
			r->op = SOP_FLUSH;
			r->br.br_iovcnt = 0;
			r->br.br_resid = 0;
		}
		if (submit(t, r) != 0) {
			pthread_mutex_lock(&t->lock);
			t->errors++;
			r->busy = false;
			t->inflight--;
			pthread_mutex_unlock(&t->lock);
		}
	}
	pthread_mutex_lock(&t->lock);
	while (t->inflight > 0)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* Read the whole disk back synchronously and compare with SHADOW. */
static void verify_all(struct blockif_ctxt *bc, const uint8_t *shadow,
		       uint64_t size)
{
	struct stress_thread *t = calloc(1, sizeof(*t));

	ck_assert_ptr_nonnull(t);
	credits_init(bc);
	t->bc = bc;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	for (uint64_t off = 0; off < size; off += MAX_SECTORS * SECT) {
		struct sreq *r = free_slot(t);
		uint64_t len = size - off < MAX_SECTORS * SECT
				       ? size - off
				       : MAX_SECTORS * SECT;

		r->t = t;
		r->op = SOP_READ;
		r->len = len;
		memcpy(r->expect, shadow + off, len);
		r->br.br_callback = on_done;
		r->br.br_param = r;
		r->br.br_offset = (off_t)off;
		r->br.br_resid = (ssize_t)len;
		r->br.br_iovcnt = 1;
		r->br.br_iov[0].iov_base = r->buf;
		r->br.br_iov[0].iov_len = len;
		ck_assert_int_eq(submit(t, r), 0);
	}
	pthread_mutex_lock(&t->lock);
	while (t->inflight > 0)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	ck_assert_uint_eq(t->errors, 0);
	ck_assert_uint_eq(t->mismatches, 0);
	free(t);
}

void stress_blockif(struct blockif_ctxt *bc, uint8_t *shadow, uint64_t size,
		    unsigned nthreads, unsigned nops, uint64_t seed)
{
	struct stress_thread **ts = calloc(nthreads, sizeof(*ts));
	pthread_t *tids = calloc(nthreads, sizeof(*tids));
	uint64_t slice = size / nthreads / SECT * SECT;
	unsigned mismatches = 0, errors = 0;

	ck_assert(ts && tids && slice >= MAX_SECTORS * SECT);
	credits_init(bc);
	for (unsigned i = 0; i < nthreads; i++) {
		struct stress_thread *t = calloc(1, sizeof(*t));

		ck_assert_ptr_nonnull(t);
		t->bc = bc;
		t->shadow = shadow;
		t->base = slice * i;
		t->len = slice;
		t->nops = nops;
		t->rng = seed * 1000 + i;
		pthread_mutex_init(&t->lock, NULL);
		pthread_cond_init(&t->cond, NULL);
		for (unsigned j = 0; j < SLOTS; j++) {
			t->slots[j].t = t;
			t->slots[j].br.br_callback = on_done;
			t->slots[j].br.br_param = &t->slots[j];
		}
		ts[i] = t;
		ck_assert_int_eq(pthread_create(&tids[i], NULL, stress_main, t),
				 0);
	}
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(tids[i], NULL);
		mismatches += ts[i]->mismatches;
		errors += ts[i]->errors;
		free(ts[i]);
	}
	free(ts);
	free(tids);
	ck_assert_msg(errors == 0, "%u requests failed", errors);
	ck_assert_msg(mismatches == 0, "%u reads returned stale or wrong data",
		      mismatches);
	verify_all(bc, shadow, size);
}

void stress_open(const char *optstr, uint8_t *shadow, uint64_t size,
		 unsigned nthreads, unsigned nops, uint64_t seed)
{
	struct blockif_ctxt *bc = blockif_open_optstr(optstr, "stress");

	ck_assert_msg(bc != NULL, "blockif_open(%s) failed", optstr);
	ck_assert_int_eq(blockif_size(bc), size);
	stress_blockif(bc, shadow, size, nthreads, nops, seed);
	ck_assert_int_eq(blockif_close(bc), 0);
}

uint8_t *stress_base_raw(uint64_t size, uint64_t data, uint64_t seed)
{
	uint8_t *shadow = calloc(1, size);

	ck_assert_ptr_nonnull(shadow);
	tu_fill_random(shadow, data, seed);
	tu_write_file("base.raw", shadow, size, 0);
	return shadow;
}

uint8_t *stress_base_image(const char *args, const char *image, uint64_t size,
			   uint64_t data, uint64_t seed)
{
	uint8_t *shadow = stress_base_raw(size, data, seed);

	ck_assert_msg(tu_system("qemu-img convert -q -f raw %s base.raw %s",
				args, image) == 0,
		      "qemu-img convert %s base.raw %s", args, image);
	return shadow;
}

void stress_open_qemu_reads(const char *optstr, const char *image,
			    const char *format, uint8_t *shadow, uint64_t size,
			    unsigned nops, uint64_t seed)
{
	stress_open(optstr, shadow, size, 4, nops, seed);
	tu_qemu_reads(image, format, shadow, size);
}
