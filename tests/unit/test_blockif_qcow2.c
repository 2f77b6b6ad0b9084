/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif stress over a qcow2 overlay with a qcow2 backing file, both
 * made by qemu-img; afterwards qemu-img must find the overlay consistent
 * and identical to the expected content.  Skipped (77) without qemu-img
 * or without a qcow2 driver in libmimg.
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

START_TEST(stress_qcow2_backing)
{
	/* Base: data in the first half, a hole in the second. */
	uint8_t *shadow = stress_base_image("-O qcow2", "base.qcow2", DISK_SIZE,
					    DISK_SIZE / 2, 3);

	tu_sh("qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 -o "
	      "cluster_size=4096 overlay.qcow2");
	stress_open_qemu_reads("overlay.qcow2", "overlay.qcow2", "qcow2",
			       shadow, DISK_SIZE, 1500, 11);
	/* The backing file was only read. */
	tu_sh("qemu-img compare -q -f qcow2 -F raw base.qcow2 base.raw");
	free(shadow);
}
END_TEST

START_TEST(untrusted_refuses_backing)
{
	struct blockif_ctxt *bc;

	tu_make_sparse("base.raw", 1 << 20);
	tu_sh("qemu-img convert -q -f raw -O qcow2 base.raw base.qcow2");
	tu_sh("qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "
	      "overlay.qcow2");
	/* An uploaded image must not pull in other host files. */
	ck_assert_ptr_null(blockif_open_optstr("overlay.qcow2,untrusted", "t"));
	bc = blockif_open_optstr("base.qcow2,untrusted", "t");
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(blockif_close(bc), 0);
	bc = blockif_open_optstr("overlay.qcow2", "t");
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(blockif_close(bc), 0);
}
END_TEST

int main(void)
{
	if (!tu_have_qemu_img_and("qcow2"))
		return 77;
	return tu_main("blockif_qcow2", "qcow2",
		       TU_TESTS(stress_qcow2_backing,
				untrusted_refuses_backing));
}
