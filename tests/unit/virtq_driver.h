/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The driver's side of a split virtqueue, for the virtio-blk tests:
 * descriptors, request headers and available entries written into guest
 * memory as a guest writes them (little-endian hosts, as the tests).
 */
#ifndef TEST_VIRTQ_DRIVER_H
#define TEST_VIRTQ_DRIVER_H

#include <stdint.h>

/* Descriptor I of the table at TABLE: ADDR, LEN, FLAGS, NEXT. */
void vq_put_desc(uint8_t *table, unsigned i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next);
/* The 16-byte virtio-blk request header at HDR: TYPE, SECTOR. */
void vq_put_blk_hdr(uint8_t *hdr, uint32_t type, uint64_t sector);
/* HEAD as the next entry of the available ring at AVAIL (QSZ entries):
 * *IDX is advanced and published with release order. */
void vq_make_avail(uint8_t *avail, uint16_t qsz, uint16_t *idx, uint16_t head);

#endif
