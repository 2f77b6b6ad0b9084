/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VDI (VirtualBox) 1.1 images: shared definitions.
 *
 * A 512-byte little-endian header, then the block map (one 32-bit entry
 * per 1 MiB block of the disk: the index of the block in the data area,
 * or unallocated / discarded), then the data area, blocks in allocation
 * order.  A static image has every block allocated in order at creation.
 */
#ifndef MIMG_VDI_H
#define MIMG_VDI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blocktable.h"
#include "image.h"

#define VDI_HEADER_SIZE 512
#define VDI_SECTOR 512
#define VDI_SIGNATURE 0xbeda107fu
#define VDI_VERSION_1_1 0x00010001u
#define VDI_BLOCK_SIZE (1u << 20)
#define VDI_TEXT "<<< QEMU VM Virtual Disk Image >>>\n"

/* Header fields (byte offsets). */
#define VDI_H_SIGNATURE 0x40
#define VDI_H_VERSION 0x44
#define VDI_H_HEADER_SIZE 0x48
#define VDI_H_IMAGE_TYPE 0x4c
#define VDI_H_OFFSET_BMAP 0x154
#define VDI_H_OFFSET_DATA 0x158
#define VDI_H_SECTOR_SIZE 0x168
#define VDI_H_DISK_SIZE 0x170
#define VDI_H_BLOCK_SIZE 0x178
#define VDI_H_BLOCK_EXTRA 0x17c
#define VDI_H_BLOCKS 0x180
#define VDI_H_ALLOCATED 0x184
#define VDI_H_UUID_IMAGE 0x188
#define VDI_H_UUID_SNAP 0x198
#define VDI_H_UUID_LINK 0x1a8
#define VDI_H_UUID_PARENT 0x1b8

enum { VDI_TYPE_DYNAMIC = 1, VDI_TYPE_STATIC = 2 };

/* Entries at or above this are not allocated (unallocated, discarded):
 * both read as zeroes. */
#define VDI_DISCARDED 0xfffffffeu
#define VDI_UNALLOCATED 0xffffffffu
/* qemu-img's limit on blocks (a block map under 2 GiB, whole sectors). */
#define VDI_BLOCKS_MAX 0x1fffff80u

struct vdi {
	/* Under img->table_lock: bmap, header, next_index, file_size. */
	uint8_t header[VDI_HEADER_SIZE];
	bool is_static;
	uint32_t *bmap;	 /* blocks entries, host order */
	uint32_t blocks; /* blocks_in_image */
	uint64_t offset_bmap, offset_data;
	uint32_t next_index; /* data-area index of the next new block */
	uint64_t file_size;
	struct mimg_blocktable bt; /* I/O through the block map */
};

extern const struct mimg_optdesc vdi_create_opts[];
int vdi_create(const char *path, uint64_t size, const struct mimg_opt *opts,
	       size_t nopts, struct mimg *backing);
int vdi_check(struct mimg *img, unsigned flags, struct mimg_check_result *res);

#endif
