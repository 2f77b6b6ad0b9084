/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The virtio-blk device the vmm-blk fuzz targets drive: a raw image of a
 * given size in an unlinked temporary file, served through blockif.
 */
#ifndef MIMG_FUZZ_DEVICE_H
#define MIMG_FUZZ_DEVICE_H

#include <stdint.h>

struct vblk_dev;

/* The device, made on first use with NUM_QUEUES queues over a raw image
 * of DISK_SIZE bytes; freed at exit.  Aborts when it cannot be made. */
struct vblk_dev *fuzz_device(uint64_t disk_size, unsigned num_queues);

#endif
