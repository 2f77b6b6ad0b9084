/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Split virtqueue: taking descriptor chains from the available ring and
 * returning them on the used ring, with event-index notification
 * suppression.  The rings live in guest memory shared with a possibly
 * hostile driver, so each field is read once and checked.
 */
#include <errno.h>
#include <string.h>

#include "virtqueue.h"

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* avail: flags, idx, ring[size], used_event.
 * used: flags, idx, ring[size] of {id, len}, avail_event. */
static uint16_t *avail_idx_p(struct vq_ring *r)
{
	return (uint16_t *)(r->avail + 2);
}

static uint16_t *avail_ring_p(struct vq_ring *r, unsigned i)
{
	return (uint16_t *)(r->avail + 4 + 2 * i);
}

static uint16_t *used_event_p(struct vq_ring *r)
{
	return (uint16_t *)(r->avail + 4 + 2 * r->size);
}

static uint16_t *used_idx_p(struct vq_ring *r)
{
	return (uint16_t *)(r->used + 2);
}

static uint16_t *avail_event_p(struct vq_ring *r)
{
	return (uint16_t *)(r->used + 4 + 8 * r->size);
}

static uint16_t load16(uint16_t *p)
{
	return vq_le16(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

static void read_desc(const uint8_t *table, unsigned i, struct vq_desc *d)
{
	struct vq_desc raw;

	/* One copy: the driver may rewrite the descriptor meanwhile. */
	memcpy(&raw, table + 16 * (size_t)i, sizeof(raw));
	d->addr = vq_le64(raw.addr);
	d->len = vq_le32(raw.len);
	d->flags = vq_le16(raw.flags);
	d->next = vq_le16(raw.next);
}

static void chain_reset(struct vq_chain *c, uint16_t head)
{
	c->head = head;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	c->overflow = c->misordered = c->writable_seen = false;
	c->status = NULL;
}

static int add_segment(const struct vblk_mem *mem, struct vq_chain *c,
		       const struct vq_desc *d)
{
	if (d->flags & VRING_DESC_F_WRITE) {
		c->writable_seen = true;
		c->in_len += d->len;
		return vblk_mem_map(mem, d->addr, d->len, c->in, &c->nin,
				    VQ_MAX_IOV, &c->overflow);
	}
	if (c->writable_seen)
		c->misordered = true;
	c->out_len += d->len;
	return vblk_mem_map(mem, d->addr, d->len, c->out, &c->nout, VQ_MAX_IOV,
			    &c->overflow);
}

/* The status byte is the last byte of the final descriptor, which must be
 * device-writable; it is taken off the writable segments. */
static void take_status(const struct vblk_mem *mem, struct vq_chain *c,
			const struct vq_desc *last)
{
	struct iovec *tail;

	if (!(last->flags & VRING_DESC_F_WRITE) || last->len == 0)
		return;
	c->status = vblk_mem_translate(mem, last->addr + last->len - 1, 1);
	if (!c->status || c->overflow || c->nin == 0)
		return;
	tail = &c->in[c->nin - 1];
	tail->iov_len--;
	if (tail->iov_len == 0)
		c->nin--;
	c->in_len--;
}

static int walk(struct vq_ring *r, const struct vblk_mem *mem,
		struct vq_chain *c, uint16_t head, const char **why)
{
	const uint8_t *table = r->desc;
	unsigned table_size = r->size, count = 0, idx = head;
	bool in_indirect = false;
	struct vq_desc d;

	for (;;) {
		read_desc(table, idx, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!r->indirect) {
				*why = "indirect descriptor without "
				       "VIRTIO_RING_F_INDIRECT_DESC";
				return -EIO;
			}
			if (in_indirect || count != 0 ||
			    (d.flags & VRING_DESC_F_NEXT)) {
				*why = "indirect descriptor not alone at the "
				       "head of its chain";
				return -EIO;
			}
			if (d.len == 0 || d.len % 16 ||
			    d.len / 16 > VBLK_MAX_INDIRECT) {
				*why = "indirect table length is not a "
				       "multiple of 16 within the limit";
				return -EIO;
			}
			table = vblk_mem_translate(mem, d.addr, d.len);
			if (!table) {
				*why = "indirect table outside guest memory";
				return -EIO;
			}
			table_size = d.len / 16;
			in_indirect = true;
			idx = 0;
			continue;
		}
		if (++count > table_size) {
			*why = "descriptor chain longer than its table "
			       "(loop)";
			return -EIO;
		}
		if (add_segment(mem, c, &d) < 0) {
			*why = "descriptor address outside guest memory";
			return -EIO;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		idx = d.next;
		if (idx >= table_size) {
			*why = "descriptor next index out of range";
			return -EIO;
		}
	}
	take_status(mem, c, &d);
	return 0;
}

int vq_pop(struct vq_ring *r, const struct vblk_mem *mem, struct vq_chain *c,
	   const char **why)
{
	uint16_t avail = load16(avail_idx_p(r)), head;
	int err;

	if (avail == r->last_avail)
		return 0;
	if ((uint16_t)(avail - r->last_avail) > r->size) {
		*why = "available index moved past the queue size";
		return -EIO;
	}
	head = load16(avail_ring_p(r, r->last_avail & (r->size - 1)));
	err = vq_read_chain(r, mem, c, head, why);
	if (err)
		return err;
	r->last_avail++;
	return 1;
}

int vq_read_chain(struct vq_ring *r, const struct vblk_mem *mem,
		  struct vq_chain *c, uint16_t head, const char **why)
{
	if (head >= r->size) {
		*why = "available head index out of range";
		return -EIO;
	}
	chain_reset(c, head);
	return walk(r, mem, c, head, why);
}

bool vq_pending(struct vq_ring *r)
{
	return load16(avail_idx_p(r)) != r->last_avail;
}

void vq_unpop(struct vq_ring *r)
{
	r->last_avail--;
}

bool vq_arm_kick(struct vq_ring *r)
{
	if (!r->event_idx)
		return false;
	__atomic_store_n(avail_event_p(r), vq_le16(r->last_avail),
			 __ATOMIC_RELAXED);
	/* The driver checks avail_event after publishing avail idx; order
	 * our store before the re-read so one of us sees the other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16(avail_idx_p(r)) != r->last_avail;
}

bool vq_push_used(struct vq_ring *r, uint16_t head, uint32_t len)
{
	uint8_t *elem = r->used + 4 + 8 * (size_t)(r->used_idx & (r->size - 1));
	uint32_t id_le = vq_le32(head), len_le = vq_le32(len);
	uint16_t old = r->used_idx, now = (uint16_t)(old + 1);

	memcpy(elem, &id_le, 4);
	memcpy(elem + 4, &len_le, 4);
	r->used_idx = now;
	__atomic_store_n(used_idx_p(r), vq_le16(now), __ATOMIC_RELEASE);
	/* Publish the used index before reading the driver's wishes. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (r->event_idx) {
		uint16_t ev = load16(used_event_p(r));

		return (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
	}
	return !(load16((uint16_t *)r->avail) & VRING_AVAIL_F_NO_INTERRUPT);
}
