/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Creating VMDK images with qemu-img's options.  Hosted sparse extents
 * use qemu-img's layout byte for byte (header, embedded descriptor,
 * redundant GD and its GTs, GD and its GTs, padding to a grain), so the
 * two tools' outputs differ only in CIDs.  streamOptimized images have
 * their directory and tables at the front too (see stream.c and
 * doc/vmdk-notes.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "driver.h"
#include "endian.h"
#include "error.h"
#include "file.h"
#include "image.h"
#include "vmdk.h"

#define GRAIN_SECTORS 128u
#define GT_ENTRIES 512u
#define DESC_SECTORS 20u
#define SPLIT_SECTORS (4194304ull) /* 2 GiB extents (twoGbMaxExtent) */

void vmdk_fill_header(uint8_t *h, uint32_t version, uint32_t flags,
		      uint64_t capacity, uint64_t grain_sectors,
		      uint64_t desc_sector, uint64_t desc_sectors,
		      uint32_t gt_entries, uint64_t rgd_sector,
		      uint64_t gd_sector, uint64_t overhead)
{
	memset(h, 0, VMDK_SECTOR);
	st_le32(h, VMDK_MAGIC);
	st_le32(h + 4, version);
	st_le32(h + 8, flags);
	st_le64(h + 12, capacity);
	st_le64(h + 20, grain_sectors);
	st_le64(h + 28, desc_sector);
	st_le64(h + 36, desc_sectors);
	st_le32(h + 44, gt_entries);
	st_le64(h + 48, rgd_sector);
	st_le64(h + 56, gd_sector);
	st_le64(h + 64, overhead);
	h[72] = 0; /* uncleanShutdown */
	h[73] = '\n';
	h[74] = ' ';
	h[75] = '\r';
	h[76] = '\n';
	st_le16(h + 77, (flags & VMDK_FLAG_COMPRESSED) ? 1 : 0);
}

static int write_u32_table(struct mimg_file *f, uint64_t sector, uint64_t n,
			   uint64_t first, uint64_t step)
{
	uint64_t bytes = n * 4;
	uint32_t *t = malloc(bytes ? bytes : 1);
	int r;
	if (!t)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n; i++)
		st_le32(&t[i], (uint32_t)(first + i * step));
	r = mimg_file_pwrite(f, t, bytes, sector * VMDK_SECTOR);
	free(t);
	return r;
}

int vmdk_write_new_sparse(struct mimg_file *f, const char *path,
			  const struct vmdk_sparse_params *p)
{
	uint64_t gt_count = div_round_up_u64(p->capacity,
					     (uint64_t)GRAIN_SECTORS *
						     GT_ENTRIES);
	uint64_t gt_sectors = GT_ENTRIES * 4 / VMDK_SECTOR;
	uint64_t gd_sectors = div_round_up_u64(gt_count * 4, VMDK_SECTOR);
	uint64_t desc_sectors = DESC_SECTORS;
	size_t dlen = p->desc ? strlen(p->desc) : 0;
	uint8_t h[VMDK_SECTOR];
	int r;

	if (gt_count * 4 > VMDK_MAX_GD_BYTES)
		return mimg_err(-EFBIG, "%s: vmdk: image too large", path);
	if (dlen + 1 > desc_sectors * VMDK_SECTOR)
		desc_sectors = div_round_up_u64(dlen + 1, VMDK_SECTOR);
	uint64_t rgd = 1 + desc_sectors;

	uint64_t tables = gd_sectors + gt_sectors * gt_count, gd, overhead;
	uint32_t version, flags = VMDK_FLAG_NL_DETECT;
	if (p->stream) {
		/* qemu-img's and open-vmdk's layout: the header names the
		 * directory, which points at every table, all preallocated
		 * (zeroes) before the grains; an end-of-stream marker. */
		version = 3;
		flags |= VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS;
		gd = rgd;
		rgd = 0;
	} else {
		version = p->zeroed_grain ? 2 : 1;
		flags |= VMDK_FLAG_RGD;
		if (p->zeroed_grain)
			flags |= VMDK_FLAG_ZERO_GRAIN;
		gd = rgd + tables;
	}
	ck_align_up_u64(gd + tables, GRAIN_SECTORS, &overhead);
	if (overhead > UINT32_MAX)
		return mimg_err(-EFBIG, "%s: vmdk: image too large", path);
	vmdk_fill_header(h, version, flags, p->capacity, GRAIN_SECTORS, 1,
			 desc_sectors, GT_ENTRIES, rgd, gd, overhead);
	r = mimg_file_truncate(f, overhead * VMDK_SECTOR);
	if (r == 0)
		r = mimg_file_pwrite(f, h, sizeof(h), 0);
	if (r == 0 && rgd)
		r = write_u32_table(f, rgd, gt_count, rgd + gd_sectors,
				    gt_sectors);
	if (r == 0)
		r = write_u32_table(f, gd, gt_count, gd + gd_sectors,
				    gt_sectors);
	if (r == 0 && p->stream) {
		uint8_t eos[VMDK_SECTOR] = {0};
		r = mimg_file_pwrite(f, eos, sizeof(eos),
				     overhead * VMDK_SECTOR);
	}
	if (r < 0)
		return r;
	if (dlen)
		r = mimg_file_pwrite(f, p->desc, dlen, VMDK_SECTOR);
	return r;
}

/* "dir/name.vmdk" + "-s001" -> "name-s001.vmdk" (qemu's naming). */
static char *extent_name(const char *path, const char *tag)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	size_t plen = dot ? (size_t)(dot - base) : strlen(base);
	const char *post = dot ? dot : "";
	size_t n = plen + strlen(tag) + strlen(post) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%.*s%s%s", (int)plen, base, tag, post);
	return s;
}

static char *in_dir_of(const char *path, const char *name)
{
	const char *slash = strrchr(path, '/');
	size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
	size_t n = dl + strlen(name) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%.*s%s", (int)dl, path, name);
	return s;
}

struct create_opts {
	const char *subformat;
	const char *adapter;
	const char *hwversion;
	const char *toolsversion;
	const char *backing_file;
	bool zeroed_grain;
	enum mimg_prealloc prealloc;
};

/* qemu-img 7.2's vmdk create options, its help texts, sorted by name. */
enum {
	VO_ADAPTER,
	VO_BACKING_FILE,
	VO_BACKING_FMT,
	VO_COMPAT6,
	VO_HWVERSION,
	VO_PREALLOC,
	VO_SIZE,
	VO_SUBFORMAT,
	VO_TOOLSVERSION,
	VO_ZEROED_GRAIN,
	VO_COUNT
};
const struct mimg_optdesc vmdk_create_opts[] = {
	{"adapter_type", MIMG_OPTK_STRING,
	 "Virtual adapter type, can be one "
	 "of ide (default), lsilogic, buslogic or legacyESX",
	 NULL, NULL, NULL, 0},
	{"backing_file", MIMG_OPTK_STRING, "File name of a base image", NULL,
	 NULL, NULL, 0},
	{"backing_fmt", MIMG_OPTK_STRING, "Must be 'vmdk' if present", NULL,
	 NULL, NULL, 0},
	{"compat6", MIMG_OPTK_BOOL, "VMDK version 6 image", "off", NULL, NULL,
	 0},
	{"hwversion", MIMG_OPTK_STRING, "VMDK hardware version", NULL, NULL,
	 NULL, 0},
	MIMG_OPT_FILE_PREALLOC,
	MIMG_OPT_SIZE,
	{"subformat", MIMG_OPTK_STRING,
	 "VMDK flat extent format, can be one "
	 "of {monolithicSparse (default) | monolithicFlat | "
	 "twoGbMaxExtentSparse | twoGbMaxExtentFlat | streamOptimized} ",
	 NULL, NULL, NULL, 0},
	{"toolsversion", MIMG_OPTK_STRING, "VMware guest tools version", NULL,
	 NULL, NULL, 0},
	{"zeroed_grain", MIMG_OPTK_BOOL,
	 "Enable efficient zero writes using "
	 "the zeroed-grain GTE feature",
	 "off", NULL, NULL, 0},
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};
MIMG_OPTS_INDEXED(vmdk_create_opts, VO_COUNT);

static int parse_opts(const char *path, const struct mimg_opt *opts,
		      size_t nopts, struct create_opts *o)
{
	struct mimg_optval vals[VO_COUNT];
	const char *v;
	bool compat6;
	int r = mimg__opts_validate(vmdk_create_opts, NULL, opts, nopts, vals);
	if (r < 0)
		return r;

	o->subformat = vals[VO_SUBFORMAT].s;
	if (!o->subformat)
		o->subformat = "monolithicSparse";
	if (strcmp(o->subformat, "monolithicSparse") &&
	    strcmp(o->subformat, "monolithicFlat") &&
	    strcmp(o->subformat, "twoGbMaxExtentSparse") &&
	    strcmp(o->subformat, "twoGbMaxExtentFlat") &&
	    strcmp(o->subformat, "streamOptimized"))
		return mimg_err(-EINVAL, "%s: invalid parameter value: %s",
				path, o->subformat);
	o->adapter = vals[VO_ADAPTER].s;
	if (!o->adapter)
		o->adapter = "ide";
	if (strcmp(o->adapter, "ide") && strcmp(o->adapter, "lsilogic") &&
	    strcmp(o->adapter, "buslogic") && strcmp(o->adapter, "legacyESX"))
		return mimg_err(-EINVAL, "%s: invalid parameter value: %s",
				path, o->adapter);
	compat6 = vals[VO_COMPAT6].b;
	o->hwversion = vals[VO_HWVERSION].s;
	if (o->hwversion && compat6)
		return mimg_err(-EINVAL,
				"%s: vmdk: compat6 cannot be enabled "
				"with hwversion set",
				path);
	if (!o->hwversion)
		o->hwversion = compat6 ? "6" : "4";
	o->toolsversion = vals[VO_TOOLSVERSION].s;
	if (!o->toolsversion)
		o->toolsversion = "2147483647";
	o->zeroed_grain = vals[VO_ZEROED_GRAIN].b;
	o->backing_file = vals[VO_BACKING_FILE].s;
	if ((v = vals[VO_BACKING_FMT].s) && strcmp(v, "vmdk"))
		return mimg_err(-EINVAL, /* qemu-img's words */
				"%s: backing_file must be a vmdk image", path);
	v = vals[VO_PREALLOC].s;
	if ((r = mimg__opt_prealloc_of(path, v, &o->prealloc)) < 0)
		return r;
	bool flat = strstr(o->subformat, "Flat") != NULL;
	if (o->prealloc == MIMG_PREALLOC_METADATA ||
	    (!flat && o->prealloc != MIMG_PREALLOC_OFF))
		return mimg_err(-ENOTSUP,
				"%s: vmdk: preallocation=%s is only "
				"supported for flat subformats (falloc, full)",
				path, v);
	/* Descriptor values are written inside quotes. */
	const char *texts[] = {o->hwversion, o->toolsversion, o->backing_file};
	for (size_t i = 0; i < 3; i++)
		if (texts[i] && strpbrk(texts[i], "\"\r\n"))
			return mimg_err(-EINVAL,
					"%s: vmdk: option value '%s' "
					"contains a quote or line break",
					path, texts[i]);
	if (flat && o->backing_file)
		return mimg_err(-EINVAL,
				"%s: vmdk: flat images cannot have a "
				"backing file",
				path);
	return 0;
}

static int create_flat_file(const char *path, uint64_t bytes,
			    enum mimg_prealloc prealloc)
{
	struct mimg_file *f;
	int r = mimg_file_open(&f, path, MIMG_FILE_RDWR | MIMG_FILE_CREATE);
	if (r < 0)
		return r;
	r = mimg_file_truncate(f, bytes);
	if (r == 0 && prealloc != MIMG_PREALLOC_OFF) {
		r = mimg_file_allocate(f, 0, bytes);
		if (r == -ENOTSUP ||
		    (r == 0 && prealloc == MIMG_PREALLOC_FULL)) {
			/* Write zeroes for real ("full", or no fallocate). */
			static const uint8_t zero[1 << 16];
			r = 0;
			for (uint64_t o = 0; o < bytes && r == 0;
			     o += sizeof(zero))
				r = mimg_file_pwrite(
					f, zero,
					(size_t)min_u64(sizeof(zero),
							bytes - o),
					o);
		}
	}
	int r2 = mimg_file_close(f);
	return r < 0 ? r : r2;
}

static int create_sparse_file(const char *path, uint64_t sectors, bool stream,
			      bool zeroed, const char *desc)
{
	struct mimg_file *f;
	struct vmdk_sparse_params p = {
		.capacity = sectors,
		.stream = stream,
		.zeroed_grain = zeroed,
		.desc = desc,
	};
	int r = mimg_file_open(&f, path, MIMG_FILE_RDWR | MIMG_FILE_CREATE);
	if (r < 0)
		return r;
	r = vmdk_write_new_sparse(f, path, &p);
	int r2 = mimg_file_close(f);
	return r < 0 ? r : r2;
}

int vmdk_create_stream_on(struct mimg_file *f, const char *name, uint64_t size,
			  const char *adapter)
{
	uint64_t sectors = div_round_up_u64(size, VMDK_SECTOR);
	struct vmdk_desc_extent ext = {
		.access = VMDK_RW,
		.type = VMDK_EXT_SPARSE,
		.sectors = sectors,
		.filename = (char *)name,
	};
	struct vmdk_desc_params dp = {
		.cid = vmdk_random_cid(),
		.parent_cid = 0xffffffffu,
		.create_type = "streamOptimized",
		.adapter_type = adapter,
		.hwversion = "4",
		.toolsversion = "2147483647",
		.total_sectors = sectors,
		.vmware_fields = true,
		.ext = &ext,
		.n_ext = 1,
	};
	struct vmdk_sparse_params p = {
		.capacity = sectors,
		.stream = true,
	};
	int r;

	if (sectors == 0 || sectors > VMDK_MAX_SECTORS)
		return mimg_err(-EINVAL, "%s: vmdk: invalid size %" PRIu64,
				name, size);
	if (strpbrk(name, "\"\r\n"))
		return mimg_err(-EINVAL,
				"%s: vmdk: the name cannot be written "
				"in a descriptor (quote or line break)",
				name);
	if (!(p.desc = vmdk_desc_format(&dp)))
		return mimg_err(-ENOMEM, "out of memory");
	r = vmdk_write_new_sparse(f, name, &p);
	free((char *)p.desc);
	return r;
}

int vmdk_create(const char *path, uint64_t size, const struct mimg_opt *opts,
		size_t nopts, struct mimg *backing)
{
	struct create_opts o;
	struct vmdk_desc_extent *ext = NULL;
	struct vmdk_desc_params dp;
	uint64_t sectors, n_ext = 1;
	char *desc = NULL;
	int r;

	memset(&o, 0, sizeof(o));
	r = parse_opts(path, opts, nopts, &o);
	if (r < 0)
		return r;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strpbrk(base, "\"\r\n"))
		return mimg_err(-EINVAL,
				"%s: vmdk: the file name cannot be "
				"written in a descriptor (quote or line break)",
				path);
	sectors = div_round_up_u64(size, VMDK_SECTOR);
	if (sectors == 0 || sectors > VMDK_MAX_SECTORS)
		return mimg_err(-EINVAL, "%s: vmdk: invalid size %" PRIu64,
				path, size);
	memset(&dp, 0, sizeof(dp));
	dp.cid = vmdk_random_cid();
	dp.parent_cid = 0xffffffffu;
	if (o.backing_file) {
		if (!backing || backing->drv != &mimg_vmdk_driver)
			return mimg_err(-EINVAL,
					"%s: vmdk: backing file %s "
					"must be a VMDK image",
					path, o.backing_file);
		dp.parent_cid = ((struct vmdk_state *)backing->priv)->desc.cid;
		dp.parent_hint = o.backing_file;
	}
	dp.create_type = o.subformat;
	dp.adapter_type = o.adapter;
	dp.hwversion = o.hwversion;
	dp.toolsversion = o.toolsversion;
	dp.total_sectors = sectors;
	dp.vmware_fields = strcmp(o.subformat, "streamOptimized") == 0;

	bool split = strncmp(o.subformat, "twoGb", 5) == 0;
	bool flat = strstr(o.subformat, "Flat") != NULL;
	bool monolithic_sparse = !split && !flat;
	if (split)
		n_ext = div_round_up_u64(sectors, SPLIT_SECTORS);
	if (n_ext > VMDK_MAX_EXTENTS)
		return mimg_err(-EFBIG, "%s: vmdk: too many extents", path);
	ext = calloc(n_ext, sizeof(*ext));
	if (!ext)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n_ext; i++) {
		char tag[32];
		ext[i].access = VMDK_RW;
		ext[i].type = flat ? VMDK_EXT_FLAT : VMDK_EXT_SPARSE;
		ext[i].sectors = split ? min_u64(SPLIT_SECTORS,
						 sectors - i * SPLIT_SECTORS)
				       : sectors;
		if (split)
			snprintf(tag, sizeof(tag), "-%c%03" PRIu64,
				 flat ? 'f' : 's', i + 1);
		else
			snprintf(tag, sizeof(tag), "%s", flat ? "-flat" : "");
		if (monolithic_sparse) {
			const char *b = strrchr(path, '/');
			ext[i].filename = strdup(b ? b + 1 : path);
		} else {
			ext[i].filename = extent_name(path, tag);
		}
		if (!ext[i].filename) {
			r = mimg_err(-ENOMEM, "out of memory");
			goto out;
		}
	}
	dp.ext = ext;
	dp.n_ext = n_ext;
	desc = vmdk_desc_format(&dp);
	if (!desc) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}

	if (monolithic_sparse) {
		r = create_sparse_file(path, sectors,
				       strcmp(o.subformat, "streamOptimized") ==
					       0,
				       o.zeroed_grain, desc);
		goto out;
	}
	for (uint64_t i = 0; i < n_ext; i++) {
		char *ep = in_dir_of(path, ext[i].filename);
		if (!ep) {
			r = mimg_err(-ENOMEM, "out of memory");
			goto out;
		}
		if (flat)
			r = create_flat_file(ep, ext[i].sectors * VMDK_SECTOR,
					     o.prealloc);
		else
			r = create_sparse_file(ep, ext[i].sectors, false,
					       o.zeroed_grain, NULL);
		free(ep);
		if (r < 0)
			goto out;
	}
	struct mimg_file *f;
	r = mimg_file_open(&f, path, MIMG_FILE_RDWR | MIMG_FILE_CREATE);
	if (r == 0) {
		r = mimg_file_pwrite(f, desc, strlen(desc), 0);
		int r2 = mimg_file_close(f);
		if (r == 0)
			r = r2;
	}
out:
	for (uint64_t i = 0; i < n_ext; i++)
		free(ext[i].filename);
	free(ext);
	free(desc);
	return r;
}
