/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VHD (Virtual PC / Hyper-V, qemu's "vpc"): shared definitions.
 *
 * A fixed VHD is the disk followed by a 512-byte footer.  A dynamic VHD
 * starts with a copy of the footer, then a 1024-byte dynamic header that
 * locates the block allocation table (BAT: big-endian 32-bit sector
 * numbers, all ones when unallocated); each allocated block is a sector
 * bitmap followed by the block's data, and the footer ends the file.
 * Every number is big-endian.
 */
#ifndef MIMG_VPC_H
#define MIMG_VPC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blocktable.h"
#include "image.h"

#define VPC_FOOTER_SIZE 512
#define VPC_DYN_HEADER_SIZE 1024
#define VPC_SECTOR 512
#define VPC_BAT_UNUSED 0xffffffffu

/* Footer fields (byte offsets). */
#define VPC_F_COOKIE 0
#define VPC_F_FEATURES 8
#define VPC_F_VERSION 12
#define VPC_F_DATA_OFFSET 16
#define VPC_F_TIMESTAMP 24
#define VPC_F_CREATOR_APP 28
#define VPC_F_CREATOR_VER 32
#define VPC_F_CREATOR_OS 36
#define VPC_F_ORIG_SIZE 40
#define VPC_F_CUR_SIZE 48
#define VPC_F_CYLS 56
#define VPC_F_HEADS 58
#define VPC_F_SECS 59
#define VPC_F_TYPE 60
#define VPC_F_CHECKSUM 64
#define VPC_F_UUID 68

/* Dynamic header fields. */
#define VPC_D_COOKIE 0
#define VPC_D_DATA_OFFSET 8
#define VPC_D_TABLE_OFFSET 16
#define VPC_D_VERSION 24
#define VPC_D_MAX_ENTRIES 28
#define VPC_D_BLOCK_SIZE 32
#define VPC_D_CHECKSUM 36

enum { VPC_FIXED = 2, VPC_DYNAMIC = 3, VPC_DIFFERENCING = 4 };

/* The largest CHS geometry, 65535 x 16 x 255 sectors, and qemu-img's cap
 * on a disk sized from it (2040 GiB). */
#define VPC_MAX_GEOMETRY (65535ull * 16 * 255)
#define VPC_MAX_SECTORS 0xff000000ull
/* Memory budget for the BAT (entries), far above any real image: 2040 GiB
 * in 2 MiB blocks is about a million entries. */
#define VPC_MAX_BAT_ENTRIES (1u << 26)
#define VPC_TIMESTAMP_BASE 946684800 /* 2000-01-01 00:00:00 UTC */

struct vpc {
	/* Under img->table_lock: bat, next_free, file_size. */
	bool fixed;
	uint8_t footer[VPC_FOOTER_SIZE];
	/* dynamic */
	uint64_t dyn_offset;
	uint64_t bat_offset;
	uint32_t max_entries; /* entries on disk */
	uint32_t nblocks;     /* entries covering the virtual size */
	uint32_t *bat;	      /* nblocks entries, host order */
	uint32_t block_size;
	uint32_t bitmap_size;
	uint64_t meta_end;  /* end of the header, dynamic header and BAT */
	uint64_t next_free; /* where the next block (and the footer) go */
	uint64_t file_size;
	struct mimg_blocktable bt; /* dynamic: I/O through the BAT */
};

/* One's complement of the byte sum, with the LEN-byte structure's own
 * checksum field (at CK_OFF) counted as zero. */
uint32_t vpc_checksum(const uint8_t *buf, size_t len, size_t ck_off);
/* qemu-img's CHS geometry for TOTAL_SECTORS (the VHD spec's algorithm). */
void vpc_geometry(uint64_t total_sectors, uint16_t *cyls, uint8_t *heads,
		  uint8_t *secs);

extern const struct mimg_optdesc vpc_create_opts[];
int vpc_create(const char *path, uint64_t size, const struct mimg_opt *opts,
	       size_t nopts, struct mimg *backing);
int vpc_check(struct mimg *img, unsigned flags, struct mimg_check_result *res);

#endif
