/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * vhost-user-blk back-end (qemu's docs/interop/vhost-user.rst) on top of
 * the virtio-blk engine.  Linux-only: memfd-backed guest memory arrives as
 * file descriptors, notifications are eventfds.
 */
#ifndef VMMBLK_VHOST_USER_H
#define VMMBLK_VHOST_USER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "include/vmm-blk/virtio_blk.h"

#define VU_MAX_REGIONS 8

struct vu_region {
	uint64_t gpa, size, uva, mmap_offset;
	void *map;	 /* mmap'ed from offset 0 */
	size_t map_len;	 /* size + mmap_offset */
};

struct vu_queue {
	struct vu_server *srv;
	unsigned index;
	unsigned size;
	uint64_t desc_uva, avail_uva, used_uva;
	bool addr_set;
	uint16_t base;
	int kick_fd;
	bool enabled; /* SET_VRING_ENABLE */
	bool running; /* started in the engine */
	bool reported;	/* the queue's failure was logged */
	pthread_mutex_t call_lock;
	int call_fd;
};

struct vu_server {
	struct vblk_dev *dev;
	int conn;
	int wake_fd;
	bool verbose;
	uint64_t features;	    /* acked by SET_FEATURES */
	uint64_t protocol_features; /* acked by SET_PROTOCOL_FEATURES */
	unsigned nregions;
	struct vu_region regions[VU_MAX_REGIONS];
	unsigned nqueues;
	struct vu_queue queues[VBLK_MAX_QUEUES];
};

/* Prepare S for DEV.  Returns 0 or a negative errno. */
int vu_server_init(struct vu_server *s, struct vblk_dev *dev, bool verbose);
/* Serve the front-end on connected socket CONN until it disconnects or
 * STOP_FD (a signalfd) becomes readable; stops every queue (waiting for
 * its requests) before returning.  Returns 0 for a clean end, a negative
 * errno when the protocol failed. */
int vu_server_run(struct vu_server *s, int conn, int stop_fd);
/* Unmap guest memory and close descriptors. */
void vu_server_fini(struct vu_server *s);

#endif
