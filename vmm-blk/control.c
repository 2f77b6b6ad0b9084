/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The vmm-blk control socket: a client connects, sends one command line
 * and reads one reply line ("ok ..." or "error: ...").  Commands:
 *   size           the disk's size in bytes
 *   resize SIZE    resize the image to SIZE (bytes, or with a K/M/G/T
 *                  suffix) and tell the guest
 * The daemon's one thread serves it between vhost-user messages, so a
 * client gets a short time to send its line before it is dropped.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mimg.h>

#include "blockif_impl.h"
#include "daemon.h"
#include "resize.h"
#include "unix_listen.h"
#include "vhost_user.h"

#define CTL_LINE_MAX 128
#define CTL_TIMEOUT_MS 1000

int ctl_listen(const char *path)
{
	return unix_listen(path, 0600);
}

struct resize_job {
	struct vmmblk_daemon *d;
	uint64_t size;
	bool reread;
	const char *why;
};

static int change_size(void *opaque)
{
	struct resize_job *j = opaque;

	if (j->reread)
		return vmmblk_reread_size(j->d->bc, &j->why);
	return vmmblk_resize(j->d->bc, j->size, &j->why);
}

int daemon_resize(struct vmmblk_daemon *d, uint64_t size, const char **why)
{
	struct resize_job j = {d, size, false, NULL};
	int r = vu_server_change_disk(d->srv, change_size, &j);

	*why = j.why ? j.why : strerror(-r);
	return r;
}

int daemon_reread_size(struct vmmblk_daemon *d, const char **why)
{
	struct resize_job j = {d, 0, true, NULL};
	int r = vu_server_change_disk(d->srv, change_size, &j);

	*why = j.why ? j.why : strerror(-r);
	return r;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read one line (without its newline) into BUF within the time limit,
 * however the client spreads it; false when the client sent none. */
static bool read_line(int fd, char *buf, size_t cap)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	long long deadline = now_ms() + CTL_TIMEOUT_MS;
	size_t len = 0;

	while (len < cap - 1) {
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return false;
		n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (strchr(buf, '\n'))
			break;
	}
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return len > 0;
}

static void run_command(struct vmmblk_daemon *d, char *line, char *out,
			size_t cap)
{
	const char *why = NULL;
	uint64_t size;

	if (!strcmp(line, "size")) {
		snprintf(out, cap, "ok %llu\n",
			 (unsigned long long)blockif_size(d->bc));
	} else if (!strncmp(line, "resize ", 7)) {
		if (mimg_parse_size(line + 7, &size) < 0) {
			snprintf(out, cap, "error: invalid size '%s'\n",
				 line + 7);
		} else if (daemon_resize(d, size, &why) < 0) {
			snprintf(out, cap, "error: %s\n", why);
			fprintf(stderr, "vmm-blk: resize to %llu failed: %s\n",
				(unsigned long long)size, why);
		} else {
			snprintf(out, cap, "ok %llu\n",
				 (unsigned long long)blockif_size(d->bc));
		}
	} else {
		snprintf(out, cap, "error: unknown command '%s'\n", line);
	}
}

int ctl_ready(void *opaque)
{
	struct vmmblk_daemon *d = opaque;
	char line[CTL_LINE_MAX], out[CTL_LINE_MAX + 64];
	int c = accept4(d->ctl_fd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return 0;
	if (read_line(c, line, sizeof(line))) {
		run_command(d, line, out, sizeof(out));
		if (send(c, out, strlen(out), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			fprintf(stderr, "vmm-blk: control reply: %s\n",
				strerror(errno));
	}
	close(c);
	return 0;
}
