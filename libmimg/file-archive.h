/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Images inside compressed files and tar archives (libarchive), read by
 * unpacking the disk image into a sparse temporary file.
 */
#ifndef MIMG_FILE_ARCHIVE_H
#define MIMG_FILE_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "file.h"

struct archive;

/* Limits on what one archive may make us do (see mimg.h). */
#define MIMG_ARCHIVE_MAX_MEMBERS 1024
#define MIMG_ARCHIVE_MAX_RATIO 100000
#define MIMG_ARCHIVE_RATIO_FREE ((uint64_t)64 << 20)
#define MIMG_ARCHIVE_SPOOL_RESERVE ((uint64_t)64 << 20)

#define MIMG_STREAM_RING (32u << 20)

#define MIMG_OVF_MAX_SIZE (1 << 20)
#define MIMG_OVF_MAX_DISKS 64

/* The disks an OVF descriptor lists, in its order. */
struct mimg_ovf_disk {
	char *id;
	char *href;		/* the archive member that holds it */
	uint64_t capacity;	/* bytes, when known_capacity */
	bool known_capacity;
};
struct mimg_ovf {
	struct mimg_ovf_disk *disks;
	int ndisks;
};

/* Parse an OVF descriptor (refusing DTDs, entities, network access);
 * -ENOTSUP when built without libxml2. */
int mimg__ovf_parse(const uint8_t *xml, size_t len, const char *name,
		    struct mimg_ovf **ovfp);
void mimg__ovf_free(struct mimg_ovf *ovf);

/* Where an unpacked image came from. */
struct mimg_archive_origin {
	char filters[64];  /* "xz", "gzip", "xz,bzip2" (outermost first), or "" */
	bool tar;
	char *member;	   /* tar member name (control bytes replaced), or NULL */
	char *ovf_name;	   /* an OVA's descriptor member, or NULL */
	struct mimg_ovf *ovf;	 /* its disks; the image is the first */
	uint64_t archive_size;	 /* bytes of the archive file */
	uint64_t archive_allocated;	/* its host storage, or 0 if unknown */
	uint64_t unpacked_size;	 /* bytes of the unpacked image */
	bool streamed;		 /* read in one pass, no temporary file */
};

/*
 * With SEQUENTIAL, a raw image whose size the archive declares is not
 * unpacked: *FP becomes a file reading it in one pass (file-stream.c).
 * If *FP holds a compressed stream (gzip, bzip2, xz, zstd, lz4) or a tar
 * archive, possibly compressed, unpack its disk image into an anonymous
 * sparse file under $TMPDIR (or /tmp) and replace *FP with that file,
 * read-only, named as *FP was; the original is closed.  Returns 1 with
 * *ORIGINP set when it did, 0 when *FP is not an archive (left as it is),
 * or a negative errno with a message (*FP left open).
 */
int mimg__archive_unpack(struct mimg_file **fp,
			 struct mimg_archive_origin **originp,
			 bool sequential);

/* What a streamed image reads from: a libarchive reader positioned in
 * the image's data, and the archive file and reader state it needs.
 * DATA sees every decoded chunk (limits, digests), END runs once the
 * declared size has been read (checks that need the rest of the
 * archive); both return 0 or a negative errno with a message. */
struct mimg_stream_in {
	struct archive *a;
	struct mimg_file *archive;
	void *opaque;
	int (*data)(void *opaque, const uint8_t *buf, size_t n);
	int (*end)(void *opaque);
	void (*release)(void *opaque);
	uint64_t size;
};

/* The size the compressed FILE declares it unpacks to, when FILTERS is
 * "xz" (its index, one stream) or "zstd" (its first frame header). */
bool mimg__declared_size(struct mimg_file *f, const char *filters,
			 uint64_t *sizep);

/* A read-only file serving IN's SIZE bytes to readers going forward,
 * the first N of which are at HEAD.  It owns what IN names once this
 * returns 0; on failure the caller still does. */
int mimg__stream_open(struct mimg_file **fp, const char *name,
		      const struct mimg_stream_in *in, const uint8_t *head,
		      size_t n);
void mimg__archive_origin_free(struct mimg_archive_origin *o);


#endif
