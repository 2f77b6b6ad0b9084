/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Split virtqueue access (virtio 1.2, 2.7) over guest memory the guest may
 * change at any time: every value is loaded once, then checked.
 */
#ifndef VMMBLK_VIRTQUEUE_H
#define VMMBLK_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "include/vmm-blk/block_if.h"
#include "include/vmm-blk/virtio_blk.h"

/* Segments kept per direction: blockif's limit plus header and status. */
#define VQ_MAX_IOV (BLOCKIF_IOV_MAX + 2)

struct vq_ring {
	unsigned size;
	uint8_t *desc, *avail, *used;
	bool event_idx;	     /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;	     /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	uint16_t last_avail; /* next avail entry to take */
	uint16_t used_idx;   /* next used entry to fill */
};

/* One descriptor chain, as the device sees it. */
struct vq_chain {
	uint16_t head;
	unsigned nout, nin;
	struct iovec out[VQ_MAX_IOV]; /* device-readable, in order */
	struct iovec in[VQ_MAX_IOV];  /* device-writable, status excluded */
	uint64_t out_len, in_len;     /* bytes in each direction */
	bool overflow;		      /* more segments than the arrays hold */
	bool misordered; /* a readable descriptor after a writable one */
	bool writable_seen;
	uint8_t *status; /* last byte of a writable final descriptor */
};

/* Take the next available chain into C: 1 when one was taken, 0 when the
 * ring is empty, -EIO when the ring is malformed (*WHY says how). */
int vq_pop(struct vq_ring *r, const struct vblk_mem *mem, struct vq_chain *c,
	   const char **why);
/* Read the chain starting at descriptor HEAD into C without touching the
 * available ring (requests taken again after a restart): 0 or -EIO. */
int vq_read_chain(struct vq_ring *r, const struct vblk_mem *mem,
		  struct vq_chain *c, uint16_t head, const char **why);
/* Give the chain just taken back (it is taken again next time). */
void vq_unpop(struct vq_ring *r);
/* After vq_pop returned 0: ask for a kick on the next buffer (event
 * index) and return true when buffers arrived meanwhile. */
bool vq_arm_kick(struct vq_ring *r);
/* Does the available ring hold chains not yet taken? */
bool vq_pending(struct vq_ring *r);
/* Put HEAD with LEN written bytes on the used ring and publish it; return
 * true when the driver wants an interrupt for it. */
bool vq_push_used(struct vq_ring *r, uint16_t head, uint32_t len);

/* Map [GPA, GPA+LEN) to host iovecs appended at IOV[*N] (up to CAP);
 * sets *OVERFLOW when they do not fit.  -EFAULT when any byte is outside
 * guest memory. */
int vblk_mem_map(const struct vblk_mem *mem, uint64_t gpa, uint64_t len,
		 struct iovec *iov, unsigned *n, unsigned cap, bool *overflow);

/* V of BITS bits between virtio's little-endian order and the host's
 * (the same swap both ways). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define VQ_LE(bits, v) __builtin_bswap##bits(v)
#else
#define VQ_LE(bits, v) (v)
#endif

static inline uint16_t vq_le16(uint16_t v)
{
	return VQ_LE(16, v);
}

static inline uint32_t vq_le32(uint32_t v)
{
	return VQ_LE(32, v);
}

static inline uint64_t vq_le64(uint64_t v)
{
	return VQ_LE(64, v);
}

#endif
