/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * struct mimg, the open-image handle, shared by the core and the drivers.
 */
#ifndef MIMG_IMAGE_H
#define MIMG_IMAGE_H

#include <pthread.h>
#include <sys/types.h>

#include "decoded.h"
#include "driver.h"
#include "file.h"
#include "readers.h"

struct mimg_blocktable;

/* A host file by identity, to tell whether two names are one file. */
struct mimg_file_id {
	dev_t dev;
	ino_t ino;
};

struct mimg {
	const struct mimg_driver *drv;
	void *priv;		/* drv->priv_size bytes, zeroed */
	struct mimg_file *file; /* the image's own host file */
	char *filename;		/* as given to mimg_open */
	unsigned flags;		/* MIMG_OPEN_* */
	bool read_only;
	/* Format was probed as raw: writes must not change what sector 0
	 * probes as (qemu's rule against format escalation). */
	bool probed_raw;
	int depth; /* 0 for the top image */
	/* Opened from memory: no directory, so no other file may be named. */
	bool in_memory;
	/* The host file is an NBD export: no directory either. */
	bool remote;
	/* Unpacked from a compressed file or tar: what it came from. */
	struct mimg_archive_origin *archive;

	/* Set by the driver's open(). */
	uint64_t size;
	uint32_t cluster_size; /* 0 if not meaningful */
	char *backing_name;    /* as stored in the image, or NULL */
	char *backing_fmt;     /* stored backing format, or NULL */
	bool locked;	       /* encrypted, opened without its key */
	/* The block table a driver built on blocktable.h does its I/O
	 * through (its ops read it), or NULL. */
	const struct mimg_blocktable *blocktable;

	/* Set by the core. */
	struct mimg *backing; /* opened backing image, or NULL */
	char *backing_path;   /* backing_name resolved */
	struct mimg *top;     /* the chain's top image (flags, policy) */
	/* Level for the driver's compress() (codec.h), 0 = default; set
	 * by mimg_convert before its workers start. */
	int compress_level;
	/* Only while the driver's open() runs: the caller's secret,
	 * checked and with defaults filled in, or NULL; and the values of
	 * the driver's open_opts (the defaults below the image asked
	 * for), or NULL when it has none. */
	const struct mimg_secret *secret;
	const struct mimg_optval *open_vals;
	/* The secrets of the mimg_amend_secrets call in progress. */
	const struct mimg_named_secret *amend_secrets;
	size_t amend_nsecrets;
	/* Guards the table of a driver built on blocktable.h and what its
	 * allocations change (the driver says which fields). */
	pthread_mutex_t table_lock;
	/* The last unit a driver built on runs.h decoded (runs.c). */
	struct mimg_decoded decoded;
	/* Entered as a reader by every I/O call (and mimg_size), locked
	 * by mimg_truncate: a resize waits for the I/O in flight, and no
	 * I/O sees the size or the metadata half-changed. */
	struct mimg_readers resize_lock;
	/* The other files the driver opened for this layer (extents, data
	 * file): what mimg_reads_file compares a target with. */
	struct mimg_file_id *extra_ids;
	size_t n_extra_ids;
	/* What mimg__img_calloc gave out, freed with the image. */
	struct mimg_owned *owned;
};

/* Zeroed room for N elements of SIZE bytes (at least one byte, so that
 * an empty table is not an error) that IMG owns: the core frees it when
 * IMG is closed, after the driver's close(), and when open() failed.
 * For the tables a driver's open() reads and keeps until close (an L1
 * table, a BAT); not for memory that I/O threads allocate.  NULL with
 * -ENOMEM's message when memory runs out or N * SIZE overflows. */
void *mimg__img_calloc(struct mimg *img, size_t n, size_t size);

/* -EROFS when IMG is open read-only, saying that it cannot be changed as
 * WHAT says ("amend": "cannot amend an image opened read-only"). */
int mimg__check_writable(const struct mimg *img, const char *what);

/* The driver's flush, or its default (flushing the host file). */
int mimg__drv_flush(struct mimg *img);

/* Enter and leave an I/O call on IMG (a reader of its resize lock):
 * mimg__io_leave takes what mimg__io_enter returned.  An image open
 * read-only is never resized (mimg_truncate refuses it), so its I/O has
 * nothing to wait for and skips the lock's two atomic operations. */
static inline unsigned mimg__io_enter(const struct mimg *img)
{
	if (img->read_only)
		return 0;
	return mimg_readers_enter((struct mimg_readers *)&img->resize_lock);
}

static inline void mimg__io_leave(const struct mimg *img, unsigned slot)
{
	if (!img->read_only)
		mimg_readers_leave((struct mimg_readers *)&img->resize_lock,
				   slot);
}

/* Whether IMG is a raw image of its whole file, whose guest offsets are
 * offsets in the file (not a window of it: formats/raw.c). */
bool mimg__raw_is_file(const struct mimg *img);

/* -EBUSY with a message when DST's own files (its file, extents, data
 * file) are files SRC reads: writing DST would change what SRC reads
 * (overlap.c). */
int mimg__check_overlap(const struct mimg *src, const struct mimg *dst);

/* The caller's convert OPTS (NULL: the defaults) in *O, the library's
 * layout; -EINVAL for a SIZE this library does not know (convert.c). */
int mimg__convert_opts_get(const struct mimg_convert_opts *opts,
			   struct mimg_convert_opts *o);

#endif
