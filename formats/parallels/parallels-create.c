/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Creating Parallels images as qemu-img 7.2 lays them out: a
 * "WithouFreSpacExt" header, the BAT right after it, the data area at
 * the next cluster boundary; the file ends there.
 */
#include <errno.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "parallels.h"

/* qemu-img 7.2's parallels create options, sorted by name. */
const struct mimg_optdesc parallels_create_opts[] = {
	{"cluster_size", MIMG_OPTK_SIZE, "Parallels image cluster size",
	 "1048576", NULL, NULL, 0},
	MIMG_OPT_SIZE,
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};

/* qemu-img's bounds: a BAT entry count that fits 32 bits, a cluster
 * under 2 GiB. */
#define PRL_CREATE_CLUSTER_MAX 0x7fffffffull
#define PRL_CREATE_ENTRIES_MAX (1ull << 32)

int parallels_create(const char *path, uint64_t size,
		     const struct mimg_opt *opts, size_t nopts,
		     struct mimg *backing)
{
	struct mimg_optval vals[2];
	uint8_t h[PRL_HEADER_SIZE] = {0};
	struct mimg_file *file;
	uint64_t total, cluster;
	int r;

	(void)backing;
	if ((r = mimg__opts_validate(parallels_create_opts, NULL, opts, nopts,
				     vals)) < 0)
		return r;
	if (!ck_align_up_u64(vals[0].u, PRL_SECTOR, &cluster) ||
	    cluster >= PRL_CREATE_CLUSTER_MAX)
		return mimg_err(-EINVAL, "%s: Cluster size is too large", path);
	if (!ck_align_up_u64(size, PRL_SECTOR, &total) ||
	    total / PRL_CREATE_ENTRIES_MAX >= cluster)
		return mimg_err(-E2BIG,
				"%s: Image size is too large for this "
				"cluster size",
				path);
	uint64_t entries = div_round_up_u64(total, cluster);
	uint64_t data = div_round_up_u64(PRL_HEADER_SIZE + entries * 4,
					 cluster) *
			cluster;
	if (data / PRL_SECTOR > UINT32_MAX)
		return mimg_err(-E2BIG, "%s: parallels: BAT too large", path);

	memcpy(h, PRL_MAGIC_EXT, PRL_MAGIC_LEN);
	st_le32(h + PRL_H_VERSION, PRL_VERSION);
	/* The geometry is for guests only; qemu-img's values. */
	st_le32(h + PRL_H_HEADS, 16);
	st_le32(h + PRL_H_CYLINDERS, (uint32_t)(total / PRL_SECTOR / 16 / 32));
	st_le32(h + PRL_H_TRACKS, (uint32_t)(cluster / PRL_SECTOR));
	st_le32(h + PRL_H_BAT_ENTRIES, (uint32_t)entries);
	st_le64(h + PRL_H_NB_SECTORS, total / PRL_SECTOR);
	st_le32(h + PRL_H_DATA_OFF, (uint32_t)(data / PRL_SECTOR));

	if ((r = mimg_file_open(&file, path,
				MIMG_FILE_RDWR | MIMG_FILE_CREATE)) < 0)
		return r;
	/* The BAT is zeroes: the file's hole up to the data area. */
	if ((r = mimg_file_truncate(file, data)) == 0)
		r = mimg_file_pwrite(file, h, sizeof(h), 0);
	int rc = mimg_file_close(file);
	return r < 0 ? r : rc;
}
