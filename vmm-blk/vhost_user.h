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
#define VU_MAX_WATCH 4

struct vu_region {
	uint64_t gpa, size, uva, mmap_offset;
	void *map;	/* mmap'ed from offset 0 */
	size_t map_len; /* size + mmap_offset */
};

struct vu_queue {
	struct vu_server *srv;
	unsigned index;
	unsigned size;
	uint64_t desc_uva, avail_uva, used_uva;
	bool addr_set;
	uint16_t base;
	int kick_fd;
	bool enabled;  /* SET_VRING_ENABLE */
	bool running;  /* started in the engine */
	bool reported; /* the queue's failure was logged */
	pthread_mutex_t call_lock;
	int call_fd;
	bool owe_call; /* signal call_fd once it is set (under call_lock) */
};

/* The inflight area (VHOST_USER_SET_INFLIGHT_FD): one region per queue. */
struct vu_inflight {
	void *map; /* mmap'ed from offset 0, or NULL */
	size_t map_len;
	uint8_t *base; /* queue 0's region */
	unsigned nqueues, qsize;
};

/* A descriptor the main loop watches besides the front-end's: READY is
 * called when it is readable and returns 1 to stop serving, 0 to go on. */
struct vu_watch {
	int fd;
	int (*ready)(void *opaque);
	void *opaque;
};

struct vu_server {
	struct vblk_dev *dev;
	int conn;
	int backend_fd; /* SET_SLAVE_REQ_FD: our requests to the front-end */
	int wake_fd;
	bool verbose;
	uint64_t features;	    /* acked by SET_FEATURES */
	uint64_t protocol_features; /* acked by SET_PROTOCOL_FEATURES */
	uint8_t status;		    /* SET_STATUS */
	/* The config space changed while no front-end could be told: tell
	 * the next one when it starts a ring. */
	bool config_pending;
	unsigned nregions;
	struct vu_region regions[VU_MAX_REGIONS];
	struct vu_inflight inflight;
	unsigned nwatch;
	struct vu_watch watch[VU_MAX_WATCH];
	unsigned nqueues;
	struct vu_queue queues[VBLK_MAX_QUEUES];
};

/* Prepare S for DEV.  Returns 0 or a negative errno. */
int vu_server_init(struct vu_server *s, struct vblk_dev *dev, bool verbose);
/* Watch FD in vu_server_run (see struct vu_watch).  -ENOSPC when
 * VU_MAX_WATCH are watched already. */
int vu_server_watch(struct vu_server *s, int fd, int (*ready)(void *opaque),
		    void *opaque);
/*
 * Serve front-ends until a watched descriptor says stop: first the one
 * connected on CONN (when >= 0), then, when LFD is a listening socket,
 * each one that connects after the previous one went away.  Between two
 * connections the device is reset (queues stopped after their requests
 * finish, memory unmapped); the image stays open.  Without LFD, returns
 * when the connection ends.  Returns 0, or a negative errno when the
 * protocol failed on a connection without LFD or the listening socket
 * failed.  Takes ownership of CONN.
 */
int vu_server_run(struct vu_server *s, int lfd, int conn);
/*
 * Change the disk: stop the queues (waiting for their requests), call
 * CHANGE(OPAQUE), re-read the disk size into the config space, restart
 * the queues and tell the front-end the config changed (back-end channel
 * message; when no front-end can be told now, the next one is told when
 * it starts a ring).  Returns what CHANGE returned, or a negative errno
 * from updating the device.
 */
int vu_server_change_disk(struct vu_server *s, int (*change)(void *opaque),
			  void *opaque);
/* Send LEN bytes of BUF on socket SOCK, all of them (retrying short
 * sends and EINTR), with descriptor FD attached when FD >= 0; SFLAGS are
 * more sendmsg flags.  Returns 0 or a negative errno. */
int vu_send(int sock, const void *buf, size_t len, int fd, int sflags);
/* Unmap guest memory and close descriptors. */
void vu_server_fini(struct vu_server *s);

#endif
