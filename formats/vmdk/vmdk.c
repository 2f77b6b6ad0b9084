/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The VMDK driver: probing, opening (a hosted sparse file or a text
 * descriptor naming extents), the descriptor's CID, and the driver table.
 *
 * Delta links: parentFileNameHint becomes the backing file (format vmdk,
 * opened by the core).  The parent's CID is compared with this image's
 * parentCID the first time data is read from the parent, as qemu-img
 * does: a mismatch fails that read with -EINVAL.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "driver.h"
#include "endian.h"
#include "error.h"
#include "file.h"
#include "image.h"
#include "vmdk.h"

static const char desc_magic[] = "# Disk DescriptorFile";

static int vmdk_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)filename;
	if (len >= 4 &&
	    (ld_le32(buf) == VMDK_MAGIC || ld_le32(buf) == VMDK_COWD_MAGIC))
		return 100;
	if (len >= sizeof(desc_magic) - 1 &&
	    memcmp(buf, desc_magic, sizeof(desc_magic) - 1) == 0)
		return 100;
	return 0;
}

/* A streamOptimized extent (grains behind markers) with its grain
 * directory before the grains or at the end is read in file order. */
static bool vmdk_one_pass(const uint8_t *buf, size_t len)
{
	if (len < VMDK_SECTOR || ld_le32(buf) != VMDK_MAGIC)
		return false;
	uint32_t flags = ld_le32(buf + 8);
	uint64_t gd = ld_le64(buf + 56), overhead = ld_le64(buf + 64);
	bool compressed = (flags & VMDK_FLAG_COMPRESSED) ||
			  ld_le16(buf + 77) == 1;
	return compressed && (flags & VMDK_FLAG_MARKERS) &&
	       (gd == VMDK_GD_AT_END || gd < overhead);
}

/* The descriptor embedded in a sparse file. */
static int read_embedded_desc(struct vmdk_state *s, struct vmdk_sparse *sp)
{
	uint64_t off, len;
	int r;

	if (sp->desc_sector == 0 || sp->desc_sectors == 0)
		return 0;
	if (sp->desc_sectors > VMDK_MAX_DESC_SIZE / VMDK_SECTOR)
		return mimg_err(-EINVAL,
				"%s: vmdk: embedded descriptor of %" PRIu64
				" sectors is too large",
				sp->path, sp->desc_sectors);
	len = sp->desc_sectors * VMDK_SECTOR;
	if (!ck_mul_u64(sp->desc_sector, VMDK_SECTOR, &off) ||
	    !ck_range_within(off, len, sp->file_end))
		return mimg_err(-EINVAL,
				"%s: vmdk: embedded descriptor at "
				"sector %" PRIu64 " lies past the end of the "
				"file",
				sp->path, sp->desc_sector);
	s->desc_text = malloc(len + 1);
	if (!s->desc_text)
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg_file_pread_exact(sp->file, s->desc_text, len, off,
				  "vmdk descriptor");
	if (r < 0)
		return r;
	s->desc_text[len] = 0;
	s->desc_len = strlen(s->desc_text);
	s->desc_embedded = true;
	if (s->desc_len == 0)
		return 0;
	return vmdk_desc_parse(s->desc_text, s->desc_len, sp->path, &s->desc,
			       false);
}

static int open_monolithic(struct mimg *img, uint64_t file_size)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_extent *e;
	int r;

	s->monolithic_sparse = true;
	s->ext = calloc(1, sizeof(*s->ext));
	if (!s->ext)
		return mimg_err(-ENOMEM, "out of memory");
	s->n_ext = 1;
	e = &s->ext[0];
	e->type = VMDK_EXT_SPARSE;
	e->access = VMDK_RW;
	e->file = img->file;
	e->regular = mimg_file_is_regular(img->file);
	e->filename = strdup(img->filename);
	e->sp = calloc(1, sizeof(*e->sp));
	if (!e->filename || !e->sp)
		return mimg_err(-ENOMEM, "out of memory");
	r = vmdk_sparse_open(e->sp, img->file, img->filename, file_size);
	if (r < 0)
		return r;
	e->size = e->sp->capacity * VMDK_SECTOR;
	s->desc.parent_cid = 0xffffffffu;
	return read_embedded_desc(s, e->sp);
}

static int open_extent(struct mimg *img, struct vmdk_extent *e,
		       const struct vmdk_desc_extent *de, uint64_t cache_budget)
{
	char *path = NULL;
	uint64_t fsize;
	int r;

	e->access = de->access;
	e->type = de->type == VMDK_EXT_VMFSSPARSE ? VMDK_EXT_SPARSE : de->type;
	e->type_name = vmdk_ext_type_name(de->type);
	if (!ck_mul_u64(de->sectors, VMDK_SECTOR, &e->size) ||
	    !ck_mul_u64(de->offset, VMDK_SECTOR, &e->flat_offset))
		return mimg_err(-EINVAL, "%s: vmdk: extent size overflows",
				img->filename);
	if (de->type == VMDK_EXT_ZERO)
		return 0;
	r = mimg__resolve_ref(img, de->filename, true, "extent", &path);
	if (r < 0)
		return r;
	e->filename = path;
	r = mimg__open_extra_file(img, path, false, &e->file);
	if (r < 0)
		return mimg_err_prefix(r, "%s: vmdk: cannot open extent",
				       img->filename);
	e->own_file = true;
	e->regular = mimg_file_is_regular(e->file);
	r = mimg_file_size(e->file, &fsize);
	if (r < 0)
		return r;
	if (e->type != VMDK_EXT_SPARSE)
		return 0;
	e->sp = calloc(1, sizeof(*e->sp));
	if (!e->sp)
		return mimg_err(-ENOMEM, "out of memory");
	e->sp->cache_budget = cache_budget;
	return vmdk_sparse_open(e->sp, e->file, e->filename, fsize);
}

static int open_descriptor_file(struct mimg *img, uint64_t file_size)
{
	struct vmdk_state *s = img->priv;
	uint64_t pos = 0;
	int r;

	if (file_size > VMDK_MAX_DESC_SIZE)
		return mimg_err(-EINVAL,
				"%s: vmdk: not a sparse extent, and "
				"too large (%" PRIu64
				" bytes) for a descriptor",
				img->filename, file_size);
	s->desc_text = malloc(file_size + 1);
	if (!s->desc_text)
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg_file_pread_exact(img->file, s->desc_text, file_size, 0,
				  "vmdk descriptor");
	if (r < 0)
		return r;
	s->desc_text[file_size] = 0;
	s->desc_len = strlen(s->desc_text);
	r = vmdk_desc_parse(s->desc_text, s->desc_len, img->filename, &s->desc,
			    true);
	if (r < 0)
		return r;
	s->ext = calloc(s->desc.n_ext, sizeof(*s->ext));
	if (!s->ext)
		return mimg_err(-ENOMEM, "out of memory");
	/* Hostile descriptors may name one big sparse file many times: the
	 * directories and table caches of all extents share one budget. */
	size_t n_sparse = 0;
	uint64_t gd_bytes = 0;
	for (size_t i = 0; i < s->desc.n_ext; i++)
		if (s->desc.ext[i].type == VMDK_EXT_SPARSE ||
		    s->desc.ext[i].type == VMDK_EXT_VMFSSPARSE)
			n_sparse++;
	uint64_t budget = n_sparse ? VMDK_GT_CACHE_TOTAL / n_sparse : 0;
	budget = min_u64(max_u64(budget, 64u << 10), VMDK_GT_CACHE_BUDGET);
	for (size_t i = 0; i < s->desc.n_ext; i++) {
		struct vmdk_extent *e = &s->ext[i];
		s->n_ext = i + 1;
		e->start = pos;
		r = open_extent(img, e, &s->desc.ext[i], budget);
		if (r < 0)
			return r;
		if (e->sp) {
			gd_bytes += e->sp->gd_entries * 4 *
				    (e->sp->rgd ? 2 : 1);
			if (gd_bytes > VMDK_MAX_TOTAL_GD_BYTES)
				return mimg_err(-EINVAL,
						"%s: vmdk: the grain "
						"directories of the extents "
						"exceed %u MiB",
						img->filename,
						VMDK_MAX_TOTAL_GD_BYTES >> 20);
		}
		if (!ck_add_u64(pos, e->size, &pos) ||
		    pos > VMDK_MAX_SECTORS * VMDK_SECTOR)
			return mimg_err(-EINVAL,
					"%s: vmdk: total size of the "
					"extents is too large",
					img->filename);
	}
	return 0;
}

static int vmdk_open(struct mimg *img)
{
	struct vmdk_state *s = img->priv;
	uint8_t magic[4] = {0};
	uint64_t file_size;
	int r;

	pthread_mutex_init(&s->cid_lock, NULL);
	r = mimg_file_size(img->file, &file_size);
	if (r < 0)
		return r;
	r = mimg_file_pread(img->file, magic, sizeof(magic), 0);
	if (r < 0)
		return r;
	if (ld_le32(magic) == VMDK_MAGIC || ld_le32(magic) == VMDK_COWD_MAGIC)
		r = open_monolithic(img, file_size);
	else
		r = open_descriptor_file(img, file_size);
	if (r < 0)
		return r;

	uint64_t total = 0;
	for (size_t i = 0; i < s->n_ext; i++)
		total += s->ext[i].size;
	img->size = total;
	if (s->ext[0].type == VMDK_EXT_SPARSE)
		img->cluster_size = (uint32_t)min_u64(s->ext[0].sp->grain_bytes,
						      UINT32_MAX);
	if (s->desc.parent_hint && *s->desc.parent_hint) {
		for (size_t i = 0; i < s->n_ext; i++)
			if (s->ext[i].sp)
				s->ext[i].sp->has_parent = true;
		img->backing_name = strdup(s->desc.parent_hint);
		img->backing_fmt = strdup("vmdk");
		if (!img->backing_name || !img->backing_fmt) {
			return mimg_err(-ENOMEM, "out of memory");
		}
	}
	/* A stream without grains is written as a stream (vmdk_stream_start
	 * leaves any other read-only). */
	if (!img->read_only && s->monolithic_sparse &&
	    s->ext[0].sp->compressed && s->ext[0].sp->markers) {
		r = vmdk_stream_start(img);
		if (r < 0)
			return r;
	}
	return 0;
}

static void vmdk_close(struct mimg *img)
{
	struct vmdk_state *s = img->priv;

	if (s->sw) {
		vmdk_stream_finish(img);
		vmdk_stream_free(s->sw);
		s->sw = NULL;
	}
	for (size_t i = 0; i < s->n_ext; i++) {
		struct vmdk_extent *e = &s->ext[i];
		if (e->sp) {
			vmdk_sparse_close(e->sp);
			free(e->sp);
		}
		if (e->own_file && e->file)
			mimg_file_close(e->file);
		free(e->filename);
	}
	free(s->ext);
	s->ext = NULL;
	s->n_ext = 0;
	vmdk_desc_free(&s->desc);
	free(s->desc_text);
	s->desc_text = NULL;
	pthread_mutex_destroy(&s->cid_lock);
}

int vmdk_write_descriptor(struct mimg *img, const char *text, size_t len)
{
	struct vmdk_state *s = img->priv;
	int r;

	if (s->desc_embedded) {
		struct vmdk_sparse *sp = s->ext[0].sp;
		uint64_t cap = sp->desc_sectors * VMDK_SECTOR;
		if (len >= cap)
			return mimg_err(-ENOSPC,
					"%s: vmdk: descriptor does "
					"not fit its %" PRIu64 " sectors",
					img->filename, sp->desc_sectors);
		char *buf = calloc(1, cap);
		if (!buf)
			return mimg_err(-ENOMEM, "out of memory");
		memcpy(buf, text, len);
		r = mimg_file_pwrite(img->file, buf, cap,
				     sp->desc_sector * VMDK_SECTOR);
		free(buf);
		return r;
	}
	/* As qemu-img rewrites a descriptor file (the first write renews
	 * its CID): the text, then zeroes up to the sector that ends the
	 * longer of the old file and the text. */
	uint64_t old_size, size;
	r = mimg_file_size(img->file, &old_size);
	if (r < 0)
		return r;
	if (!ck_align_up_u64(max_u64(old_size, len), VMDK_SECTOR, &size) ||
	    size > VMDK_MAX_DESC_SIZE + VMDK_SECTOR)
		return mimg_err(-EFBIG, "%s: vmdk: descriptor too large",
				img->filename);
	char *buf = calloc(1, (size_t)size);
	if (!buf)
		return mimg_err(-ENOMEM, "out of memory");
	memcpy(buf, text, len);
	r = mimg_file_pwrite(img->file, buf, (size_t)size, 0);
	free(buf);
	if (r == 0)
		r = mimg_file_truncate(img->file, size);
	return r;
}

int vmdk_touch_cid(struct mimg *img)
{
	struct vmdk_state *s = img->priv;
	int r = 0;

	if (__atomic_load_n(&s->cid_updated, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&s->cid_lock);
	/* The descriptor is read under the lock: the first writer replaces
	 * it.  Without one there is nothing to renew, ever. */
	if (!s->desc_text || s->desc_len == 0)
		__atomic_store_n(&s->cid_updated, true, __ATOMIC_RELEASE);
	if (!s->cid_updated) {
		uint32_t cid = vmdk_random_cid();
		size_t nlen;
		char *t = vmdk_desc_set_cid(s->desc_text, s->desc_len, cid,
					    &nlen);
		if (!t) {
			r = mimg_err(-ENOMEM, "out of memory");
		} else {
			r = vmdk_write_descriptor(img, t, nlen);
			if (r == 0) {
				free(s->desc_text);
				s->desc_text = t;
				s->desc_len = nlen;
				s->desc.cid = cid;
				__atomic_store_n(&s->cid_updated, true,
						 __ATOMIC_RELEASE);
			} else {
				free(t);
			}
		}
	}
	pthread_mutex_unlock(&s->cid_lock);
	return r;
}

static bool vmdk_has_zero_init(struct mimg *img)
{
	struct vmdk_state *s = img->priv;

	if (img->backing)
		return false;
	for (size_t i = 0; i < s->n_ext; i++) {
		const struct vmdk_extent *e = &s->ext[i];
		if ((e->type == VMDK_EXT_FLAT || e->type == VMDK_EXT_VMFS) &&
		    !e->regular)
			return false;
	}
	return true;
}

const struct mimg_driver mimg_vmdk_driver = {
	.name = "vmdk",
	.priv_size = sizeof(struct vmdk_state),
	.probe = vmdk_probe,
	.one_pass = vmdk_one_pass,
	.open = vmdk_open,
	.close = vmdk_close,
	.create = vmdk_create,
	.create_opts = vmdk_create_opts,
	.preadv = vmdk_preadv,
	.pwritev = vmdk_pwritev,
	.flush = vmdk_flush,
	.pwrite_zeroes = vmdk_pwrite_zeroes,
	.discard = vmdk_discard,
	.block_status = vmdk_block_status,
	.host_file = vmdk_host_file,
	.check = vmdk_check,
	.info = vmdk_info,
	.has_zero_init = vmdk_has_zero_init,
	.compress_unit = vmdk_compress_unit,
	.compress = vmdk_compress,
	.write_compressed = vmdk_write_compressed,
	.stream_only = vmdk_stream_only,
};
