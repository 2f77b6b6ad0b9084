/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Listening Unix sockets for the vmm-blk daemon.
 */
#ifndef VMMBLK_UNIX_LISTEN_H
#define VMMBLK_UNIX_LISTEN_H

#include <sys/types.h>

/* Listen on PATH with permissions MODE (0: as the umask makes them).  The socket is bound under a
 * temporary name and renamed into place once it listens, so a client
 * that waits for PATH to appear never finds it refusing connections; a
 * stale socket at PATH (a daemon that was killed) is replaced.  Returns
 * the socket, or -1 with a message on stderr. */
int unix_listen(const char *path, mode_t mode);

#endif
