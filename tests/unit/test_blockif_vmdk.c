/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif stress over a monolithicSparse VMDK made by qemu-img (grains
 * allocated concurrently by many requests); afterwards qemu-img must find
 * it consistent and identical to the expected content.  Skipped (77)
 * without qemu-img or without a VMDK driver in libmimg.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mimg.h>

#include "testutil.h"
#include "test_blockif_stress.h"
#include "vmm-blk/block_if.h"

#define DISK_SIZE (8u << 20)

START_TEST(stress_vmdk_sparse)
{
	/* Data in the first quarter, the rest unallocated. */
	uint8_t *shadow = stress_base_image("-O vmdk -o "
					    "subformat=monolithicSparse",
					    "disk.vmdk", DISK_SIZE,
					    DISK_SIZE / 4, 4);

	stress_open_qemu_reads("disk.vmdk,format=vmdk", "disk.vmdk", "vmdk",
			       shadow, DISK_SIZE, 1500, 13);
	free(shadow);
}
END_TEST

int main(void)
{
	if (!tu_have_qemu_img_and("vmdk"))
		return 77;
	return tu_main("blockif_vmdk", "vmdk", TU_TESTS(stress_vmdk_sparse));
}
