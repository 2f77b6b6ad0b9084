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

/* Limits on what one archive may make us do (see mimg.h). */
#define MIMG_ARCHIVE_MAX_MEMBERS 1024
#define MIMG_ARCHIVE_MAX_RATIO 100000
#define MIMG_ARCHIVE_RATIO_FREE ((uint64_t)64 << 20)
#define MIMG_ARCHIVE_SPOOL_RESERVE ((uint64_t)64 << 20)

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
};

/*
 * If *FP holds a compressed stream (gzip, bzip2, xz, zstd, lz4) or a tar
 * archive, possibly compressed, unpack its disk image into an anonymous
 * sparse file under $TMPDIR (or /tmp) and replace *FP with that file,
 * read-only, named as *FP was; the original is closed.  Returns 1 with
 * *ORIGINP set when it did, 0 when *FP is not an archive (left as it is),
 * or a negative errno with a message (*FP left open).
 */
int mimg__archive_unpack(struct mimg_file **fp,
			 struct mimg_archive_origin **originp);
void mimg__archive_origin_free(struct mimg_archive_origin *o);


#endif
