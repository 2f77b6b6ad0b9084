/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The virtio-blk engine's inflight tracking (vblk_queue_set_inflight)
 * against a simulated guest: the region's state after requests, the
 * recovery steps of the vhost-user specification (settling the last
 * batch, resubmitting in counter order, resuming after the retaken
 * requests), and regions a front-end may have damaged.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "virtq_driver.h"
#include "vmm-blk/block_if.h"
#include "vmm-blk/virtio_blk.h"

#define QSZ 16u
#define DISK_SIZE (1u << 20)
#define MEM_SIZE (1u << 20)
#define GPA_DESC 0x1000u
#define GPA_AVAIL 0x2000u
#define GPA_USED 0x3000u
#define GPA_HDR 0x4000u
#define GPA_STATUS 0x4400u
#define GPA_DATA 0x10000u
/* The split-queue region layout of vhost-user.rst. */
#define R_VERSION 8
#define R_DESC_NUM 10
#define R_LAST_BATCH 12
#define R_USED_IDX 14
#define R_DESC(i) (16 + 16 * (i))

static uint8_t *mem, *region;
static struct vblk_mem gmem;
static struct blockif_ctxt *bc;
static struct vblk_dev *dev;
static uint8_t disk[DISK_SIZE];
static uint16_t avail_idx;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static void on_notify(void *opaque, unsigned q)
{
	(void)opaque;
	(void)q;
	pthread_mutex_lock(&lock);
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)(mem + GPA_USED + 2),
			       __ATOMIC_ACQUIRE);
}

/* Wait for the used index to reach IDX: every completion notifies (no
 * event index, no NO_INTERRUPT flag). */
static void wait_used(uint16_t idx)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&lock);
	while (used_idx() != idx)
		ck_assert_int_eq(pthread_cond_timedwait(&cond, &lock, &until),
				 0);
	pthread_mutex_unlock(&lock);
}

static uint16_t r16(unsigned off)
{
	uint16_t v;

	memcpy(&v, region + off, 2);
	return v;
}

static void w16(unsigned off, uint16_t v)
{
	memcpy(region + off, &v, 2);
}

static uint64_t counter_of(unsigned head)
{
	uint64_t v;

	memcpy(&v, region + R_DESC(head) + 8, 8);
	return v;
}

static void mark(unsigned head, uint8_t inflight, uint64_t counter)
{
	region[R_DESC(head)] = inflight;
	memcpy(region + R_DESC(head) + 8, &counter, 8);
}

static void put_desc(unsigned i, uint32_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	vq_put_desc(mem + GPA_DESC, i, addr, len, flags, next);
}

/* A write of 512 bytes of FILL at SECTOR in descriptors HEAD..HEAD+2. */
static void put_write(uint16_t head, uint64_t sector, uint8_t fill)
{
	uint32_t hdr = GPA_HDR + 16 * head, data = GPA_DATA + 512 * head;

	vq_put_blk_hdr(mem + hdr, VBLK_T_OUT, sector);
	memset(mem + data, fill, 512);
	mem[GPA_STATUS + head] = 0xee;
	put_desc(head, hdr, 16, 1, head + 1);
	put_desc(head + 1, data, 512, 1, head + 2);
	put_desc(head + 2, GPA_STATUS + head, 1, 2, 0);
}

static void make_avail(uint16_t head)
{
	vq_make_avail(mem + GPA_AVAIL, QSZ, &avail_idx, head);
}

static void set_used(uint16_t idx)
{
	__atomic_store_n((uint16_t *)(mem + GPA_USED + 2), idx,
			 __ATOMIC_RELEASE);
}

static int start(uint8_t *track, uint16_t last_avail)
{
	struct vblk_vring ring = {QSZ, mem + GPA_DESC, mem + GPA_AVAIL,
				  mem + GPA_USED};

	ck_assert_int_eq(vblk_queue_set_inflight(dev, 0, track), 0);
	return vblk_queue_start(dev, 0, &ring, last_avail, on_notify, NULL);
}

static void assert_sector(uint64_t sector, uint8_t fill)
{
	uint8_t buf[512];

	tu_read_at("disk.raw", buf, 512, sector * 512);
	for (unsigned i = 0; i < 512; i++)
		ck_assert_uint_eq(buf[i], fill);
}

static void setup(void)
{
	struct vblk_dev_params p = {.num_queues = 1};
	size_t rbytes = vblk_inflight_queue_bytes(QSZ);

	tu_enter_tmpdir();
	mem = aligned_alloc(4096, MEM_SIZE);
	region = aligned_alloc(64, rbytes);
	ck_assert(mem && region);
	memset(mem, 0, MEM_SIZE);
	memset(region, 0, rbytes);
	gmem.nregions = 1;
	gmem.regions[0] = (struct vblk_mem_region){0, MEM_SIZE, mem};
	avail_idx = 0;
	tu_fill_random(disk, sizeof(disk), 3);
	tu_write_file("disk.raw", disk, sizeof(disk), 0);
	bc = blockif_open_optstr("disk.raw,format=raw", "test");
	ck_assert_ptr_nonnull(bc);
	dev = vblk_dev_new(bc, &p);
	ck_assert_ptr_nonnull(dev);
	ck_assert_int_eq(vblk_dev_set_features(dev, 1ull << VBLK_F_VERSION_1),
			 0);
	ck_assert_int_eq(vblk_dev_set_mem(dev, &gmem), 0);
}

static void teardown(void)
{
	vblk_dev_free(dev);
	ck_assert_int_eq(blockif_close(bc), 0);
	free(mem);
	free(region);
	tu_leave_tmpdir();
}

START_TEST(region_size)
{
	/* 16 bytes of header and 16 per entry, rounded up to 64. */
	ck_assert_uint_eq(vblk_inflight_queue_bytes(16), 320);
	ck_assert_uint_eq(vblk_inflight_queue_bytes(128), 2112);
	ck_assert_uint_eq(vblk_inflight_queue_bytes(256), 4160);
}
END_TEST

/* A new region is set up at start; each request is marked with a growing
 * counter when taken and cleared, as the last batch, when answered. */
START_TEST(requests_tracked)
{
	ck_assert_int_eq(start(region, 0), 0);
	ck_assert_uint_eq(r16(R_VERSION), 1);
	ck_assert_uint_eq(r16(R_DESC_NUM), QSZ);
	ck_assert_uint_eq(r16(R_USED_IDX), 0);
	put_write(0, 1, 0x11);
	put_write(3, 2, 0x22);
	make_avail(0);
	make_avail(3);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 2);
	wait_used(2);
	ck_assert_uint_eq(counter_of(0) + 1, counter_of(3));
	ck_assert_uint_eq(region[R_DESC(0)], 0);
	ck_assert_uint_eq(region[R_DESC(3)], 0);
	ck_assert_uint_eq(r16(R_USED_IDX), 2);
	/* The last answered is the head of the last batch. */
	ck_assert(r16(R_LAST_BATCH) == 0 || r16(R_LAST_BATCH) == 3);
	ck_assert_uint_eq(vblk_queue_retaken(dev, 0), 0);
	ck_assert_uint_eq(vblk_queue_stop(dev, 0), 2);
	assert_sector(1, 0x11);
	assert_sector(2, 0x22);
}
END_TEST

/* After a restart: the batch already on the used ring is settled, the
 * rest is retaken in counter order, and new requests come after them. */
START_TEST(recovery)
{
	w16(R_VERSION, 1);
	w16(R_DESC_NUM, QSZ);
	/* Ring: 0 answered long ago; then 3, 6, 9 taken.  9 reached the
	 * used ring but the region was not updated; 6 was taken before 3
	 * (both write sector 5: the later one wins). */
	put_write(0, 4, 0x00);
	put_write(3, 5, 0x33);
	put_write(6, 5, 0x66);
	put_write(9, 7, 0x99);
	make_avail(0);
	make_avail(3);
	make_avail(6);
	make_avail(9);
	set_used(2);
	w16(R_USED_IDX, 1);
	w16(R_LAST_BATCH, 9);
	mark(9, 1, 40);
	mark(6, 1, 41);
	mark(3, 1, 42);
	/* The base given is ignored: 2 answered + 2 retaken = 4. */
	ck_assert_int_eq(start(region, 0), 0);
	ck_assert_uint_eq(vblk_queue_retaken(dev, 0), 2);
	ck_assert_uint_eq(region[R_DESC(9)], 0);
	ck_assert_uint_eq(r16(R_USED_IDX), 2);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 2);
	wait_used(4);
	ck_assert_uint_eq(mem[GPA_STATUS + 3], VBLK_S_OK);
	ck_assert_uint_eq(mem[GPA_STATUS + 6], VBLK_S_OK);
	ck_assert_uint_eq(mem[GPA_STATUS + 9], 0xee);
	assert_sector(5, 0x33);
	/* Not written again: sector 7 keeps the disk's data. */
	{
		uint8_t buf[512];

		tu_read_at("disk.raw", buf, 512, 7 * 512);
		ck_assert(memcmp(buf, disk + 7 * 512, 512) == 0);
	}
	/* New requests continue the counter and the ring. */
	put_write(12, 8, 0xcc);
	make_avail(12);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 1);
	wait_used(5);
	ck_assert_uint_gt(counter_of(12), 42);
	ck_assert_uint_eq(vblk_queue_stop(dev, 0), 5);
	assert_sector(8, 0xcc);
}
END_TEST

/* A queue started again without a region forgets the retake list. */
START_TEST(untracked_start_retakes_nothing)
{
	w16(R_VERSION, 1);
	w16(R_DESC_NUM, QSZ);
	put_write(0, 4, 0x44);
	make_avail(0);
	mark(0, 1, 1);
	ck_assert_int_eq(start(region, 0), 0);
	ck_assert_uint_eq(vblk_queue_retaken(dev, 0), 1);
	ck_assert_uint_eq(vblk_queue_stop(dev, 0), 1);
	ck_assert_int_eq(start(NULL, 1), 0);
	ck_assert_uint_eq(vblk_queue_retaken(dev, 0), 0);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 0);
	ck_assert_uint_eq(vblk_queue_stop(dev, 0), 1);
}
END_TEST

/* Regions the front-end damaged: another queue size or version is
 * refused; a looping last-batch list and odd inflight values neither
 * hang nor count. */
START_TEST(damaged_regions)
{
	w16(R_VERSION, 1);
	w16(R_DESC_NUM, QSZ / 2);
	ck_assert_int_eq(start(region, 0), -EINVAL);
	w16(R_DESC_NUM, QSZ);
	w16(R_VERSION, 2);
	ck_assert_int_eq(start(region, 0), -EINVAL);
	w16(R_VERSION, 1);
	set_used(300);
	w16(R_USED_IDX, 0);
	w16(R_LAST_BATCH, 5);
	{
		uint16_t self = 5;

		memcpy(region + R_DESC(5) + 6, &self, 2); /* next: itself */
	}
	mark(5, 1, 7);
	mark(6, 2, 8);
	w16(R_LAST_BATCH, 5);
	avail_idx = 300;
	__atomic_store_n((uint16_t *)(mem + GPA_AVAIL + 2), avail_idx,
			 __ATOMIC_RELEASE);
	ck_assert_int_eq(start(region, 0), 0);
	ck_assert_uint_eq(vblk_queue_retaken(dev, 0), 0);
	ck_assert_uint_eq(r16(R_USED_IDX), 300);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 0);
	ck_assert_uint_eq(vblk_queue_stop(dev, 0), 300);
	/* Not while the queue runs. */
	ck_assert_int_eq(start(region, 300), 0);
	ck_assert_int_eq(vblk_queue_set_inflight(dev, 0, NULL), -EBUSY);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_blk_inflight");
	TCase *tc = tcase_create("inflight");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	tcase_add_test(tc, region_size);
	tcase_add_test(tc, requests_tracked);
	tcase_add_test(tc, recovery);
	tcase_add_test(tc, untracked_start_retakes_nothing);
	tcase_add_test(tc, damaged_regions);
	return tu_run_suite(s);
}
