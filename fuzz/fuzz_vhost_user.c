/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz vmm-blk's vhost-user back-end as a hostile front-end: the input is
 * a sequence of messages sent on a connected socket, each optionally with
 * a descriptor attached (an eventfd, or a small memfd offered as guest
 * memory).  The back-end must answer, refuse or drop the connection, never
 * crash, map past a descriptor's end or touch memory it was not given.
 *
 * Input: records of
 *   u8  descriptor: 0 none, 1 eventfd, 2 memfd of 64 KiB (first record's
 *       bytes fill it), 3 memfd of 4 KiB
 *   u32 request, u32 flags, u16 payload size (clamped to what is left)
 *   payload
 * all little-endian.  Requests go to a 256 KiB raw image in a temporary
 * file, served with two queues.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../vmm-blk/include/vmm-blk/block_if.h"
#include "../vmm-blk/include/vmm-blk/virtio_blk.h"
#include "../vmm-blk/vhost_user.h"
#include "fuzz_device.h"

#define DISK_SIZE (256u << 10)
#define HDR 12
#define MAX_PAYLOAD 4096

static struct vblk_dev *dev;

struct server_run {
	struct vu_server srv;
	int conn;
};

static void *serve(void *arg)
{
	struct server_run *r = arg;

	vu_server_run(&r->srv, -1, r->conn);
	return NULL;
}

/* Read and drop the back-end's replies until it closes. */
static void *drain(void *arg)
{
	int fd = *(int *)arg;
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static int make_fd(uint8_t kind, const uint8_t *fill, size_t fill_len)
{
	size_t len = kind == 2 ? 65536 : 4096;
	int fd;

	if (kind == 1)
		return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)len) < 0 ||
	    (fill_len &&
	     pwrite(fd, fill, fill_len < len ? fill_len : len, 0) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_one(int sock, const uint8_t *msg, size_t len, int fd)
{
	return vu_send(sock, msg, len, fd, 0) == 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static struct server_run run;
	uint8_t msg[HDR + MAX_PAYLOAD];
	pthread_t server, drainer;
	int sv[2];
	size_t pos = 0;

	if (!ready) {
		dev = fuzz_device(DISK_SIZE, 2);
		ready = 1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (vu_server_init(&run.srv, dev, false) < 0)
		abort();
	run.conn = sv[1];
	pthread_create(&server, NULL, serve, &run);
	pthread_create(&drainer, NULL, drain, &sv[0]);
	while (size - pos >= 1 + HDR - 2) {
		uint8_t kind = data[pos] & 3;
		uint32_t psize = (uint32_t)data[pos + 9] |
				 (uint32_t)data[pos + 10] << 8;
		int fd = -1, r;

		pos += 11;
		if (psize > MAX_PAYLOAD)
			psize = MAX_PAYLOAD;
		if (psize > size - pos)
			psize = (uint32_t)(size - pos);
		memcpy(msg, data + pos - 10, 8); /* request, flags */
		memcpy(msg + 8, &psize, 4);
		memcpy(msg + HDR, data + pos, psize);
		pos += psize;
		if (kind)
			fd = make_fd(kind, data, size);
		r = send_one(sv[0], msg, HDR + psize, fd);
		if (fd >= 0)
			close(fd);
		if (r < 0)
			break;
	}
	shutdown(sv[0], SHUT_WR);
	pthread_join(server, NULL);
	pthread_join(drainer, NULL);
	close(sv[0]);
	vu_server_fini(&run.srv);
	return 0;
}
