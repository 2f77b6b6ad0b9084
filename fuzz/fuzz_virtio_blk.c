/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz the virtio-blk engine as a hostile guest: the input is the whole
 * guest memory (descriptor table, rings, headers, buffers), so descriptor
 * chains, indirect tables, indices and requests are all attacker-chosen.
 * The engine must answer or break the queue, never crash or touch memory
 * outside the guest's (AddressSanitizer checks the latter).
 *
 * Input: byte 0 = options (bit 0 event index, bit 1 indirect descriptors,
 * bits 2-4 log2 of the queue size), then guest memory from address 0.
 * Layout: descriptor table at 0x0, available ring at 0x1000, used ring at
 * 0x2000; memory is two adjacent 32 KiB regions.  Requests go to a 256 KiB
 * raw image in a temporary file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../vmm-blk/include/vmm-blk/block_if.h"
#include "../vmm-blk/include/vmm-blk/virtio_blk.h"
#include "fuzz_device.h"

#define REGION 0x8000u
#define DISK_SIZE (256u << 10)

static struct vblk_dev *dev;
static uint8_t *mem[2];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct vblk_mem gm = {.nregions = 2};
	struct vblk_vring ring;
	uint64_t features = 1ull << VBLK_F_VERSION_1;
	size_t n;

	if (!ready) {
		dev = fuzz_device(DISK_SIZE, 1);
		mem[0] = aligned_alloc(4096, REGION);
		mem[1] = aligned_alloc(4096, REGION);
		if (!mem[0] || !mem[1])
			abort();
		ready = 1;
	}
	if (size < 1)
		return 0;
	if (data[0] & 1)
		features |= 1ull << VBLK_F_RING_EVENT_IDX;
	if (data[0] & 2)
		features |= 1ull << VBLK_F_RING_INDIRECT_DESC;
	memset(mem[0], 0, REGION);
	memset(mem[1], 0, REGION);
	n = size - 1 < 2 * REGION ? size - 1 : 2 * REGION;
	memcpy(mem[0], data + 1, n < REGION ? n : REGION);
	if (n > REGION)
		memcpy(mem[1], data + 1 + REGION, n - REGION);
	gm.regions[0] = (struct vblk_mem_region){0, REGION, mem[0]};
	gm.regions[1] = (struct vblk_mem_region){REGION, REGION, mem[1]};
	if (vblk_dev_set_features(dev, features) < 0 ||
	    vblk_dev_set_mem(dev, &gm) < 0)
		abort();
	ring.size = 1u << ((data[0] >> 2) & 7);
	ring.desc = mem[0];
	ring.avail = mem[0] + 0x1000;
	ring.used = mem[0] + 0x2000;
	if (vblk_queue_start(dev, 0, &ring, 0, NULL, NULL) < 0)
		abort();
	/* Twice: a second pass sees the state the first one left. */
	vblk_queue_process(dev, 0);
	vblk_queue_process(dev, 0);
	vblk_queue_stop(dev, 0);
	return 0;
}
