/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The virtio-blk device: request parsing and completion, queues, features
 * and config space (virtio 1.2, 5.2).  Requests go to blockif, whose
 * worker threads complete them; each queue keeps one preallocated request
 * slot per descriptor head, so nothing is allocated per request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "include/vmm-blk/block_if.h"
#include "include/vmm-blk/virtio_blk.h"
#include "inflight.h"
#include "virtqueue.h"

#define VBLK_T_BARRIER 0x80000000u
#define VBLK_WZ_F_UNMAP 1u
#define SECTOR 512u
/* Largest discard / write-zeroes range: 2 GiB less 4 KiB, in sectors. */
#define VBLK_MAX_ZERO_SECTORS ((2u << 30) / SECTOR - 8)

struct vblk_req {
	struct blockif_req br; /* br_param points back here */
	struct vblk_queue *q;
	uint8_t *status;
	uint32_t used_len; /* bytes written to the driver on success */
	uint16_t head;
	bool busy;    /* between vq_pop and the used ring (atomic) */
	bool counted; /* holds one of blockif's queue slots */
};

struct vblk_queue {
	struct vblk_dev *dev;
	unsigned index;
	bool started, broken;
	const char *error;
	struct vq_ring ring;
	struct vq_chain chain; /* scratch for the processing thread */
	bool here;	       /* perform the request being taken inline */
	struct vblk_req *reqs; /* one per descriptor head */
	unsigned nreqs;
	void (*notify)(void *opaque, unsigned q);
	void *opaque;
	/* Inflight tracking region (vblk_queue_set_inflight), or NULL; the
	 * heads to take again after a restart, in their first order. */
	uint8_t *track;
	uint64_t counter;
	uint16_t *retake;
	unsigned nretake, retake_pos;

	pthread_mutex_t lock; /* used ring, inflight, track's used side */
	pthread_cond_t idle;
	unsigned inflight;
};

struct vblk_dev {
	struct blockif_ctxt *bc;
	uint64_t features, acked;
	uint8_t config[VBLK_CONFIG_SIZE];
	char serial[VBLK_ID_BYTES];
	uint64_t capacity; /* bytes, a multiple of 512 */
	unsigned sectsz;
	bool ro, candelete;
	struct vblk_mem mem;
	int slots;	/* blockif queue size */
	int inflight;	/* requests inside blockif (atomic) */
	int stalled;	/* a queue waits for room in blockif (atomic) */
	bool lone_here; /* vblk_dev_params.lone_here */
	unsigned lone;	/* requests in a row taken with nothing else in
			 * flight (processing thread only) */
	void (*wake)(void *opaque);
	void *wake_opaque;
	unsigned nqueues;
	struct vblk_queue queues[];
};

static void put_le16(uint8_t *p, uint16_t v)
{
	v = vq_le16(v);
	memcpy(p, &v, 2);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = vq_le32(v);
	memcpy(p, &v, 4);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	v = vq_le64(v);
	memcpy(p, &v, 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return vq_le32(v);
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return vq_le64(v);
}

static unsigned log2u(unsigned v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* struct virtio_blk_config, little-endian (virtio 1.2, 5.2.4). */
static void fill_config(struct vblk_dev *d)
{
	uint8_t *c = d->config;
	int psz, poff;
	uint16_t cyl;
	uint8_t heads, spt;

	blockif_psectsz(d->bc, &psz, &poff);
	blockif_chs(d->bc, &cyl, &heads, &spt);
	memset(c, 0, sizeof(d->config));
	put_le64(c + 0, d->capacity / SECTOR);
	put_le32(c + 12, VBLK_SEG_MAX);
	put_le16(c + 16, cyl);
	c[18] = heads;
	c[19] = spt;
	put_le32(c + 20, d->sectsz);
	c[24] = (uint8_t)log2u((unsigned)psz / d->sectsz);
	c[25] = (uint8_t)((unsigned)poff / d->sectsz);
	put_le16(c + 26, (uint16_t)((unsigned)psz / d->sectsz));
	put_le16(c + 34, (uint16_t)d->nqueues);
	put_le32(c + 36, VBLK_MAX_ZERO_SECTORS);
	put_le32(c + 40, 1);
	put_le32(c + 44, (unsigned)psz / SECTOR);
	put_le32(c + 48, VBLK_MAX_ZERO_SECTORS);
	put_le32(c + 52, 1);
	c[56] = d->candelete;
}

struct vblk_dev *vblk_dev_new(struct blockif_ctxt *bc,
			      const struct vblk_dev_params *p)
{
	struct vblk_dev *d;
	unsigned nq = p ? p->num_queues : 1;
	uint64_t size;

	if (!bc || nq < 1 || nq > VBLK_MAX_QUEUES) {
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d) + nq * sizeof(d->queues[0]));
	if (!d)
		return NULL;
	d->bc = bc;
	d->nqueues = nq;
	d->sectsz = (unsigned)blockif_sectsz(bc);
	size = (uint64_t)blockif_size(bc);
	d->capacity = size - size % d->sectsz;
	d->ro = blockif_is_ro(bc);
	d->candelete = blockif_candelete(bc);
	d->slots = blockif_queuesz(bc);
	d->lone_here = p && p->lone_here;
	if (p && p->max_inflight && p->max_inflight < (unsigned)d->slots)
		d->slots = (int)p->max_inflight;
	if (p && p->serial) {
		/* Not NUL-terminated when 20 bytes long, as virtio says. */
		size_t n = strlen(p->serial);

		memcpy(d->serial, p->serial,
		       n < sizeof(d->serial) ? n : sizeof(d->serial));
	}
	d->features = 1ull << VBLK_F_SEG_MAX | 1ull << VBLK_F_GEOMETRY |
		      1ull << VBLK_F_BLK_SIZE | 1ull << VBLK_F_FLUSH |
		      1ull << VBLK_F_TOPOLOGY | 1ull << VBLK_F_MQ |
		      1ull << VBLK_F_RING_INDIRECT_DESC |
		      1ull << VBLK_F_RING_EVENT_IDX | 1ull << VBLK_F_VERSION_1;
	if (d->ro)
		d->features |= 1ull << VBLK_F_RO;
	else
		d->features |= 1ull << VBLK_F_WRITE_ZEROES;
	if (d->candelete)
		d->features |= 1ull << VBLK_F_DISCARD;
	fill_config(d);
	for (unsigned i = 0; i < nq; i++) {
		struct vblk_queue *q = &d->queues[i];

		q->dev = d;
		q->index = i;
		pthread_mutex_init(&q->lock, NULL);
		pthread_cond_init(&q->idle, NULL);
	}
	return d;
}

void vblk_dev_free(struct vblk_dev *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < d->nqueues; i++) {
		struct vblk_queue *q = &d->queues[i];

		vblk_queue_stop(d, i);
		free(q->reqs);
		free(q->retake);
		pthread_cond_destroy(&q->idle);
		pthread_mutex_destroy(&q->lock);
	}
	free(d);
}

uint64_t vblk_dev_features(const struct vblk_dev *d)
{
	return d->features;
}

int vblk_dev_set_features(struct vblk_dev *d, uint64_t features)
{
	if (features & ~d->features)
		return -EINVAL;
	d->acked = features;
	return 0;
}

unsigned vblk_dev_num_queues(const struct vblk_dev *d)
{
	return d->nqueues;
}

int vblk_dev_config(const struct vblk_dev *d, void *buf, size_t off, size_t len)
{
	if (off > 256 || len > 256 - off)
		return -EINVAL;
	memset(buf, 0, len);
	if (off < sizeof(d->config)) {
		size_t n = sizeof(d->config) - off;

		memcpy(buf, d->config + off, n < len ? n : len);
	}
	return 0;
}

int vblk_dev_update_capacity(struct vblk_dev *d)
{
	uint64_t size = (uint64_t)blockif_size(d->bc);

	for (unsigned i = 0; i < d->nqueues; i++)
		if (d->queues[i].started)
			return -EBUSY;
	d->capacity = size - size % d->sectsz;
	fill_config(d);
	return 0;
}

int vblk_dev_set_mem(struct vblk_dev *d, const struct vblk_mem *mem)
{
	if (mem->nregions > VBLK_MEM_MAX_REGIONS)
		return -EINVAL;
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct vblk_mem_region *r = &mem->regions[i];

		if (r->size == 0 || r->gpa + r->size < r->gpa || !r->host)
			return -EINVAL;
	}
	for (unsigned i = 0; i < d->nqueues; i++)
		if (d->queues[i].started)
			return -EBUSY;
	d->mem = *mem;
	return 0;
}

const struct vblk_mem *vblk_dev_mem(const struct vblk_dev *d)
{
	return &d->mem;
}

void vblk_dev_set_wake(struct vblk_dev *d, void (*wake)(void *opaque),
		       void *opaque)
{
	d->wake = wake;
	d->wake_opaque = opaque;
}

size_t vblk_vring_desc_bytes(unsigned size)
{
	return 16 * (size_t)size;
}

size_t vblk_vring_avail_bytes(unsigned size)
{
	return 6 + 2 * (size_t)size;
}

size_t vblk_vring_used_bytes(unsigned size)
{
	return 6 + 8 * (size_t)size;
}

/* ---------------------------------------------------------------------- */
/* Completion                                                              */

/* The device whose vblk_queue_process runs on this thread, if any. */
static _Thread_local struct vblk_dev *processing;

/* Does any started queue of D hold requests not yet taken? */
static bool any_pending(struct vblk_dev *d)
{
	for (unsigned i = 0; i < d->nqueues; i++)
		if (d->queues[i].started && vq_pending(&d->queues[i].ring))
			return true;
	return false;
}

/* Answer R with STATUS: write the status byte, return the chain on the
 * used ring and interrupt the driver if it wants that.  Runs on a blockif
 * worker or the processing thread. */
static void finish(struct vblk_req *r, uint8_t status)
{
	struct vblk_queue *q = r->q;
	struct vblk_dev *d = q->dev;
	uint32_t len = status == VBLK_S_OK ? r->used_len : 1;
	uint16_t head = r->head;
	bool counted = r->counted, notify, wake = false;

	/* Answered on the processing thread (performed inline): a request
	 * that arrived before the driver could see this answer was sent
	 * while this one was in flight, so the driver keeps several in
	 * flight; the next ones go to the workers. */
	if (processing == d && any_pending(d))
		d->lone = 0;
	__atomic_store_n(r->status, status, __ATOMIC_RELAXED);
	pthread_mutex_lock(&q->lock);
	/* The driver may reuse HEAD as soon as it sees the used entry. */
	__atomic_store_n(&r->busy, false, __ATOMIC_RELEASE);
	if (q->track)
		vqi_used_begin(q->track, head);
	notify = vq_push_used(&q->ring, head, len);
	if (q->track)
		vqi_used_end(q->track, head, q->ring.used_idx);
	if (counted) {
		__atomic_fetch_sub(&d->inflight, 1, __ATOMIC_SEQ_CST);
		wake = __atomic_exchange_n(&d->stalled, 0, __ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&q->lock);
	/* Outside the lock: the driver answers the interrupt with its next
	 * request at once, and taking that one takes the lock.  This
	 * request still counts in q->inflight, so the queue cannot stop
	 * (and its notify go away) meanwhile. */
	if (notify && q->notify)
		q->notify(q->opaque, q->index);
	if (wake && d->wake)
		d->wake(d->wake_opaque);
	pthread_mutex_lock(&q->lock);
	if (--q->inflight == 0)
		pthread_cond_broadcast(&q->idle);
	pthread_mutex_unlock(&q->lock);
}

static void req_done(struct blockif_req *br, int err)
{
	uint8_t status = VBLK_S_OK;

	if (err == EOPNOTSUPP || err == ENOTSUP)
		status = VBLK_S_UNSUPP;
	else if (err)
		status = VBLK_S_IOERR;
	finish(br->br_param, status);
}

/* ---------------------------------------------------------------------- */
/* Requests                                                                */

/* Copy LEN bytes starting OFF bytes into IOV into BUF; false when the
 * segments hold fewer. */
static bool iov_read(const struct iovec *iov, unsigned n, size_t off, void *buf,
		     size_t len)
{
	uint8_t *out = buf;

	for (unsigned i = 0; i < n && len > 0; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		memcpy(out, (uint8_t *)iov[i].iov_base + off, l);
		out += l;
		len -= l;
		off = 0;
	}
	return len == 0;
}

/* Set R's segments to IOV[0..N) less the first SKIP bytes.  False when
 * they do not fit blockif's limit. */
static bool set_data(struct vblk_req *r, const struct iovec *iov, unsigned n,
		     size_t skip)
{
	int cnt = 0;

	for (unsigned i = 0; i < n; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		if (cnt == BLOCKIF_IOV_MAX)
			return false;
		r->br.br_iov[cnt].iov_base = (uint8_t *)iov[i].iov_base + skip;
		r->br.br_iov[cnt].iov_len = l - skip;
		cnt++;
		skip = 0;
	}
	r->br.br_iovcnt = cnt;
	return true;
}

/* Is [SECTOR*512, +LEN) inside the disk and aligned to its sectors? */
static bool range_ok(const struct vblk_dev *d, uint64_t sector, uint64_t len)
{
	uint64_t off;

	if (sector > d->capacity / SECTOR)
		return false;
	off = sector * SECTOR;
	return len <= d->capacity - off && off % d->sectsz == 0 &&
	       len % d->sectsz == 0;
}

enum submit_op {
	SUBMIT_READ,
	SUBMIT_WRITE,
	SUBMIT_FLUSH,
	SUBMIT_DELETE,
	SUBMIT_ZEROES,
	SUBMIT_ZEROES_UNMAP
};

/* Hand R to blockif.  -EAGAIN when blockif is full (R is untouched). */
static int submit(struct vblk_req *r, enum submit_op op)
{
	struct vblk_dev *d = r->q->dev;
	int err = EINVAL;

	r->counted = true;
	__atomic_fetch_add(&d->inflight, 1, __ATOMIC_SEQ_CST);
	switch (op) {
	case SUBMIT_READ:
		err = r->q->here ? blockif_read_here(d->bc, &r->br)
				 : blockif_read(d->bc, &r->br);
		break;
	case SUBMIT_WRITE:
		err = r->q->here ? blockif_write_here(d->bc, &r->br)
				 : blockif_write(d->bc, &r->br);
		break;
	case SUBMIT_FLUSH: err = blockif_flush(d->bc, &r->br); break;
	case SUBMIT_DELETE: err = blockif_delete(d->bc, &r->br); break;
	case SUBMIT_ZEROES:
	case SUBMIT_ZEROES_UNMAP:
		err = blockif_write_zeroes(d->bc, &r->br,
					   op == SUBMIT_ZEROES_UNMAP);
		break;
	}
	if (err == 0)
		return 0;
	__atomic_fetch_sub(&d->inflight, 1, __ATOMIC_SEQ_CST);
	r->counted = false;
	if (err == E2BIG)
		return -EAGAIN;
	finish(r, VBLK_S_IOERR);
	return 0;
}

static int do_read(struct vblk_req *r, const struct vq_chain *c,
		   uint64_t sector)
{
	struct vblk_dev *d = r->q->dev;

	if (c->out_len != 16 || !range_ok(d, sector, c->in_len) ||
	    c->in_len > UINT32_MAX - 1 || !set_data(r, c->in, c->nin, 0)) {
		finish(r, VBLK_S_IOERR);
		return 0;
	}
	r->br.br_offset = (off_t)(sector * SECTOR);
	r->br.br_resid = (ssize_t)c->in_len;
	r->used_len = (uint32_t)c->in_len + 1;
	return submit(r, SUBMIT_READ);
}

static int do_write(struct vblk_req *r, const struct vq_chain *c,
		    uint64_t sector)
{
	struct vblk_dev *d = r->q->dev;
	uint64_t len = c->out_len - 16;

	if (d->ro || c->in_len != 0 || !range_ok(d, sector, len) ||
	    !set_data(r, c->out, c->nout, 16)) {
		finish(r, VBLK_S_IOERR);
		return 0;
	}
	r->br.br_offset = (off_t)(sector * SECTOR);
	r->br.br_resid = (ssize_t)len;
	return submit(r, SUBMIT_WRITE);
}

static int do_get_id(struct vblk_req *r, const struct vq_chain *c)
{
	const char *src = r->q->dev->serial;
	size_t left = c->in_len < VBLK_ID_BYTES ? c->in_len : VBLK_ID_BYTES;
	size_t done = 0;

	for (unsigned i = 0; i < c->nin && done < left; i++) {
		size_t l = c->in[i].iov_len;

		if (l > left - done)
			l = left - done;
		memcpy(c->in[i].iov_base, src + done, l);
		done += l;
	}
	r->used_len = (uint32_t)done + 1;
	finish(r, VBLK_S_OK);
	return 0;
}

/* DISCARD and WRITE_ZEROES: one segment {le64 sector, le32 num_sectors,
 * le32 flags} after the header, as max_*_seg = 1 announces. */
static int do_zero_range(struct vblk_req *r, const struct vq_chain *c,
			 bool discard)
{
	struct vblk_dev *d = r->q->dev;
	uint8_t seg[16];
	uint64_t sector, len;
	uint32_t num, flags;

	if (c->out_len != 32 || !iov_read(c->out, c->nout, 16, seg, 16)) {
		finish(r, VBLK_S_UNSUPP);
		return 0;
	}
	sector = get_le64(seg);
	num = get_le32(seg + 8);
	flags = get_le32(seg + 12);
	if ((discard && (flags || !d->candelete)) ||
	    (!discard && (flags & ~VBLK_WZ_F_UNMAP))) {
		finish(r, VBLK_S_UNSUPP);
		return 0;
	}
	len = (uint64_t)num * SECTOR;
	if (d->ro || c->in_len != 0 || num > VBLK_MAX_ZERO_SECTORS ||
	    !range_ok(d, sector, len)) {
		finish(r, VBLK_S_IOERR);
		return 0;
	}
	r->br.br_iovcnt = 0;
	r->br.br_offset = (off_t)(sector * SECTOR);
	r->br.br_resid = (ssize_t)len;
	if (discard)
		return submit(r, SUBMIT_DELETE);
	return submit(r, (flags & VBLK_WZ_F_UNMAP) && d->candelete
				 ? SUBMIT_ZEROES_UNMAP
				 : SUBMIT_ZEROES);
}

static void break_queue(struct vblk_queue *q, const char *why)
{
	q->broken = true;
	q->error = why;
}

/* Start the request in chain C (RETAKEN: one taken before a restart).
 * 0 when it was taken (perhaps already answered), -EAGAIN when blockif is
 * full, -EIO when the queue broke. */
static int handle_chain(struct vblk_queue *q, const struct vq_chain *c,
			bool retaken)
{
	struct vblk_req *r = &q->reqs[c->head];
	uint8_t hdr[16];
	uint32_t type;
	uint64_t sector;
	int err;

	if (!c->status) {
		break_queue(q, "request without a writable status byte");
		return -EIO;
	}
	if (__atomic_load_n(&r->busy, __ATOMIC_ACQUIRE)) {
		break_queue(q, "descriptor head reused while in flight");
		return -EIO;
	}
	__atomic_store_n(&r->busy, true, __ATOMIC_RELAXED);
	/* Recorded before it can complete; a retaken one keeps its order. */
	if (q->track && !retaken)
		vqi_mark(q->track, c->head, q->counter++);
	r->counted = false;
	r->head = c->head;
	r->status = c->status;
	r->used_len = 1;
	pthread_mutex_lock(&q->lock);
	q->inflight++;
	pthread_mutex_unlock(&q->lock);

	if (c->overflow || c->misordered || c->out_len < 16 ||
	    !iov_read(c->out, c->nout, 0, hdr, 16)) {
		finish(r, VBLK_S_IOERR);
		return 0;
	}
	type = get_le32(hdr) & ~VBLK_T_BARRIER;
	sector = get_le64(hdr + 8);
	switch (type) {
	case VBLK_T_IN: err = do_read(r, c, sector); break;
	case VBLK_T_OUT: err = do_write(r, c, sector); break;
	case VBLK_T_FLUSH:
		r->br.br_iovcnt = 0;
		r->br.br_offset = 0;
		r->br.br_resid = 0;
		err = submit(r, SUBMIT_FLUSH);
		break;
	case VBLK_T_GET_ID: err = do_get_id(r, c); break;
	case VBLK_T_DISCARD: err = do_zero_range(r, c, true); break;
	case VBLK_T_WRITE_ZEROES: err = do_zero_range(r, c, false); break;
	default:
		finish(r, VBLK_S_UNSUPP);
		err = 0;
		break;
	}
	if (err == -EAGAIN) {
		/* Not taken: give the slot back; the chain is re-read. */
		pthread_mutex_lock(&q->lock);
		if (q->track && !retaken) {
			vqi_unmark(q->track, c->head);
			q->counter--;
		}
		__atomic_store_n(&r->busy, false, __ATOMIC_RELAXED);
		if (--q->inflight == 0)
			pthread_cond_broadcast(&q->idle);
		pthread_mutex_unlock(&q->lock);
	}
	return err;
}

/* ---------------------------------------------------------------------- */
/* Queues                                                                  */

static struct vblk_queue *get_queue(const struct vblk_dev *d, unsigned q)
{
	return q < d->nqueues ? (struct vblk_queue *)&d->queues[q] : NULL;
}

/* Read what the inflight region says about the queue: how many requests
 * to take again (set up in q->retake), or -errno. */
static int recover_inflight(struct vblk_queue *q, unsigned size)
{
	uint16_t *heads = realloc(q->retake, sizeof(*heads) * size);
	int n;

	if (!heads)
		return -ENOMEM;
	q->retake = heads;
	q->nretake = q->retake_pos = 0;
	n = vqi_recover(q->track, size, q->ring.used_idx, heads, &q->counter);
	if (n > 0)
		q->nretake = (unsigned)n;
	return n;
}

int vblk_queue_set_inflight(struct vblk_dev *d, unsigned qi, void *region)
{
	struct vblk_queue *q = get_queue(d, qi);

	if (!q)
		return -EINVAL;
	if (q->started)
		return -EBUSY;
	q->track = region;
	return 0;
}

unsigned vblk_queue_retaken(const struct vblk_dev *d, unsigned qi)
{
	const struct vblk_queue *q = get_queue(d, qi);

	return q ? q->nretake : 0;
}

size_t vblk_inflight_queue_bytes(unsigned size)
{
	return vqi_queue_bytes(size);
}

int vblk_queue_start(struct vblk_dev *d, unsigned qi,
		     const struct vblk_vring *ring, uint16_t last_avail,
		     void (*notify)(void *opaque, unsigned q), void *opaque)
{
	struct vblk_queue *q = get_queue(d, qi);
	unsigned size = ring->size;

	if (!q || size == 0 || size > VBLK_MAX_QUEUE_SIZE ||
	    (size & (size - 1)) || !ring->desc || !ring->avail || !ring->used ||
	    (uintptr_t)ring->desc % 16 || (uintptr_t)ring->avail % 2 ||
	    (uintptr_t)ring->used % 4)
		return -EINVAL;
	if (q->started)
		return -EBUSY;
	if (q->nreqs != size) {
		struct vblk_req *reqs = calloc(size, sizeof(*reqs));

		if (!reqs)
			return -ENOMEM;
		free(q->reqs);
		q->reqs = reqs;
		q->nreqs = size;
	}
	for (unsigned i = 0; i < size; i++) {
		q->reqs[i].q = q;
		q->reqs[i].busy = false;
		q->reqs[i].br.br_param = &q->reqs[i];
		q->reqs[i].br.br_callback = req_done;
	}
	memset(&q->ring, 0, sizeof(q->ring));
	q->ring.size = size;
	q->ring.desc = ring->desc;
	q->ring.avail = ring->avail;
	q->ring.used = ring->used;
	q->ring.event_idx = d->acked & (1ull << VBLK_F_RING_EVENT_IDX);
	q->ring.indirect = d->acked & (1ull << VBLK_F_RING_INDIRECT_DESC);
	q->ring.last_avail = last_avail;
	q->ring.used_idx = vq_le16(__atomic_load_n((uint16_t *)q->ring.used + 1,
						   __ATOMIC_ACQUIRE));
	q->nretake = q->retake_pos = 0;
	if (q->track) {
		int n = recover_inflight(q, size);

		if (n < 0)
			return n;
		/* Every request taken was either answered or is retaken. */
		q->ring.last_avail = (uint16_t)(q->ring.used_idx + n);
	}
	q->notify = notify;
	q->opaque = opaque;
	q->broken = false;
	q->error = NULL;
	q->inflight = 0;
	q->started = true;
	return 0;
}

/* Is there room in blockif for one more request?  When not, mark the
 * device stalled so the next completion wakes the transport; checking
 * again afterwards closes the race with a completion in between. */
static bool has_room(struct vblk_dev *d)
{
	if (__atomic_load_n(&d->inflight, __ATOMIC_SEQ_CST) < d->slots)
		return true;
	__atomic_store_n(&d->stalled, 1, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&d->inflight, __ATOMIC_SEQ_CST) < d->slots;
}

/* Requests in a row that must find nothing else in flight before the
 * next such one is performed inline. */
#define LONE_STREAK 4

/* Before handing the chain just taken from Q to blockif: should it be
 * performed in this thread?  Only when it is alone (nothing in blockif,
 * nothing more in the rings) and the requests before it were too. */
static void choose_here(struct vblk_dev *d, struct vblk_queue *q)
{
	bool alone;

	q->here = false;
	if (!d->lone_here)
		return;
	alone = __atomic_load_n(&d->inflight, __ATOMIC_SEQ_CST) == 0 &&
		!any_pending(d);
	if (!alone) {
		d->lone = 0;
		return;
	}
	if (d->lone < LONE_STREAK) {
		d->lone++;
		return;
	}
	q->here = true;
}

static int process(struct vblk_dev *d, struct vblk_queue *q)
{
	const char *why = NULL;
	int n = 0, r;

	while (q->retake_pos < q->nretake) {
		if (!has_room(d))
			return -EAGAIN;
		r = vq_read_chain(&q->ring, &d->mem, &q->chain,
				  q->retake[q->retake_pos], &why);
		if (r == 0)
			r = handle_chain(q, &q->chain, true);
		if (r == -EAGAIN) {
			__atomic_store_n(&d->stalled, 1, __ATOMIC_SEQ_CST);
			return -EAGAIN;
		}
		if (r < 0) {
			if (why)
				break_queue(q, why);
			return -EIO;
		}
		q->retake_pos++;
		n++;
	}
	for (;;) {
		if (!has_room(d))
			return -EAGAIN;
		r = vq_pop(&q->ring, &d->mem, &q->chain, &why);
		if (r < 0) {
			break_queue(q, why);
			return -EIO;
		}
		if (r == 0) {
			if (vq_arm_kick(&q->ring))
				continue;
			return n;
		}
		choose_here(d, q);
		r = handle_chain(q, &q->chain, false);
		q->here = false;
		if (r == -EAGAIN) {
			vq_unpop(&q->ring);
			__atomic_store_n(&d->stalled, 1, __ATOMIC_SEQ_CST);
			return -EAGAIN;
		}
		if (r < 0)
			return r;
		n++;
	}
}

int vblk_queue_process(struct vblk_dev *d, unsigned qi)
{
	struct vblk_queue *q = get_queue(d, qi);
	int r;

	if (!q || !q->started)
		return -EINVAL;
	if (q->broken)
		return -EIO;
	processing = d;
	r = process(d, q);
	processing = NULL;
	return r;
}

void vblk_queue_drain(struct vblk_dev *d, unsigned qi)
{
	struct vblk_queue *q = get_queue(d, qi);

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	while (q->inflight > 0)
		pthread_cond_wait(&q->idle, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

uint16_t vblk_queue_stop(struct vblk_dev *d, unsigned qi)
{
	struct vblk_queue *q = get_queue(d, qi);

	if (!q || !q->started)
		return 0;
	vblk_queue_drain(d, qi);
	q->started = false;
	return q->ring.last_avail;
}

bool vblk_queue_started(const struct vblk_dev *d, unsigned qi)
{
	const struct vblk_queue *q = get_queue(d, qi);

	return q && q->started;
}

bool vblk_queue_broken(const struct vblk_dev *d, unsigned qi)
{
	const struct vblk_queue *q = get_queue(d, qi);

	return q && q->broken;
}

const char *vblk_queue_error(const struct vblk_dev *d, unsigned qi)
{
	const struct vblk_queue *q = get_queue(d, qi);

	return q ? q->error : NULL;
}
