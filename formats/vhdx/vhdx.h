/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VHDX (Hyper-V's second disk format): shared definitions.
 *
 * The file starts with a 1 MiB header section: a file type identifier
 * ("vhdxfile"), two headers (at 64 and 128 KiB; the valid one with the
 * higher sequence number is current) and two copies of the region table
 * (at 192 and 256 KiB).  The region table locates the BAT and the
 * metadata region; the header locates the log.  The metadata region
 * holds a table of items (block size, virtual size, sector sizes, disk
 * id) named by GUID.  The BAT interleaves one sector-bitmap entry after
 * every "chunk ratio" payload entries; a payload entry gives a block's
 * state and its offset in MiB.  Headers, region tables and log entries
 * carry CRC-32C checksums.  Every number is little-endian; GUIDs are
 * stored as Windows stores them (first three fields little-endian).
 */
#ifndef MIMG_VHDX_H
#define MIMG_VHDX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blocktable.h"
#include "crc32c.h"
#include "endian.h"
#include "image.h"

#define VHDX_MIB (1ull << 20)
#define VHDX_HEADER_SECTION VHDX_MIB
#define VHDX_HEADER_SIZE 4096u
#define VHDX_HEADER1_OFFSET 0x10000u
#define VHDX_HEADER2_OFFSET 0x20000u
#define VHDX_REGION_TABLE_SIZE 0x10000u
#define VHDX_REGION_TABLE1_OFFSET 0x30000u
#define VHDX_REGION_TABLE2_OFFSET 0x40000u
#define VHDX_REGION_MAX_ENTRIES 2047u
#define VHDX_METADATA_TABLE_SIZE 0x10000u
#define VHDX_METADATA_MAX_ENTRIES 2047u
#define VHDX_METADATA_ITEM_MAX VHDX_MIB
#define VHDX_LOG_ENTRY_HEADER_SIZE 64u
/* The largest log whose updates are replayed (in memory). */
#define VHDX_MAX_REPLAY_LOG (64ull << 20)

/* Header fields (byte offsets). */
#define VHDX_H_CHECKSUM 4
#define VHDX_H_SEQUENCE 8
#define VHDX_H_FILE_WRITE_GUID 16
#define VHDX_H_DATA_WRITE_GUID 32
#define VHDX_H_LOG_GUID 48
#define VHDX_H_LOG_VERSION 64
#define VHDX_H_VERSION 66
#define VHDX_H_LOG_LENGTH 68
#define VHDX_H_LOG_OFFSET 72

/* Payload block states (the low three bits of a BAT entry). */
enum {
	VHDX_BLOCK_NOT_PRESENT = 0,
	VHDX_BLOCK_UNDEFINED = 1,
	VHDX_BLOCK_ZERO = 2,
	VHDX_BLOCK_UNMAPPED = 3,
	VHDX_BLOCK_FULLY_PRESENT = 6,
	VHDX_BLOCK_PARTIALLY_PRESENT = 7,
};

/* File parameters' flags. */
#define VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED 0x1u
#define VHDX_PARAM_HAS_PARENT 0x2u

/* Largest virtual disk (64 TiB, the format's limit) and the most
 * payload blocks that allows (64 TiB in 1 MiB blocks). */
#define VHDX_MAX_SIZE (64ull << 40)
#define VHDX_MAX_BLOCKS (1ull << 26)

struct vhdx {
	/* Under img->table_lock: block_host, the fields below that writes
	 * change. */
	struct mimg_blocktable bt;
	uint64_t file_size;
	uint64_t next_free;   /* where the next block goes */
	bool headers_renewed; /* this open's write GUIDs are set */
	bool log_pending;     /* read through a view with the log's updates */
	bool log_replayed;    /* the log's updates were written at open */
	uint8_t header[VHDX_HEADER_SIZE]; /* the current header */
	uint64_t header_off;		  /* and where it is */
	uint32_t block_size;
	uint32_t logical_sector;
	uint32_t physical_sector;
	uint64_t chunk_ratio; /* payload blocks per sector-bitmap block */
	uint64_t nblocks;     /* payload blocks of the virtual disk */
	/* Host offset of each payload block's data; 0: reads as zeroes. */
	uint64_t *block_host;
	bool leave_allocated;
	uint8_t disk_id[16]; /* the page 83 data */
	uint64_t bat_offset, bat_length;
	uint64_t meta_offset, meta_length;
	uint64_t log_offset, log_length;
};

/* The BAT's layout: after every CHUNK_RATIO payload entries comes one
 * sector-bitmap entry; a bitmap block maps 2^23 sectors. */
static inline uint64_t vhdx_chunk_ratio(uint32_t logical_sector,
					uint32_t block_size)
{
	return ((uint64_t)logical_sector << 23) / block_size;
}

/* Entries of the BAT of NBLOCKS payload blocks (without a parent: no
 * bitmap entry after the last payload entry). */
static inline uint64_t vhdx_bat_entries(uint64_t nblocks, uint64_t ratio)
{
	return nblocks ? nblocks + (nblocks - 1) / ratio : 0;
}

/* The BAT entry of payload block BLOCK. */
static inline uint64_t vhdx_bat_index(uint64_t block, uint64_t ratio)
{
	return block + block / ratio;
}

/* The payload block of BAT entry IDX into *BLOCK; false for a
 * sector-bitmap entry. */
static inline bool vhdx_bat_block(uint64_t idx, uint64_t ratio, uint64_t *block)
{
	*block = idx - idx / (ratio + 1);
	return idx % (ratio + 1) != ratio;
}

/* Headers, region tables and log entries keep their CRC-32C at byte 4,
 * computed over all LEN bytes with those four taken as zeroes. */
static inline bool vhdx_checksum_ok(const uint8_t *buf, size_t len)
{
	return ld_le32(buf + 4) == mimg__crc32c_without(buf, len, 4);
}

static inline void vhdx_checksum_set(uint8_t *buf, size_t len)
{
	st_le32(buf + 4, mimg__crc32c_without(buf, len, 4));
}

/* The GUIDs naming regions and metadata items. */
#define VHDX_GUID_BAT "2DC27766-F623-4200-9D64-115E9BFD4A08"
#define VHDX_GUID_METADATA "8B7CA206-4790-4B9A-B8FE-575F050F886E"
#define VHDX_GUID_FILE_PARAMS "CAA16737-FA36-4D43-B3B6-33F0AA44E76B"
#define VHDX_GUID_DISK_SIZE "2FA54224-CD1B-4876-B211-5DBED83BF4B8"
#define VHDX_GUID_PAGE83 "BECA12AB-B2E6-4523-93EF-C309E000C746"
#define VHDX_GUID_LOGICAL_SECTOR "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"
#define VHDX_GUID_PHYSICAL_SECTOR "CDA348C7-445D-4471-9CC9-E9885251C556"
#define VHDX_GUID_PARENT_LOCATOR "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"

/* Whether the 16 bytes at G are the GUID TEXT (upper-case canonical
 * form); store TEXT there (formats/vhdx/vhdx-guid.c). */
bool vhdx_guid_is(const uint8_t *g, const char *text);
void vhdx_put_guid(uint8_t *g, const char *text);

extern const struct mimg_optdesc vhdx_create_opts[];
int vhdx_create(const char *path, uint64_t size, const struct mimg_opt *opts,
		size_t nopts, struct mimg *backing);

/* Parse the header section, the metadata and the BAT of IMG's file into
 * S and set img->size (formats/vhdx/vhdx-open.c). */
int vhdx_parse(struct mimg *img, struct vhdx *s);
/* When the log of IMG (header H) holds updates, replace img->file by a
 * view of it with them made, or (opened for writing) make them in the
 * file (formats/vhdx/vhdx-log.c). */
int vhdx_log_view(struct mimg *img, struct vhdx *s, const uint8_t *h);
/* Write s->header, with new write GUIDs, to both header slots in turn
 * (vhdx.c).  Called with img->table_lock held, or before the image is in
 * use. */
int vhdx_renew_headers(struct mimg *img, struct vhdx *s);
/* Blocks sharing host space are corruptions (vhdx-check.c). */
int vhdx_check(struct mimg *img, unsigned flags, struct mimg_check_result *res);

#endif
