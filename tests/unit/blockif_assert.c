/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Checks of what an open blockif reports about its disk.
 */
#include <check.h>

#include "blockif_assert.h"
#include "vmm-blk/block_if.h"

void blockif_assert_sectors(struct blockif_ctxt *bc, int sectsz, int psectsz,
			    int psectoff)
{
	int sz, off;

	ck_assert_int_eq(blockif_sectsz(bc), sectsz);
	blockif_psectsz(bc, &sz, &off);
	ck_assert_int_eq(sz, psectsz);
	ck_assert_int_eq(off, psectoff);
}
