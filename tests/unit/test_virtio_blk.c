/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The virtio-blk engine against a simulated guest: guest memory in three
 * regions (two adjacent), a split virtqueue written the way a driver
 * writes it, and a raw image behind blockif.  Covers every request type
 * and the malicious cases: loops, addresses outside guest memory, bad
 * indirect tables, oversized chains, wrong directions; each must end in
 * an error status or a broken queue, and never in a write outside the
 * request's own device-writable buffers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mimg.h>

#include "blockif_park.h"
#include "testutil.h"
#include "virtq_driver.h"
#include "vmm-blk/block_if.h"
#include "vmm-blk/virtio_blk.h"

#define QSZ 16u
#define DISK_SIZE (1u << 20)
#define REGION_A 0x0ull	       /* 1 MiB */
#define REGION_B 0x100000ull   /* 1 MiB, adjacent to A */
#define REGION_C 0x10000000ull /* 64 KiB, alone */
#define REGION_SIZE (1u << 20)
#define REGION_C_SIZE (64u << 10)

#define GPA_DESC 0x1000ull
#define GPA_AVAIL 0x2000ull
#define GPA_USED 0x3000ull
#define GPA_HDR 0x4000ull
#define GPA_STATUS 0x4100ull
#define GPA_INDIRECT 0x5000ull
#define GPA_DATA 0x10000ull
#define GPA_DATA2 0x40000ull

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

static uint8_t *mem_a, *mem_b, *mem_c;
static struct vblk_mem gmem;
static struct blockif_ctxt *bc;
static struct vblk_dev *dev;
static uint8_t disk[DISK_SIZE];
static uint16_t avail_idx;

static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned notifies;

static pthread_t notify_thread; /* of the last notify */

static void on_notify(void *opaque, unsigned q)
{
	(void)opaque;
	(void)q;
	pthread_mutex_lock(&notify_lock);
	notifies++;
	notify_thread = pthread_self();
	pthread_mutex_unlock(&notify_lock);
}

/* Was the last answer sent from this thread? */
static bool notified_here(void)
{
	bool here;

	pthread_mutex_lock(&notify_lock);
	here = pthread_equal(notify_thread, pthread_self());
	pthread_mutex_unlock(&notify_lock);
	return here;
}

/* *V, read under LOCK. */
static unsigned read_locked(pthread_mutex_t *lock, const unsigned *v)
{
	unsigned n;

	pthread_mutex_lock(lock);
	n = *v;
	pthread_mutex_unlock(lock);
	return n;
}

static unsigned notify_count(void)
{
	return read_locked(&notify_lock, &notifies);
}

static uint8_t *gp(uint64_t gpa)
{
	if (gpa >= REGION_C && gpa < REGION_C + REGION_C_SIZE)
		return mem_c + (gpa - REGION_C);
	if (gpa >= REGION_B && gpa < REGION_B + REGION_SIZE)
		return mem_b + (gpa - REGION_B);
	ck_assert(gpa < REGION_A + REGION_SIZE);
	return mem_a + gpa;
}

/* Ring fields are shared with the device's threads: store atomically, as
 * a driver does. */
static void put16(uint64_t gpa, uint16_t v)
{
	__atomic_store_n((uint16_t *)gp(gpa), v, __ATOMIC_RELEASE);
}

static uint16_t get16(uint64_t gpa)
{
	return __atomic_load_n((uint16_t *)gp(gpa), __ATOMIC_ACQUIRE);
}

static uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, gp(gpa), 4);
	return v;
}

static void put_desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	vq_put_desc(gp(table), i, addr, len, flags, next);
}

static void put_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	put_desc_at(GPA_DESC, i, addr, len, flags, next);
}

static void put_hdr(uint64_t gpa, uint32_t type, uint64_t sector)
{
	vq_put_blk_hdr(gp(gpa), type, sector);
}

static void make_avail(uint16_t head)
{
	vq_make_avail(gp(GPA_AVAIL), QSZ, &avail_idx, head);
}

static uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)gp(GPA_USED + 2), __ATOMIC_ACQUIRE);
}

/* Wait for every request taken to be answered; the used index must then
 * be IDX. */
static void wait_used(uint16_t idx)
{
	vblk_queue_drain(dev, 0);
	ck_assert_uint_eq(used_idx(), idx);
}

static uint32_t used_len_of(uint16_t n)
{
	return get32(GPA_USED + 4 + 8 * (n % QSZ) + 4);
}

static uint32_t used_id_of(uint16_t n)
{
	return get32(GPA_USED + 4 + 8 * (n % QSZ));
}

static void start_queue(uint64_t features)
{
	struct vblk_vring ring = {QSZ, gp(GPA_DESC), gp(GPA_AVAIL),
				  gp(GPA_USED)};

	ck_assert_int_eq(vblk_dev_set_features(dev, features), 0);
	ck_assert_int_eq(vblk_dev_set_mem(dev, &gmem), 0);
	ck_assert_int_eq(vblk_queue_start(dev, 0, &ring, 0, on_notify, NULL),
			 0);
}

static const uint64_t base_features = 1ull << VBLK_F_VERSION_1 |
				      1ull << VBLK_F_RING_INDIRECT_DESC;

static void open_device(const char *opts)
{
	struct vblk_dev_params p = {.serial = "mimg-serial-0123",
				    .num_queues = 2};

	bc = blockif_open_optstr(opts, "test");
	ck_assert_ptr_nonnull(bc);
	dev = vblk_dev_new(bc, &p);
	ck_assert_ptr_nonnull(dev);
}

static void setup(void)
{
	tu_enter_tmpdir();
	mem_a = aligned_alloc(4096, REGION_SIZE);
	mem_b = aligned_alloc(4096, REGION_SIZE);
	mem_c = aligned_alloc(4096, REGION_C_SIZE);
	ck_assert(mem_a && mem_b && mem_c);
	memset(mem_a, 0xa5, REGION_SIZE);
	memset(mem_b, 0xa5, REGION_SIZE);
	memset(mem_c, 0xa5, REGION_C_SIZE);
	/* Rings start zeroed, as a driver initialises them. */
	memset(gp(GPA_AVAIL), 0, 0x1000);
	memset(gp(GPA_USED), 0, 0x1000);
	gmem.nregions = 3;
	gmem.regions[0] = (struct vblk_mem_region){REGION_A, REGION_SIZE,
						   mem_a};
	gmem.regions[1] = (struct vblk_mem_region){REGION_B, REGION_SIZE,
						   mem_b};
	gmem.regions[2] = (struct vblk_mem_region){REGION_C, REGION_C_SIZE,
						   mem_c};
	avail_idx = 0;
	notifies = 0;
	tu_fill_random(disk, sizeof(disk), 42);
	tu_write_file("disk.raw", disk, sizeof(disk), 0);
	open_device("disk.raw,format=raw");
}

static void teardown(void)
{
	vblk_dev_free(dev);
	ck_assert_int_eq(blockif_close(bc), 0);
	free(mem_a);
	free(mem_b);
	free(mem_c);
	tu_leave_tmpdir();
}

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return tc;
}

/* A three-descriptor request (header, data, status) in descriptors 0, 1
 * and 2, its status byte preset to 0xee. */
static void put3(uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
		 bool data_writable)
{
	put_hdr(GPA_HDR, type, sector);
	*gp(GPA_STATUS) = 0xee;
	put_desc(0, GPA_HDR, 16, F_NEXT, 1);
	put_desc(1, data, len, F_NEXT | (data_writable ? F_WRITE : 0), 2);
	put_desc(2, GPA_STATUS, 1, F_WRITE, 0);
}

/* Queue put3's request at head 0 and process it; returns the status
 * byte once it completed. */
static uint8_t run3(uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
		    bool data_writable)
{
	uint16_t want = (uint16_t)(used_idx() + 1);

	put3(type, sector, data, len, data_writable);
	make_avail(0);
	ck_assert_int_ge(vblk_queue_process(dev, 0), 1);
	wait_used(want);
	ck_assert_uint_eq(used_id_of((uint16_t)(want - 1)), 0);
	return *gp(GPA_STATUS);
}

/* Queue header + status only (flush, bad requests). */
static uint8_t run2(uint32_t type, uint64_t sector)
{
	uint16_t want = (uint16_t)(used_idx() + 1);

	put_hdr(GPA_HDR, type, sector);
	*gp(GPA_STATUS) = 0xee;
	put_desc(0, GPA_HDR, 16, F_NEXT, 2);
	put_desc(2, GPA_STATUS, 1, F_WRITE, 0);
	make_avail(0);
	ck_assert_int_ge(vblk_queue_process(dev, 0), 1);
	wait_used(want);
	return *gp(GPA_STATUS);
}

static void assert_filled(uint64_t gpa, size_t len, uint8_t v)
{
	const uint8_t *p = gp(gpa);

	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			ck_abort_msg("guest byte 0x%llx is 0x%02x, not 0x%02x",
				     (unsigned long long)(gpa + i), p[i], v);
}

static void assert_disk_unchanged(void)
{
	uint8_t *now = malloc(DISK_SIZE);

	ck_assert_ptr_nonnull(now);
	tu_read_at("disk.raw", now, DISK_SIZE, 0);
	ck_assert(memcmp(now, disk, DISK_SIZE) == 0);
	free(now);
}

/* ---------------------------------------------------------------------- */

START_TEST(config_space)
{
	uint8_t cfg[VBLK_CONFIG_SIZE], tail[8];
	uint64_t cap;
	uint32_t seg_max, blk_size;
	uint16_t nq;
	uint64_t f = vblk_dev_features(dev);

	ck_assert_int_eq(vblk_dev_config(dev, cfg, 0, sizeof(cfg)), 0);
	memcpy(&cap, cfg, 8);
	memcpy(&seg_max, cfg + 12, 4);
	memcpy(&blk_size, cfg + 20, 4);
	memcpy(&nq, cfg + 34, 2);
	ck_assert_uint_eq(cap, DISK_SIZE / 512);
	ck_assert_uint_eq(seg_max, VBLK_SEG_MAX);
	ck_assert_uint_eq(blk_size, 512);
	ck_assert_uint_eq(nq, 2);
	ck_assert(f & (1ull << VBLK_F_FLUSH));
	ck_assert(f & (1ull << VBLK_F_WRITE_ZEROES));
	ck_assert(!(f & (1ull << VBLK_F_RO)));
	ck_assert_int_eq(!!(f & (1ull << VBLK_F_DISCARD)),
			 blockif_candelete(bc));
	/* Past the structure reads as zero; past 256 is refused. */
	memset(tail, 0xff, sizeof(tail));
	ck_assert_int_eq(vblk_dev_config(dev, tail, 200, 8), 0);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(tail[i], 0);
	ck_assert_int_eq(vblk_dev_config(dev, tail, 252, 8), -EINVAL);
	ck_assert_int_eq(vblk_dev_config(dev, tail, SIZE_MAX - 2, 8), -EINVAL);
	/* Accepting a feature not offered fails. */
	ck_assert_int_eq(vblk_dev_set_features(dev, 1ull << 60), -EINVAL);
}
END_TEST

START_TEST(read_write_flush)
{
	start_queue(base_features);
	ck_assert_uint_eq(run3(VBLK_T_IN, 8, GPA_DATA, 8192, true), VBLK_S_OK);
	ck_assert(memcmp(gp(GPA_DATA), disk + 8 * 512, 8192) == 0);
	ck_assert_uint_eq(used_len_of(0), 8192 + 1);
	ck_assert_uint_ge(notify_count(), 1);

	tu_fill_random(gp(GPA_DATA2), 4096, 7);
	ck_assert_uint_eq(run3(VBLK_T_OUT, 100, GPA_DATA2, 4096, false),
			  VBLK_S_OK);
	ck_assert_uint_eq(used_len_of(1), 1);
	ck_assert_uint_eq(run2(VBLK_T_FLUSH, 0), VBLK_S_OK);
	memset(gp(GPA_DATA), 0, 4096);
	ck_assert_uint_eq(run3(VBLK_T_IN, 100, GPA_DATA, 4096, true),
			  VBLK_S_OK);
	ck_assert(memcmp(gp(GPA_DATA), gp(GPA_DATA2), 4096) == 0);
	/* Legacy barrier bit is ignored. */
	ck_assert_uint_eq(run3(VBLK_T_IN | 0x80000000u, 0, GPA_DATA, 512, true),
			  VBLK_S_OK);
}
END_TEST

START_TEST(get_id_and_unsupported)
{
	start_queue(base_features);
	ck_assert_uint_eq(run3(VBLK_T_GET_ID, 0, GPA_DATA, 20, true),
			  VBLK_S_OK);
	ck_assert(memcmp(gp(GPA_DATA), "mimg-serial-0123\0\0\0\0", 20) == 0);
	ck_assert_uint_eq(used_len_of(0), 21);
	ck_assert_uint_eq(run2(77, 0), VBLK_S_UNSUPP);
	ck_assert_uint_eq(run2(2 /* SCSI */, 0), VBLK_S_UNSUPP);
}
END_TEST

/* One segment {sector, num, flags} for DISCARD / WRITE_ZEROES. */
static uint8_t run_zero_range(uint32_t type, uint64_t sector, uint32_t num,
			      uint32_t flags)
{
	uint8_t *seg = gp(GPA_DATA2);

	memcpy(seg, &sector, 8);
	memcpy(seg + 8, &num, 4);
	memcpy(seg + 12, &flags, 4);
	return run3(type, 0, GPA_DATA2, 16, false);
}

START_TEST(write_zeroes_and_discard)
{
	start_queue(base_features);
	ck_assert_uint_eq(run_zero_range(VBLK_T_WRITE_ZEROES, 16, 8, 0),
			  VBLK_S_OK);
	ck_assert_uint_eq(run_zero_range(VBLK_T_WRITE_ZEROES, 64, 16, 1),
			  VBLK_S_OK);
	memset(gp(GPA_DATA), 0x5a, 65536);
	ck_assert_uint_eq(run3(VBLK_T_IN, 0, GPA_DATA, 65536, true), VBLK_S_OK);
	ck_assert(memcmp(gp(GPA_DATA), disk, 16 * 512) == 0);
	assert_filled(GPA_DATA + 16 * 512, 8 * 512, 0);
	ck_assert(memcmp(gp(GPA_DATA + 24 * 512), disk + 24 * 512, 40 * 512) ==
		  0);
	assert_filled(GPA_DATA + 64 * 512, 16 * 512, 0);
	ck_assert(memcmp(gp(GPA_DATA + 80 * 512), disk + 80 * 512, 48 * 512) ==
		  0);
	/* Unknown flags, ranges past the end, two segments. */
	ck_assert_uint_eq(run_zero_range(VBLK_T_WRITE_ZEROES, 0, 8, 6),
			  VBLK_S_UNSUPP);
	ck_assert_uint_eq(run_zero_range(VBLK_T_WRITE_ZEROES,
					 DISK_SIZE / 512 - 4, 8, 0),
			  VBLK_S_IOERR);
	ck_assert_uint_eq(run_zero_range(VBLK_T_WRITE_ZEROES, UINT64_MAX / 2, 8,
					 0),
			  VBLK_S_IOERR);
	ck_assert_uint_eq(run3(VBLK_T_WRITE_ZEROES, 0, GPA_DATA2, 32, false),
			  VBLK_S_UNSUPP);
	/* Discard: the unmap flag is not allowed. */
	ck_assert_uint_eq(run_zero_range(VBLK_T_DISCARD, 0, 8, 1),
			  VBLK_S_UNSUPP);
	ck_assert_uint_eq(run_zero_range(VBLK_T_DISCARD, 128, 8, 0),
			  blockif_candelete(bc) ? VBLK_S_OK : VBLK_S_UNSUPP);
}
END_TEST

START_TEST(bad_ranges)
{
	start_queue(base_features);
	/* Past the end, straddling the end, not a whole sector. */
	ck_assert_uint_eq(run3(VBLK_T_IN, DISK_SIZE / 512, GPA_DATA, 512, true),
			  VBLK_S_IOERR);
	ck_assert_uint_eq(run3(VBLK_T_IN, DISK_SIZE / 512 - 1, GPA_DATA, 1024,
			       true),
			  VBLK_S_IOERR);
	ck_assert_uint_eq(run3(VBLK_T_OUT, UINT64_MAX / 256, GPA_DATA, 512,
			       false),
			  VBLK_S_IOERR);
	ck_assert_uint_eq(run3(VBLK_T_IN, 0, GPA_DATA, 100, true),
			  VBLK_S_IOERR);
	assert_disk_unchanged();
}
END_TEST

START_TEST(wrong_directions)
{
	start_queue(base_features);
	/* A read into a device-readable buffer must not write it. */
	memset(gp(GPA_DATA), 0x11, 4096);
	ck_assert_uint_eq(run3(VBLK_T_IN, 0, GPA_DATA, 4096, false),
			  VBLK_S_IOERR);
	assert_filled(GPA_DATA, 4096, 0x11);
	/* A write from a device-writable buffer must not reach the disk. */
	ck_assert_uint_eq(run3(VBLK_T_OUT, 0, GPA_DATA, 4096, true),
			  VBLK_S_IOERR);
	assert_filled(GPA_DATA, 4096, 0x11);
	/* Readable after writable: misordered. */
	put_hdr(GPA_HDR, VBLK_T_OUT, 0);
	put_desc(0, GPA_STATUS + 8, 4, F_NEXT | F_WRITE, 1);
	put_desc(1, GPA_HDR, 16, F_NEXT, 2);
	put_desc(2, GPA_STATUS, 1, F_WRITE, 0);
	make_avail(0);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 1);
	wait_used(3);
	ck_assert_uint_eq(*gp(GPA_STATUS), VBLK_S_IOERR);
	/* Header shorter than 16 bytes. */
	put_desc(0, GPA_HDR, 8, F_NEXT, 2);
	make_avail(0);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 1);
	wait_used(4);
	ck_assert_uint_eq(*gp(GPA_STATUS), VBLK_S_IOERR);
	assert_disk_unchanged();
	ck_assert(!vblk_queue_broken(dev, 0));
}
END_TEST

START_TEST(unusual_framing)
{
	/* Header and data in one descriptor; data and status in one. */
	start_queue(base_features);
	put_hdr(GPA_DATA2 - 16, VBLK_T_OUT, 2);
	tu_fill_random(gp(GPA_DATA2), 1024, 9);
	put_desc(0, GPA_DATA2 - 16, 16 + 1024, F_NEXT, 1);
	put_desc(1, GPA_STATUS, 1, F_WRITE, 0);
	make_avail(0);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 1);
	wait_used(1);
	ck_assert_uint_eq(*gp(GPA_STATUS), VBLK_S_OK);

	put_hdr(GPA_HDR, VBLK_T_IN, 2);
	memset(gp(GPA_DATA), 0, 1025);
	put_desc(0, GPA_HDR, 16, F_NEXT, 1);
	put_desc(1, GPA_DATA, 1025, F_WRITE, 0);
	make_avail(0);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 1);
	wait_used(2);
	ck_assert_uint_eq(*gp(GPA_DATA + 1024), VBLK_S_OK);
	ck_assert(memcmp(gp(GPA_DATA), gp(GPA_DATA2), 1024) == 0);
	ck_assert_uint_eq(used_len_of(1), 1025);
}
END_TEST

START_TEST(buffer_across_regions)
{
	/* A buffer spanning the adjacent regions A and B is two segments. */
	uint64_t data = REGION_B - 2048;

	start_queue(base_features);
	ck_assert_uint_eq(run3(VBLK_T_IN, 0, data, 4096, true), VBLK_S_OK);
	ck_assert(memcmp(gp(data), disk, 2048) == 0);
	ck_assert(memcmp(gp(REGION_B), disk + 2048, 2048) == 0);
	assert_filled(REGION_B + 2048, 4096, 0xa5);
}
END_TEST

/* Queue one request whose chain is malformed: the queue must break
 * without answering, and nothing but the rings may change. */
static void expect_broken(void)
{
	uint16_t before = used_idx();

	make_avail(0);
	ck_assert_int_eq(vblk_queue_process(dev, 0), -EIO);
	ck_assert(vblk_queue_broken(dev, 0));
	ck_assert_ptr_nonnull(vblk_queue_error(dev, 0));
	ck_assert_uint_eq(used_idx(), before);
	/* A broken queue stays broken until restarted. */
	ck_assert_int_eq(vblk_queue_process(dev, 0), -EIO);
	assert_filled(GPA_DATA, 4096, 0xa5);
	assert_disk_unchanged();
}

START_TEST(descriptor_loop)
{
	start_queue(base_features);
	put_hdr(GPA_HDR, VBLK_T_IN, 0);
	put_desc(0, GPA_HDR, 16, F_NEXT, 1);
	put_desc(1, GPA_DATA, 512, F_NEXT | F_WRITE, 2);
	put_desc(2, GPA_STATUS, 1, F_NEXT | F_WRITE, 1);
	expect_broken();
}
END_TEST

START_TEST(descriptor_outside_memory)
{
	start_queue(base_features);
	put3(VBLK_T_IN, 0, 0x50000000ull, 512, true);
	expect_broken();
}
END_TEST

START_TEST(descriptor_past_region_end)
{
	/* Region C is followed by nothing: a buffer running off its end. */
	start_queue(base_features);
	put3(VBLK_T_IN, 0, REGION_C + REGION_C_SIZE - 256, 512, true);
	expect_broken();
	assert_filled(REGION_C + REGION_C_SIZE - 256, 256, 0xa5);
}
END_TEST

START_TEST(descriptor_wrapping_address)
{
	start_queue(base_features);
	put3(VBLK_T_IN, 0, UINT64_MAX - 100, 512, true);
	expect_broken();
}
END_TEST

START_TEST(next_out_of_range)
{
	start_queue(base_features);
	put_hdr(GPA_HDR, VBLK_T_IN, 0);
	put_desc(0, GPA_HDR, 16, F_NEXT, QSZ + 3);
	expect_broken();
}
END_TEST

START_TEST(head_out_of_range)
{
	start_queue(base_features);
	put16(GPA_AVAIL + 4, QSZ);
	__atomic_store_n((uint16_t *)gp(GPA_AVAIL + 2), 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(vblk_queue_process(dev, 0), -EIO);
	ck_assert(vblk_queue_broken(dev, 0));
}
END_TEST

START_TEST(avail_index_jump)
{
	start_queue(base_features);
	__atomic_store_n((uint16_t *)gp(GPA_AVAIL + 2), QSZ + 1,
			 __ATOMIC_RELEASE);
	ck_assert_int_eq(vblk_queue_process(dev, 0), -EIO);
	ck_assert(vblk_queue_broken(dev, 0));
	ck_assert_uint_eq(used_idx(), 0);
}
END_TEST

START_TEST(status_not_writable)
{
	start_queue(base_features);
	put_hdr(GPA_HDR, VBLK_T_IN, 0);
	put_desc(0, GPA_HDR, 16, F_NEXT, 1);
	put_desc(1, GPA_DATA, 512, F_NEXT | F_WRITE, 2);
	put_desc(2, GPA_STATUS, 1, 0, 0);
	/* The data buffer is writable but the request cannot be answered:
	 * the device must not have read into it either. */
	expect_broken();
	/* The chain was consumed; restarting the queue recovers it. */
	ck_assert_uint_eq(vblk_queue_stop(dev, 0), 1);
	avail_idx = 0;
	memset(gp(GPA_AVAIL), 0, 0x1000);
	start_queue(base_features);
	ck_assert(!vblk_queue_broken(dev, 0));
	ck_assert_uint_eq(run3(VBLK_T_IN, 0, GPA_DATA, 512, true), VBLK_S_OK);
}
END_TEST

static void put_indirect_request(uint64_t table, uint32_t type)
{
	put_hdr(GPA_HDR, type, 0);
	put_desc_at(table, 0, GPA_HDR, 16, F_NEXT, 1);
	put_desc_at(table, 1, GPA_DATA, 4096, F_NEXT | F_WRITE, 2);
	put_desc_at(table, 2, GPA_STATUS, 1, F_WRITE, 0);
}

START_TEST(indirect_ok)
{
	start_queue(base_features);
	put_indirect_request(GPA_INDIRECT, VBLK_T_IN);
	put_desc(3, GPA_INDIRECT, 48, F_INDIRECT, 0);
	*gp(GPA_STATUS) = 0xee;
	make_avail(3);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 1);
	wait_used(1);
	ck_assert_uint_eq(used_id_of(0), 3);
	ck_assert_uint_eq(*gp(GPA_STATUS), VBLK_S_OK);
	ck_assert(memcmp(gp(GPA_DATA), disk, 4096) == 0);
}
END_TEST

START_TEST(indirect_not_negotiated)
{
	start_queue(1ull << VBLK_F_VERSION_1);
	put_indirect_request(GPA_INDIRECT, VBLK_T_IN);
	put_desc(0, GPA_INDIRECT, 48, F_INDIRECT, 0);
	expect_broken();
}
END_TEST

START_TEST(indirect_bad_length)
{
	start_queue(base_features);
	put_indirect_request(GPA_INDIRECT, VBLK_T_IN);
	put_desc(0, GPA_INDIRECT, 40, F_INDIRECT, 0);
	expect_broken();
}
END_TEST

START_TEST(indirect_too_long)
{
	start_queue(base_features);
	put_desc(0, GPA_INDIRECT, 16 * (VBLK_MAX_INDIRECT + 1), F_INDIRECT, 0);
	expect_broken();
}
END_TEST

START_TEST(indirect_nested)
{
	start_queue(base_features);
	put_indirect_request(GPA_INDIRECT, VBLK_T_IN);
	put_desc_at(GPA_INDIRECT, 1, GPA_INDIRECT, 48, F_INDIRECT, 0);
	put_desc(0, GPA_INDIRECT, 48, F_INDIRECT, 0);
	expect_broken();
}
END_TEST

START_TEST(indirect_with_next)
{
	start_queue(base_features);
	put_indirect_request(GPA_INDIRECT, VBLK_T_IN);
	put_desc(0, GPA_INDIRECT, 48, F_INDIRECT | F_NEXT, 1);
	put_desc(1, GPA_STATUS, 1, F_WRITE, 0);
	expect_broken();
}
END_TEST

START_TEST(indirect_loop)
{
	start_queue(base_features);
	put_indirect_request(GPA_INDIRECT, VBLK_T_IN);
	put_desc_at(GPA_INDIRECT, 2, GPA_STATUS, 1, F_WRITE | F_NEXT, 0);
	put_desc(0, GPA_INDIRECT, 48, F_INDIRECT, 0);
	expect_broken();
}
END_TEST

START_TEST(indirect_table_outside_memory)
{
	start_queue(base_features);
	put_desc(0, REGION_C + REGION_C_SIZE - 16, 48, F_INDIRECT, 0);
	expect_broken();
}
END_TEST

START_TEST(too_many_segments)
{
	/* 200 data segments exceed seg_max: IOERR, nothing read. */
	const unsigned nseg = 200;

	start_queue(base_features);
	put_hdr(GPA_HDR, VBLK_T_IN, 0);
	put_desc_at(GPA_INDIRECT, 0, GPA_HDR, 16, F_NEXT, 1);
	for (unsigned i = 0; i < nseg; i++)
		put_desc_at(GPA_INDIRECT, 1 + i, GPA_DATA + 512 * i, 512,
			    F_NEXT | F_WRITE, (uint16_t)(2 + i));
	put_desc_at(GPA_INDIRECT, 1 + nseg, GPA_STATUS, 1, F_WRITE, 0);
	put_desc(0, GPA_INDIRECT, 16 * (nseg + 2), F_INDIRECT, 0);
	*gp(GPA_STATUS) = 0xee;
	make_avail(0);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 1);
	wait_used(1);
	ck_assert_uint_eq(*gp(GPA_STATUS), VBLK_S_IOERR);
	assert_filled(GPA_DATA, 512 * nseg, 0xa5);
}
END_TEST

START_TEST(read_only_device)
{
	uint64_t f;

	vblk_dev_free(dev);
	ck_assert_int_eq(blockif_close(bc), 0);
	open_device("disk.raw,format=raw,ro");
	f = vblk_dev_features(dev);
	ck_assert(f & (1ull << VBLK_F_RO));
	ck_assert(!(f & (1ull << VBLK_F_WRITE_ZEROES)));
	ck_assert(!(f & (1ull << VBLK_F_DISCARD)));
	start_queue(base_features);
	ck_assert_uint_eq(run3(VBLK_T_OUT, 0, GPA_DATA, 4096, false),
			  VBLK_S_IOERR);
	ck_assert_uint_eq(run_zero_range(VBLK_T_WRITE_ZEROES, 0, 8, 0),
			  VBLK_S_IOERR);
	ck_assert_uint_eq(run3(VBLK_T_IN, 0, GPA_DATA, 4096, true), VBLK_S_OK);
	assert_disk_unchanged();
}
END_TEST

START_TEST(event_idx)
{
	const uint64_t used_event = GPA_AVAIL + 4 + 2 * QSZ;
	const uint64_t avail_event = GPA_USED + 4 + 8 * QSZ;
	unsigned before;

	start_queue(base_features | 1ull << VBLK_F_RING_EVENT_IDX);
	/* used_event 0: the first completion (used 0 -> 1) interrupts. */
	put16(used_event, 0);
	ck_assert_uint_eq(run2(VBLK_T_FLUSH, 0), VBLK_S_OK);
	ck_assert_uint_eq(notify_count(), 1);
	/* The device asks for a kick at the next avail entry. */
	ck_assert_uint_eq(get16(avail_event), 1);
	/* used_event 5: completions up to index 5 stay silent. */
	put16(used_event, 5);
	before = notify_count();
	ck_assert_uint_eq(run2(VBLK_T_FLUSH, 0), VBLK_S_OK);
	ck_assert_uint_eq(notify_count(), before);
	ck_assert_uint_eq(get16(avail_event), 2);
}
END_TEST

START_TEST(no_interrupt_flag)
{
	start_queue(base_features);
	put16(GPA_AVAIL, 1); /* VRING_AVAIL_F_NO_INTERRUPT */
	ck_assert_uint_eq(run2(VBLK_T_FLUSH, 0), VBLK_S_OK);
	ck_assert_uint_eq(notify_count(), 0);
	put16(GPA_AVAIL, 0);
	ck_assert_uint_eq(run2(VBLK_T_FLUSH, 0), VBLK_S_OK);
	ck_assert_uint_eq(notify_count(), 1);
}
END_TEST

/* N reads of different sectors (8i) made available at once, chains at
 * descriptors 3i..3i+2, their headers in the indirect area. */
static void make_reads(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned d = 3 * i;
		uint64_t hdr = GPA_INDIRECT + 64 * i;

		put_hdr(hdr, VBLK_T_IN, 8 * i);
		put_desc(d, hdr, 16, F_NEXT, (uint16_t)(d + 1));
		put_desc(d + 1, GPA_DATA + 4096 * i, 4096, F_NEXT | F_WRITE,
			 (uint16_t)(d + 2));
		put_desc(d + 2, hdr + 32, 1, F_WRITE, 0);
		*gp(hdr + 32) = 0xee;
		make_avail((uint16_t)d);
	}
}

/* The N reads make_reads made completed and read the disk. */
static void check_reads(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		ck_assert_uint_eq(*gp(GPA_INDIRECT + 64 * i + 32), VBLK_S_OK);
		ck_assert(memcmp(gp(GPA_DATA + 4096 * i), disk + 4096 * i,
				 4096) == 0);
	}
}

START_TEST(many_in_flight)
{
	/* Five reads of different sectors in flight at once, chains at
	 * descriptors 3i..3i+2. */
	start_queue(base_features);
	make_reads(5);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 5);
	wait_used(5);
	check_reads(5);
}
END_TEST

/* Read (or write) 4 KiB at SECTOR through head 0, processed alone;
 * returns whether it was answered inside vblk_queue_process, on this
 * thread. */
static bool lone_request(uint32_t type, uint64_t sector)
{
	uint16_t want = (uint16_t)(used_idx() + 1);
	bool here;

	put_hdr(GPA_HDR, type, sector);
	*gp(GPA_STATUS) = 0xee;
	put_desc(0, GPA_HDR, 16, F_NEXT, 1);
	put_desc(1, GPA_DATA, 4096, F_NEXT | (type == VBLK_T_IN ? F_WRITE : 0),
		 2);
	put_desc(2, GPA_STATUS, 1, F_WRITE, 0);
	make_avail(0);
	ck_assert_int_eq(vblk_queue_process(dev, 0), 1);
	/* Answered already when inline; the driver is interrupted (no
	 * event index) from the thread that answered. */
	here = used_idx() == want;
	wait_used(want);
	ck_assert_uint_eq(*gp(GPA_STATUS), VBLK_S_OK);
	return here && notified_here();
}

/* lone_here: once a few requests in a row were alone, the next lone
 * reads and writes are performed inline; two taken together go to the
 * workers and start the count again. */
START_TEST(lone_requests_inline)
{
	struct vblk_dev_params p = {.num_queues = 1, .lone_here = true};
	unsigned i, inline_from = 0;
	uint16_t before;

	vblk_dev_free(dev);
	dev = vblk_dev_new(bc, &p);
	ck_assert_ptr_nonnull(dev);
	start_queue(base_features);
	for (i = 0; i < 16 && !inline_from; i++)
		if (lone_request(VBLK_T_IN, 8 * i))
			inline_from = i;
	ck_assert_msg(inline_from >= 1, "no lone request ran inline");
	for (i = 0; i < 4; i++) {
		tu_fill_random(gp(GPA_DATA), 4096, 100 + i);
		ck_assert(lone_request(VBLK_T_OUT, 8 * i));
		memset(gp(GPA_DATA), 0, 4096);
		ck_assert(lone_request(VBLK_T_IN, 8 * i));
		tu_fill_random(disk + 4096 * i, 4096, 100 + i);
		ck_assert(memcmp(gp(GPA_DATA), disk + 4096 * i, 4096) == 0);
	}
	/* Two at once, at descriptors 3 and 6. */
	for (i = 0; i < 2; i++) {
		unsigned d = 3 + 3 * i;
		uint64_t hdr = GPA_INDIRECT + 64 * i;

		put_hdr(hdr, VBLK_T_IN, 64 + 8 * i);
		put_desc(d, hdr, 16, F_NEXT, (uint16_t)(d + 1));
		put_desc(d + 1, GPA_DATA2 + 4096 * i, 4096, F_NEXT | F_WRITE,
			 (uint16_t)(d + 2));
		put_desc(d + 2, hdr + 32, 1, F_WRITE, 0);
		make_avail((uint16_t)d);
	}
	before = used_idx();
	ck_assert_int_eq(vblk_queue_process(dev, 0), 2);
	wait_used((uint16_t)(before + 2));
	for (i = 0; i < 2; i++)
		ck_assert(memcmp(gp(GPA_DATA2 + 4096 * i),
				 disk + 4096 * (8 + i), 4096) == 0);
	ck_assert(!lone_request(VBLK_T_IN, 0));
}
END_TEST

/* The device's wake-ups: it ran out of room and blockif has some now. */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static unsigned wakes;

static void on_wake(void *opaque)
{
	(void)opaque;
	pthread_mutex_lock(&wake_lock);
	wakes++;
	pthread_cond_broadcast(&wake_cond);
	pthread_mutex_unlock(&wake_lock);
}

static void wait_wake(void)
{
	pthread_mutex_lock(&wake_lock);
	while (wakes == 0)
		pthread_cond_wait(&wake_cond, &wake_lock);
	wakes = 0;
	pthread_mutex_unlock(&wake_lock);
}

static unsigned wake_count(void)
{
	return read_locked(&wake_lock, &wakes);
}

START_TEST(stall_and_wake)
{
	struct vblk_dev_params p = {.num_queues = 1, .max_inflight = 2};
	int r;

	vblk_dev_free(dev);
	dev = vblk_dev_new(bc, &p);
	ck_assert_ptr_nonnull(dev);
	vblk_dev_set_wake(dev, on_wake, NULL);
	start_queue(base_features);
	park_workers(bc);
	make_reads(5);
	/* Two go to blockif, then the device waits for room. */
	ck_assert_int_eq(vblk_queue_process(dev, 0), -EAGAIN);
	ck_assert_int_eq(vblk_queue_process(dev, 0), -EAGAIN);
	ck_assert_uint_eq(used_idx(), 0);
	ck_assert_uint_eq(wake_count(), 0);
	release_workers();
	/* Each wake-up lets the transport take more. */
	do {
		wait_wake();
		r = vblk_queue_process(dev, 0);
		ck_assert(r >= 0 || r == -EAGAIN);
	} while (r == -EAGAIN);
	vblk_queue_drain(dev, 0);
	ck_assert_uint_eq(used_idx(), 5);
	check_reads(5);
}
END_TEST

START_TEST(queue_api_errors)
{
	struct vblk_vring ring = {QSZ, gp(GPA_DESC), gp(GPA_AVAIL),
				  gp(GPA_USED)};
	struct vblk_vring bad = ring;

	ck_assert_int_eq(vblk_queue_process(dev, 0), -EINVAL);
	ck_assert_int_eq(vblk_queue_process(dev, 5), -EINVAL);
	bad.size = 12;
	ck_assert_int_eq(vblk_queue_start(dev, 0, &bad, 0, NULL, NULL),
			 -EINVAL);
	bad = ring;
	bad.desc = gp(GPA_DESC + 8);
	ck_assert_int_eq(vblk_queue_start(dev, 0, &bad, 0, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(vblk_queue_start(dev, 2, &ring, 0, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(vblk_queue_start(dev, 1, &ring, 0, NULL, NULL), 0);
	ck_assert_int_eq(vblk_queue_start(dev, 1, &ring, 0, NULL, NULL),
			 -EBUSY);
	ck_assert_int_eq(vblk_dev_set_mem(dev, &gmem), -EBUSY);
	ck_assert_uint_eq(vblk_queue_stop(dev, 1), 0);
	ck_assert_ptr_null(
		vblk_mem_translate(&gmem, REGION_C + REGION_C_SIZE, 1));
	ck_assert_ptr_null(vblk_mem_translate(&gmem, REGION_B - 1, 2));
	ck_assert_ptr_eq(vblk_mem_translate(&gmem, REGION_B, 16), mem_b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_blk");
	TCase *tc;

	tc = tcase(s, "requests");
	tcase_add_test(tc, config_space);
	tcase_add_test(tc, read_write_flush);
	tcase_add_test(tc, get_id_and_unsupported);
	tcase_add_test(tc, write_zeroes_and_discard);
	tcase_add_test(tc, bad_ranges);
	tcase_add_test(tc, unusual_framing);
	tcase_add_test(tc, buffer_across_regions);
	tcase_add_test(tc, read_only_device);
	tcase_add_test(tc, many_in_flight);
	tcase_add_test(tc, lone_requests_inline);
	tcase_add_test(tc, queue_api_errors);
	tcase_add_test(tc, stall_and_wake);

	tc = tcase(s, "notifications");
	tcase_add_test(tc, event_idx);
	tcase_add_test(tc, no_interrupt_flag);

	tc = tcase(s, "malicious");
	tcase_add_test(tc, wrong_directions);
	tcase_add_test(tc, descriptor_loop);
	tcase_add_test(tc, descriptor_outside_memory);
	tcase_add_test(tc, descriptor_past_region_end);
	tcase_add_test(tc, descriptor_wrapping_address);
	tcase_add_test(tc, next_out_of_range);
	tcase_add_test(tc, head_out_of_range);
	tcase_add_test(tc, avail_index_jump);
	tcase_add_test(tc, status_not_writable);
	tcase_add_test(tc, indirect_ok);
	tcase_add_test(tc, indirect_not_negotiated);
	tcase_add_test(tc, indirect_bad_length);
	tcase_add_test(tc, indirect_too_long);
	tcase_add_test(tc, indirect_nested);
	tcase_add_test(tc, indirect_with_next);
	tcase_add_test(tc, indirect_loop);
	tcase_add_test(tc, indirect_table_outside_memory);
	tcase_add_test(tc, too_many_segments);
	return tu_run_suite(s);
}
