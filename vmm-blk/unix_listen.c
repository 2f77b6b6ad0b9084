/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Listening Unix sockets for the vmm-blk daemon (see unix_listen.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix_listen.h"

int unix_listen(const char *path, mode_t mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char tmp[sizeof(sa.sun_path)];
	struct stat st;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.%ld~", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		fprintf(stderr, "vmm-blk: socket path '%s' is too long\n",
			path);
		return -1;
	}
	if (stat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "vmm-blk: '%s' exists and is not a socket\n",
			path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("vmm-blk: socket");
		return -1;
	}
	memcpy(sa.sun_path, tmp, strlen(tmp) + 1);
	unlink(tmp);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (mode && chmod(tmp, mode) < 0) || listen(fd, 1) < 0 ||
	    rename(tmp, path) < 0) {
		fprintf(stderr, "vmm-blk: cannot listen on '%s': %s\n", path,
			strerror(errno));
		unlink(tmp);
		close(fd);
		return -1;
	}
	return fd;
}
