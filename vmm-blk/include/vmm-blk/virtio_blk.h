/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A transport-neutral virtio-blk device: it walks split virtqueues in a
 * map of guest memory, performs the requests through blockif and fills
 * the config space.  A transport (virtio-pci in a hypervisor, vhost-user
 * in the vmm-blk daemon) negotiates features, maps guest memory, gives the
 * ring locations and forwards notifications both ways.
 *
 * Hostile guests: every descriptor is copied once and checked before use;
 * addresses must lie wholly in guest memory; chains are bounded by the
 * queue size (indirect tables by VBLK_MAX_INDIRECT) so loops end; a
 * request that cannot be answered (no writable status byte, a bad address,
 * a reused head) breaks the queue: it stops being processed until it is
 * started again.  Malformed requests with a status byte get IOERR/UNSUPP.
 * Nothing outside the request's own device-writable buffers is written.
 *
 * Threads: vblk_queue_process/start/stop and vblk_dev_set_mem for one
 * device are called from one thread at a time (the transport's).
 * Completions run on blockif's worker threads and call the notify and wake
 * callbacks from there (or from the transport's thread, see lone_here).
 */
#ifndef VMMBLK_VIRTIO_BLK_H
#define VMMBLK_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct blockif_ctxt;

/* virtio feature bits offered by the device. */
#define VBLK_F_SIZE_MAX 1
#define VBLK_F_SEG_MAX 2
#define VBLK_F_GEOMETRY 4
#define VBLK_F_RO 5
#define VBLK_F_BLK_SIZE 6
#define VBLK_F_FLUSH 9
#define VBLK_F_TOPOLOGY 10
#define VBLK_F_MQ 12
#define VBLK_F_DISCARD 13
#define VBLK_F_WRITE_ZEROES 14
#define VBLK_F_RING_INDIRECT_DESC 28
#define VBLK_F_RING_EVENT_IDX 29
#define VBLK_F_VERSION_1 32

/* Request types and status values (virtio 1.2, 5.2.6). */
#define VBLK_T_IN 0
#define VBLK_T_OUT 1
#define VBLK_T_FLUSH 4
#define VBLK_T_GET_ID 8
#define VBLK_T_DISCARD 11
#define VBLK_T_WRITE_ZEROES 13
#define VBLK_S_OK 0
#define VBLK_S_IOERR 1
#define VBLK_S_UNSUPP 2

#define VBLK_ID_BYTES 20
#define VBLK_MAX_QUEUES 64
#define VBLK_MAX_QUEUE_SIZE 32768
#define VBLK_MAX_INDIRECT 1024
/* Data segments per request (seg_max): blockif's limit less header and
 * status. */
#define VBLK_SEG_MAX 126
#define VBLK_CONFIG_SIZE 72

/* Guest memory mapped into this process. */
#define VBLK_MEM_MAX_REGIONS 32
struct vblk_mem_region {
	uint64_t gpa;  /* guest physical address of the first byte */
	uint64_t size; /* bytes */
	void *host;    /* where it is mapped here */
};
struct vblk_mem {
	unsigned nregions;
	struct vblk_mem_region regions[VBLK_MEM_MAX_REGIONS];
};

/* Host address of [GPA, GPA+LEN) when it lies inside one region, else
 * NULL.  LEN 0 is treated as 1. */
void *vblk_mem_translate(const struct vblk_mem *mem, uint64_t gpa,
			 uint64_t len);

struct vblk_dev_params {
	const char *serial;  /* GET_ID answer, at most 20 bytes used */
	unsigned num_queues; /* 1..VBLK_MAX_QUEUES */
	/* Requests handed to blockif at once, all queues together; 0 or
	 * more than blockif_queuesz() means blockif_queuesz(). */
	unsigned max_inflight;
	/* A driver that keeps one request in flight at a time (queue depth
	 * 1) waits for each hand-over to a blockif worker and back: with
	 * this set, once several requests in a row found nothing else in
	 * flight, reads and writes that do are performed inside
	 * vblk_queue_process (blockif_read_here).  The first request that
	 * arrives meanwhile turns it off until the device is idle again. */
	bool lone_here;
};

struct vblk_dev;

/* Create a device serving BC (which stays owned by the caller).
 * Returns NULL with errno set. */
struct vblk_dev *vblk_dev_new(struct blockif_ctxt *bc,
			      const struct vblk_dev_params *params);
/* Stop all queues (waiting for their requests) and free DEV. */
void vblk_dev_free(struct vblk_dev *dev);

/* Features the device offers, and the ones the driver accepted (must be a
 * subset: -EINVAL otherwise). */
uint64_t vblk_dev_features(const struct vblk_dev *dev);
int vblk_dev_set_features(struct vblk_dev *dev, uint64_t features);
unsigned vblk_dev_num_queues(const struct vblk_dev *dev);

/* Copy LEN bytes of the config space from OFF into BUF; bytes past the
 * structure read as zero.  Returns 0, or -EINVAL when OFF+LEN overflows
 * or exceeds 256. */
int vblk_dev_config(const struct vblk_dev *dev, void *buf, size_t off,
		    size_t len);

/* Re-read the disk size from blockif after the image was resized, and
 * update the config space (the transport tells the driver).  Only while
 * no queue is started: -EBUSY otherwise. */
int vblk_dev_update_capacity(struct vblk_dev *dev);

/* Replace the guest memory map (copied).  Only while no queue is
 * started: -EBUSY otherwise; -EINVAL for empty or wrapping regions. */
int vblk_dev_set_mem(struct vblk_dev *dev, const struct vblk_mem *mem);
const struct vblk_mem *vblk_dev_mem(const struct vblk_dev *dev);

/* WAKE(OPAQUE) is called from a completion when a queue that stopped
 * because blockif was full can continue: the transport then calls
 * vblk_queue_process again for its started queues. */
void vblk_dev_set_wake(struct vblk_dev *dev, void (*wake)(void *opaque),
		       void *opaque);

/* Where a split virtqueue lives, in host addresses. */
struct vblk_vring {
	unsigned size; /* power of two, 1..VBLK_MAX_QUEUE_SIZE */
	void *desc;    /* 16-byte aligned, 16 * size bytes */
	void *avail;   /* 2-byte aligned, 6 + 2 * size bytes */
	void *used;    /* 4-byte aligned, 6 + 8 * size bytes */
};

/* Bytes each ring part occupies for SIZE entries. */
size_t vblk_vring_desc_bytes(unsigned size);
size_t vblk_vring_avail_bytes(unsigned size);
size_t vblk_vring_used_bytes(unsigned size);

/*
 * Start queue Q on RING.  Processing continues from avail index
 * LAST_AVAIL; the used index is read from the ring.  NOTIFY(OPAQUE, Q) is
 * called (from any thread) when the driver must be interrupted.  The ring
 * memory must stay mapped until vblk_queue_stop.  Returns 0, -EINVAL (bad
 * index, size or alignment), -EBUSY (already started) or -ENOMEM.
 */
int vblk_queue_start(struct vblk_dev *dev, unsigned q,
		     const struct vblk_vring *ring, uint16_t last_avail,
		     void (*notify)(void *opaque, unsigned q), void *opaque);

/*
 * Track queue Q's requests in REGION (NULL: no tracking), the queue's part
 * of a vhost-user inflight area: vblk_inflight_queue_bytes(size) bytes for
 * a ring of SIZE entries, 8-byte aligned, kept by the front-end while the
 * back-end restarts.  Only while Q is stopped (-EBUSY otherwise).  When Q
 * then starts on a region already in use, the requests it records as
 * taken and not answered are taken again first, in their original order,
 * and processing resumes after them (the LAST_AVAIL given to
 * vblk_queue_start is not used); vblk_queue_start returns -EINVAL when the
 * region describes a ring of another size.
 */
int vblk_queue_set_inflight(struct vblk_dev *dev, unsigned q, void *region);
size_t vblk_inflight_queue_bytes(unsigned size);
/* How many requests queue Q took again when it last started. */
unsigned vblk_queue_retaken(const struct vblk_dev *dev, unsigned q);

/*
 * Take the new requests from queue Q's available ring and submit them.
 * Returns the number of requests taken, -EAGAIN when blockif is full (the
 * wake callback fires when it has room), -EIO when the queue is broken,
 * -EINVAL when Q is not started.
 */
int vblk_queue_process(struct vblk_dev *dev, unsigned q);

/* Wait until every request taken from queue Q has been answered on the
 * used ring.  The queue keeps running. */
void vblk_queue_drain(struct vblk_dev *dev, unsigned q);

/* Stop queue Q: wait for its requests to finish; return the avail index
 * to resume from (0 when it was not started). */
uint16_t vblk_queue_stop(struct vblk_dev *dev, unsigned q);

bool vblk_queue_started(const struct vblk_dev *dev, unsigned q);
bool vblk_queue_broken(const struct vblk_dev *dev, unsigned q);
/* Why the queue broke (static text), or NULL. */
const char *vblk_queue_error(const struct vblk_dev *dev, unsigned q);

#ifdef __cplusplus
}
#endif
#endif /* VMMBLK_VIRTIO_BLK_H */
