/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif request queue and worker threads.
 *
 * Every unfinished request sits on the "active" list in submission order.
 * When it is queued, it counts the earlier active requests it conflicts
 * with (overlapping ranges where one side modifies data; a flush after a
 * modifying request); it becomes ready when that count drops to zero.
 * Workers take ready requests in FIFO order, so independent requests run in
 * parallel while requests to the same blocks keep their order.  Elements
 * are preallocated: nothing is allocated per request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mimg.h>

#include "blockif_impl.h"

static bool op_modifies(enum blockif_op op)
{
	return op == BOP_WRITE || op == BOP_DELETE || op == BOP_ZEROES;
}

/* Must LATER wait for EARLIER? */
static bool conflicts(const struct blockif_elem *earlier,
		      const struct blockif_elem *later)
{
	if (later->op == BOP_FLUSH)
		return op_modifies(earlier->op);
	if (earlier->op == BOP_FLUSH)
		return false;
	if (!op_modifies(earlier->op) && !op_modifies(later->op))
		return false;
	return earlier->start < later->end && later->start < earlier->end;
}

static void ready_push(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	be->state = BST_READY;
	be->link = NULL;
	if (bc->ready_tail)
		bc->ready_tail->link = be;
	else
		bc->ready_head = be;
	bc->ready_tail = be;
	pthread_cond_signal(&bc->work_cond);
}

static struct blockif_elem *ready_pop(struct blockif_ctxt *bc)
{
	struct blockif_elem *be = bc->ready_head;

	if (be) {
		bc->ready_head = be->link;
		if (!bc->ready_head)
			bc->ready_tail = NULL;
		be->link = NULL;
	}
	return be;
}

static void ready_remove(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	struct blockif_elem **pp = &bc->ready_head, *prev = NULL;

	while (*pp && *pp != be) {
		prev = *pp;
		pp = &(*pp)->link;
	}
	if (!*pp)
		return;
	*pp = be->link;
	if (bc->ready_tail == be)
		bc->ready_tail = prev;
	be->link = NULL;
}

/* Take BE off the active list, release the requests waiting for it and
 * put it on the free list.  Called with the mutex held. */
static void elem_retire(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	for (struct blockif_elem *t = be->next; t; t = t->next) {
		if (t->state == BST_WAITING && conflicts(be, t) &&
		    --t->deps == 0)
			ready_push(bc, t);
	}
	if (be->prev)
		be->prev->next = be->next;
	else
		bc->active_head = be->next;
	if (be->next)
		be->next->prev = be->prev;
	else
		bc->active_tail = be->prev;
	be->prev = be->next = NULL;
	be->req = NULL;
	be->state = BST_FREE;
	be->link = bc->free_list;
	bc->free_list = be;
	pthread_cond_broadcast(&bc->done_cond);
	if (bc->closing && !bc->active_head)
		pthread_cond_broadcast(&bc->work_cond);
}

static uint64_t iov_total(const struct blockif_req *br)
{
	uint64_t n = 0;

	for (int i = 0; i < br->br_iovcnt; i++)
		n += br->br_iov[i].iov_len;
	return n;
}

static int enqueue(struct blockif_ctxt *bc, struct blockif_req *br,
		   enum blockif_op op, bool unmap)
{
	struct blockif_elem *be;
	uint64_t len = 0;

	if (!bc || !br)
		return EINVAL;
	if (op == BOP_READ || op == BOP_WRITE) {
		if (br->br_iovcnt < 0 || br->br_iovcnt > BLOCKIF_IOV_MAX)
			return EINVAL;
		len = iov_total(br);
	} else if (op == BOP_DELETE || op == BOP_ZEROES) {
		if (br->br_resid < 0)
			return EINVAL;
		len = (uint64_t)br->br_resid;
	}
	if (op != BOP_FLUSH && br->br_offset < 0)
		return EINVAL;

	pthread_mutex_lock(&bc->mtx);
	if (bc->closing) {
		pthread_mutex_unlock(&bc->mtx);
		return EINVAL;
	}
	be = bc->free_list;
	if (!be) {
		pthread_mutex_unlock(&bc->mtx);
		return E2BIG;
	}
	bc->free_list = be->link;
	be->link = NULL;
	be->req = br;
	be->op = op;
	be->unmap = unmap;
	be->start = op == BOP_FLUSH ? 0 : (uint64_t)br->br_offset;
	/* A range past 2^64 cannot exist; saturate so overlap tests stay
	 * meaningful and the worker reports the range as invalid. */
	be->end = len > UINT64_MAX - be->start ? UINT64_MAX : be->start + len;
	be->deps = 0;
	for (struct blockif_elem *t = bc->active_head; t; t = t->next)
		if (conflicts(t, be))
			be->deps++;
	be->next = NULL;
	be->prev = bc->active_tail;
	if (bc->active_tail)
		bc->active_tail->next = be;
	else
		bc->active_head = be;
	bc->active_tail = be;
	if (be->deps == 0)
		ready_push(bc, be);
	else
		be->state = BST_WAITING;
	pthread_mutex_unlock(&bc->mtx);
	return 0;
}

static int errno_of(long r)
{
	return r < 0 ? (int)-r : 0;
}

/* Perform one request; returns 0 or a positive errno. */
static int perform(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	struct blockif_req *br = be->req;
	uint64_t len = be->end - be->start;
	ssize_t n;

	switch (be->op) {
	case BOP_FLUSH:
		return errno_of(mimg_flush(bc->img));
	case BOP_READ:
	case BOP_WRITE:
	case BOP_DELETE:
	case BOP_ZEROES:
		break;
	}
	/* bhyve's order: a delete that cannot free space is unsupported
	 * whether or not the device is read-only. */
	if (be->op == BOP_DELETE && !bc->candelete)
		return EOPNOTSUPP;
	if (be->op != BOP_READ && bc->ro)
		return EROFS;
	if (be->end == UINT64_MAX || be->end > bc->size)
		return EINVAL;
	if (len == 0) {
		br->br_resid = 0;
		return 0;
	}
	switch (be->op) {
	case BOP_READ:
		n = mimg_preadv(bc->img, br->br_iov, br->br_iovcnt, be->start);
		break;
	case BOP_WRITE:
		n = mimg_pwritev(bc->img, br->br_iov, br->br_iovcnt,
				 be->start);
		break;
	case BOP_DELETE:
		n = mimg_discard(bc->img, be->start, len);
		if (n == 0)
			n = (ssize_t)len;
		break;
	case BOP_ZEROES:
		n = mimg_pwrite_zeroes(bc->img, be->start, len,
				       be->unmap ? MIMG_ZERO_MAY_UNMAP : 0);
		if (n == 0)
			n = (ssize_t)len;
		break;
	default:
		return EINVAL;
	}
	if (n < 0)
		return (int)-n;
	br->br_resid = (ssize_t)(len - (uint64_t)n);
	return (uint64_t)n == len ? 0 : EIO;
}

static void *worker_main(void *arg)
{
	struct blockif_ctxt *bc = arg;

	pthread_mutex_lock(&bc->mtx);
	for (;;) {
		struct blockif_elem *be = ready_pop(bc);
		struct blockif_req *br;
		int err;

		if (!be) {
			if (bc->closing && !bc->active_head)
				break;
			pthread_cond_wait(&bc->work_cond, &bc->mtx);
			continue;
		}
		be->state = BST_BUSY;
		br = be->req;
		pthread_mutex_unlock(&bc->mtx);

		err = perform(bc, be);

		pthread_mutex_lock(&bc->mtx);
		elem_retire(bc, be);
		pthread_mutex_unlock(&bc->mtx);
		br->br_callback(br, err);
		pthread_mutex_lock(&bc->mtx);
	}
	/* Wake the other workers so they see the queue is drained. */
	pthread_cond_broadcast(&bc->work_cond);
	pthread_mutex_unlock(&bc->mtx);
	return NULL;
}

int blockif_start(struct blockif_ctxt *bc)
{
	int err;

	pthread_mutex_init(&bc->mtx, NULL);
	pthread_cond_init(&bc->work_cond, NULL);
	pthread_cond_init(&bc->done_cond, NULL);
	bc->free_list = NULL;
	for (int i = BLOCKIF_MAXREQ - 1; i >= 0; i--) {
		bc->elems[i].state = BST_FREE;
		bc->elems[i].link = bc->free_list;
		bc->free_list = &bc->elems[i];
	}
	for (bc->nthreads = 0; bc->nthreads < BLOCKIF_NUMTHR; bc->nthreads++) {
		err = pthread_create(&bc->threads[bc->nthreads], NULL,
				     worker_main, bc);
		if (err)
			break;
	}
	if (bc->nthreads == 0)
		return err;
	return 0;
}

int blockif_read(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return enqueue(bc, breq, BOP_READ, false);
}

int blockif_write(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return enqueue(bc, breq, BOP_WRITE, false);
}

int blockif_flush(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return enqueue(bc, breq, BOP_FLUSH, false);
}

int blockif_delete(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return enqueue(bc, breq, BOP_DELETE, false);
}

int blockif_write_zeroes(struct blockif_ctxt *bc, struct blockif_req *breq,
			 int unmap)
{
	return enqueue(bc, breq, BOP_ZEROES, unmap != 0);
}

int blockif_cancel(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	struct blockif_elem *be;

	pthread_mutex_lock(&bc->mtx);
	for (be = bc->active_head; be; be = be->next)
		if (be->req == breq)
			break;
	if (!be) {
		pthread_mutex_unlock(&bc->mtx);
		return EINVAL;
	}
	if (be->state != BST_BUSY) {
		if (be->state == BST_READY)
			ready_remove(bc, be);
		elem_retire(bc, be);
		pthread_mutex_unlock(&bc->mtx);
		return 0;
	}
	/* libmimg I/O cannot be interrupted: wait for it to finish. */
	while (be->req == breq && be->state == BST_BUSY)
		pthread_cond_wait(&bc->done_cond, &bc->mtx);
	pthread_mutex_unlock(&bc->mtx);
	return EBUSY;
}

int blockif_close(struct blockif_ctxt *bc)
{
	int err;

	if (!bc)
		return 0;
	pthread_mutex_lock(&bc->mtx);
	bc->closing = true;
	pthread_cond_broadcast(&bc->work_cond);
	pthread_mutex_unlock(&bc->mtx);
	for (int i = 0; i < bc->nthreads; i++)
		pthread_join(bc->threads[i], NULL);
	err = errno_of(mimg_close(bc->img));
	pthread_cond_destroy(&bc->done_cond);
	pthread_cond_destroy(&bc->work_cond);
	pthread_mutex_destroy(&bc->mtx);
	free(bc);
	return err;
}

off_t blockif_size(struct blockif_ctxt *bc)
{
	return (off_t)bc->size;
}

int blockif_sectsz(struct blockif_ctxt *bc)
{
	return bc->sectsz;
}

void blockif_psectsz(struct blockif_ctxt *bc, int *size, int *off)
{
	*size = bc->psectsz;
	*off = bc->psectoff;
}

int blockif_queuesz(struct blockif_ctxt *bc)
{
	return BLOCKIF_MAXREQ;
}

int blockif_is_ro(struct blockif_ctxt *bc)
{
	return bc->ro;
}

int blockif_candelete(struct blockif_ctxt *bc)
{
	return bc->candelete;
}

int blockif_cluster_size(struct blockif_ctxt *bc)
{
	uint32_t cs = mimg_cluster_size(bc->img);

	return cs > (uint32_t)INT32_MAX ? 0 : (int)cs;
}
