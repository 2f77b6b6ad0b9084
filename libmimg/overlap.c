/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Whether a target is a file a source reads: writing it (or creating it,
 * which truncates) while the source is read would corrupt the copy and
 * the source, as qemu-img's image locks prevent.
 */
#include <errno.h>
#include <sys/stat.h>

#include "error.h"
#include "image.h"

/* IMG's own host file by identity, when it has a name in the file system
 * (not memory or NBD). */
static bool own_id(const struct mimg *img, struct mimg_file_id *id)
{
	struct stat st;
	if (img->in_memory || img->remote || stat(img->filename, &st) != 0)
		return false;
	*id = (struct mimg_file_id){st.st_dev, st.st_ino};
	return true;
}

static bool same(const struct mimg_file_id *a, const struct mimg_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

/* The layer of SRC's chain that reads ID: its own file (*OWN true) or one
 * of its extents or data file; NULL when none does. */
static const struct mimg *layer_reading(const struct mimg *src,
					const struct mimg_file_id *id,
					bool *own)
{
	for (const struct mimg *l = src; l; l = l->backing) {
		struct mimg_file_id lid;
		if (own_id(l, &lid) && same(&lid, id)) {
			*own = true;
			return l;
		}
		for (size_t i = 0; i < l->n_extra_ids; i++)
			if (same(&l->extra_ids[i], id)) {
				*own = false;
				return l;
			}
	}
	return NULL;
}

static int refuse(const struct mimg *src, const char *target,
		  const struct mimg *l, bool own)
{
	if (!own)
		return mimg_err(-EBUSY,
				"Refusing to write to '%s': it is a "
				"file that '%s' reads",
				target, src->filename);
	return mimg_err(-EBUSY, "Refusing to write to '%s': it is %s '%s'",
			target,
			l == src ? "the source image"
				 : "in the backing chain of",
			src->filename);
}

int mimg_reads_file(const struct mimg *img, const char *path)
{
	struct stat st;
	bool own;

	if (!img || !path)
		return mimg_err(-EINVAL, "mimg_reads_file: no image or path");
	if (stat(path, &st) != 0)
		return 0; /* a file that does not exist is not read */
	struct mimg_file_id id = {st.st_dev, st.st_ino};
	const struct mimg *l = layer_reading(img, &id, &own);
	return l ? refuse(img, path, l, own) : 0;
}

int mimg__check_overlap(const struct mimg *src, const struct mimg *dst)
{
	struct mimg_file_id id;
	const struct mimg *l;
	bool own;

	if (own_id(dst, &id) && (l = layer_reading(src, &id, &own)))
		return refuse(src, dst->filename, l, own);
	for (size_t i = 0; i < dst->n_extra_ids; i++)
		if ((l = layer_reading(src, &dst->extra_ids[i], &own)))
			return refuse(src, dst->filename, l, own);
	return 0;
}
