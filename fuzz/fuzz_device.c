/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * One virtio-blk device over a temporary raw image for the vmm-blk fuzz
 * targets.  The image file is unlinked at once: the open descriptor keeps
 * it, and nothing is left behind however the fuzzer ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../vmm-blk/include/vmm-blk/block_if.h"
#include "../vmm-blk/include/vmm-blk/virtio_blk.h"
#include "fuzz_device.h"

static struct blockif_ctxt *bc;
static struct vblk_dev *dev;

static void cleanup(void)
{
	vblk_dev_free(dev);
	blockif_close(bc);
}

struct vblk_dev *fuzz_device(uint64_t disk_size, unsigned num_queues)
{
	char path[] = "/tmp/fuzz-vmm-blk-XXXXXX";
	char opts[64];
	struct vblk_dev_params p = {.serial = "fuzz", .num_queues = num_queues};
	int fd;

	if (dev)
		return dev;
	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)disk_size) < 0)
		abort();
	close(fd);
	snprintf(opts, sizeof(opts), "%s,format=raw", path);
	bc = blockif_open_optstr(opts, "fuzz");
	unlink(path);
	if (!bc)
		abort();
	dev = vblk_dev_new(bc, &p);
	if (!dev)
		abort();
	atexit(cleanup);
	return dev;
}
