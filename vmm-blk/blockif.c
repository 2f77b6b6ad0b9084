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
 * are preallocated: nothing is allocated per request.  A performed request
 * leaves the active list (releasing the ones that waited for it) but keeps
 * its element, in state BST_DONE, until its callback returns: bhyve counts
 * its slots that way, and blockif_cancel answers EBUSY for it meanwhile.
 *
 * A large write (with nocache, a large read too) is cut into parts (see
 * BLOCKIF_PART_MIN) that several workers take from the head of the ready
 * FIFO and perform at once, as a guest's large transfer would otherwise
 * run on one thread.
 * The request stays on the active list until its last part is done, and
 * only then does its callback run, with the first error of any part, so
 * ordering, flushes and cancel see one request as before.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Queue BE for the workers; the caller wakes one. */
static void ready_add(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	be->state = BST_READY;
	be->link = NULL;
	if (bc->ready_tail)
		bc->ready_tail->link = be;
	else
		bc->ready_head = be;
	bc->ready_tail = be;
}

static void ready_push(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	ready_add(bc, be);
	pthread_cond_signal(&bc->work_cond);
}

/* Take the next part of the request at the head of the ready FIFO into
 * *PART; the request leaves the FIFO with its last part. */
static struct blockif_elem *ready_take(struct blockif_ctxt *bc, int *part)
{
	struct blockif_elem *be = bc->ready_head;

	if (!be)
		return NULL;
	*part = be->next_part++;
	if (be->next_part >= be->nparts) {
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

/* Take BE off the active list and release the requests waiting for it.
 * Called with the mutex held. */
static void elem_unlink(struct blockif_ctxt *bc, struct blockif_elem *be)
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
}

/* Put BE back on the free list.  Called with the mutex held. */
static void elem_free(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	be->req = NULL;
	be->state = BST_FREE;
	be->link = bc->free_list;
	bc->free_list = be;
	pthread_cond_broadcast(&bc->done_cond);
	if (bc->closing && !bc->active_head)
		pthread_cond_broadcast(&bc->work_cond);
}

/*
 * The request's segments.  br_iovcnt may go past BLOCKIF_IOV_MAX when more
 * iovecs follow the request in memory (bhyve's NVMe model); address them
 * from the structure's base so no bound of the declared array applies.
 */
static struct iovec *req_iov(struct blockif_req *br)
{
	return (struct iovec *)(void *)((char *)br +
					offsetof(struct blockif_req, br_iov));
}

/* Total length of IOV[0..CNT); false when it does not fit in ssize_t. */
static bool iov_sum(const struct iovec *iov, int cnt, uint64_t *lenp)
{
	uint64_t n = 0;

	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len > (uint64_t)SSIZE_MAX - n)
			return false;
		n += iov[i].iov_len;
	}
	*lenp = n;
	return true;
}

/* Total length of BR's segments; false when it does not fit in ssize_t. */
static bool iov_total(struct blockif_req *br, uint64_t *lenp)
{
	return iov_sum(req_iov(br), br->br_iovcnt, lenp);
}

/* The byte range BR covers, for ordering.  A malformed request (negative
 * offset or count, a length past 2^63) gets an empty range: the worker
 * fails it without touching the image. */
static void req_range(struct blockif_req *br, enum blockif_op op,
		      uint64_t *start, uint64_t *end)
{
	uint64_t len = 0;
	bool ok = br->br_offset >= 0;

	*start = *end = 0;
	if (op == BOP_READ || op == BOP_WRITE) {
		ok = ok && br->br_iovcnt >= 0 && iov_total(br, &len);
	} else if (op == BOP_DELETE || op == BOP_ZEROES) {
		ok = ok && br->br_resid >= 0;
		len = (uint64_t)br->br_resid;
	} else {
		return;
	}
	if (!ok)
		return;
	*start = (uint64_t)br->br_offset;
	/* offset and length are each below 2^63: no overflow */
	*end = *start + len;
}

static void run_elem(struct blockif_ctxt *bc, struct blockif_elem *be,
		     int part);
static uint64_t disk_size(struct blockif_ctxt *bc);

/*
 * Cut BE (its range and request set) into parts for the workers: a write
 * (and with split_reads a read) inside the disk of at least two
 * BLOCKIF_PART_MIN, into as many
 * parts of about equal size as that allows (at most bc->maxparts), each
 * ending at a segment boundary so that it is a slice
 * of the request's own segments.  One part when the segments do not allow
 * a cut.  Requests crossing the end of the disk are not cut (rare; their
 * trimming stays in one place).
 */
static void plan_parts(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	const struct iovec *iov = req_iov(be->req);
	int cnt = be->req->br_iovcnt, want, n = 0;
	uint64_t len = be->end - be->start, sum = 0;

	be->part_iov[0] = 0;
	be->part_off[0] = 0;
	want = (int)(len / BLOCKIF_PART_MIN < (uint64_t)bc->maxparts
			     ? len / BLOCKIF_PART_MIN
			     : (uint64_t)bc->maxparts);
	if (!(be->op == BOP_WRITE || (be->op == BOP_READ && bc->split_reads)) ||
	    want < 2 || be->end > disk_size(bc))
		want = 1;
	/* Cut after the segment that reaches the next 1/want of the bytes,
	 * where a cluster starts (parts that allocate the same cluster would
	 * each copy its backing data or wait for each other); every part
	 * keeps at least one byte. */
	for (int i = 0; i < cnt - 1 && n + 1 < want; i++) {
		sum += iov[i].iov_len;
		if (sum >= len / (uint64_t)want * (uint64_t)(n + 1) &&
		    (be->start + sum) % bc->part_align == 0 &&
		    sum > be->part_off[n] && sum < len) {
			n++;
			be->part_iov[n] = i + 1;
			be->part_off[n] = sum;
		}
	}
	n++;
	be->part_iov[n] = cnt;
	be->part_off[n] = len;
	be->nparts = n;
	be->next_part = 0;
	be->parts_left = n;
	be->part_err = 0;
	be->moved = 0;
}

/* Wake a worker for each of N parts. */
static void wake_workers(struct blockif_ctxt *bc, int n)
{
	for (int i = 0; i < n; i++)
		pthread_cond_signal(&bc->work_cond);
}

/*
 * Perform BE, alone in blockif, in this thread.  A request in parts is
 * queued for the workers as well, and this thread performs its parts in
 * turn until none is left to take: the workers that get a CPU meanwhile
 * take the others, and on a busy machine, where they would be late, this
 * thread does not wait for them.  Called with the mutex held.
 */
static void run_here(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	struct blockif_req *br = be->req;
	int part = 0;

	if (be->nparts == 1) {
		run_elem(bc, be, 0);
		return;
	}
	ready_add(bc, be);
	wake_workers(bc, be->nparts - 1);
	ready_take(bc, &part);
	for (;;) {
		run_elem(bc, be, part);
		/* BE is freed once its last part is done; while parts of
		 * it are left to take, it is still at the head.  Paused,
		 * the rest waits for the workers' resumption. */
		if (bc->ready_head != be || be->req != br || bc->paused)
			break;
		ready_take(bc, &part);
	}
}

/* Queue BR; with HERE, perform it in this thread instead when nothing
 * else is unfinished (nothing it could conflict with or overtake) and
 * the workers may start requests. */
static int enqueue(struct blockif_ctxt *bc, struct blockif_req *br,
		   enum blockif_op op, bool unmap, bool here)
{
	struct blockif_elem *be;
	uint64_t start, end;
	bool ready;
	int parts;

	/* A NULL context or request cannot be answered through a callback. */
	if (!bc || !br)
		return EINVAL;
	req_range(br, op, &start, &end);

	pthread_mutex_lock(&bc->mtx);
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
	be->start = start;
	be->end = end;
	be->deps = 0;
	plan_parts(bc, be);
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
	if (here && bc->active_head == be && !bc->paused && !bc->closing) {
		run_here(bc, be);
		pthread_mutex_unlock(&bc->mtx);
		return 0;
	}
	ready = be->deps == 0;
	parts = be->nparts;
	if (ready)
		ready_add(bc, be);
	else
		be->state = BST_WAITING;
	pthread_mutex_unlock(&bc->mtx);
	/* After unlocking, so the woken worker does not block at once on
	 * the mutex still held here. */
	if (ready)
		wake_workers(bc, parts);
	return 0;
}

uint64_t blockif_disk_size(struct blockif_ctxt *bc)
{
	return __atomic_load_n(&bc->size, __ATOMIC_ACQUIRE);
}

static uint64_t disk_size(struct blockif_ctxt *bc)
{
	return blockif_disk_size(bc);
}

static int errno_of(long r)
{
	return r < 0 ? (int)-r : 0;
}

/* Transfer segments IOV[0..CNT), cut to the first LEN bytes, at OFF. */
static ssize_t transfer(struct blockif_ctxt *bc, struct iovec *iov, int cnt,
			bool write, uint64_t off, uint64_t len)
{
	struct iovec *cut;
	uint64_t total;
	int n = 0;
	ssize_t r;

	if (!iov_sum(iov, cnt, &total))
		return -EINVAL;
	if (total <= len)
		return write ? mimg_pwritev(bc->img, iov, cnt, off, 0)
			     : mimg_preadv(bc->img, iov, cnt, off, 0);
	/* Crossing the end of the disk (rare): a trimmed copy. */
	for (uint64_t sum = 0; sum < len; n++)
		sum += iov[n].iov_len;
	cut = malloc((size_t)n * sizeof(*cut));
	if (!cut)
		return -ENOMEM;
	memcpy(cut, iov, (size_t)n * sizeof(*cut));
	total = 0;
	for (int i = 0; i < n - 1; i++)
		total += cut[i].iov_len;
	cut[n - 1].iov_len = (size_t)(len - total);
	r = write ? mimg_pwritev(bc->img, cut, n, off, 0)
		  : mimg_preadv(bc->img, cut, n, off, 0);
	free(cut);
	return r;
}

/*
 * Transfer segments IOV[0..CNT), LEN bytes, at OFF as bhyve over a disk
 * device: the part inside the disk is transferred (*MOVED bytes); a read
 * from at or past the end transfers nothing, a write from past the end
 * is EIO.
 */
static int transfer_span(struct blockif_ctxt *bc, bool write, struct iovec *iov,
			 int cnt, uint64_t off, uint64_t len, uint64_t *moved)
{
	uint64_t size = disk_size(bc);
	ssize_t n;

	*moved = 0;
	if (write && bc->ro)
		return EROFS;
	if (off >= size)
		return write && off > size ? EIO : 0;
	n = transfer(bc, iov, cnt, write, off,
		     len < size - off ? len : size - off);
	if (n < 0)
		return (int)-n;
	*moved = (uint64_t)n;
	return 0;
}

/* A read or write in one piece; br_resid drops by what was transferred. */
static int perform_rw(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	struct blockif_req *br = be->req;
	bool write = be->op == BOP_WRITE;
	uint64_t len, moved;
	int err;

	if (write && bc->ro)
		return EROFS;
	if (br->br_offset < 0 || br->br_iovcnt < 0 || !iov_total(br, &len))
		return EINVAL;
	err = transfer_span(bc, write, req_iov(br), br->br_iovcnt,
			    (uint64_t)br->br_offset, len, &moved);
	if (err == 0)
		br->br_resid -= (ssize_t)moved;
	return err;
}

/* Part PART of a read or write cut by plan_parts (*MOVED bytes). */
static int perform_part(struct blockif_ctxt *bc, struct blockif_elem *be,
			int part, uint64_t *moved)
{
	int first = be->part_iov[part];

	return transfer_span(bc, be->op == BOP_WRITE, req_iov(be->req) + first,
			     be->part_iov[part + 1] - first,
			     be->start + be->part_off[part],
			     be->part_off[part + 1] - be->part_off[part],
			     moved);
}

/* Delete or zero [br_offset, br_offset + br_resid), cut at the end. */
static int perform_range(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	struct blockif_req *br = be->req;
	uint64_t size = disk_size(bc);
	uint64_t end = be->end < size ? be->end : size;
	int r = 0;

	/* bhyve's order: a delete that cannot free space is unsupported
	 * whether or not the device is read-only. */
	if (be->op == BOP_DELETE && !bc->candelete)
		return EOPNOTSUPP;
	if (bc->ro)
		return EROFS;
	if (br->br_offset < 0 || br->br_resid < 0)
		return EINVAL;
	if (be->start < end) {
		if (be->op == BOP_DELETE)
			r = mimg_discard(bc->img, be->start, end - be->start,
					 0);
		else
			r = mimg_pwrite_zeroes(bc->img, be->start,
					       end - be->start,
					       be->unmap ? MIMG_ZERO_MAY_UNMAP
							 : 0);
	}
	if (r < 0)
		return -r;
	br->br_resid = 0;
	return 0;
}

/* Perform one request; returns 0 or a positive errno. */
static int perform(struct blockif_ctxt *bc, struct blockif_elem *be)
{
	switch (be->op) {
	case BOP_FLUSH: return errno_of(mimg_flush(bc->img, 0));
	case BOP_READ:
	case BOP_WRITE: return perform_rw(bc, be);
	case BOP_DELETE:
	case BOP_ZEROES: return perform_range(bc, be);
	}
	return EINVAL;
}

/* Perform part PART of BE; after its last part, call its callback and
 * free it.  Called with the mutex held, which is dropped meanwhile. */
static void run_elem(struct blockif_ctxt *bc, struct blockif_elem *be, int part)
{
	struct blockif_req *br = be->req;
	uint64_t moved = 0;
	int err;

	be->state = BST_BUSY;
	bc->nbusy++;
	pthread_mutex_unlock(&bc->mtx);

	err = be->nparts > 1 ? perform_part(bc, be, part, &moved)
			     : perform(bc, be);

	pthread_mutex_lock(&bc->mtx);
	bc->nbusy--;
	if (be->nparts > 1) {
		if (err && !be->part_err)
			be->part_err = err;
		be->moved += moved;
		if (--be->parts_left > 0) {
			/* Wakes pause, which waits for running parts. */
			pthread_cond_broadcast(&bc->done_cond);
			return;
		}
		err = be->part_err;
		if (err == 0)
			br->br_resid -= (ssize_t)be->moved;
	}
	be->state = BST_DONE;
	elem_unlink(bc, be);
	/* Wakes cancel (waiting for the transfer) and pause. */
	pthread_cond_broadcast(&bc->done_cond);
	pthread_mutex_unlock(&bc->mtx);
	br->br_callback(br, err);
	pthread_mutex_lock(&bc->mtx);
	elem_free(bc, be);
}

static void *worker_main(void *arg)
{
	struct blockif_ctxt *bc = arg;

	pthread_mutex_lock(&bc->mtx);
	for (;;) {
		int part = 0;
		struct blockif_elem *be = bc->paused ? NULL
						     : ready_take(bc, &part);

		if (!be) {
			if (bc->closing && !bc->active_head)
				break;
			pthread_cond_wait(&bc->work_cond, &bc->mtx);
			continue;
		}
		run_elem(bc, be, part);
	}
	/* Wake the other workers so they see the queue is drained. */
	pthread_cond_broadcast(&bc->work_cond);
	pthread_mutex_unlock(&bc->mtx);
	return NULL;
}

int blockif_start(struct blockif_ctxt *bc)
{
	uint32_t cluster;
	long ncpu;
	int err;

	pthread_mutex_init(&bc->mtx, NULL);
	pthread_cond_init(&bc->work_cond, NULL);
	pthread_cond_init(&bc->done_cond, NULL);
	pthread_cond_init(&bc->watch_cond, NULL);
	bc->free_list = NULL;
	for (int i = BLOCKIF_MAXREQ - 1; i >= 0; i--) {
		bc->elems[i].state = BST_FREE;
		bc->elems[i].link = bc->free_list;
		bc->free_list = &bc->elems[i];
	}
	/* Parts run in parallel only with CPUs to run them on. */
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	bc->maxparts = ncpu < 1			  ? 1
		       : ncpu < BLOCKIF_MAX_PARTS ? (int)ncpu
						  : BLOCKIF_MAX_PARTS;
	cluster = mimg_cluster_size(bc->img);
	bc->part_align = cluster && !(cluster & (cluster - 1)) &&
					 cluster <= BLOCKIF_PART_MIN
				 ? cluster
				 : 1;
	for (bc->nthreads = 0; bc->nthreads < BLOCKIF_NUMTHR; bc->nthreads++) {
		err = pthread_create(&bc->threads[bc->nthreads], NULL,
				     worker_main, bc);
		if (err)
			break;
	}
	if (bc->nthreads == 0)
		return err;
	if (bc->maxparts > bc->nthreads)
		bc->maxparts = bc->nthreads;

	return 0;
}

int blockif_read(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return enqueue(bc, breq, BOP_READ, false, false);
}

int blockif_write(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return enqueue(bc, breq, BOP_WRITE, false, false);
}

int blockif_read_here(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return enqueue(bc, breq, BOP_READ, false, true);
}

int blockif_write_here(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return enqueue(bc, breq, BOP_WRITE, false, true);
}

int blockif_flush(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return enqueue(bc, breq, BOP_FLUSH, false, false);
}

int blockif_delete(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return enqueue(bc, breq, BOP_DELETE, false, false);
}

int blockif_write_zeroes(struct blockif_ctxt *bc, struct blockif_req *breq,
			 int unmap)
{
	return enqueue(bc, breq, BOP_ZEROES, unmap != 0, false);
}

/* The element holding BREQ in one of the states in MASK, or NULL. */
static struct blockif_elem *find_elem(struct blockif_ctxt *bc,
				      struct blockif_req *breq, unsigned mask)
{
	for (int i = 0; i < BLOCKIF_MAXREQ; i++) {
		struct blockif_elem *be = &bc->elems[i];

		if (be->req == breq && (mask & 1u << be->state))
			return be;
	}
	return NULL;
}

int blockif_cancel(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	struct blockif_elem *be;

	pthread_mutex_lock(&bc->mtx);
	/* Queued first: a request its own callback submitted again is both
	 * done (the old element) and queued (the new one). */
	be = find_elem(bc, breq, 1u << BST_WAITING | 1u << BST_READY);
	if (be) {
		if (be->state == BST_READY)
			ready_remove(bc, be);
		elem_unlink(bc, be);
		elem_free(bc, be);
		pthread_mutex_unlock(&bc->mtx);
		return 0;
	}
	be = find_elem(bc, breq, 1u << BST_BUSY | 1u << BST_DONE);
	if (!be) {
		pthread_mutex_unlock(&bc->mtx);
		return EINVAL;
	}
	/* libmimg I/O cannot be interrupted: wait for the transfer (not
	 * the callback, which may take a lock our caller holds). */
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
	bc->paused = false;
	pthread_cond_broadcast(&bc->work_cond);
	pthread_cond_broadcast(&bc->watch_cond);
	pthread_mutex_unlock(&bc->mtx);
	if (bc->watching)
		pthread_join(bc->watcher, NULL);
	for (int i = 0; i < bc->nthreads; i++)
		pthread_join(bc->threads[i], NULL);
	err = errno_of(mimg_close(bc->img));
	pthread_cond_destroy(&bc->done_cond);
	pthread_cond_destroy(&bc->work_cond);
	pthread_cond_destroy(&bc->watch_cond);
	free(bc->watch_path);
	pthread_mutex_destroy(&bc->mtx);
	free(bc);
	return err;
}

off_t blockif_size(struct blockif_ctxt *bc)
{
	return (off_t)disk_size(bc);
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

/* One less than the slots, as bhyve reports. */
int blockif_queuesz(struct blockif_ctxt *bc)
{
	(void)bc;
	return BLOCKIF_MAXREQ - 1;
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

bool blockif_quiesce(struct blockif_ctxt *bc)
{
	bool was = bc->paused;

	bc->paused = true;
	while (bc->nbusy > 0)
		pthread_cond_wait(&bc->done_cond, &bc->mtx);
	return was;
}

void blockif_pause(struct blockif_ctxt *bc)
{
	int err;

	pthread_mutex_lock(&bc->mtx);
	blockif_quiesce(bc);
	pthread_mutex_unlock(&bc->mtx);
	err = errno_of(mimg_flush(bc->img, 0));
	if (err)
		blockif_warn(bc->ident, "flush while pausing failed: %s",
			     strerror(err));
}

void blockif_resume(struct blockif_ctxt *bc)
{
	pthread_mutex_lock(&bc->mtx);
	bc->paused = false;
	pthread_cond_broadcast(&bc->work_cond);
	pthread_mutex_unlock(&bc->mtx);
}
