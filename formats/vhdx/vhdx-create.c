/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Creating VHDX images laid out as qemu-img 7.2 lays them out: the header
 * section, the log (1 MiB by default) at 1 MiB, the BAT after it (whole
 * MiB), the metadata region (1 MiB) after that, and the data from 4 MiB
 * past the metadata on.  A fixed image has every block allocated there
 * in order; a dynamic one has none, its blocks in the ZERO state unless
 * block_state_zero=off says to leave them NOT_PRESENT.  Both headers and
 * region tables are written, with their CRC-32C; the log is empty.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "crc32c.h"
#include "endian.h"
#include "error.h"
#include "iov.h"
#include "uuid.h"
#include "vhdx.h"

/* qemu-img 7.2's vhdx create options, sorted by name. */
const struct mimg_optdesc vhdx_create_opts[] = {
	{"block_size", MIMG_OPTK_SIZE,
	 "Block Size; min 1MB, max 256MB. 0 means auto-calculate based on "
	 "image size.",
	 NULL, NULL, NULL, 0},
	{"block_state_zero", MIMG_OPTK_BOOL,
	 "Force use of payload blocks of type 'ZERO'. Non-standard, but "
	 "default.  Do not set to 'off' when using 'qemu-img convert' with "
	 "subformat=dynamic.",
	 "on", NULL, NULL, 0},
	{"log_size", MIMG_OPTK_SIZE, "Log size; min 1MB.", NULL, NULL, NULL, 0},
	MIMG_OPT_FILE_PREALLOC,
	{"size", MIMG_OPTK_SIZE, "Virtual disk size; max of 64TB.", NULL, NULL,
	 NULL, 0},
	{"subformat", MIMG_OPTK_STRING,
	 "VHDX format type, can be either 'dynamic' or 'fixed'. Default is "
	 "'dynamic'.",
	 NULL, NULL, NULL, 0},
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};

enum { OPT_BLOCK_SIZE, OPT_ZERO, OPT_LOG, OPT_PREALLOC, OPT_SIZE, OPT_SUB };
MIMG_OPTS_INDEXED(vhdx_create_opts, OPT_SUB + 1);

struct layout {
	bool fixed, zero_state;
	enum mimg_prealloc prealloc;
	uint64_t size;
	uint32_t block_size;
	uint64_t log_length;
	uint64_t bat_offset, bat_length;
	uint64_t meta_offset;
	uint64_t data_offset; /* the first block's place */
	uint64_t nblocks, chunk_ratio, bat_entries;
};

/* qemu-img's block size for a disk of SIZE bytes when none is given. */
static uint32_t default_block_size(uint64_t size)
{
	if (size > (32ull << 40))
		return 64u << 20;
	if (size > (100ull << 30))
		return 32u << 20;
	if (size > (1ull << 30))
		return 16u << 20;
	return 8u << 20;
}

static int plan(const char *path, uint64_t size, const struct mimg_opt *opts,
		size_t nopts, struct layout *l)
{
	struct mimg_optval v[OPT_SUB + 1];
	int r;
	memset(l, 0, sizeof(*l));
	if ((r = mimg__opts_validate(vhdx_create_opts, NULL, opts, nopts, v)) <
	    0)
		return r;
	if (v[OPT_SUB].set && strcmp(v[OPT_SUB].s, "dynamic") != 0) {
		if (strcmp(v[OPT_SUB].s, "fixed") != 0)
			return mimg_err(-EINVAL,
					"%s: Parameter 'subformat' does not "
					"accept value '%s'",
					path, v[OPT_SUB].s);
		l->fixed = true;
	}
	if ((r = mimg__opt_prealloc_falloc(path, "vhdx", v[OPT_PREALLOC].s,
					   &l->prealloc)) < 0)
		return r;
	l->zero_state = v[OPT_ZERO].b;
	if (size > VHDX_MAX_SIZE)
		return mimg_err(-EINVAL,
				"%s: Image size too large; max of 64TB", path);
	/* A whole number of 512-byte sectors. */
	l->size = (size + 511) & ~511ull;
	/* As qemu-img takes a block size given: rounded up to whole MiB and
	 * capped at 256 MiB before it must be a power of two. */
	uint64_t bs = v[OPT_BLOCK_SIZE].u;
	if (bs == 0)
		bs = default_block_size(l->size);
	else if (!ck_align_up_u64(bs, VHDX_MIB, &bs) || bs > 256 * VHDX_MIB)
		bs = 256 * VHDX_MIB;
	if (!is_pow2_u64(bs))
		return mimg_err(-EINVAL,
				"%s: Block size must be a power of two", path);
	l->block_size = (uint32_t)bs;
	l->log_length = max_u64(v[OPT_LOG].u, VHDX_MIB);
	if (!ck_align_up_u64(l->log_length, VHDX_MIB, &l->log_length) ||
	    l->log_length > UINT32_MAX)
		return mimg_err(-EINVAL, "%s: Log size %llu is too large", path,
				(unsigned long long)v[OPT_LOG].u);
	l->nblocks = div_round_up_u64(l->size, bs);
	l->chunk_ratio = vhdx_chunk_ratio(512, (uint32_t)bs);
	l->bat_entries = vhdx_bat_entries(l->nblocks, l->chunk_ratio);
	l->bat_offset = VHDX_HEADER_SECTION + l->log_length;
	l->bat_length = div_round_up_u64(l->bat_entries * 8, VHDX_MIB) *
			VHDX_MIB;
	/* qemu-img counts the BAT entries of an empty disk as if it had
	 * 2^32 blocks less one (it cannot open the image otherwise), and
	 * sizes the region so: the same here (it costs no space). */
	if (!l->nblocks)
		l->bat_length = div_round_up_u64((uint64_t)UINT32_MAX /
							 l->chunk_ratio * 8,
						 VHDX_MIB) *
				VHDX_MIB;
	l->meta_offset = l->bat_offset + l->bat_length;
	/* Room for the metadata to grow, as qemu-img leaves it. */
	l->data_offset = l->meta_offset + 5 * VHDX_MIB;
	return 0;
}

static void put_header(uint8_t *h, const struct layout *l, uint64_t seq,
		       const uint8_t *file_guid, const uint8_t *data_guid)
{
	memset(h, 0, VHDX_HEADER_SIZE);
	memcpy(h, "head", 4);
	st_le64(h + VHDX_H_SEQUENCE, seq);
	memcpy(h + VHDX_H_FILE_WRITE_GUID, file_guid, 16);
	memcpy(h + VHDX_H_DATA_WRITE_GUID, data_guid, 16);
	st_le16(h + VHDX_H_VERSION, 1);
	st_le32(h + VHDX_H_LOG_LENGTH, (uint32_t)l->log_length);
	st_le64(h + VHDX_H_LOG_OFFSET, VHDX_HEADER_SECTION);
	vhdx_checksum_set(h, VHDX_HEADER_SIZE);
}

/* The header section: file identifier, both headers, both region
 * tables (BUF: VHDX_HEADER_SECTION bytes, zeroed). */
static void put_header_section(uint8_t *buf, const struct layout *l)
{
	static const char creator[] = "mimg " MIMG_VERSION_STRING;
	uint8_t file_guid[16], data_guid[16];
	memcpy(buf, "vhdxfile", 8);
	for (size_t i = 0; i + 1 < sizeof(creator); i++)
		buf[8 + 2 * i] = (uint8_t)creator[i]; /* UTF-16LE */
	mimg__uuid_random(file_guid);
	mimg__uuid_random(data_guid);
	put_header(buf + VHDX_HEADER1_OFFSET, l, 1, file_guid, data_guid);
	put_header(buf + VHDX_HEADER2_OFFSET, l, 2, file_guid, data_guid);
	uint8_t *t = buf + VHDX_REGION_TABLE1_OFFSET;
	memcpy(t, "regi", 4);
	st_le32(t + 8, 2);
	vhdx_put_guid(t + 16, VHDX_GUID_BAT);
	st_le64(t + 32, l->bat_offset);
	st_le32(t + 40, (uint32_t)l->bat_length);
	st_le32(t + 44, 1); /* required */
	vhdx_put_guid(t + 48, VHDX_GUID_METADATA);
	st_le64(t + 64, l->meta_offset);
	st_le32(t + 72, (uint32_t)VHDX_MIB);
	st_le32(t + 76, 1);
	vhdx_checksum_set(t, VHDX_REGION_TABLE_SIZE);
	memcpy(buf + VHDX_REGION_TABLE2_OFFSET, t, VHDX_REGION_TABLE_SIZE);
}

/* The metadata table and its items (BUF: VHDX_METADATA_TABLE_SIZE + 64
 * bytes, zeroed). */
static void put_metadata(uint8_t *buf, const struct layout *l)
{
	static const struct {
		const char *guid;
		uint32_t len, flags;
	} items[] = {
		{VHDX_GUID_FILE_PARAMS, 8, 4},
		{VHDX_GUID_DISK_SIZE, 8, 6},
		{VHDX_GUID_PAGE83, 16, 6},
		{VHDX_GUID_LOGICAL_SECTOR, 4, 6},
		{VHDX_GUID_PHYSICAL_SECTOR, 4, 6},
	};
	uint32_t off = VHDX_METADATA_TABLE_SIZE;
	memcpy(buf, "metadata", 8);
	st_le16(buf + 10, 5);
	for (size_t i = 0; i < 5; i++) {
		uint8_t *e = buf + 32 + 32 * i;
		vhdx_put_guid(e, items[i].guid);
		st_le32(e + 16, off);
		st_le32(e + 20, items[i].len);
		st_le32(e + 24, items[i].flags); /* required, virtual disk */
		off += items[i].len;
	}
	uint8_t *v = buf + VHDX_METADATA_TABLE_SIZE;
	st_le32(v, l->block_size);
	st_le32(v + 4, l->fixed ? VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED : 0);
	st_le64(v + 8, l->size);
	mimg__uuid_random(v + 16);
	st_le32(v + 32, 512);
	st_le32(v + 36, 512);
}

/* Write the BAT: a fixed image's blocks in order from the data offset,
 * a dynamic image's in the ZERO or NOT_PRESENT state. */
static int put_bat(struct mimg_file *f, const struct layout *l)
{
	enum { CHUNK = 8192 };
	uint8_t *buf = malloc(CHUNK * 8);
	int r = 0;
	if (!buf)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint64_t first = 0; first < l->bat_entries && r == 0;
	     first += CHUNK) {
		uint64_t cnt = min_u64(CHUNK, l->bat_entries - first);
		memset(buf, 0, cnt * 8);
		for (uint64_t k = 0; k < cnt; k++) {
			uint64_t idx = first + k, e;
			uint64_t block;
			if (!vhdx_bat_block(idx, l->chunk_ratio, &block))
				continue; /* a sector bitmap: none */
			if (l->fixed)
				e = (l->data_offset +
				     block * (uint64_t)l->block_size) |
				    VHDX_BLOCK_FULLY_PRESENT;
			else
				e = l->zero_state ? VHDX_BLOCK_ZERO
						  : VHDX_BLOCK_NOT_PRESENT;
			st_le64(buf + k * 8, e);
		}
		/* All zeroes (NOT_PRESENT) needs no writing: a new file. */
		if (!buf_is_zero(buf, cnt * 8))
			r = mimg_file_pwrite(f, buf, cnt * 8,
					     l->bat_offset + first * 8);
	}
	free(buf);
	return r;
}

/* The header section's structures, not the zeroes between them: the
 * file stays sparse, as qemu-img leaves it. */
static int write_header_section(struct mimg_file *f, const uint8_t *head)
{
	static const struct {
		uint32_t off, len;
	} parts[] = {
		{0, VHDX_HEADER1_OFFSET},
		{VHDX_HEADER1_OFFSET, VHDX_HEADER_SIZE},
		{VHDX_HEADER2_OFFSET, VHDX_HEADER_SIZE},
		{VHDX_REGION_TABLE1_OFFSET, VHDX_REGION_TABLE_SIZE},
		{VHDX_REGION_TABLE2_OFFSET, VHDX_REGION_TABLE_SIZE},
	};
	int r = 0;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && r == 0; i++)
		r = mimg_file_pwrite(f, head + parts[i].off, parts[i].len,
				     parts[i].off);
	return r;
}

int vhdx_create(const char *path, uint64_t size, const struct mimg_opt *opts,
		size_t nopts, struct mimg *backing)
{
	struct layout l;
	struct mimg_file *f;
	(void)backing;
	int r = plan(path, size, opts, nopts, &l);
	if (r < 0)
		return r;
	uint8_t *head = calloc(1, VHDX_HEADER_SECTION);
	uint8_t *meta = calloc(1, VHDX_METADATA_TABLE_SIZE + 64);
	if (!head || !meta) {
		free(head);
		free(meta);
		return mimg_err(-ENOMEM, "out of memory");
	}
	put_header_section(head, &l);
	put_metadata(meta, &l);
	uint64_t end = l.data_offset + (l.fixed ? l.size : 0);
	if ((r = mimg_file_open(&f, path, MIMG_FILE_RDWR | MIMG_FILE_CREATE)) ==
	    0) {
		if ((r = mimg_file_truncate(f, end)) == 0 &&
		    (r = mimg_file_pwrite(f, meta,
					  VHDX_METADATA_TABLE_SIZE + 64,
					  l.meta_offset)) == 0 &&
		    (r = put_bat(f, &l)) == 0 &&
		    (r = write_header_section(f, head)) == 0 && l.fixed &&
		    l.prealloc == MIMG_PREALLOC_FALLOC)
			r = mimg_file_allocate(f, l.data_offset, l.size);
		int rc = mimg_file_close(f);
		r = r < 0 ? r : rc;
	}
	free(head);
	free(meta);
	return r;
}
