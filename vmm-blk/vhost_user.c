/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * vhost-user-blk back-end: the message protocol of qemu's
 * docs/interop/vhost-user.rst over a connected Unix socket, driving the
 * virtio-blk engine.  One thread (this one) reads messages, kicks and
 * wake-ups and takes requests off the rings; blockif's workers complete
 * them and signal the call eventfds.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhost_user.h"

enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_SET_SLAVE_REQ_FD = 21,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_GET_INFLIGHT_FD = 31,
	VU_SET_INFLIGHT_FD = 32,
	VU_RESET_DEVICE = 34,
	VU_SET_STATUS = 39,
	VU_GET_STATUS = 40,
};

/* Requests the back-end sends on the back-end channel. */
enum vu_backend_request {
	VU_BACKEND_CONFIG_CHANGE = 2,
};

#define VU_F_PROTOCOL_FEATURES 30
#define VU_PF_MQ 0
#define VU_PF_REPLY_ACK 3
#define VU_PF_BACKEND_REQ 5
#define VU_PF_CONFIG 9
#define VU_PF_INFLIGHT_SHMFD 12
#define VU_PF_RESET_DEVICE 13
#define VU_PF_STATUS 16
#define VU_PROTOCOL_FEATURES                                                   \
	(1ull << VU_PF_MQ | 1ull << VU_PF_REPLY_ACK |                          \
	 1ull << VU_PF_BACKEND_REQ | 1ull << VU_PF_CONFIG |                    \
	 1ull << VU_PF_INFLIGHT_SHMFD | 1ull << VU_PF_RESET_DEVICE |           \
	 1ull << VU_PF_STATUS)
/* virtio device status: the device needs a reset (a queue broke). */
#define VU_STATUS_NEEDS_RESET 0x40u

#define VU_VERSION 0x1u
#define VU_FLAG_REPLY 0x4u
#define VU_FLAG_NEED_REPLY 0x8u
#define VU_VRING_INVALID_FD (1ull << 8)
#define VU_HDR_SIZE 12
#define VU_MAX_PAYLOAD 4096
#define VU_MAX_FDS 8
#define VU_CONFIG_MAX 256

struct vu_msg {
	uint32_t request, flags, size;
	uint8_t payload[VU_MAX_PAYLOAD];
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

static void vu_log(const struct vu_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vu_log(const struct vu_server *s, const char *fmt, ...)
{
	va_list ap;

	(void)s;
	fputs("vmm-blk: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t payload_u64(const struct vu_msg *m)
{
	uint64_t v;

	memcpy(&v, m->payload, 8);
	return v;
}

static void payload_state(const struct vu_msg *m, uint32_t *index,
			  uint32_t *num)
{
	memcpy(index, m->payload, 4);
	memcpy(num, m->payload + 4, 4);
}

static void close_fds(struct vu_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

/* Take ownership of the message's only descriptor (-1 if none). */
static int take_fd(struct vu_msg *m)
{
	int fd = -1;

	if (m->nfds >= 1) {
		fd = m->fds[0];
		m->fds[0] = -1;
	}
	return fd;
}

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read one message with its descriptors.  -ECONNRESET at a clean end. */
static int recv_msg(int fd, struct vu_msg *m)
{
	union {
		char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	uint8_t hdr[VU_HDR_SIZE];
	struct iovec iov = {hdr, sizeof(hdr)};
	struct msghdr mh = {0};
	struct cmsghdr *c;
	ssize_t n;
	int err;

	m->nfds = 0;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(f));
			if (m->nfds < VU_MAX_FDS)
				m->fds[m->nfds++] = f;
			else
				close(f);
		}
	}
	if ((size_t)n < sizeof(hdr)) {
		err = read_full(fd, hdr + n, sizeof(hdr) - (size_t)n);
		if (err) {
			close_fds(m);
			return err;
		}
	}
	memcpy(&m->request, hdr, 4);
	memcpy(&m->flags, hdr + 4, 4);
	memcpy(&m->size, hdr + 8, 4);
	if (m->size > VU_MAX_PAYLOAD) {
		close_fds(m);
		return -EPROTO;
	}
	err = read_full(fd, m->payload, m->size);
	if (err)
		close_fds(m);
	return err;
}

int vu_send(int sock, const void *buf, size_t len, int fd, int sflags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	size_t off = 0;

	while (off < len) {
		struct iovec iov = {(uint8_t *)buf + off, len - off};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (fd >= 0 && off == 0) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = sizeof(ctl.buf);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
		}
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | sflags);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Send a message on socket SOCK, with descriptor FD when FD >= 0. */
static int send_msg(int sock, uint32_t request, uint32_t flags,
		    const void *payload, uint32_t size, int fd, int sflags)
{
	uint8_t buf[VU_HDR_SIZE + VU_MAX_PAYLOAD];

	memcpy(buf, &request, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (size) /* bodiless messages pass no payload */
		memcpy(buf + VU_HDR_SIZE, payload, size);
	return vu_send(sock, buf, VU_HDR_SIZE + (size_t)size, fd, sflags);
}

static int send_reply_fd(struct vu_server *s, const struct vu_msg *req,
			 const void *payload, uint32_t size, int fd)
{
	return send_msg(s->conn, req->request, VU_VERSION | VU_FLAG_REPLY,
			payload, size, fd, 0);
}

static int send_reply(struct vu_server *s, const struct vu_msg *req,
		      const void *payload, uint32_t size)
{
	return send_reply_fd(s, req, payload, size, -1);
}

static int reply_u64(struct vu_server *s, const struct vu_msg *req, uint64_t v)
{
	return send_reply(s, req, &v, sizeof(v));
}

/* ---------------------------------------------------------------------- */
/* Memory                                                                  */

/* Host address of front-end user address [UVA, UVA+LEN), or NULL. */
static void *uva_to_host(const struct vu_server *s, uint64_t uva, uint64_t len)
{
	for (unsigned i = 0; i < s->nregions; i++) {
		const struct vu_region *r = &s->regions[i];

		if (uva >= r->uva && uva - r->uva < r->size &&
		    len <= r->size - (uva - r->uva))
			return (uint8_t *)r->map + r->mmap_offset +
			       (uva - r->uva);
	}
	return NULL;
}

static void unmap_regions(struct vu_server *s)
{
	for (unsigned i = 0; i < s->nregions; i++)
		munmap(s->regions[i].map, s->regions[i].map_len);
	s->nregions = 0;
}

/* ---------------------------------------------------------------------- */
/* Queues                                                                  */

/* Signal Q's call eventfd; with call_lock held. */
static void signal_call(struct vu_queue *q)
{
	uint64_t one = 1;

	if (write(q->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vu_log(q->srv, "queue %u: cannot signal the call eventfd: %s",
		       q->index, strerror(errno));
}

static void notify_call(void *opaque, unsigned qi)
{
	struct vu_queue *q = opaque;

	(void)qi;
	pthread_mutex_lock(&q->call_lock);
	if (q->call_fd >= 0)
		signal_call(q);
	pthread_mutex_unlock(&q->call_lock);
}

/* A back-end killed between publishing a used entry and signalling the
 * call eventfd (or one that exits after publishing) leaves the driver
 * waiting for an interrupt that never comes: with event indexes, later
 * entries do not interrupt a driver that asked to hear of an earlier one.
 * So every start of a queue signals it once, now or as soon as its call
 * eventfd arrives (it may come after the kick); a driver finds nothing
 * new in a spurious one. */
static void owe_call(struct vu_queue *q)
{
	pthread_mutex_lock(&q->call_lock);
	if (q->call_fd >= 0)
		signal_call(q);
	else
		q->owe_call = true;
	pthread_mutex_unlock(&q->call_lock);
}

static void wake_loop(void *opaque)
{
	struct vu_server *s = opaque;
	uint64_t one = 1;

	if (write(s->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vu_log(s, "cannot wake the main loop: %s", strerror(errno));
}

static bool queue_enabled(const struct vu_server *s, const struct vu_queue *q)
{
	/* Without F_PROTOCOL_FEATURES rings start enabled. */
	return q->enabled || !(s->features & (1ull << VU_F_PROTOCOL_FEATURES));
}

static void report_queue(struct vu_server *s, struct vu_queue *q, int r)
{
	if (r == -EIO && !q->reported) {
		vu_log(s, "queue %u stopped: %s", q->index,
		       vblk_queue_error(s->dev, q->index));
		q->reported = true;
	}
}

static void process_queue(struct vu_server *s, struct vu_queue *q)
{
	if (q->running && queue_enabled(s, q))
		report_queue(s, q, vblk_queue_process(s->dev, q->index));
}

static void notify_config_change(struct vu_server *s);

/* Q's part of the inflight area, or NULL when it is not tracked. */
static void *inflight_region(struct vu_server *s, const struct vu_queue *q)
{
	const struct vu_inflight *in = &s->inflight;

	if (!in->map || q->index >= in->nqueues)
		return NULL;
	if (q->size != in->qsize) {
		vu_log(s,
		       "queue %u: %u entries, the inflight area is for %u; "
		       "its requests are not tracked",
		       q->index, q->size, in->qsize);
		return NULL;
	}
	return in->base + q->index * vblk_inflight_queue_bytes(in->qsize);
}

/* Start Q in the engine if it has all it needs; 0 or -errno. */
static int start_queue(struct vu_server *s, struct vu_queue *q)
{
	struct vblk_vring ring;

	if (q->running || q->kick_fd < 0 || !q->addr_set || q->size == 0 ||
	    s->nregions == 0)
		return 0;
	ring.size = q->size;
	ring.desc = uva_to_host(s, q->desc_uva, vblk_vring_desc_bytes(q->size));
	ring.avail = uva_to_host(s, q->avail_uva,
				 vblk_vring_avail_bytes(q->size));
	ring.used = uva_to_host(s, q->used_uva, vblk_vring_used_bytes(q->size));
	if (!ring.desc || !ring.avail || !ring.used) {
		vu_log(s, "queue %u: ring addresses outside the memory table",
		       q->index);
		return -EFAULT;
	}
	vblk_queue_set_inflight(s->dev, q->index, inflight_region(s, q));
	int r = vblk_queue_start(s->dev, q->index, &ring, q->base, notify_call,
				 q);
	if (r < 0) {
		vu_log(s, "queue %u: cannot start: %s", q->index, strerror(-r));
		return r;
	}
	q->running = true;
	q->reported = false;
	owe_call(q);
	if (vblk_queue_retaken(s->dev, q->index))
		vu_log(s,
		       "queue %u: resubmitting %u requests left in flight "
		       "by the previous back-end",
		       q->index, vblk_queue_retaken(s->dev, q->index));
	if (s->config_pending)
		notify_config_change(s);
	process_queue(s, q);
	return 0;
}

/* Stop Q, waiting for its requests; keeps where to resume in q->base. */
static void stop_queue(struct vu_server *s, struct vu_queue *q)
{
	if (!q->running)
		return;
	q->base = vblk_queue_stop(s->dev, q->index);
	q->running = false;
}

static struct vu_queue *queue_of(struct vu_server *s, uint64_t index)
{
	return index < s->nqueues ? &s->queues[index] : NULL;
}

static void set_call_fd(struct vu_queue *q, int fd)
{
	int old;

	pthread_mutex_lock(&q->call_lock);
	old = q->call_fd;
	q->call_fd = fd;
	if (fd < 0) {
		q->owe_call = false;
	} else if (q->owe_call) {
		q->owe_call = false;
		signal_call(q);
	}
	pthread_mutex_unlock(&q->call_lock);
	if (old >= 0)
		close(old);
}

/* ---------------------------------------------------------------------- */
/* Messages                                                                */

static int set_mem_table(struct vu_server *s, struct vu_msg *m)
{
	struct vblk_mem mem = {0};
	struct vu_region regions[VU_MAX_REGIONS];
	bool was_running[VBLK_MAX_QUEUES];
	struct stat st;
	uint32_t n;
	int err = 0;

	if (m->size < 8)
		return -EINVAL;
	memcpy(&n, m->payload, 4);
	if (n == 0 || n > VU_MAX_REGIONS || m->size != 8 + 32 * n ||
	    m->nfds != n) {
		vu_log(s,
		       "SET_MEM_TABLE: %u regions with %u descriptors in "
		       "%u bytes",
		       n, m->nfds, m->size);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct vu_region *r = &regions[i];
		const uint8_t *p = m->payload + 8 + 32 * i;

		memcpy(&r->gpa, p, 8);
		memcpy(&r->size, p + 8, 8);
		memcpy(&r->uva, p + 16, 8);
		memcpy(&r->mmap_offset, p + 24, 8);
		if (r->size == 0 || r->gpa + r->size < r->gpa ||
		    r->uva + r->size < r->uva ||
		    r->mmap_offset + r->size < r->mmap_offset ||
		    r->mmap_offset + r->size > SIZE_MAX) {
			vu_log(s, "SET_MEM_TABLE: region %u is malformed", i);
			return -EINVAL;
		}
	}
	/* The engine must not touch the old mapping any more: stop the
	 * rings (their requests finish first), remap, then restart. */
	for (unsigned i = 0; i < s->nqueues; i++) {
		was_running[i] = s->queues[i].running;
		stop_queue(s, &s->queues[i]);
	}
	unmap_regions(s);
	for (uint32_t i = 0; i < n; i++) {
		struct vu_region *r = &regions[i];

		r->map_len = (size_t)(r->mmap_offset + r->size);
		/* Touching a mapping past the end of its file would kill us
		 * with SIGBUS: refuse regions larger than their file. */
		if (fstat(m->fds[i], &st) == 0 && S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size < r->mmap_offset + r->size) {
			vu_log(s, "SET_MEM_TABLE: region %u ends past its file",
			       i);
			err = -EINVAL;
			break;
		}
		r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE,
			      MAP_SHARED, m->fds[i], 0);
		if (r->map == MAP_FAILED) {
			err = -errno;
			vu_log(s,
			       "SET_MEM_TABLE: cannot map region %u (%zu "
			       "bytes): %s",
			       i, r->map_len, strerror(errno));
			break;
		}
		s->regions[i] = *r;
		s->nregions = i + 1;
		mem.regions[i].gpa = r->gpa;
		mem.regions[i].size = r->size;
		mem.regions[i].host = (uint8_t *)r->map + r->mmap_offset;
	}
	if (err) {
		unmap_regions(s);
		vblk_dev_set_mem(s->dev, &mem);
		return err;
	}
	mem.nregions = n;
	err = vblk_dev_set_mem(s->dev, &mem);
	if (err)
		return err;
	/* Restart the rings, and start those whose kick arrived before any
	 * memory table (start_queue ignores rings that are not ready). */
	for (unsigned i = 0; i < s->nqueues; i++)
		if (was_running[i] || s->queues[i].kick_fd >= 0)
			start_queue(s, &s->queues[i]);
	return 0;
}

static int set_vring_addr(struct vu_server *s, struct vu_msg *m)
{
	uint32_t index;
	struct vu_queue *q;

	if (m->size < 40)
		return -EINVAL;
	memcpy(&index, m->payload, 4);
	q = queue_of(s, index);
	if (!q)
		return -EINVAL;
	stop_queue(s, q);
	memcpy(&q->desc_uva, m->payload + 8, 8);
	memcpy(&q->used_uva, m->payload + 16, 8);
	memcpy(&q->avail_uva, m->payload + 24, 8);
	q->addr_set = true;
	/* Restarts a running ring on the new addresses. */
	return start_queue(s, q);
}

static int set_vring_fd(struct vu_server *s, struct vu_msg *m)
{
	uint64_t v;
	struct vu_queue *q;
	int fd;

	if (m->size < 8)
		return -EINVAL;
	v = payload_u64(m);
	q = queue_of(s, v & 0xff);
	if (!q)
		return -EINVAL;
	fd = (v & VU_VRING_INVALID_FD) ? -1 : take_fd(m);
	switch (m->request) {
	case VU_SET_VRING_KICK:
		if (q->kick_fd >= 0)
			close(q->kick_fd);
		q->kick_fd = fd;
		if (fd < 0) {
			/* Polling mode is not supported. */
			stop_queue(s, q);
			return -ENOTSUP;
		}
		return start_queue(s, q);
	case VU_SET_VRING_CALL: set_call_fd(q, fd); return 0;
	default: /* SET_VRING_ERR: errors are reported on stderr instead */
		if (fd >= 0)
			close(fd);
		return 0;
	}
}

static int get_config(struct vu_server *s, struct vu_msg *m)
{
	uint32_t off, size, flags;
	uint8_t out[12 + VU_CONFIG_MAX];

	if (m->size < 12)
		return send_reply(s, m, NULL, 0);
	memcpy(&off, m->payload, 4);
	memcpy(&size, m->payload + 4, 4);
	memcpy(&flags, m->payload + 8, 4);
	/* An empty reply tells the front-end the request failed. */
	if (size > VU_CONFIG_MAX || m->size != 12 + size ||
	    vblk_dev_config(s->dev, out + 12, off, size) < 0)
		return send_reply(s, m, NULL, 0);
	memcpy(out, m->payload, 12);
	return send_reply(s, m, out, 12 + size);
}

/* ---------------------------------------------------------------------- */
/* Inflight area                                                           */

#define VU_INFLIGHT_SIZE 24 /* u64 mmap size, u64 offset, u16 nq, u16 qsize */

static void drop_inflight(struct vu_server *s)
{
	struct vu_inflight *in = &s->inflight;

	for (unsigned i = 0; i < s->nqueues; i++)
		vblk_queue_set_inflight(s->dev, i, NULL);
	if (in->map)
		munmap(in->map, in->map_len);
	memset(in, 0, sizeof(*in));
}

/* Read an inflight description; the area's size for it, or 0 when the
 * queue count or size is unusable. */
static uint64_t inflight_desc(struct vu_server *s, const struct vu_msg *m,
			      uint64_t *size, uint64_t *offset, uint16_t *nq,
			      uint16_t *qsize)
{
	if (m->size < 20)
		return 0;
	memcpy(size, m->payload, 8);
	memcpy(offset, m->payload + 8, 8);
	memcpy(nq, m->payload + 16, 2);
	memcpy(qsize, m->payload + 18, 2);
	if (*nq == 0 || *nq > s->nqueues || *qsize == 0 ||
	    *qsize > VBLK_MAX_QUEUE_SIZE || (*qsize & (*qsize - 1)))
		return 0;
	return *nq * (uint64_t)vblk_inflight_queue_bytes(*qsize);
}

/* A new, zeroed area in a sealed memfd; the front-end keeps it and gives
 * it to whichever back-end serves it next.  An empty size in the reply
 * tells the front-end there is no area. */
static int get_inflight_fd(struct vu_server *s, struct vu_msg *m)
{
	uint64_t size = 0, offset = 0, need;
	uint16_t nq = 0, qsize = 0;
	uint8_t out[VU_INFLIGHT_SIZE] = {0};
	int fd = -1, r;

	need = inflight_desc(s, m, &size, &offset, &nq, &qsize);
	if (need == 0)
		vu_log(s,
		       "GET_INFLIGHT_FD: %u queues of %u entries are not "
		       "supported",
		       nq, qsize);
	else
		fd = memfd_create("vmm-blk-inflight",
				  MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd >= 0 && (ftruncate(fd, (off_t)need) < 0 ||
			fcntl(fd, F_ADD_SEALS,
			      F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)) {
		vu_log(s, "GET_INFLIGHT_FD: %s", strerror(errno));
		close(fd);
		fd = -1;
	} else if (fd < 0 && need) {
		vu_log(s, "GET_INFLIGHT_FD: memfd_create: %s", strerror(errno));
	}
	if (fd >= 0) {
		memcpy(out, &need, 8);
		memcpy(out + 16, &nq, 2);
		memcpy(out + 18, &qsize, 2);
	}
	r = send_reply_fd(s, m, out, sizeof(out), fd);
	if (fd >= 0)
		close(fd);
	return r;
}

static int set_inflight_fd(struct vu_server *s, struct vu_msg *m)
{
	struct vu_inflight *in = &s->inflight;
	uint64_t size = 0, offset = 0, need;
	uint16_t nq = 0, qsize = 0;
	struct stat st;
	void *map;
	int fd = take_fd(m);

	need = inflight_desc(s, m, &size, &offset, &nq, &qsize);
	if (fd < 0 || need == 0 || size < need || offset % 64 ||
	    offset > SIZE_MAX - size || fstat(fd, &st) < 0 ||
	    (S_ISREG(st.st_mode) && (uint64_t)st.st_size < offset + size)) {
		vu_log(s,
		       "SET_INFLIGHT_FD: unusable area (%llu bytes at %llu "
		       "for %u queues of %u entries)",
		       (unsigned long long)size, (unsigned long long)offset, nq,
		       qsize);
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	for (unsigned i = 0; i < s->nqueues; i++)
		if (s->queues[i].running) {
			close(fd);
			return -EBUSY;
		}
	/* Only what the queues use is mapped, however large the area. */
	map = mmap(NULL, (size_t)(offset + need), PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		int err = errno;

		close(fd);
		vu_log(s, "SET_INFLIGHT_FD: cannot map it: %s", strerror(err));
		return -err;
	}
	close(fd);
	drop_inflight(s);
	in->map = map;
	in->map_len = (size_t)(offset + need);
	in->base = (uint8_t *)map + offset;
	in->nqueues = nq;
	in->qsize = qsize;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Device state                                                            */

/* Back to the state of a new device: rings stopped (after their requests
 * finish) and forgotten, memory unmapped, no features.  The connection,
 * its protocol features and the back-end channel stay. */
static void reset_device(struct vu_server *s)
{
	struct vblk_mem none = {0};

	for (unsigned i = 0; i < s->nqueues; i++) {
		struct vu_queue *q = &s->queues[i];

		stop_queue(s, q);
		if (q->kick_fd >= 0)
			close(q->kick_fd);
		q->kick_fd = -1;
		set_call_fd(q, -1);
		q->size = 0;
		q->base = 0;
		q->addr_set = false;
		q->enabled = false;
		q->reported = false;
	}
	drop_inflight(s);
	unmap_regions(s);
	vblk_dev_set_mem(s->dev, &none);
	s->features = 0;
	vblk_dev_set_features(s->dev, 0);
	s->status = 0;
}

static uint64_t device_status(const struct vu_server *s)
{
	uint64_t st = s->status;

	/* A stopped ring's old failure no longer matters: starting it again
	 * clears it. */
	for (unsigned i = 0; i < s->nqueues; i++)
		if (s->queues[i].running && vblk_queue_broken(s->dev, i))
			st |= VU_STATUS_NEEDS_RESET;
	return st;
}

static int set_backend_fd(struct vu_server *s, struct vu_msg *m)
{
	int fd = take_fd(m);

	if (fd < 0)
		return -EINVAL;
	if (s->backend_fd >= 0)
		close(s->backend_fd);
	s->backend_fd = fd;
	return 0;
}

/* Ask the front-end to read the config space again.  No reply is asked
 * for: the front-end answers by sending GET_CONFIG, which this thread
 * must be free to handle. */
static void notify_config_change(struct vu_server *s)
{
	int r;

	s->config_pending = true;
	if (s->backend_fd < 0 ||
	    !(s->protocol_features & (1ull << VU_PF_CONFIG)))
		return;
	r = send_msg(s->backend_fd, VU_BACKEND_CONFIG_CHANGE, VU_VERSION, NULL,
		     0, -1, MSG_DONTWAIT);
	if (r < 0)
		vu_log(s, "cannot send the config change message: %s",
		       strerror(-r));
	else
		s->config_pending = false;
}

int vu_server_change_disk(struct vu_server *s, int (*change)(void *opaque),
			  void *opaque)
{
	bool was_running[VBLK_MAX_QUEUES];
	int r, err;

	for (unsigned i = 0; i < s->nqueues; i++) {
		was_running[i] = s->queues[i].running;
		stop_queue(s, &s->queues[i]);
	}
	r = change(opaque);
	err = vblk_dev_update_capacity(s->dev);
	for (unsigned i = 0; i < s->nqueues; i++)
		if (was_running[i])
			start_queue(s, &s->queues[i]);
	if (err < 0)
		return err;
	if (r == 0)
		notify_config_change(s);
	return r;
}

/* Handle M.  Returns 0 or -errno for requests without a reply of their
 * own (reported through REPLY_ACK), or the result of sending the reply
 * (in *REPLIED). */
static int dispatch(struct vu_server *s, struct vu_msg *m, bool *replied)
{
	uint32_t index, num;
	struct vu_queue *q;

	*replied = false;
	switch (m->request) {
	case VU_GET_FEATURES:
		*replied = true;
		return reply_u64(s, m,
				 vblk_dev_features(s->dev) |
					 1ull << VU_F_PROTOCOL_FEATURES);
	case VU_SET_FEATURES:
		if (m->size < 8)
			return -EINVAL;
		s->features = payload_u64(m);
		return vblk_dev_set_features(
			s->dev,
			s->features & ~(1ull << VU_F_PROTOCOL_FEATURES));
	case VU_GET_PROTOCOL_FEATURES:
		*replied = true;
		return reply_u64(s, m, VU_PROTOCOL_FEATURES);
	case VU_SET_PROTOCOL_FEATURES:
		if (m->size < 8)
			return -EINVAL;
		s->protocol_features = payload_u64(m) & VU_PROTOCOL_FEATURES;
		return 0;
	case VU_SET_OWNER: return 0;
	case VU_RESET_OWNER:
		/* Deprecated; the spec suggests disabling all rings. */
		for (unsigned i = 0; i < s->nqueues; i++)
			stop_queue(s, &s->queues[i]);
		return 0;
	case VU_GET_QUEUE_NUM:
		*replied = true;
		return reply_u64(s, m, s->nqueues);
	case VU_SET_MEM_TABLE: return set_mem_table(s, m);
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
	case VU_GET_VRING_BASE:
		if (m->size < 8)
			return -EINVAL;
		payload_state(m, &index, &num);
		q = queue_of(s, index);
		if (!q)
			return -EINVAL;
		if (m->request == VU_SET_VRING_NUM) {
			if (num == 0 || num > VBLK_MAX_QUEUE_SIZE ||
			    (num & (num - 1)) || q->running)
				return -EINVAL;
			q->size = num;
		} else if (m->request == VU_SET_VRING_BASE) {
			if (num > UINT16_MAX || q->running)
				return -EINVAL;
			q->base = (uint16_t)num;
		} else if (m->request == VU_SET_VRING_ENABLE) {
			if (num > 1)
				return -EINVAL;
			q->enabled = num;
			process_queue(s, q);
		} else {
			uint8_t out[8];

			stop_queue(s, q);
			/* The ring is stopped until the next kick fd. */
			if (q->kick_fd >= 0)
				close(q->kick_fd);
			q->kick_fd = -1;
			num = q->base;
			memcpy(out, &index, 4);
			memcpy(out + 4, &num, 4);
			*replied = true;
			return send_reply(s, m, out, sizeof(out));
		}
		return 0;
	case VU_SET_VRING_ADDR: return set_vring_addr(s, m);
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR: return set_vring_fd(s, m);
	case VU_GET_CONFIG: *replied = true; return get_config(s, m);
	case VU_SET_CONFIG:
		/* No writable fields (no CONFIG_WCE). */
		return -EPERM;
	case VU_SET_SLAVE_REQ_FD: return set_backend_fd(s, m);
	case VU_GET_INFLIGHT_FD: *replied = true; return get_inflight_fd(s, m);
	case VU_SET_INFLIGHT_FD: return set_inflight_fd(s, m);
	case VU_RESET_DEVICE: reset_device(s); return 0;
	case VU_SET_STATUS:
		if (m->size < 8 || payload_u64(m) > UINT8_MAX)
			return -EINVAL;
		s->status = (uint8_t)payload_u64(m);
		return 0;
	case VU_GET_STATUS:
		*replied = true;
		return reply_u64(s, m, device_status(s));
	default:
		vu_log(s, "unsupported request %u", m->request);
		return -ENOTSUP;
	}
}

static int handle_msg(struct vu_server *s, struct vu_msg *m)
{
	bool replied;
	int r;

	if (s->verbose)
		vu_log(s, "request %u flags 0x%x size %u fds %u", m->request,
		       m->flags, m->size, m->nfds);
	r = dispatch(s, m, &replied);
	close_fds(m);
	if (replied)
		return r;
	if (r < 0)
		vu_log(s, "request %u failed: %s", m->request, strerror(-r));
	if ((m->flags & VU_FLAG_NEED_REPLY) &&
	    (s->protocol_features & (1ull << VU_PF_REPLY_ACK)))
		return reply_u64(s, m, r < 0 ? 1 : 0);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Main loop                                                               */

int vu_server_init(struct vu_server *s, struct vblk_dev *dev, bool verbose)
{
	memset(s, 0, sizeof(*s));
	s->dev = dev;
	s->conn = -1;
	s->backend_fd = -1;
	s->verbose = verbose;
	s->nqueues = vblk_dev_num_queues(dev);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0)
		return -errno;
	for (unsigned i = 0; i < s->nqueues; i++) {
		struct vu_queue *q = &s->queues[i];

		q->srv = s;
		q->index = i;
		q->kick_fd = -1;
		q->call_fd = -1;
		pthread_mutex_init(&q->call_lock, NULL);
	}
	vblk_dev_set_wake(dev, wake_loop, s);
	return 0;
}

int vu_server_watch(struct vu_server *s, int fd, int (*ready)(void *opaque),
		    void *opaque)
{
	if (s->nwatch == VU_MAX_WATCH)
		return -ENOSPC;
	s->watch[s->nwatch++] = (struct vu_watch){fd, ready, opaque};
	return 0;
}

/* One read takes an eventfd's whole count; more would block when the
 * front-end's descriptor is in blocking mode. */
static void drain_eventfd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
		fprintf(stderr, "vmm-blk: reading an eventfd: %s\n",
			strerror(errno));
}

/* The front-end went away: the device goes back to its initial state,
 * ready for the next one. */
static void end_connection(struct vu_server *s)
{
	reset_device(s);
	if (s->backend_fd >= 0)
		close(s->backend_fd);
	s->backend_fd = -1;
	s->protocol_features = 0;
	if (s->conn >= 0)
		close(s->conn);
	s->conn = -1;
}

/* Take the next front-end from LFD; 0, or -errno when LFD failed. */
static int accept_frontend(struct vu_server *s, int lfd)
{
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
			return 0;
		int err = errno;

		vu_log(s, "accept: %s", strerror(err));
		return -err;
	}
	if (s->verbose)
		vu_log(s, "front-end connected");
	s->conn = c;
	return 0;
}

/* Read and handle one message.  0 to go on; 1 when the front-end closed
 * the connection; -errno when the protocol failed. */
static int serve_message(struct vu_server *s, struct vu_msg *m)
{
	int r = recv_msg(s->conn, m);

	if (r == -ECONNRESET) {
		if (s->verbose)
			vu_log(s, "front-end disconnected");
		return 1;
	}
	if (r == 0)
		r = handle_msg(s, m);
	if (r < 0)
		vu_log(s, "connection failed: %s", strerror(-r));
	return r;
}

int vu_server_run(struct vu_server *s, int lfd, int conn)
{
	struct pollfd pfd[2 + VU_MAX_WATCH + VBLK_MAX_QUEUES];
	struct vu_msg *m = malloc(sizeof(*m));
	nfds_t nw = 2 + s->nwatch;
	bool stop = false;
	int ret = 0;

	if (!m) {
		if (conn >= 0)
			close(conn);
		return -ENOMEM;
	}
	s->conn = conn;
	while (!stop && (s->conn >= 0 || lfd >= 0)) {
		nfds_t n = 0;
		unsigned qmap[VBLK_MAX_QUEUES];

		pfd[n++] = (struct pollfd){.fd = s->conn >= 0 ? s->conn : lfd,
					   .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = s->wake_fd, .events = POLLIN};
		for (unsigned i = 0; i < s->nwatch; i++)
			pfd[n++] = (struct pollfd){.fd = s->watch[i].fd,
						   .events = POLLIN};
		for (unsigned i = 0; i < s->nqueues; i++) {
			if (s->queues[i].kick_fd < 0)
				continue;
			qmap[n - nw] = i;
			pfd[n++] = (struct pollfd){.fd = s->queues[i].kick_fd,
						   .events = POLLIN};
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (unsigned i = 0; i < s->nwatch; i++)
			if (pfd[2 + i].revents &&
			    s->watch[i].ready(s->watch[i].opaque) > 0)
				stop = true;
		if (stop)
			break;
		for (nfds_t i = nw; i < n; i++) {
			struct vu_queue *q = &s->queues[qmap[i - nw]];

			if (!pfd[i].revents || q->kick_fd != pfd[i].fd)
				continue;
			drain_eventfd(q->kick_fd);
			process_queue(s, q);
		}
		if (pfd[1].revents) {
			drain_eventfd(s->wake_fd);
			for (unsigned i = 0; i < s->nqueues; i++)
				process_queue(s, &s->queues[i]);
		}
		if (!pfd[0].revents)
			continue;
		if (s->conn < 0) {
			ret = accept_frontend(s, lfd);
			if (ret < 0)
				break;
			continue;
		}
		int r = serve_message(s, m);

		if (r == 0)
			continue;
		end_connection(s);
		/* Without a listener this was the only front-end; with one,
		 * a failed connection is logged and the next one served. */
		if (r < 0 && lfd < 0)
			ret = r;
	}
	if (s->conn >= 0)
		end_connection(s);
	free(m);
	return ret;
}

void vu_server_fini(struct vu_server *s)
{
	end_connection(s);
	for (unsigned i = 0; i < s->nqueues; i++)
		pthread_mutex_destroy(&s->queues[i].call_lock);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	s->wake_fd = -1;
}
