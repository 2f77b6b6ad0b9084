/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The driver's side of a split virtqueue, for the virtio-blk tests.
 */
#include "virtq_driver.h"

#include <string.h>

void vq_put_desc(uint8_t *table, unsigned i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	uint8_t *d = table + 16 * (size_t)i;

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

void vq_put_blk_hdr(uint8_t *hdr, uint32_t type, uint64_t sector)
{
	memset(hdr, 0, 16);
	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
}

void vq_make_avail(uint8_t *avail, uint16_t qsz, uint16_t *idx, uint16_t head)
{
	memcpy(avail + 4 + 2 * (*idx % qsz), &head, 2);
	(*idx)++;
	__atomic_store_n((uint16_t *)(avail + 2), *idx, __ATOMIC_RELEASE);
}
