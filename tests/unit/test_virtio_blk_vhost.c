/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The vmm-blk daemon driven by a scripted vhost-user front-end over a
 * socketpair: feature and protocol negotiation, REPLY_ACK, GET_CONFIG,
 * a memfd memory table, rings with kick/call eventfds, real requests, ring
 * stop, malformed messages, and a clean exit with the data on disk when
 * the front-end goes away.  Needs the daemon (Linux); skipped otherwise.
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
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
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
	GET_CONFIG = 24,
};
#define NEED_REPLY 0x8u
#define PF_MQ (1ull << 0)
#define PF_REPLY_ACK (1ull << 3)
#define PF_CONFIG (1ull << 9)
#define F_PROTOCOL_FEATURES (1ull << 30)

static int sock = -1;
static pid_t daemon_pid = -1;
static uint8_t *mem;
static int mem_fd = -1, kick_fd = -1, call_fd = -1;
static uint8_t disk[DISK_SIZE];
static uint16_t avail_idx;

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
	ck_assert_int_eq(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)(12 + size));
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

static void start_daemon(const char *extra)
{
	const char *exe = getenv("VMMBLK");
	int sv[2];
	char fdarg[32];

	ck_assert_ptr_nonnull(exe);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	daemon_pid = fork();
	ck_assert_int_ge(daemon_pid, 0);
	if (daemon_pid == 0) {
		int fd = dup(sv[1]); /* without CLOEXEC */

		snprintf(fdarg, sizeof(fdarg), "%d", fd);
		if (extra)
			execl(exe, exe, "--fd", fdarg, "--num-queues", "2",
			      "--serial", "vhost-test", extra, "disk.raw",
			      (char *)NULL);
		else
			execl(exe, exe, "--fd", fdarg, "--num-queues", "2",
			      "--serial", "vhost-test", "disk.raw",
			      (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	sock = sv[0];
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
	if (sock >= 0)
		close(sock);
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, NULL, 0);
	}
	munmap(mem, MEM_SIZE);
	close(mem_fd);
	close(kick_fd);
	close(call_fd);
	tu_leave_tmpdir();
}

/* Negotiate like QEMU does and start queue 0. */
static void bring_up(void)
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
	ck_assert((pf & (PF_MQ | PF_REPLY_ACK | PF_CONFIG)) ==
		  (PF_MQ | PF_REPLY_ACK | PF_CONFIG));
	send_msg(SET_PROTOCOL_FEATURES, 0, &pf, 8, NULL, 0);
	send_msg(GET_QUEUE_NUM, 0, NULL, 0, NULL, 0);
	ck_assert_uint_eq(recv_u64(GET_QUEUE_NUM), 2);
	ck_assert_uint_eq(send_acked(SET_OWNER, NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(send_u64_acked(SET_FEATURES,
					 F_PROTOCOL_FEATURES |
						 1ull << VBLK_F_VERSION_1 |
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
	ck_assert_uint_eq(send_acked(SET_MEM_TABLE, region, 40, &mem_fd, 1),
			  0);

	ck_assert_uint_eq(send_state_acked(SET_VRING_NUM, 0, QSZ), 0);
	ck_assert_uint_eq(send_state_acked(SET_VRING_BASE, 0, 0), 0);
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
	uint64_t gpa = GPA_BASE + off;
	uint8_t *d = mem + OFF_DESC + 16 * i;

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* Run one header/data/status request through the daemon. */
static uint8_t run(uint32_t type, uint64_t sector, uint32_t len,
		   bool writable)
{
	uint16_t want = avail_idx + 1;
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
	memcpy(mem + OFF_AVAIL + 4 + 2 * QSZ, &avail_idx, 2);
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
		ck_assert_uint_eq(send_acked(SET_VRING_KICK, &v, 8, &kick_fd, 1),
				  0);
	}
	ck_assert_uint_eq(run(VBLK_T_IN, 8, 4096, true), VBLK_S_OK);
	ck_assert(memcmp(mem + OFF_DATA, disk + 4096, 4096) == 0);

	/* Front-end gone: the daemon flushes and exits 0. */
	ck_assert_int_eq(stop_daemon(), 0);
	file = malloc(DISK_SIZE);
	ck_assert_ptr_nonnull(file);
	{
		FILE *f = fopen("disk.raw", "rb");

		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fread(file, 1, DISK_SIZE, f), DISK_SIZE);
		fclose(f);
	}
	ck_assert(memcmp(file, disk, DISK_SIZE) == 0);
	free(file);
}
END_TEST

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
		ck_assert_uint_ne(send_acked(SET_MEM_TABLE, one, 40, &mem_fd, 1),
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

		ck_assert_int_eq(send(sock, hdr, sizeof(hdr), MSG_NOSIGNAL), 12);
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
	return tu_run_suite(s);
}
