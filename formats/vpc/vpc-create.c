/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Creating VHD images the way qemu-img 7.2 lays them out: the size is
 * rounded up to a CHS geometry unless force_size is given (then the
 * geometry is the maximum and the footer's size is used, creator "qem2",
 * which is what Azure's fixed disks need: an exact MiB multiple).
 * Dynamic: footer copy, dynamic header at 512, BAT at 1536 (all ones,
 * padded to a sector with ones), footer; 2 MiB blocks.  Fixed: the zeroed
 * disk, then the footer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "uuid.h"
#include "vpc.h"

#define VPC_BLOCK_SIZE (2u << 20)
#define VPC_BAT_OFFSET (3 * VPC_SECTOR)

void vpc_geometry(uint64_t total_sectors, uint16_t *cyls, uint8_t *heads,
		  uint8_t *secs)
{
	uint64_t cth;
	unsigned h, spt;

	total_sectors = min_u64(total_sectors, VPC_MAX_GEOMETRY);
	if (total_sectors >= 65535ull * 16 * 63) {
		spt = 255;
		h = 16;
		cth = total_sectors / spt;
	} else {
		spt = 17;
		cth = total_sectors / spt;
		h = (unsigned)div_round_up_u64(cth, 1024);
		if (h < 4)
			h = 4;
		if (cth >= h * 1024ull || h > 16) {
			spt = 31;
			h = 16;
			cth = total_sectors / spt;
		}
		if (cth >= h * 1024ull) {
			spt = 63;
			h = 16;
			cth = total_sectors / spt;
		}
	}
	*cyls = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*secs = (uint8_t)spt;
}

struct vpc_params {
	bool fixed, force_size;
	enum mimg_prealloc prealloc;
};

static const char *const subformat_values[] = {"dynamic", "fixed", NULL};

/* qemu-img 7.2's vpc create options, its help texts, sorted by name. */
const struct mimg_optdesc vpc_create_opts[] = {
	{"force_size", MIMG_OPTK_BOOL,
	 "Force disk size calculation to use "
	 "the actual size specified, rather than using the nearest "
	 "CHS-based calculation",
	 "off", NULL, NULL, 0},
	MIMG_OPT_FILE_PREALLOC,
	MIMG_OPT_SIZE,
	{"subformat", MIMG_OPTK_ENUM,
	 "Type of virtual hard disk format. "
	 "Supported formats are {dynamic (default) | fixed} ",
	 "dynamic", subformat_values, NULL, 0},
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};

static int parse_opts(const char *path, const struct mimg_opt *opts,
		      size_t nopts, struct vpc_params *p)
{
	struct mimg_optval vals[4];
	int r;

	if ((r = mimg__opts_validate(vpc_create_opts, NULL, opts, nopts,
				     vals)) < 0)
		return r;
	p->force_size = vals[0].b;
	p->fixed = vals[3].u == 1;
	return mimg__opt_prealloc_falloc(path, "vpc", vals[1].s, &p->prealloc);
}

/* Sectors and geometry for SIZE bytes, as qemu-img computes them. */
static int size_geometry(const char *path, uint64_t size, bool force,
			 uint64_t *sectors, uint16_t *c, uint8_t *h,
			 uint8_t *spt)
{
	uint64_t want = size / VPC_SECTOR;
	if (force) {
		*c = 65535;
		*h = 16;
		*spt = 255;
		*sectors = want;
		return 0;
	}
	/* Round up to the next geometry that holds the whole size, so that
	 * a conversion never truncates. */
	*c = 0;
	*h = 0;
	*spt = 0;
	uint64_t chs = 0;
	for (uint64_t i = 0; want > chs && chs != VPC_MAX_GEOMETRY; i++) {
		vpc_geometry(want + i, c, h, spt);
		chs = (uint64_t)*c * *h * *spt;
	}
	if (chs == VPC_MAX_GEOMETRY) {
		if (want > VPC_MAX_SECTORS)
			return mimg_err(-EFBIG,
					"%s: Disk size is too large, "
					"max size is 2040 GiB",
					path);
		*sectors = want;
	} else {
		*sectors = chs;
	}
	return 0;
}

static void make_footer(uint8_t *f, uint64_t bytes, bool fixed, bool force,
			uint16_t c, uint8_t h, uint8_t spt)
{
	memset(f, 0, VPC_FOOTER_SIZE);
	memcpy(f + VPC_F_COOKIE, "conectix", 8);
	st_be32(f + VPC_F_FEATURES, 2);
	st_be32(f + VPC_F_VERSION, 0x00010000);
	st_be64(f + VPC_F_DATA_OFFSET, fixed ? UINT64_MAX : VPC_SECTOR);
	st_be32(f + VPC_F_TIMESTAMP,
		(uint32_t)((uint64_t)time(NULL) - VPC_TIMESTAMP_BASE));
	memcpy(f + VPC_F_CREATOR_APP, force ? "qem2" : "qemu", 4);
	st_be32(f + VPC_F_CREATOR_VER, 0x00050003);
	memcpy(f + VPC_F_CREATOR_OS, "Wi2k", 4);
	st_be64(f + VPC_F_ORIG_SIZE, bytes);
	st_be64(f + VPC_F_CUR_SIZE, bytes);
	st_be16(f + VPC_F_CYLS, c);
	f[VPC_F_HEADS] = h;
	f[VPC_F_SECS] = spt;
	st_be32(f + VPC_F_TYPE, fixed ? VPC_FIXED : VPC_DYNAMIC);
	mimg__uuid_random(f + VPC_F_UUID);
	st_be32(f + VPC_F_CHECKSUM,
		vpc_checksum(f, VPC_FOOTER_SIZE, VPC_F_CHECKSUM));
}

static int write_dynamic(struct mimg_file *file, const uint8_t *footer,
			 uint64_t sectors)
{
	uint64_t entries = div_round_up_u64(sectors,
					    VPC_BLOCK_SIZE / VPC_SECTOR);
	uint64_t bat_bytes = (entries * 4 + VPC_SECTOR - 1) & ~(uint64_t)511;
	uint8_t h[VPC_DYN_HEADER_SIZE] = {0};
	uint8_t *bat;
	int r;

	memcpy(h + VPC_D_COOKIE, "cxsparse", 8);
	st_be64(h + VPC_D_DATA_OFFSET, UINT64_MAX);
	st_be64(h + VPC_D_TABLE_OFFSET, VPC_BAT_OFFSET);
	st_be32(h + VPC_D_VERSION, 0x00010000);
	st_be32(h + VPC_D_MAX_ENTRIES, (uint32_t)entries);
	st_be32(h + VPC_D_BLOCK_SIZE, VPC_BLOCK_SIZE);
	st_be32(h + VPC_D_CHECKSUM,
		vpc_checksum(h, VPC_DYN_HEADER_SIZE, VPC_D_CHECKSUM));
	if (!(bat = malloc(bat_bytes ? bat_bytes : 1)))
		return mimg_err(-ENOMEM, "out of memory");
	memset(bat, 0xff, bat_bytes);
	if ((r = mimg_file_pwrite(file, footer, VPC_FOOTER_SIZE, 0)) == 0 &&
	    (r = mimg_file_pwrite(file, h, sizeof(h), VPC_SECTOR)) == 0 &&
	    (r = mimg_file_pwrite(file, bat, bat_bytes, VPC_BAT_OFFSET)) == 0)
		r = mimg_file_pwrite(file, footer, VPC_FOOTER_SIZE,
				     VPC_BAT_OFFSET + bat_bytes);
	free(bat);
	return r;
}

static int write_fixed(struct mimg_file *file, const uint8_t *footer,
		       uint64_t bytes, enum mimg_prealloc prealloc)
{
	int r = mimg_file_truncate(file, bytes + VPC_FOOTER_SIZE);
	if (r == 0 && prealloc == MIMG_PREALLOC_FALLOC)
		r = mimg_file_allocate(file, 0, bytes);
	if (r == 0)
		r = mimg_file_pwrite(file, footer, VPC_FOOTER_SIZE, bytes);
	return r;
}

int vpc_create(const char *path, uint64_t size, const struct mimg_opt *opts,
	       size_t nopts, struct mimg *backing)
{
	struct vpc_params p;
	uint8_t footer[VPC_FOOTER_SIZE];
	struct mimg_file *file;
	uint64_t sectors;
	uint16_t c;
	uint8_t h, spt;
	int r;

	if (size > VPC_MAX_SECTORS * VPC_SECTOR)
		return mimg_err(-EFBIG,
				"%s: The image size is too large for "
				"file format 'vpc'",
				path);
	if ((r = parse_opts(path, opts, nopts, &p)) < 0 ||
	    (r = size_geometry(path, size, p.force_size, &sectors, &c, &h,
			       &spt)) < 0)
		return r;
	make_footer(footer, sectors * VPC_SECTOR, p.fixed, p.force_size, c, h,
		    spt);
	if ((r = mimg_file_open(&file, path,
				MIMG_FILE_RDWR | MIMG_FILE_CREATE)) < 0)
		return r;
	r = p.fixed ? write_fixed(file, footer, sectors * VPC_SECTOR,
				  p.prealloc)
		    : write_dynamic(file, footer, sectors);
	int rc = mimg_file_close(file);
	return r < 0 ? r : rc;
}
