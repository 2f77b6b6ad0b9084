/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Creating VDI images as qemu-img 7.2 lays them out: the header, the
 * block map at 512 (padded to a sector with zeroes), the data area right
 * after it; 1 MiB blocks, enough to hold the size.  A static image has
 * every block allocated in order and the file sized to hold them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "uuid.h"
#include "vdi.h"

/* qemu-img 7.2's vdi create options, sorted by name. */
const struct mimg_optdesc vdi_create_opts[] = {
	MIMG_OPT_FILE_PREALLOC,
	MIMG_OPT_SIZE,
	{"static", MIMG_OPTK_BOOL, "VDI static (pre-allocated) image", "off",
	 NULL, NULL, 0},
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};

static int parse_opts(const char *path, const struct mimg_opt *opts,
		      size_t nopts, bool *is_static, enum mimg_prealloc *pre)
{
	struct mimg_optval vals[3];
	int r;

	*pre = MIMG_PREALLOC_OFF;
	if ((r = mimg__opts_validate(vdi_create_opts, NULL, opts, nopts,
				     vals)) < 0)
		return r;
	*is_static = vals[2].b;
	return mimg__opt_prealloc_falloc(path, "vdi", vals[0].s, pre);
}

int vdi_create(const char *path, uint64_t size, const struct mimg_opt *opts,
	       size_t nopts, struct mimg *backing)
{
	uint8_t h[VDI_HEADER_SIZE] = {0};
	enum mimg_prealloc pre;
	struct mimg_file *file;
	bool is_static;
	int r;

	if ((r = parse_opts(path, opts, nopts, &is_static, &pre)) < 0)
		return r;
	if (size > (uint64_t)VDI_BLOCKS_MAX * VDI_BLOCK_SIZE)
		return mimg_err(-ENOTSUP,
				"%s: Unsupported VDI image size (size "
				"is 0x%llx, max supported is 0x%llx)",
				path, (unsigned long long)size,
				(unsigned long long)VDI_BLOCKS_MAX *
					VDI_BLOCK_SIZE);
	uint32_t blocks = (uint32_t)div_round_up_u64(size, VDI_BLOCK_SIZE);
	uint64_t map_bytes = ((uint64_t)blocks * 4 + VDI_SECTOR - 1) &
			     ~(uint64_t)(VDI_SECTOR - 1);
	uint64_t data = VDI_HEADER_SIZE + map_bytes;

	memcpy(h, VDI_TEXT, sizeof(VDI_TEXT) - 1);
	st_le32(h + VDI_H_SIGNATURE, VDI_SIGNATURE);
	st_le32(h + VDI_H_VERSION, VDI_VERSION_1_1);
	st_le32(h + VDI_H_HEADER_SIZE, 0x180);
	st_le32(h + VDI_H_IMAGE_TYPE,
		is_static ? VDI_TYPE_STATIC : VDI_TYPE_DYNAMIC);
	st_le32(h + VDI_H_OFFSET_BMAP, VDI_HEADER_SIZE);
	st_le32(h + VDI_H_OFFSET_DATA, (uint32_t)data);
	st_le32(h + VDI_H_SECTOR_SIZE, VDI_SECTOR);
	st_le64(h + VDI_H_DISK_SIZE, size);
	st_le32(h + VDI_H_BLOCK_SIZE, VDI_BLOCK_SIZE);
	st_le32(h + VDI_H_BLOCKS, blocks);
	st_le32(h + VDI_H_ALLOCATED, is_static ? blocks : 0);
	mimg__uuid_random(h + VDI_H_UUID_IMAGE);
	mimg__uuid_random(h + VDI_H_UUID_SNAP);

	if (data > UINT32_MAX)
		return mimg_err(-EFBIG, "%s: vdi: block map too large", path);
	uint8_t *map = calloc(1, map_bytes ? map_bytes : 1);
	if (!map)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < blocks; i++)
		st_le32(map + (uint64_t)i * 4, is_static ? i : VDI_UNALLOCATED);
	if ((r = mimg_file_open(&file, path,
				MIMG_FILE_RDWR | MIMG_FILE_CREATE)) < 0) {
		free(map);
		return r;
	}
	if ((r = mimg_file_pwrite(file, h, sizeof(h), 0)) == 0 &&
	    (r = mimg_file_pwrite(file, map, map_bytes, VDI_HEADER_SIZE)) ==
		    0 &&
	    is_static) {
		uint64_t end = data + (uint64_t)blocks * VDI_BLOCK_SIZE;
		r = mimg_file_truncate(file, end);
		if (r == 0 && pre == MIMG_PREALLOC_FALLOC)
			r = mimg_file_allocate(file, data, end - data);
	}
	free(map);
	int rc = mimg_file_close(file);
	return r < 0 ? r : rc;
}
