/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The vmm-blk daemon's state, shared by main.c and the control socket.
 */
#ifndef VMMBLK_DAEMON_H
#define VMMBLK_DAEMON_H

#include <stdint.h>

struct blockif_ctxt;
struct vblk_dev;
struct vu_server;

struct vmmblk_daemon {
	struct blockif_ctxt *bc;
	struct vblk_dev *dev;
	struct vu_server *srv;
	int ctl_fd;	      /* control socket (listening), or -1 */
	const char *ctl_path; /* where it is bound */
};

/* Listen for control commands on the Unix socket PATH (mode 0600).
 * Returns the socket, or -1 with a message on stderr. */
int ctl_listen(const char *path);
/* vu_server watch callback for the control socket: serve one command.
 * Always returns 0 (serving goes on). */
int ctl_ready(void *daemon);
/* Resize the disk to SIZE bytes and tell the front-end; 0 or -errno with
 * the reason in *WHY. */
int daemon_resize(struct vmmblk_daemon *d, uint64_t size, const char **why);
/* Serve the raw image file's current size (SIGHUP); 0 or -errno with the
 * reason in *WHY. */
int daemon_reread_size(struct vmmblk_daemon *d, const char **why);

#endif
