/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Opening and closing images: driver lookup, format probing, and the
 * backing chain (resolution, loop detection, depth cap).
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file-archive.h"
#include "error.h"
#include "image.h"
#include "probe.h"

#define PROBE_BUF_SIZE 4096

const char *mimg_version(void)
{
	return MIMG_VERSION_STRING;
}

int mimg_version_number(void)
{
	return MIMG_VERSION_NUMBER;
}

const struct mimg_driver *mimg__find_driver(const char *name)
{
	for (const struct mimg_driver *const *d = mimg_drivers; *d; d++)
		if (strcmp((*d)->name, name) == 0)
			return *d;
	return NULL;
}

static const char *format_names[16];
static pthread_once_t format_names_once = PTHREAD_ONCE_INIT;

static void fill_format_names(void)
{
	size_t n = 0;
	for (const struct mimg_driver *const *d = mimg_drivers;
	     *d && n + 1 < sizeof(format_names) / sizeof(format_names[0]); d++)
		format_names[n++] = (*d)->name;
	format_names[n] = NULL;
}

const char *const *mimg_formats(void)
{
	/* filled once: concurrent callers must not race on the array */
	pthread_once(&format_names_once, fill_format_names);
	return format_names;
}

/* One (device, inode) pair per image already open below the top, to
 * detect backing loops. */
struct chain_ids {
	dev_t dev[MIMG_MAX_CHAIN_DEPTH + 1];
	ino_t ino[MIMG_MAX_CHAIN_DEPTH + 1];
	int n;
	const struct mimg_secret *secret; /* for every node, or NULL */
	const char *ova_disk;		  /* the OVA disk to open, or NULL */
	/* Format options of the image asked for (mimg_open_opts). */
	const struct mimg_opt *opts;
	size_t nopts;
};

/* Most options an open_opts schema has. */
#define MAX_OPEN_OPTS 8

/* The driver's open() with the values of its open options in VALS: the
 * caller's (IDS) for the image asked for (DEPTH 0), each refused, in
 * qemu's words, when the format does not take it; the defaults below. */
static int open_driver(struct mimg *img, const struct chain_ids *ids,
		       struct mimg_optval *vals)
{
	const struct mimg_optdesc *schema = img->drv->open_opts;
	bool asked = img->depth == 0;
	if (schema && mimg__opts_count(schema) > MAX_OPEN_OPTS)
		return mimg_err(-EINVAL, "%s: too many open options",
				img->drv->name);
	for (size_t i = 0; asked && i < ids->nopts; i++) {
		size_t k = 0;
		for (; schema && schema[k].name; k++)
			if (strcmp(schema[k].name, ids->opts[i].key) == 0)
				break;
		if (!schema || !schema[k].name)
			return mimg_err(-EINVAL,
					"%s: Block format '%s' does not "
					"support the option '%s'",
					img->filename, img->drv->name,
					ids->opts[i].key);
	}
	if (schema) {
		int r = mimg__opts_validate(schema, NULL,
					    asked ? ids->opts : NULL,
					    asked ? ids->nopts : 0, vals);
		if (r < 0)
			return mimg_err_prefix(r, "%s", img->filename);
		img->open_vals = vals;
	}
	img->secret = ids->secret;
	int r = img->drv->open(img);
	img->secret = NULL;
	img->open_vals = NULL;
	return r;
}

/* Host-file flags for an image opened with the MIMG_OPEN_* FLAGS. */
static unsigned host_file_flags(unsigned flags, bool read_only)
{
	unsigned f = read_only ? 0 : MIMG_FILE_RDWR;
	if (flags & MIMG_OPEN_DIRECT)
		f |= MIMG_FILE_DIRECT;
	if (flags & MIMG_OPEN_SYNC)
		f |= MIMG_FILE_SYNC;
	if (flags & MIMG_OPEN_NO_FLUSH)
		f |= MIMG_FILE_NO_FLUSH;
	return f;
}

struct mimg_owned {
	struct mimg_owned *next;
	max_align_t data[];
};

void *mimg__img_calloc(struct mimg *img, size_t n, size_t size)
{
	struct mimg_owned *o;
	size_t room = SIZE_MAX - sizeof(*o) - 1;
	if ((size && n > room / size) ||
	    !(o = calloc(1, sizeof(*o) + n * size + 1))) {
		mimg_err(-ENOMEM, "out of memory");
		return NULL;
	}
	o->next = img->owned;
	img->owned = o;
	return o->data;
}

/* The driver's close(), where it has one: also after an open() that
 * failed. */
static void close_driver(struct mimg *img)
{
	if (img->drv->close)
		img->drv->close(img);
}

static void free_image(struct mimg *img)
{
	if (!img)
		return;
	while (img->owned) {
		struct mimg_owned *o = img->owned;
		img->owned = o->next;
		free(o);
	}
	free(img->priv);
	free(img->filename);
	free(img->backing_name);
	free(img->backing_fmt);
	free(img->backing_path);
	free(img->extra_ids);
	mimg__archive_origin_free(img->archive);
	mimg_readers_destroy(&img->resize_lock);
	mimg__decoded_destroy(&img->decoded);
	pthread_mutex_destroy(&img->table_lock);
	free(img);
}

static int open_node(struct mimg **imgp, const char *path, const char *format,
		     unsigned flags, struct mimg *top, int depth,
		     struct chain_ids *ids, struct mimg_file *file);

static int open_backing(struct mimg *img, struct chain_ids *ids)
{
	int r = mimg__resolve_ref(img, img->backing_name, false, "backing file",
				  &img->backing_path);
	if (r < 0)
		return r;
	if (img->depth + 1 > MIMG_MAX_CHAIN_DEPTH)
		return mimg_err(-ELOOP,
				"%s: backing chain is deeper than %d images",
				img->top->filename, MIMG_MAX_CHAIN_DEPTH);
	unsigned bflags = img->top->flags & ~(MIMG_OPEN_RDWR | MIMG_OPEN_CHECK);
	r = open_node(&img->backing, img->backing_path, img->backing_fmt,
		      bflags, img->top, img->depth + 1, ids, NULL);
	/* Only the top image adds its name: one prefix per level would push
	 * the cause of a failure deep in a long chain out of the bounded
	 * message. */
	if (r < 0 && img->depth == 0)
		return mimg_err_prefix(r, "Could not open backing file of %s",
				       img->filename);
	return r < 0 ? r : 0;
}

/* Replace IMG's file with the image unpacked from it when it is an
 * archive.  Archives are read in whole chunks that O_DIRECT would refuse
 * (unaligned buffers and tails): a direct file is read through a second,
 * cached descriptor. */
static int unpack_archive(struct mimg *img, const char *path, unsigned flags,
			  const char *ova_disk)
{
	bool sequential = flags & (MIMG_OPEN_SEQUENTIAL | MIMG_OPEN_INSPECT);
	struct mimg_file *plain;
	int r;

	if (!(flags & MIMG_OPEN_DIRECT) || img->in_memory || img->remote)
		return mimg__archive_unpack(&img->file, &img->archive,
					    sequential, ova_disk);
	if ((r = mimg_file_open(&plain, path, 0)) < 0)
		return r;
	r = mimg__archive_unpack(&plain, &img->archive, sequential, ova_disk);
	if (r == 1) {
		mimg_file_close(img->file);
		img->file = plain;
	} else {
		mimg_file_close(plain);
	}
	return r;
}

/* True when the image is asked for as DMG, or will be probed as one by
 * its name (as qemu-img probes it): a DMG's data fork may begin with a
 * compressed chunk (a bzip2 stream's magic), which must not be taken for
 * a compressed file. */
static bool asked_as_dmg(const struct mimg_driver *drv, const char *path)
{
	static const uint8_t any = 0;
	const struct mimg_driver *dmg = mimg__find_driver("dmg");
	if (!dmg)
		return false;
	return drv ? drv == dmg : dmg->probe(&any, 1, path) > 0;
}

/* The top image's name may be an NBD URI; names found inside images are
 * always files. */
static int open_host_file(struct mimg *img, const char *path, unsigned fflags)
{
	if (img->depth == 0 && mimg_file_is_nbd_uri(path)) {
		img->remote = true;
		return mimg_file_open_nbd(&img->file, path, fflags);
	}
	return mimg_file_open(&img->file, path, fflags);
}

/* Open one node of a chain from PATH, or from FILE when given (then the
 * node owns it, PATH only names it). */
static int open_node(struct mimg **imgp, const char *path, const char *format,
		     unsigned flags, struct mimg *top, int depth,
		     struct chain_ids *ids, struct mimg_file *file)
{
	const struct mimg_driver *drv = NULL;
	struct mimg_optval open_vals[MAX_OPEN_OPTS];
	struct mimg *img;
	struct stat st;
	unsigned fflags = 0;
	int r;

	*imgp = NULL;
	if (format && !(drv = mimg__find_driver(format))) {
		mimg_file_close(file);
		return mimg_err(-EINVAL, "Unknown driver '%s'", format);
	}

	if (!file && stat(path, &st) == 0) {
		for (int i = 0; i < ids->n; i++)
			if (ids->dev[i] == st.st_dev &&
			    ids->ino[i] == st.st_ino)
				return mimg_err(-ELOOP,
						"%s: backing chain loops back "
						"to this file",
						path);
		if (ids->n <= MIMG_MAX_CHAIN_DEPTH) {
			ids->dev[ids->n] = st.st_dev;
			ids->ino[ids->n] = st.st_ino;
			ids->n++;
		}
	}

	img = calloc(1, sizeof(*img));
	if (!img || !(img->filename = strdup(path)) ||
	    mimg_readers_init(&img->resize_lock) < 0) {
		if (img)
			free(img->filename);
		free(img);
		mimg_file_close(file);
		return mimg_err(-ENOMEM, "out of memory");
	}
	mimg__decoded_init(&img->decoded);
	pthread_mutex_init(&img->table_lock, NULL);
	img->file = file;
	img->in_memory = file != NULL;
	img->flags = flags;
	img->read_only = !(flags & MIMG_OPEN_RDWR);
	img->depth = depth;
	img->top = top ? top : img;

	fflags = host_file_flags(flags, img->read_only);
	if (!img->file && (r = open_host_file(img, path, fflags)) < 0)
		goto fail;
	/* Only the image asked for is unpacked: what an image names is a
	 * plain file. */
	if (depth == 0 && img->read_only && !(flags & MIMG_OPEN_NO_ARCHIVE) &&
	    !asked_as_dmg(drv, path) &&
	    (r = unpack_archive(img, path, flags, ids->ova_disk)) < 0)
		goto fail;

	if (!drv) {
		uint8_t buf[PROBE_BUF_SIZE];
		uint64_t fsize;
		if ((r = mimg_file_size(img->file, &fsize)) < 0 ||
		    (r = mimg_file_pread(img->file, buf, sizeof(buf), 0)) < 0)
			goto fail;
		size_t n = fsize < sizeof(buf) ? (size_t)fsize : sizeof(buf);
		drv = mimg__probe(buf, n, path);
		if (!drv) {
			r = mimg_err(-EINVAL, "%s: unknown image format", path);
			goto fail;
		}
		img->probed_raw = strcmp(drv->name, "raw") == 0;
	}
	if (drv->read_only && !img->read_only) {
		r = mimg_err(-EROFS, "%s: %s: %s", path, drv->name,
			     drv->read_only);
		goto fail;
	}
	img->drv = drv;
	if (drv->priv_size && !(img->priv = calloc(1, drv->priv_size))) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto fail;
	}
	r = open_driver(img, ids, open_vals);
	if (r < 0) {
		close_driver(img);
		goto fail;
	}
	/* Described without unpacking, the archive is still checked
	 * whole. */
	if ((flags & MIMG_OPEN_INSPECT) && mimg_file_is_stream(img->file) &&
	    (r = mimg__stream_drain(img->file)) < 0) {
		close_driver(img);
		goto fail;
	}
	/* Data of no declared size has its size once read whole. */
	if ((flags & MIMG_OPEN_INSPECT) && mimg_file_is_stream(img->file) &&
	    img->archive)
		(void)mimg_file_size(img->file, &img->archive->unpacked_size);

	/* Untrusted means the image may not refer to other files at all,
	 * even when the caller would not open them (info, check). */
	if (img->backing_name && (img->top->flags & MIMG_OPEN_UNTRUSTED)) {
		r = mimg_err(-EPERM,
			     "%s: refers to backing file '%s'; images that "
			     "refer to other files are refused in untrusted "
			     "mode",
			     path, img->backing_name);
		close_driver(img);
		goto fail;
	}
	if (img->backing_name && !(flags & MIMG_OPEN_NO_BACKING)) {
		r = open_backing(img, ids);
		if (r < 0) {
			close_driver(img);
			goto fail;
		}
	}
	*imgp = img;
	return 0;

fail:
	mimg_file_close(img->file);
	free_image(img);
	return r;
}

int mimg__secret_normalize(const struct mimg_secret *in,
			   struct mimg_secret *out)
{
	size_t need = offsetof(struct mimg_secret, len) + sizeof(in->len);
	if (in->size < need)
		return mimg_err(-EINVAL,
				"struct mimg_secret: size %zu is too "
				"small (at least %zu)",
				in->size, need);
	/* a newer header's fields would be ignored here */
	if (in->size > sizeof(*out))
		return mimg_err(-EINVAL,
				"struct mimg_secret: size %zu is "
				"unknown (at most %zu)",
				in->size, sizeof(*out));
	if (!in->data && in->len)
		return mimg_err(-EINVAL, "struct mimg_secret: no data");
	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	out->data = in->data ? in->data : "";
	out->len = in->len;
	if (in->size >= offsetof(struct mimg_secret, max_pbkdf2_iters) +
				sizeof(in->max_pbkdf2_iters))
		out->max_pbkdf2_iters = in->max_pbkdf2_iters;
	if (!out->max_pbkdf2_iters)
		out->max_pbkdf2_iters = MIMG_MAX_PBKDF2_ITERS_DEFAULT;
	return 0;
}

int mimg_open(struct mimg **imgp, const char *path, const char *format,
	      unsigned flags)
{
	return mimg_open_secret(imgp, path, format, flags, NULL);
}

int mimg_open_secret(struct mimg **imgp, const char *path, const char *format,
		     unsigned flags, const struct mimg_secret *secret)
{
	return mimg_open_opts(imgp, path, format, flags, secret, NULL, 0);
}

int mimg_open_opts(struct mimg **imgp, const char *path, const char *format,
		   unsigned flags, const struct mimg_secret *secret,
		   const struct mimg_opt *opts, size_t nopts)
{
	struct chain_ids ids = {.n = 0, .opts = opts, .nopts = nopts};
	struct mimg_secret sec;
	int r;

	mimg_err_clear();
	if (nopts && !opts)
		return mimg_err(-EINVAL, "mimg_open_opts: no options");
	for (size_t i = 0; i < nopts; i++)
		if (!opts[i].key || !opts[i].value)
			return mimg_err(-EINVAL,
					"mimg_open_opts: option %zu has no "
					"key or value",
					i);
	if (secret) {
		if ((r = mimg__secret_normalize(secret, &sec)) < 0)
			return r;
		ids.secret = &sec;
	}
	if (!imgp || !path)
		return mimg_err(-EINVAL, "mimg_open: no path");
	if ((r = mimg__check_flags("mimg_open", flags, MIMG_OPEN_ALL_FLAGS)) <
	    0)
		return r;
	return open_node(imgp, path, format, flags, NULL, 0, &ids, NULL);
}

int mimg_open_ova_disk(struct mimg **imgp, const char *path, const char *format,
		       unsigned flags, const char *disk)
{
	struct chain_ids ids = {.n = 0, .ova_disk = disk};

	mimg_err_clear();
	if (!imgp || !path)
		return mimg_err(-EINVAL, "mimg_open_ova_disk: no path");
	int r = mimg__check_flags("mimg_open_ova_disk", flags,
				  MIMG_OPEN_ALL_FLAGS);
	if (r < 0)
		return r;
	return open_node(imgp, path, format, flags, NULL, 0, &ids, NULL);
}

int mimg__open_on_file(struct mimg **imgp, const char *name, const char *format,
		       unsigned flags, struct mimg_file *file)
{
	struct chain_ids ids = {.n = 0};
	return open_node(imgp, name, format, flags, NULL, 0, &ids, file);
}

int mimg_open_memory(struct mimg **imgp, const void *buf, size_t len,
		     const char *format, unsigned flags)
{
	static const char name[] = "(memory)";
	struct chain_ids ids = {.n = 0};
	struct mimg_file *f;
	size_t max = len + MIMG_MEMORY_GROWTH < len ? SIZE_MAX
						    : len + MIMG_MEMORY_GROWTH;
	int r;

	if (!imgp || (!buf && len))
		return mimg_err(-EINVAL, "mimg_open_memory: no buffer");
	if ((r = mimg__check_flags("mimg_open_memory", flags,
				   MIMG_OPEN_ALL_FLAGS)) < 0)
		return r;
	*imgp = NULL;
	mimg_err_clear();
	r = mimg_file_open_memory(&f, buf, len, max, name,
				  (flags & MIMG_OPEN_RDWR) ? MIMG_FILE_RDWR
							   : 0);
	if (r < 0)
		return r;
	return open_node(imgp, name, format, flags, NULL, 0, &ids, f);
}

int mimg_close(struct mimg *img)
{
	int r = 0;
	if (!img)
		return 0;
	if (!img->read_only && img->drv->close_prepare)
		r = img->drv->close_prepare(img);
	if (!img->read_only) {
		int rf = mimg__drv_flush(img);
		r = r ? r : rf;
	}
	close_driver(img);
	int rb = mimg_close(img->backing);
	int rf = mimg_file_close(img->file);
	free_image(img);
	if (r == 0)
		r = rb ? rb : rf;
	return r;
}

uint64_t mimg_size(const struct mimg *img)
{
	unsigned slot = mimg__io_enter(img);
	uint64_t size = img->size;
	mimg__io_leave(img, slot);
	return size;
}

const char *mimg_format(const struct mimg *img)
{
	return img->drv->name;
}

const char *mimg_filename(const struct mimg *img)
{
	return img->filename;
}

const char *mimg_host_filename(struct mimg *img, uint64_t off)
{
	struct mimg_file *f = img->drv->host_file
				      ? img->drv->host_file(img, off)
				      : NULL;
	return f ? mimg_file_path(f) : img->filename;
}

bool mimg_is_read_only(const struct mimg *img)
{
	return img->read_only;
}

struct mimg *mimg_backing(const struct mimg *img)
{
	return img->backing;
}

uint32_t mimg_cluster_size(const struct mimg *img)
{
	return img->cluster_size;
}

bool mimg_has_zero_init(const struct mimg *img)
{
	if (img->backing_name)
		return false;
	return img->drv->has_zero_init &&
	       img->drv->has_zero_init((struct mimg *)img);
}

bool mimg_needs_secret(const struct mimg *img)
{
	return img->locked;
}

bool mimg_can_discard(const struct mimg *img)
{
	return !img->read_only && img->drv->discard != NULL;
}

int mimg_select_snapshot_by(struct mimg *img, const char *id, const char *name)
{
	mimg_err_clear();
	if (!id && !name)
		return mimg_err(-EINVAL, "%s: no snapshot id or name given",
				img->filename);
	if (!img->read_only)
		return mimg_err(-EBUSY,
				"%s: snapshots can only be read from "
				"an image opened read-only",
				img->filename);
	if (!img->drv->select_snapshot)
		return mimg_err(-ENOTSUP,
				"%s: format %s has no internal "
				"snapshots",
				img->filename, img->drv->name);
	return img->drv->select_snapshot(img, id, name);
}

/* The id first, then the name, as qemu-img looks a snapshot up. */
int mimg_select_snapshot(struct mimg *img, const char *name)
{
	int r = mimg_select_snapshot_by(img, name, NULL);
	if (r == -ENOENT)
		r = mimg_select_snapshot_by(img, NULL, name);
	if (r == -ENOENT)
		r = mimg_err(-ENOENT, "%s: no snapshot '%s'", img->filename,
			     name);
	return r;
}

int mimg__open_extra_file(struct mimg *img, const char *path, bool create,
			  struct mimg_file **fp)
{
	unsigned fflags = host_file_flags(img->top->flags, img->read_only);
	if (create)
		fflags |= MIMG_FILE_CREATE | MIMG_FILE_RDWR;
	int r = mimg_file_open(fp, path, fflags);
	struct stat st;
	if (r < 0 || stat(path, &st) != 0)
		return r;
	struct mimg_file_id *ids = realloc(img->extra_ids, (img->n_extra_ids +
							    1) * sizeof(*ids));
	if (!ids) {
		mimg_file_close(*fp);
		*fp = NULL;
		return mimg_err(-ENOMEM, "out of memory");
	}
	ids[img->n_extra_ids++] = (struct mimg_file_id){st.st_dev, st.st_ino};
	img->extra_ids = ids;
	return 0;
}
