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
	uint8_t *shadow = malloc(DISK_SIZE);
	struct blockif_ctxt *bc;

	ck_assert_ptr_nonnull(shadow);
	/* Data in the first quarter, the rest unallocated. */
	memset(shadow, 0, DISK_SIZE);
	tu_fill_random(shadow, DISK_SIZE / 4, 4);
	tu_write_file("base.raw", shadow, DISK_SIZE, 0);
	ck_assert_int_eq(tu_system("qemu-img convert -q -f raw -O vmdk "
				   "-o subformat=monolithicSparse base.raw "
				   "disk.vmdk"),
			 0);
	bc = blockif_open_optstr("disk.vmdk,format=vmdk", "vmdk");
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(blockif_size(bc), DISK_SIZE);
	stress_blockif(bc, shadow, DISK_SIZE, 4, 1500, 13);
	ck_assert_int_eq(blockif_close(bc), 0);

	tu_qemu_reads("disk.vmdk", "vmdk", shadow, DISK_SIZE);
	free(shadow);
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;

	if (!tu_have_qemu_img_and("vmdk"))
		return 77;
	s = suite_create("blockif_vmdk");
	tc = tu_tcase(s, "vmdk");
	tcase_add_test(tc, stress_vmdk_sparse);
	return tu_run_suite(s);
}
