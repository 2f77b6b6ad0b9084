/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The vmm-blk daemon driven by a scripted vhost-user front-end over a
 * socketpair: feature and protocol negotiation, REPLY_ACK, GET_CONFIG,
 * a memfd memory table, rings with kick/call eventfds, real requests, ring
 * stop, malformed messages, and a clean exit with the data on disk when
 * the front-end goes away.  On a listening socket: serving the next
 * front-end after a disconnect, requests resubmitted from the inflight
 * area after a daemon was killed, RESET_DEVICE, SET/GET_STATUS, and an
 * online resize (control socket, SIGHUP) announced by a config change
 * message.  Needs the daemon (Linux); skipped otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "virtq_driver.h"
#include "vmm-blk/virtio_blk.h"

#define DISK_SIZE (1u << 20)
#define MEM_SIZE (2u << 20)
#define UVA_BASE 0x7f0000000000ull /* the front-end's address of memory */
#define GPA_BASE 0x100000000ull	   /* the guest's address of memory */
#define QSZ 16u
#define OFF_DESC 0x1000u
#define OFF_AVAIL 0x2000u
#define OFF_USED 0x3000u
#define OFF_HDR 0x4000u
#define OFF_STATUS 0x4100u
#define OFF_DATA 0x10000u

enum {
	GET_FEATURES = 1,
	SET_FEATURES = 2,
	SET_OWNER = 3,
	SET_MEM_TABLE = 5,
	SET_VRING_NUM = 8,
	SET_VRING_ADDR = 9,
	SET_VRING_BASE = 10,
	GET_VRING_BASE = 11,
	SET_VRING_KICK = 12,
	SET_VRING_CALL = 13,
	GET_PROTOCOL_FEATURES = 15,
	SET_PROTOCOL_FEATURES = 16,
	GET_QUEUE_NUM = 17,
	SET_VRING_ENABLE = 18,
	SET_SLAVE_REQ_FD = 21,
	GET_CONFIG = 24,
	GET_INFLIGHT_FD = 31,
	SET_INFLIGHT_FD = 32,
	RESET_DEVICE = 34,
	SET_STATUS = 39,
	GET_STATUS = 40,
};
#define NEED_REPLY 0x8u
#define PF_MQ (1ull << 0)
#define PF_REPLY_ACK (1ull << 3)
#define PF_BACKEND_REQ (1ull << 5)
#define PF_CONFIG (1ull << 9)
#define PF_INFLIGHT (1ull << 12)
#define PF_RESET_DEVICE (1ull << 13)
#define PF_STATUS (1ull << 16)
#define F_PROTOCOL_FEATURES (1ull << 30)
#define BACKEND_CONFIG_CHANGE 2
/* Inflight area of one queue of QSZ entries (vhost-user.rst layout). */
#define INF_HDR 16
#define INF_DESC(i) (INF_HDR + 16 * (i))
#define INF_QUEUE_BYTES ((INF_HDR + 16 * QSZ + 63) / 64 * 64)

static int sock = -1;
static pid_t daemon_pid = -1;
static uint8_t *mem;
static int mem_fd = -1, kick_fd = -1, call_fd = -1;
static uint8_t disk[DISK_SIZE];
static uint16_t avail_idx;
static int listen_fd = -1;   /* the daemon's listening socket */
static int inflight_fd = -1; /* the inflight area, as QEMU keeps it */
static uint8_t *inflight;    /* mapped here */
static uint64_t inflight_size;
static int backend_sock = -1; /* our end of the back-end channel */

static void send_msg(uint32_t req, uint32_t flags, const void *payload,
		     uint32_t size, const int *fds, int nfds)
{
	uint8_t buf[12 + 512];
	union {
		char b[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {buf, 12 + size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	flags |= 1;
	ck_assert_uint_le(size, 512);
	memcpy(buf, &req, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (size) /* payload may be NULL for bodiless messages */
		memcpy(buf + 12, payload, size);
	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	ck_assert_int_eq(sendmsg(sock, &mh, MSG_NOSIGNAL),
			 (ssize_t)(12 + size));
}

static void recv_full(void *buf, size_t len)
{
	uint8_t *p = buf;
	struct pollfd pfd = {.fd = sock, .events = POLLIN};

	while (len) {
		ssize_t n;

		ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
		n = recv(sock, p, len, 0);
		ck_assert_int_gt(n, 0);
		p += n;
		len -= (size_t)n;
	}
}

/* Receive the reply to REQ; returns its payload size. */
static uint32_t recv_reply(uint32_t req, void *payload, uint32_t cap)
{
	uint32_t hdr[3];

	recv_full(hdr, sizeof(hdr));
	ck_assert_uint_eq(hdr[0], req);
	ck_assert_uint_eq(hdr[1], 0x5); /* version 1, reply */
	ck_assert_uint_le(hdr[2], cap);
	recv_full(payload, hdr[2]);
	return hdr[2];
}

/* Receive the reply to REQ with the descriptor it carries (in *FD). */
static uint32_t recv_reply_fd(uint32_t req, void *payload, uint32_t cap,
			      int *fd)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	uint32_t hdr[3];
	struct iovec iov = {hdr, sizeof(hdr)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.b,
			    .msg_controllen = sizeof(ctl.b)};
	struct pollfd pfd = {.fd = sock, .events = POLLIN};
	struct cmsghdr *c;

	ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
	ck_assert_int_eq(recvmsg(sock, &mh, MSG_CMSG_CLOEXEC), sizeof(hdr));
	*fd = -1;
	c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	ck_assert_uint_eq(hdr[0], req);
	ck_assert_uint_eq(hdr[1], 0x5);
	ck_assert_uint_le(hdr[2], cap);
	recv_full(payload, hdr[2]);
	return hdr[2];
}

static uint64_t recv_u64(uint32_t req)
{
	uint64_t v;

	ck_assert_uint_eq(recv_reply(req, &v, sizeof(v)), 8);
	return v;
}

/* Send a request that has no reply of its own with NEED_REPLY; return
 * the acknowledgement (0 = success). */
static uint64_t send_acked(uint32_t req, const void *payload, uint32_t size,
			   const int *fds, int nfds)
{
	send_msg(req, NEED_REPLY, payload, size, fds, nfds);
	return recv_u64(req);
}

static uint64_t send_u64_acked(uint32_t req, uint64_t v)
{
	return send_acked(req, &v, 8, NULL, 0);
}

static uint64_t send_state_acked(uint32_t req, uint32_t index, uint32_t num)
{
	uint32_t st[2] = {index, num};

	return send_acked(req, st, 8, NULL, 0);
}

/* What the daemon serves: disk.raw, or an NBD URI serving it. */
static const char *image = "disk.raw";

/* Run the daemon on socket FD (inherited) with option EXTRA if any. */
static void spawn_daemon(int fd, const char *extra, const char *extra_arg)
{
	const char *exe = getenv("VMMBLK");
	char fdarg[32];

	ck_assert_ptr_nonnull(exe);
	daemon_pid = fork();
	ck_assert_int_ge(daemon_pid, 0);
	if (daemon_pid == 0) {
		int dfd = dup(fd); /* without CLOEXEC */
		const char *argv[12];
		int n = 0;

		snprintf(fdarg, sizeof(fdarg), "%d", dfd);
		argv[n++] = exe;
		argv[n++] = "--fd";
		argv[n++] = fdarg;
		argv[n++] = "--num-queues";
		argv[n++] = "2";
		argv[n++] = "--serial";
		argv[n++] = "vhost-test";
		if (extra)
			argv[n++] = extra;
		if (extra_arg)
			argv[n++] = extra_arg;
		argv[n++] = image;
		argv[n] = NULL;
		execv(exe, (char *const *)argv);
		_exit(127);
	}
}

/* The daemon on a connected socketpair: it serves one front-end. */
static void start_daemon(const char *extra)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	spawn_daemon(sv[1], extra, NULL);
	close(sv[1]);
	sock = sv[0];
}

/* Connect to the daemon's listening socket, as QEMU's client chardev
 * does (also while the daemon is busy: the backlog holds us). */
static void connect_frontend(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	strcpy(sa.sun_path, "vu.sock");
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(connect(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

/* The daemon on a listening socket of ours (so it listens before it
 * runs), then connect to it. */
static void start_listening_daemon(const char *extra, const char *extra_arg)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (listen_fd < 0) {
		strcpy(sa.sun_path, "vu.sock");
		listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(listen_fd, 0);
		ck_assert_int_eq(bind(listen_fd, (struct sockaddr *)&sa,
				      sizeof(sa)),
				 0);
		ck_assert_int_eq(listen(listen_fd, 4), 0);
	}
	spawn_daemon(listen_fd, extra, extra_arg);
	connect_frontend();
}

/* Close the connection and return the daemon's exit status. */
static int stop_daemon(void)
{
	int status;

	close(sock);
	sock = -1;
	ck_assert_int_eq(waitpid(daemon_pid, &status, 0), daemon_pid);
	daemon_pid = -1;
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void setup(void)
{
	tu_enter_tmpdir();
	tu_fill_random(disk, sizeof(disk), 5);
	tu_write_file("disk.raw", disk, sizeof(disk), 0);
	mem_fd = memfd_create("guest", MFD_CLOEXEC);
	ck_assert_int_ge(mem_fd, 0);
	ck_assert_int_eq(ftruncate(mem_fd, MEM_SIZE), 0);
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mem_fd,
		   0);
	ck_assert(mem != MAP_FAILED);
	kick_fd = eventfd(0, EFD_CLOEXEC);
	call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert(kick_fd >= 0 && call_fd >= 0);
	avail_idx = 0;
}

static void teardown(void)
{
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	if (backend_sock >= 0)
		close(backend_sock);
	backend_sock = -1;
	if (inflight) {
		munmap(inflight, inflight_size);
		close(inflight_fd);
	}
	inflight = NULL;
	inflight_fd = -1;
	if (sock >= 0)
		close(sock);
	sock = -1;
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, NULL, 0);
	}
	daemon_pid = -1;
	munmap(mem, MEM_SIZE);
	close(mem_fd);
	close(kick_fd);
	close(call_fd);
	tu_leave_tmpdir();
}

enum { UP_INFLIGHT = 1, UP_BACKEND = 2 };

/* QEMU's GET_INFLIGHT_FD (once, the area is kept) and SET_INFLIGHT_FD. */
static void set_inflight(void)
{
	uint8_t desc[24] = {0}, reply[24];
	uint16_t nq = 1, qsz = QSZ;
	uint64_t off;

	memcpy(desc + 16, &nq, 2);
	memcpy(desc + 18, &qsz, 2);
	if (!inflight) {
		send_msg(GET_INFLIGHT_FD, 0, desc, 24, NULL, 0);
		ck_assert_uint_eq(recv_reply_fd(GET_INFLIGHT_FD, reply,
						sizeof(reply), &inflight_fd),
				  24);
		ck_assert_int_ge(inflight_fd, 0);
		memcpy(&inflight_size, reply, 8);
		memcpy(&off, reply + 8, 8);
		ck_assert_uint_eq(off, 0);
		ck_assert_uint_ge(inflight_size, INF_QUEUE_BYTES);
		inflight = mmap(NULL, inflight_size, PROT_READ | PROT_WRITE,
				MAP_SHARED, inflight_fd, 0);
		ck_assert(inflight != MAP_FAILED);
	}
	memcpy(desc, &inflight_size, 8);
	ck_assert_uint_eq(send_acked(SET_INFLIGHT_FD, desc, 24, &inflight_fd,
				     1),
			  0);
}

/* QEMU's SET_SLAVE_REQ_FD: a socket for the daemon's own requests. */
static void set_backend_channel(void)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	ck_assert_uint_eq(send_acked(SET_SLAVE_REQ_FD, NULL, 0, &sv[1], 1), 0);
	close(sv[1]);
	if (backend_sock >= 0)
		close(backend_sock);
	backend_sock = sv[0];
}

static void bring_up_with(unsigned opts, uint16_t base);

/* Negotiate like QEMU does and start queue 0. */
static void bring_up(void)
{
	bring_up_with(0, 0);
}

/* Same, with the features in OPTS, resuming the ring at BASE. */
static void bring_up_with(unsigned opts, uint16_t base)
{
	uint64_t f, pf;
	uint8_t region[40] = {0};
	uint32_t n = 1;
	uint64_t v;
	uint8_t addr[40] = {0};
	uint32_t idx = 0;

	send_msg(GET_FEATURES, 0, NULL, 0, NULL, 0);
	f = recv_u64(GET_FEATURES);
	ck_assert(f & F_PROTOCOL_FEATURES);
	ck_assert(f & (1ull << VBLK_F_VERSION_1));
	send_msg(GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0);
	pf = recv_u64(GET_PROTOCOL_FEATURES);
	ck_assert((pf & (PF_MQ | PF_REPLY_ACK | PF_CONFIG | PF_BACKEND_REQ |
			 PF_INFLIGHT | PF_RESET_DEVICE | PF_STATUS)) ==
		  (PF_MQ | PF_REPLY_ACK | PF_CONFIG | PF_BACKEND_REQ |
		   PF_INFLIGHT | PF_RESET_DEVICE | PF_STATUS));
	send_msg(SET_PROTOCOL_FEATURES, 0, &pf, 8, NULL, 0);
	send_msg(GET_QUEUE_NUM, 0, NULL, 0, NULL, 0);
	ck_assert_uint_eq(recv_u64(GET_QUEUE_NUM), 2);
	if (opts & UP_BACKEND)
		set_backend_channel();
	ck_assert_uint_eq(send_acked(SET_OWNER, NULL, 0, NULL, 0), 0);
	if (opts & UP_INFLIGHT)
		set_inflight();
	ck_assert_uint_eq(
		send_u64_acked(SET_FEATURES,
			       F_PROTOCOL_FEATURES | 1ull << VBLK_F_VERSION_1 |
				       1ull << VBLK_F_RING_EVENT_IDX |
				       1ull << VBLK_F_RING_INDIRECT_DESC),
		0);

	memcpy(region, &n, 4);
	v = GPA_BASE;
	memcpy(region + 8, &v, 8);
	v = MEM_SIZE;
	memcpy(region + 16, &v, 8);
	v = UVA_BASE;
	memcpy(region + 24, &v, 8);
	ck_assert_uint_eq(send_acked(SET_MEM_TABLE, region, 40, &mem_fd, 1), 0);

	ck_assert_uint_eq(send_state_acked(SET_VRING_NUM, 0, QSZ), 0);
	ck_assert_uint_eq(send_state_acked(SET_VRING_BASE, 0, base), 0);
	memcpy(addr, &idx, 4);
	v = UVA_BASE + OFF_DESC;
	memcpy(addr + 8, &v, 8);
	v = UVA_BASE + OFF_USED;
	memcpy(addr + 16, &v, 8);
	v = UVA_BASE + OFF_AVAIL;
	memcpy(addr + 24, &v, 8);
	ck_assert_uint_eq(send_acked(SET_VRING_ADDR, addr, 40, NULL, 0), 0);
	v = 0;
	ck_assert_uint_eq(send_acked(SET_VRING_CALL, &v, 8, &call_fd, 1), 0);
	ck_assert_uint_eq(send_acked(SET_VRING_KICK, &v, 8, &kick_fd, 1), 0);
	ck_assert_uint_eq(send_state_acked(SET_VRING_ENABLE, 0, 1), 0);
}

static void put_desc(unsigned i, uint32_t off, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	vq_put_desc(mem + OFF_DESC, i, GPA_BASE + off, len, flags, next);
}

/* Run one header/data/status request through the daemon. */
static uint8_t run(uint32_t type, uint64_t sector, uint32_t len, bool writable)
{
	/* Requests that broke a ring never reach the used ring. */
	uint16_t want = __atomic_load_n((uint16_t *)(mem + OFF_USED + 2),
					__ATOMIC_ACQUIRE) +
			1;
	uint64_t one = 1, got;
	struct pollfd pfd = {.fd = call_fd, .events = POLLIN};

	memset(mem + OFF_HDR, 0, 16);
	memcpy(mem + OFF_HDR, &type, 4);
	memcpy(mem + OFF_HDR + 8, &sector, 8);
	mem[OFF_STATUS] = 0xee;
	put_desc(0, OFF_HDR, 16, 1, 1);
	put_desc(1, OFF_DATA, len, writable ? 3 : 1, 2);
	put_desc(2, OFF_STATUS, 1, 2, 0);
	memcpy(mem + OFF_AVAIL + 4 + 2 * (avail_idx % QSZ), &(uint16_t){0}, 2);
	/* used_event: interrupt on every completion. */
	memcpy(mem + OFF_AVAIL + 4 + 2 * QSZ, &(uint16_t){want - 1}, 2);
	avail_idx++;
	__atomic_store_n((uint16_t *)(mem + OFF_AVAIL + 2), avail_idx,
			 __ATOMIC_RELEASE);
	ck_assert_int_eq(write(kick_fd, &one, 8), 8);
	while (__atomic_load_n((uint16_t *)(mem + OFF_USED + 2),
			       __ATOMIC_ACQUIRE) != want) {
		ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
		ck_assert_int_eq(read(call_fd, &got, 8), 8);
	}
	return mem[OFF_STATUS];
}

static uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)(mem + OFF_USED + 2),
			       __ATOMIC_ACQUIRE);
}

/* Wait until the used index is WANT.  used_event asks for an interrupt on
 * the next completion; the index is read again after setting it, as a
 * driver does, so a completion in between is never missed. */
static void wait_used(uint16_t want)
{
	struct pollfd pfd = {.fd = call_fd, .events = POLLIN};
	uint64_t got;

	for (;;) {
		uint16_t u = used_idx();

		if (u == want)
			return;
		__atomic_store_n((uint16_t *)(mem + OFF_AVAIL + 4 + 2 * QSZ), u,
				 __ATOMIC_SEQ_CST);
		if (used_idx() != u)
			continue;
		ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
		ck_assert_int_eq(read(call_fd, &got, 8), 8);
	}
}

/* A request in descriptors HEAD..HEAD+2 with its own header and status
 * byte; DATA_OFF is its buffer. */
static void put_request(uint16_t head, uint32_t type, uint64_t sector,
			uint32_t data_off, uint32_t len, bool writable)
{
	uint32_t hdr = OFF_HDR + 32 * head;

	vq_put_blk_hdr(mem + hdr, type, sector);
	mem[OFF_STATUS + head] = 0xee;
	put_desc(head, hdr, 16, 1, head + 1);
	put_desc(head + 1, data_off, len, writable ? 3 : 1, head + 2);
	put_desc(head + 2, OFF_STATUS + head, 1, 2, 0);
}

/* Make HEAD the next available entry (no kick). */
static void publish(uint16_t head)
{
	vq_make_avail(mem + OFF_AVAIL, QSZ, &avail_idx, head);
}

static void kick(void)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(kick_fd, &one, 8), 8);
}

/* SIGTERM: the daemon ends cleanly (exit 0). */
static void terminate_daemon(void)
{
	int status;

	ck_assert_int_eq(kill(daemon_pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(daemon_pid, &status, 0), daemon_pid);
	daemon_pid = -1;
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

static uint64_t config_capacity(void)
{
	uint8_t cfg[12 + 8] = {0}, reply[12 + 8];
	uint32_t size = 8;
	uint64_t cap;

	memcpy(cfg + 4, &size, 4);
	send_msg(GET_CONFIG, 0, cfg, sizeof(cfg), NULL, 0);
	ck_assert_uint_eq(recv_reply(GET_CONFIG, reply, sizeof(reply)),
			  sizeof(reply));
	memcpy(&cap, reply + 12, 8);
	return cap;
}

START_TEST(negotiate_and_serve)
{
	uint8_t cfg[12 + 60] = {0}, reply[12 + 256];
	uint32_t size = 60;
	uint64_t cap;
	uint32_t st[2];
	uint8_t *file;

	start_daemon(NULL);
	/* GET_CONFIG before anything else, as QEMU does at realize. */
	memcpy(cfg + 4, &size, 4);
	send_msg(GET_CONFIG, 0, cfg, sizeof(cfg), NULL, 0);
	ck_assert_uint_eq(recv_reply(GET_CONFIG, reply, sizeof(reply)),
			  sizeof(cfg));
	memcpy(&cap, reply + 12, 8);
	ck_assert_uint_eq(cap, DISK_SIZE / 512);
	bring_up();

	ck_assert_uint_eq(run(VBLK_T_IN, 16, 8192, true), VBLK_S_OK);
	ck_assert(memcmp(mem + OFF_DATA, disk + 16 * 512, 8192) == 0);
	tu_fill_random(mem + OFF_DATA, 4096, 99);
	memcpy(disk + 4096, mem + OFF_DATA, 4096);
	ck_assert_uint_eq(run(VBLK_T_OUT, 8, 4096, false), VBLK_S_OK);
	ck_assert_uint_eq(run(VBLK_T_GET_ID, 0, 20, true), VBLK_S_OK);
	ck_assert(memcmp(mem + OFF_DATA, "vhost-test", 11) == 0);
	ck_assert_uint_eq(run(VBLK_T_IN, DISK_SIZE / 512, 512, true),
			  VBLK_S_IOERR);

	/* Stopping the ring reports where to resume. */
	st[0] = 0;
	st[1] = 0;
	send_msg(GET_VRING_BASE, 0, st, 8, NULL, 0);
	ck_assert_uint_eq(recv_reply(GET_VRING_BASE, st, 8), 8);
	ck_assert_uint_eq(st[0], 0);
	ck_assert_uint_eq(st[1], 4);
	/* Restart it where it stopped, as QEMU does after a device reset. */
	{
		uint64_t v = 0;

		ck_assert_uint_eq(send_state_acked(SET_VRING_BASE, 0, 4), 0);
		ck_assert_uint_eq(send_acked(SET_VRING_KICK, &v, 8, &kick_fd,
					     1),
				  0);
	}
	ck_assert_uint_eq(run(VBLK_T_IN, 8, 4096, true), VBLK_S_OK);
	ck_assert(memcmp(mem + OFF_DATA, disk + 4096, 4096) == 0);

	/* Front-end gone: the daemon flushes and exits 0. */
	ck_assert_int_eq(stop_daemon(), 0);
	file = malloc(DISK_SIZE);
	ck_assert_ptr_nonnull(file);
	tu_read_at("disk.raw", file, DISK_SIZE, 0);
	ck_assert(memcmp(file, disk, DISK_SIZE) == 0);
	free(file);
}
END_TEST

#ifdef HAVE_NBD
/* nbdkit serving disk.raw; sets IMAGE to its URI. */
static pid_t start_nbdkit(char *uri, size_t urilen)
{
	pid_t pid = tu_start_nbdkit("disk.raw", uri, urilen);
	image = uri;
	return pid;
}

/* An image whose bytes live behind NBD: served, written through to the
 * export, flushed at exit; and a daemon that cannot reach its server
 * says so and exits 1. */
START_TEST(serves_nbd_export)
{
	char uri[600];
	uint8_t *file;
	pid_t nbdkit;

	if (!tu_have_program("nbdkit")) {
		fprintf(stderr, "nbdkit not found: NBD test skipped\n");
		return;
	}
	nbdkit = start_nbdkit(uri, sizeof(uri));
	start_daemon(NULL);
	bring_up();
	ck_assert_uint_eq(run(VBLK_T_IN, 16, 8192, true), VBLK_S_OK);
	ck_assert(memcmp(mem + OFF_DATA, disk + 16 * 512, 8192) == 0);
	tu_fill_random(mem + OFF_DATA, 8192, 77);
	memcpy(disk + 64 * 512, mem + OFF_DATA, 8192);
	ck_assert_uint_eq(run(VBLK_T_OUT, 64, 8192, false), VBLK_S_OK);
	ck_assert_uint_eq(run(VBLK_T_FLUSH, 0, 0, false), VBLK_S_OK);
	/* SIGHUP cannot take a new size from an export: still served. */
	ck_assert_int_eq(kill(daemon_pid, SIGHUP), 0);
	ck_assert_uint_eq(run(VBLK_T_IN, 64, 8192, true), VBLK_S_OK);
	ck_assert(memcmp(mem + OFF_DATA, disk + 64 * 512, 8192) == 0);
	ck_assert_uint_eq(run(VBLK_T_IN, DISK_SIZE / 512, 512, true),
			  VBLK_S_IOERR);
	ck_assert_int_eq(stop_daemon(), 0);
	ck_assert_int_eq(kill(nbdkit, SIGTERM), 0);
	ck_assert_int_eq(waitpid(nbdkit, NULL, 0), nbdkit);

	file = malloc(DISK_SIZE);
	ck_assert_ptr_nonnull(file);
	tu_read_at("disk.raw", file, DISK_SIZE, 0);
	ck_assert(memcmp(file, disk, DISK_SIZE) == 0);
	free(file);

	/* The server is gone: no device, a message naming the URI. */
	start_daemon(NULL);
	ck_assert_int_eq(stop_daemon(), 1);
	image = "disk.raw";
}
END_TEST
#endif

START_TEST(malformed_messages)
{
	uint8_t region[8 + 32 * 9] = {0};
	uint32_t n = 9, st[2] = {7, 16};
	uint8_t cfg[12] = {0};
	uint8_t reply[64];
	uint32_t big = 300;

	start_daemon(NULL);
	send_msg(GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0);
	{
		uint64_t pf = recv_u64(GET_PROTOCOL_FEATURES);

		send_msg(SET_PROTOCOL_FEATURES, 0, &pf, 8, NULL, 0);
	}
	/* Too many regions, no descriptors. */
	memcpy(region, &n, 4);
	ck_assert_uint_ne(send_acked(SET_MEM_TABLE, region, sizeof(region),
				     NULL, 0),
			  0);
	/* A region larger than its file (it would fault when touched). */
	{
		uint8_t one[40] = {0};
		uint64_t v;

		n = 1;
		memcpy(one, &n, 4);
		v = 2 * (uint64_t)MEM_SIZE;
		memcpy(one + 16, &v, 8);
		v = UVA_BASE;
		memcpy(one + 24, &v, 8);
		ck_assert_uint_ne(send_acked(SET_MEM_TABLE, one, 40, &mem_fd,
					     1),
				  0);
	}
	/* Queue index out of range; bad ring size. */
	ck_assert_uint_ne(send_acked(SET_VRING_NUM, st, 8, NULL, 0), 0);
	st[0] = 0;
	st[1] = 12;
	ck_assert_uint_ne(send_acked(SET_VRING_NUM, st, 8, NULL, 0), 0);
	/* Payload too short. */
	ck_assert_uint_ne(send_acked(SET_VRING_ADDR, st, 8, NULL, 0), 0);
	/* Features the device does not offer. */
	ck_assert_uint_ne(send_u64_acked(SET_FEATURES, 1ull << 62), 0);
	/* Unknown request. */
	ck_assert_uint_ne(send_acked(99, NULL, 0, NULL, 0), 0);
	/* Config past 256 bytes: an empty reply. */
	memcpy(cfg + 4, &big, 4);
	send_msg(GET_CONFIG, 0, cfg, sizeof(cfg), NULL, 0);
	ck_assert_uint_eq(recv_reply(GET_CONFIG, reply, sizeof(reply)), 0);
	/* Still serving. */
	send_msg(GET_QUEUE_NUM, 0, NULL, 0, NULL, 0);
	ck_assert_uint_eq(recv_u64(GET_QUEUE_NUM), 2);
	/* A message claiming a huge payload ends the connection: exit 1. */
	{
		uint32_t hdr[3] = {GET_FEATURES, 1, 1u << 30};

		ck_assert_int_eq(send(sock, hdr, sizeof(hdr), MSG_NOSIGNAL),
				 12);
	}
	ck_assert_int_eq(stop_daemon(), 1);
}
END_TEST

START_TEST(sigterm_while_serving)
{
	int status;

	start_daemon(NULL);
	bring_up();
	ck_assert_uint_eq(run(VBLK_T_IN, 0, 4096, true), VBLK_S_OK);
	ck_assert_int_eq(kill(daemon_pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(daemon_pid, &status, 0), daemon_pid);
	daemon_pid = -1;
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(read_only_daemon)
{
	start_daemon("--read-only");
	send_msg(GET_FEATURES, 0, NULL, 0, NULL, 0);
	ck_assert(recv_u64(GET_FEATURES) & (1ull << VBLK_F_RO));
	bring_up();
	ck_assert_uint_eq(run(VBLK_T_OUT, 0, 4096, false), VBLK_S_IOERR);
	ck_assert_int_eq(stop_daemon(), 0);
}
END_TEST

/* A front-end that goes away and comes back (QEMU's reconnect=1, a guest
 * restarted) is served again with the image still open. */
START_TEST(serves_next_frontend)
{
	uint8_t buf[4096];

	start_listening_daemon(NULL, NULL);
	bring_up();
	tu_fill_random(mem + OFF_DATA, 4096, 7);
	memcpy(disk + 8192, mem + OFF_DATA, 4096);
	ck_assert_uint_eq(run(VBLK_T_OUT, 16, 4096, false), VBLK_S_OK);
	close(sock);
	sock = -1;

	/* The daemon resets the device: the new front-end negotiates from
	 * scratch and resumes the ring where the old one left it. */
	connect_frontend();
	bring_up_with(0, avail_idx);
	memset(mem + OFF_DATA, 0, 4096);
	ck_assert_uint_eq(run(VBLK_T_IN, 16, 4096, true), VBLK_S_OK);
	ck_assert(memcmp(mem + OFF_DATA, disk + 8192, 4096) == 0);
	close(sock);
	sock = -1;

	/* A third one, even after the previous one broke the protocol. */
	connect_frontend();
	{
		uint32_t hdr[3] = {GET_FEATURES, 1, 1u << 30};

		ck_assert_int_eq(send(sock, hdr, sizeof(hdr), MSG_NOSIGNAL),
				 12);
	}
	close(sock);
	connect_frontend();
	send_msg(GET_QUEUE_NUM, 0, NULL, 0, NULL, 0);
	ck_assert_uint_eq(recv_u64(GET_QUEUE_NUM), 2);
	terminate_daemon();
	tu_read_at("disk.raw", buf, 4096, 8192);
	ck_assert(memcmp(buf, disk + 8192, 4096) == 0);
}
END_TEST

static uint8_t *inflight_desc(unsigned head)
{
	return inflight + INF_DESC(head);
}

static void inflight_set(unsigned head, uint8_t on, uint64_t counter)
{
	inflight_desc(head)[0] = on;
	memcpy(inflight_desc(head) + 8, &counter, 8);
}

static uint16_t inflight_u16(unsigned off)
{
	uint16_t v;

	memcpy(&v, inflight + off, 2);
	return v;
}

/*
 * A daemon killed with requests taken and not answered: the next one
 * finds them in the inflight area the front-end kept, settles the batch
 * the dead one had published, and resubmits the rest in the order they
 * were first taken (not ring order).
 */
START_TEST(inflight_resubmitted_after_kill)
{
	uint8_t p1[4096], p2[4096], p3[4096], buf[4096];
	uint16_t one_used, last_batch = 6;
	uint32_t elem[2] = {6, 1};

	start_listening_daemon(NULL, NULL);
	bring_up_with(UP_INFLIGHT, 0);
	ck_assert_uint_eq(run(VBLK_T_IN, 0, 4096, true), VBLK_S_OK);
	/* The area is in use and nothing is in flight. */
	ck_assert_uint_eq(inflight_u16(8), 1);	  /* version */
	ck_assert_uint_eq(inflight_u16(10), QSZ); /* desc_num */
	ck_assert_uint_eq(inflight_u16(14), 1);	  /* used_idx */
	ck_assert_uint_eq(inflight_desc(0)[0], 0);
	ck_assert_int_eq(kill(daemon_pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(daemon_pid, NULL, 0), daemon_pid);
	daemon_pid = -1;
	close(sock);
	sock = -1;

	/* What a daemon killed at the worst moment leaves: X (heads 0-2)
	 * and Y (3-5) both write sector 0, Y was taken first; Z (6-8) was
	 * answered on the used ring but still marked in flight. */
	tu_fill_random(p1, sizeof(p1), 11);
	tu_fill_random(p2, sizeof(p2), 12);
	tu_fill_random(p3, sizeof(p3), 13);
	memcpy(mem + OFF_DATA, p1, 4096);
	memcpy(mem + OFF_DATA + 0x1000, p2, 4096);
	memcpy(mem + OFF_DATA + 0x2000, p3, 4096);
	put_request(0, VBLK_T_OUT, 0, OFF_DATA, 4096, false);
	put_request(3, VBLK_T_OUT, 0, OFF_DATA + 0x1000, 4096, false);
	put_request(6, VBLK_T_OUT, 64, OFF_DATA + 0x2000, 4096, false);
	publish(0);
	publish(3);
	publish(6);
	inflight_set(3, 1, 5);
	inflight_set(0, 1, 6);
	inflight_set(6, 1, 4);
	memcpy(mem + OFF_USED + 4 + 8 * 1, elem, 8);
	one_used = 2;
	__atomic_store_n((uint16_t *)(mem + OFF_USED + 2), one_used,
			 __ATOMIC_RELEASE);
	memcpy(inflight + 12, &last_batch, 2); /* last_batch_head */

	/* The new daemon, given the area and the base QEMU computes after
	 * a lost connection (the used index). */
	start_listening_daemon(NULL, NULL);
	bring_up_with(UP_INFLIGHT, 2);
	wait_used(4);
	ck_assert_uint_eq(mem[OFF_STATUS + 0], VBLK_S_OK);
	ck_assert_uint_eq(mem[OFF_STATUS + 3], VBLK_S_OK);
	ck_assert_uint_eq(mem[OFF_STATUS + 6], 0xee); /* not run again */
	ck_assert_uint_eq(inflight_desc(0)[0], 0);
	ck_assert_uint_eq(inflight_desc(3)[0], 0);
	ck_assert_uint_eq(inflight_desc(6)[0], 0);
	ck_assert_uint_eq(inflight_u16(14), 4);

	/* Y then X: X's data is what the disk holds; Z's never landed. */
	ck_assert_uint_eq(run(VBLK_T_IN, 0, 4096, true), VBLK_S_OK);
	ck_assert(memcmp(mem + OFF_DATA, p1, 4096) == 0);
	terminate_daemon();
	tu_read_at("disk.raw", buf, 4096, 0);
	ck_assert(memcmp(buf, p1, 4096) == 0);
	tu_read_at("disk.raw", buf, 4096, 64 * 512);
	ck_assert(memcmp(buf, disk + 64 * 512, 4096) == 0);
}
END_TEST

/* A daemon killed after publishing an answer on the used ring and before
 * signalling the call eventfd: the driver, which asked to hear of that
 * entry (used_event), would wait forever, since with event indexes later
 * answers do not interrupt it.  The next daemon signals each queue once
 * when it starts. */
START_TEST(answer_published_before_kill_is_signalled)
{
	uint32_t elem[2] = {0, 1};
	uint64_t got;
	struct pollfd pfd = {.fd = call_fd, .events = POLLIN};

	start_listening_daemon(NULL, NULL);
	bring_up_with(UP_INFLIGHT, 0);
	ck_assert_uint_eq(run(VBLK_T_IN, 0, 4096, true), VBLK_S_OK);
	ck_assert_int_eq(kill(daemon_pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(daemon_pid, NULL, 0), daemon_pid);
	daemon_pid = -1;
	close(sock);
	sock = -1;

	/* The second request, answered and published (used index 2, the
	 * area agreeing) while the driver waits to hear of entry 1. */
	put_request(0, VBLK_T_IN, 0, OFF_DATA, 4096, true);
	publish(0);
	memcpy(mem + OFF_USED + 4 + 8 * 1, elem, 8);
	__atomic_store_n((uint16_t *)(mem + OFF_AVAIL + 4 + 2 * QSZ), 1,
			 __ATOMIC_SEQ_CST);
	__atomic_store_n((uint16_t *)(mem + OFF_USED + 2), 2, __ATOMIC_RELEASE);
	memcpy(inflight + 14, &(uint16_t){2}, 2); /* used_idx */
	while (read(call_fd, &got, 8) == 8)
		; /* the first daemon's signals */

	start_listening_daemon(NULL, NULL);
	bring_up_with(UP_INFLIGHT, 2);
	ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
	ck_assert_int_eq(read(call_fd, &got, 8), 8);
	ck_assert_uint_eq(used_idx(), 2); /* nothing was run again */
	ck_assert_uint_eq(run(VBLK_T_IN, 0, 4096, true), VBLK_S_OK);
	terminate_daemon();
}
END_TEST

/* SET_INFLIGHT_FD refuses an area too small for its description, for
 * more queues than the device has, or without a descriptor. */
START_TEST(inflight_area_checked)
{
	uint8_t desc[24] = {0};
	uint16_t nq = 1, qsz = 4096;
	int fd;

	start_listening_daemon(NULL, NULL);
	send_msg(GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0);
	{
		uint64_t pf = recv_u64(GET_PROTOCOL_FEATURES);

		send_msg(SET_PROTOCOL_FEATURES, 0, &pf, 8, NULL, 0);
	}
	/* Too small for its description. */
	fd = memfd_create("small", MFD_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	memcpy(desc, &(uint64_t){4096}, 8);
	memcpy(desc + 16, &nq, 2);
	memcpy(desc + 18, &qsz, 2);
	ck_assert_uint_ne(send_acked(SET_INFLIGHT_FD, desc, 24, &fd, 1), 0);
	/* More queues than the device has. */
	nq = 3;
	qsz = 16;
	memcpy(desc + 16, &nq, 2);
	memcpy(desc + 18, &qsz, 2);
	ck_assert_uint_ne(send_acked(SET_INFLIGHT_FD, desc, 24, &fd, 1), 0);
	/* No descriptor. */
	nq = 1;
	memcpy(desc + 16, &nq, 2);
	ck_assert_uint_ne(send_acked(SET_INFLIGHT_FD, desc, 24, NULL, 0), 0);
	close(fd);
	send_msg(GET_QUEUE_NUM, 0, NULL, 0, NULL, 0);
	ck_assert_uint_eq(recv_u64(GET_QUEUE_NUM), 2);
	terminate_daemon();
}
END_TEST

/* SET_STATUS/GET_STATUS, a broken ring reported as NEEDS_RESET, and
 * RESET_DEVICE bringing the device back to its initial state. */
START_TEST(status_and_reset)
{
	uint64_t st = 0x0f;
	uint32_t vs[2] = {0, 0};

	start_listening_daemon(NULL, NULL);
	bring_up();
	ck_assert_uint_eq(send_acked(SET_STATUS, &st, 8, NULL, 0), 0);
	send_msg(GET_STATUS, 0, NULL, 0, NULL, 0);
	ck_assert_uint_eq(recv_u64(GET_STATUS), 0x0f);
	ck_assert_uint_eq(run(VBLK_T_IN, 0, 512, true), VBLK_S_OK);

	/* A request without a writable status byte breaks the ring.  The
	 * kick is written before the message, so the daemon sees it no
	 * later than the message. */
	put_desc(0, OFF_HDR, 16, 0, 0);
	memcpy(mem + OFF_AVAIL + 4 + 2 * (avail_idx % QSZ), &(uint16_t){0}, 2);
	avail_idx++;
	__atomic_store_n((uint16_t *)(mem + OFF_AVAIL + 2), avail_idx,
			 __ATOMIC_RELEASE);
	kick();
	send_msg(GET_STATUS, 0, NULL, 0, NULL, 0);
	ck_assert_uint_eq(recv_u64(GET_STATUS), 0x0f | 0x40);

	ck_assert_uint_eq(send_acked(RESET_DEVICE, NULL, 0, NULL, 0), 0);
	send_msg(GET_STATUS, 0, NULL, 0, NULL, 0);
	ck_assert_uint_eq(recv_u64(GET_STATUS), 0);
	/* The ring was forgotten: stopped, at base 0. */
	send_msg(GET_VRING_BASE, 0, vs, 8, NULL, 0);
	ck_assert_uint_eq(recv_reply(GET_VRING_BASE, vs, 8), 8);
	ck_assert_uint_eq(vs[1], 0);
	/* Set up again on the same connection, past the bad request. */
	bring_up_with(0, avail_idx);
	ck_assert_uint_eq(run(VBLK_T_IN, 8, 512, true), VBLK_S_OK);
	ck_assert(memcmp(mem + OFF_DATA, disk + 8 * 512, 512) == 0);
	/* Out-of-range status values are refused. */
	st = 0x100;
	ck_assert_uint_ne(send_acked(SET_STATUS, &st, 8, NULL, 0), 0);
	terminate_daemon();
}
END_TEST

/* The back-end channel message that tells the front-end to read the
 * config space again. */
static void expect_config_change(void)
{
	struct pollfd pfd = {.fd = backend_sock, .events = POLLIN};
	uint32_t hdr[3];

	ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
	ck_assert_int_eq(recv(backend_sock, hdr, sizeof(hdr), MSG_WAITALL),
			 sizeof(hdr));
	ck_assert_uint_eq(hdr[0], BACKEND_CONFIG_CHANGE);
	ck_assert_uint_eq(hdr[1], 1); /* version 1, no reply wanted */
	ck_assert_uint_eq(hdr[2], 0);
}

/* Send one control command and return the reply line. */
static void control(const char *cmd, char *reply, size_t cap)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t len = 0;
	ssize_t n;

	strcpy(sa.sun_path, "ctl.sock");
	ck_assert_int_ge(c, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(send(c, cmd, strlen(cmd), MSG_NOSIGNAL),
			 (ssize_t)strlen(cmd));
	while (len < cap - 1 &&
	       (n = recv(c, reply + len, cap - 1 - len, 0)) > 0)
		len += (size_t)n;
	reply[len] = '\0';
	close(c);
}

static off_t disk_file_size(void)
{
	struct stat st;

	ck_assert_int_eq(stat("disk.raw", &st), 0);
	return st.st_size;
}

/* Online resize through the control socket and after an outside resize
 * (SIGHUP): the image changes, the front-end is told, the config space
 * has the new capacity and the ring goes on serving the new range. */
START_TEST(online_resize)
{
	char reply[256];
	struct stat st;

	start_listening_daemon("--control", "ctl.sock");
	bring_up_with(UP_BACKEND, 0);
	/* Answered only once the daemon serves: the control socket is
	 * there by then. */
	ck_assert_uint_eq(config_capacity(), DISK_SIZE / 512);
	ck_assert_int_eq(stat("ctl.sock", &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_uint_eq(run(VBLK_T_IN, 3000, 4096, true), VBLK_S_IOERR);

	control("size\n", reply, sizeof(reply));
	ck_assert_str_eq(reply, "ok 1048576\n");
	control("resize 2M\n", reply, sizeof(reply));
	ck_assert_str_eq(reply, "ok 2097152\n");
	expect_config_change();
	ck_assert_uint_eq(config_capacity(), 4096);
	ck_assert_int_eq(disk_file_size(), 2 << 20);
	tu_fill_random(mem + OFF_DATA, 4096, 21);
	ck_assert_uint_eq(run(VBLK_T_OUT, 3000, 4096, false), VBLK_S_OK);

	/* Bad commands change nothing. */
	control("resize 1000\n", reply, sizeof(reply));
	ck_assert(strncmp(reply, "error: ", 7) == 0);
	control("resize lots\n", reply, sizeof(reply));
	ck_assert(strncmp(reply, "error: ", 7) == 0);
	control("grow\n", reply, sizeof(reply));
	ck_assert(strncmp(reply, "error: ", 7) == 0);
	ck_assert_uint_eq(config_capacity(), 4096);

	/* Another program grows the file; SIGHUP makes the daemon look. */
	ck_assert_int_eq(truncate("disk.raw", 3 << 20), 0);
	ck_assert_int_eq(kill(daemon_pid, SIGHUP), 0);
	expect_config_change();
	ck_assert_uint_eq(config_capacity(), 6144);
	ck_assert_uint_eq(run(VBLK_T_IN, 6000, 4096, true), VBLK_S_OK);
	ck_assert_uint_eq(run(VBLK_T_IN, 3000, 4096, true), VBLK_S_OK);
	{
		uint8_t want[4096];

		tu_fill_random(want, 4096, 21);
		ck_assert(memcmp(mem + OFF_DATA, want, 4096) == 0);
	}
	terminate_daemon();
}
END_TEST

/* A resize while no front-end can be told is announced to the next one
 * when it starts a ring (QEMU reads the config space only at start-up
 * otherwise). */
START_TEST(resize_announced_to_next_frontend)
{
	char reply[256];

	start_listening_daemon("--control", "ctl.sock");
	send_msg(GET_QUEUE_NUM, 0, NULL, 0, NULL, 0);
	ck_assert_uint_eq(recv_u64(GET_QUEUE_NUM), 2);
	close(sock);
	sock = -1;
	control("resize 3M\n", reply, sizeof(reply));
	ck_assert_str_eq(reply, "ok 3145728\n");
	ck_assert_int_eq(disk_file_size(), 3 << 20);

	connect_frontend();
	bring_up_with(UP_BACKEND, 0);
	expect_config_change();
	ck_assert_uint_eq(config_capacity(), 6144);
	ck_assert_uint_eq(run(VBLK_T_IN, 6000, 4096, true), VBLK_S_OK);
	terminate_daemon();
}
END_TEST

/* Completed writes survive a kill -9 of the daemon: the image (qcow2 or
 * VMDK in the file the daemon serves) holds every write whose completion
 * reached the used ring, as qemu-img reads it, with no corruption. */
START_TEST(completed_writes_survive_kill)
{
	static const char *const fmts[] = {"qcow2", "vmdk"};
	const char *fmt = fmts[_i];
	uint8_t *want = malloc(DISK_SIZE), *got = malloc(DISK_SIZE);
	int status;

	if (!tu_have_program("qemu-img"))
		goto out;
	tu_sh("rm -f disk.raw && qemu-img create -q -f %s disk.raw %u", fmt,
	      DISK_SIZE);
	memset(want, 0, DISK_SIZE);
	start_daemon(NULL);
	bring_up();
	/* New clusters: a 4 KiB write into an empty one, whole ones, and a
	 * rewrite of an allocated one; none is flushed. */
	for (unsigned i = 0; i < 12; i++) {
		uint64_t off = (uint64_t)i * 81920, len = i % 3 ? 65536 : 4096;
		if (off + len > DISK_SIZE)
			break;
		tu_fill_random(mem + OFF_DATA, len, 1000 + i);
		memcpy(want + off, mem + OFF_DATA, len);
		ck_assert_uint_eq(run(VBLK_T_OUT, off / 512, (uint32_t)len,
				      false),
				  VBLK_S_OK);
	}
	tu_fill_random(mem + OFF_DATA, 4096, 77);
	memcpy(want + 81920, mem + OFF_DATA, 4096);
	ck_assert_uint_eq(run(VBLK_T_OUT, 81920 / 512, 4096, false), VBLK_S_OK);

	ck_assert_int_eq(kill(daemon_pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(daemon_pid, &status, 0), daemon_pid);
	daemon_pid = -1;
	ck_assert(WIFSIGNALED(status));
	close(sock);
	sock = -1;

	status = tu_system("qemu-img check -q -f %s disk.raw", fmt);
	ck_assert_msg(status == 0 || status == 3,
		      "%s: qemu-img check exit %d "
		      "after the kill",
		      fmt, status);
	tu_sh("qemu-img convert -f %s -O raw disk.raw out.img", fmt);
	tu_read_at("out.img", got, DISK_SIZE, 0);
	ck_assert_msg(memcmp(want, got, DISK_SIZE) == 0,
		      "%s: a completed write is missing after kill -9", fmt);
out:
	free(want);
	free(got);
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;

	if (!getenv("VMMBLK")) {
		fprintf(stderr, "VMMBLK (the daemon) not given: skipped\n");
		return 77;
	}
	s = suite_create("virtio_blk_vhost");
	tc = tcase_create("vhost-user");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	tcase_add_test(tc, negotiate_and_serve);
	tcase_add_test(tc, malformed_messages);
	tcase_add_test(tc, sigterm_while_serving);
	tcase_add_test(tc, read_only_daemon);
	tcase_add_test(tc, serves_next_frontend);
	tcase_add_test(tc, inflight_resubmitted_after_kill);
	tcase_add_test(tc, answer_published_before_kill_is_signalled);
	tcase_add_test(tc, inflight_area_checked);
	tcase_add_test(tc, status_and_reset);
	tcase_add_test(tc, online_resize);
	tcase_add_test(tc, resize_announced_to_next_frontend);
	tcase_add_loop_test(tc, completed_writes_survive_kill, 0, 2);
#ifdef HAVE_NBD
	tcase_add_test(tc, serves_nbd_export);
#endif
	return tu_run_suite(s);
}
