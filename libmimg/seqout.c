/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The output of seqout.h: a queue of full buffers in the order they were
 * handed over, a list of free ones, and one writer thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "mimg.h"
#include "file.h"
#include "seqout.h"

struct item {
	uint8_t *data;
	size_t len;
	uint64_t off;
};

struct mimg_seqout {
	struct mimg_file *file;
	unsigned nbufs;
	uint8_t **all;	     /* every buffer, to free */
	uint8_t **free_bufs; /* nfree of them, not in use */
	unsigned nfree;
	struct item *queue; /* nbufs slots: count from head */
	unsigned head, count;
	bool busy; /* the thread is writing an item it took */
	bool quit, threaded;
	int err; /* the first write error, with its message */
	char errmsg[512];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* queue, free list, busy or quit changed */
};

/* Keep the first error R (its message is this thread's). */
static void keep_error(struct mimg_seqout *o, int r)
{
	if (r < 0 && !o->err) {
		o->err = r;
		snprintf(o->errmsg, sizeof(o->errmsg), "%s", mimg_errmsg());
	}
}

static int report(const struct mimg_seqout *o)
{
	return o->err ? mimg_err(o->err, "%s", o->errmsg) : 0;
}

static void *writer_main(void *arg)
{
	struct mimg_seqout *o = arg;
	pthread_mutex_lock(&o->lock);
	for (;;) {
		while (!o->count && !o->quit)
			pthread_cond_wait(&o->cond, &o->lock);
		if (!o->count)
			break; /* quit, and everything is written */
		struct item it = o->queue[o->head];
		o->head = (o->head + 1) % o->nbufs;
		o->count--;
		o->busy = true;
		bool skip = o->err != 0; /* after an error nothing is written */
		pthread_mutex_unlock(&o->lock);
		int r = skip ? 0
			     : mimg_file_pwrite(o->file, it.data, it.len,
						it.off);
		char msg[sizeof(o->errmsg)];
		if (r < 0)
			snprintf(msg, sizeof(msg), "%s", mimg_errmsg());
		pthread_mutex_lock(&o->lock);
		if (r < 0 && !o->err) {
			o->err = r;
			snprintf(o->errmsg, sizeof(o->errmsg), "%s", msg);
		}
		o->free_bufs[o->nfree++] = it.data;
		o->busy = false;
		pthread_cond_broadcast(&o->cond);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

/* Free O's buffers and arrays (its thread not running, or never
 * started). */
static void release(struct mimg_seqout *o)
{
	for (unsigned i = 0; o->all && i < o->nbufs; i++)
		free(o->all[i]);
	free(o->all);
	free(o->free_bufs);
	free(o->queue);
	free(o);
}

int mimg__seqout_new(struct mimg_file *f, size_t bufsize, unsigned nbufs,
		     struct mimg_seqout **outp, uint8_t **bufp)
{
	*outp = NULL;
	if (nbufs < 2)
		return mimg_err(-EINVAL, "seqout: %u buffers", nbufs);
	struct mimg_seqout *o = calloc(1, sizeof(*o));
	if (!o)
		return mimg_err(-ENOMEM, "out of memory");
	o->file = f;
	o->nbufs = nbufs;
	o->all = calloc(nbufs, sizeof(*o->all));
	o->free_bufs = calloc(nbufs, sizeof(*o->free_bufs));
	o->queue = calloc(nbufs, sizeof(*o->queue));
	if (!o->all || !o->free_bufs || !o->queue)
		goto oom;
	for (unsigned i = 0; i < nbufs; i++)
		if (!(o->all[i] = malloc(bufsize)))
			goto oom;
	for (unsigned i = 1; i < nbufs; i++)
		o->free_bufs[o->nfree++] = o->all[i];
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	/* Without a thread the buffers are written in submit, in order. */
	o->threaded = pthread_create(&o->thread, NULL, writer_main, o) == 0;
	*bufp = o->all[0];
	*outp = o;
	return 0;
oom:
	release(o);
	return mimg_err(-ENOMEM, "out of memory");
}

int mimg__seqout_submit(struct mimg_seqout *o, uint8_t **bufp, size_t len,
			uint64_t off)
{
	if (!len)
		return report(o);
	if (!o->threaded) {
		if (!o->err)
			keep_error(o,
				   mimg_file_pwrite(o->file, *bufp, len, off));
		return report(o);
	}
	pthread_mutex_lock(&o->lock);
	if (!o->err) {
		o->queue[(o->head + o->count) % o->nbufs] =
			(struct item){*bufp, len, off};
		o->count++;
		pthread_cond_broadcast(&o->cond);
		/* The writer gives every buffer back, written or not. */
		while (!o->nfree)
			pthread_cond_wait(&o->cond, &o->lock);
		*bufp = o->free_bufs[--o->nfree];
	}
	int r = report(o);
	pthread_mutex_unlock(&o->lock);
	return r;
}

int mimg__seqout_drain(struct mimg_seqout *o)
{
	if (!o->threaded)
		return report(o);
	pthread_mutex_lock(&o->lock);
	while (o->count || o->busy)
		pthread_cond_wait(&o->cond, &o->lock);
	int r = report(o);
	pthread_mutex_unlock(&o->lock);
	return r;
}

void mimg__seqout_free(struct mimg_seqout *o)
{
	if (!o)
		return;
	if (o->threaded) {
		pthread_mutex_lock(&o->lock);
		o->quit = true;
		pthread_cond_broadcast(&o->cond);
		pthread_mutex_unlock(&o->lock);
		pthread_join(o->thread, NULL);
	}
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	release(o);
}
