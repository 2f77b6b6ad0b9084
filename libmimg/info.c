/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_info: qemu-img's ImageInfo for one layer.  The core fills the
 * common members; the driver adds its own ("format-specific",
 * "snapshots") and may adjust common ones ("actual-size", "dirty-flag").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "file-archive.h"
#include "image.h"
#include "value.h"

static int add_common(struct mimg *img, struct mimg_value *info)
{
	uint64_t allocated = 0;
	bool ok = true;

	if (img->backing_name && img->backing_fmt)
		ok = ok && mimg_value_add_str(info, "backing-filename-format",
					      img->backing_fmt);
	ok = ok && mimg_value_add_uint(info, "virtual-size", img->size);
	ok = ok && mimg_value_add_str(info, "filename", img->filename);
	if (img->cluster_size)
		ok = ok && mimg_value_add_uint(info, "cluster-size",
					       img->cluster_size);
	ok = ok && mimg_value_add_str(info, "format", img->drv->name);
	/* An unpacked image occupies its archive (the unpacked copy is
	 * temporary). */
	if (img->archive && img->archive->archive_allocated)
		ok = ok && mimg_value_add_uint(info, "actual-size",
					       img->archive->archive_allocated);
	else if (mimg_file_allocated(img->file, &allocated) == 0)
		ok = ok && mimg_value_add_uint(info, "actual-size", allocated);
	if (img->backing_name) {
		char *full = NULL;
		/* qemu prints the combined path even when it cannot be
		 * opened; with the untrusted policy refusing it, omit it. */
		if (mimg__resolve_ref(img, img->backing_name, false,
				      "backing file", &full) == 0) {
			ok = ok &&
			     mimg_value_add_str(info, "full-backing-filename",
						full);
			free(full);
		}
		ok = ok && mimg_value_add_str(info, "backing-filename",
					      img->backing_name);
	}
	ok = ok && mimg_value_add_bool(info, "dirty-flag", false);
	return ok ? 0 : mimg_err(-ENOMEM, "out of memory");
}

int mimg__info_without_driver_info(struct mimg *img, struct mimg_value *info)
{
	(void)img;
	mimg_value_remove(info, "dirty-flag");
	return 0;
}

/*
 * qemu-img prints ImageInfo members in the order of its dictionary's hash
 * buckets, not in the order they were added: this is that order, as
 * observed from qemu-img 7.2 on images carrying every member.  Members not
 * listed keep their relative order after the listed ones.
 */
static const char *const member_order[] = {
	"backing-filename-format",
	"snapshots",
	"virtual-size",
	"filename",
	"cluster-size",
	"format",
	"actual-size",
	"format-specific",
	"full-backing-filename",
	"encrypted",
	"backing-filename",
	"dirty-flag",
	NULL,
};

static size_t member_rank(const struct mimg_value *v)
{
	size_t i = 0;
	for (; member_order[i]; i++)
		if (v->key && strcmp(v->key, member_order[i]) == 0)
			break;
	return i;
}

/* Stable insertion sort by rank: a dozen members at most. */
static void order_members(struct mimg_value *info)
{
	struct mimg_value *it = info->v.list.items;
	for (size_t i = 1; i < info->v.list.n; i++) {
		struct mimg_value cur = it[i];
		size_t rank = member_rank(&cur), j = i;
		for (; j > 0 && member_rank(&it[j - 1]) > rank; j--)
			it[j] = it[j - 1];
		it[j] = cur;
	}
}

/* The OVF's virtual system. */
static bool add_ovf_system(struct mimg_value *a, const struct mimg_ovf *ovf)
{
	struct mimg_value *vs;
	if (!ovf->system_id && !ovf->system_name)
		return true;
	return (vs = mimg_value_add(a, "ovf-system", MIMG_VALUE_OBJECT)) &&
	       (!ovf->system_id ||
		mimg_value_add_str(vs, "id", ovf->system_id)) &&
	       (!ovf->system_name ||
		mimg_value_add_str(vs, "name", ovf->system_name)) &&
	       (!ovf->cpus || mimg_value_add_uint(vs, "cpus", ovf->cpus)) &&
	       (!ovf->memory || mimg_value_add_uint(vs, "memory", ovf->memory));
}

/* An OVA's descriptor and its disks, last in A (pointers into A's members
 * do not survive another addition). */
static bool add_ovf_disks(struct mimg_value *a,
			  const struct mimg_archive_origin *o)
{
	struct mimg_value *list, *d;
	if (!mimg_value_add_str(a, "ovf", o->ovf_name) ||
	    !(list = mimg_value_add(a, "ovf-disks", MIMG_VALUE_ARRAY)))
		return false;
	for (int i = 0; i < o->ovf->ndisks; i++) {
		const struct mimg_ovf_disk *disk = &o->ovf->disks[i];
		if (!(d = mimg_value_add(list, NULL, MIMG_VALUE_OBJECT)) ||
		    !mimg_value_add_str(d, "id", disk->id) ||
		    !mimg_value_add_str(d, "file", disk->href) ||
		    (disk->known_capacity &&
		     !mimg_value_add_uint(d, "capacity", disk->capacity)) ||
		    (disk->format &&
		     !mimg_value_add_str(d, "format", disk->format)) ||
		    (disk->known_populated &&
		     !mimg_value_add_uint(d, "populated-size",
					  disk->populated)))
			return false;
	}
	return add_ovf_system(a, o->ovf);
}

/* "archive": what the image was unpacked from (not a qemu-img member). */
static int add_archive(struct mimg *img, struct mimg_value *info)
{
	const struct mimg_archive_origin *o = img->archive;
	struct mimg_value *a;
	bool ok;

	if (!o)
		return 0;
	ok = (a = mimg_value_add(info, "archive", MIMG_VALUE_OBJECT)) != NULL;
	if (ok && o->filters[0])
		ok = mimg_value_add_str(a, "compression", o->filters) != NULL;
	if (ok && o->member)
		ok = mimg_value_add_str(a, "tar-member", o->member) != NULL;
	ok = ok && mimg_value_add_uint(a, "size", o->archive_size);
	ok = ok && mimg_value_add_uint(a, "unpacked-size", o->unpacked_size);
	ok = ok && mimg_value_add_bool(a, "streamed", o->streamed);
	if (ok && o->manifest)
		ok = mimg_value_add_str(a, "manifest", o->manifest) &&
		     mimg_value_add_uint(a, "manifest-checked",
					 (uint64_t)o->manifest_checked);
	if (ok && o->ovf)
		ok = mimg_value_add_uint(a, "ovf-disk",
					 (uint64_t)o->ovf_disk) != NULL;
	if (ok && o->ovf)
		ok = add_ovf_disks(a, o);
	return ok ? 0 : mimg_err(-ENOMEM, "out of memory");
}

int mimg_info(struct mimg *img, struct mimg_value **infop)
{
	struct mimg_value *info = mimg_value_new_object();
	int r;

	*infop = NULL;
	if (!info)
		return mimg_err(-ENOMEM, "out of memory");
	r = add_common(img, info);
	if (r == 0)
		r = add_archive(img, info);
	if (r == 0 && img->drv->info)
		r = img->drv->info(img, info);
	if (r < 0) {
		mimg_value_free(info);
		return r;
	}
	order_members(info);
	mimg_err_clear();
	*infop = info;
	return 0;
}
