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
#include <sys/types.h>

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
	char *href;	   /* the archive member that holds it */
	uint64_t capacity; /* bytes, when known_capacity */
	bool known_capacity;
	char *format;	    /* the format URI, or NULL */
	uint64_t populated; /* populatedSize, when known_populated */
	bool known_populated;
};
struct mimg_ovf {
	struct mimg_ovf_disk *disks;
	int ndisks;
	/* The (first) virtual system: id and Name, CPUs and memory of its
	 * hardware section (0 when not given). */
	char *system_id, *system_name;
	uint64_t cpus, memory;
};

/* Parse an OVF descriptor (refusing DTDs, entities, network access);
 * -ENOTSUP when built without libxml2. */
int mimg__ovf_parse(const uint8_t *xml, size_t len, const char *name,
		    struct mimg_ovf **ovfp);
void mimg__ovf_free(struct mimg_ovf *ovf);

/* SHA1, SHA256 and SHA512 of an archive member, computed as it is read
 * (archive-manifest.c). */
#define MIMG_DIGEST_ALGS 3
#define MIMG_MANIFEST_MAX 256
#define MIMG_MANIFEST_MAX_SIZE (64 << 10)
struct evp_md_ctx_st;
struct mimg_digests {
	struct evp_md_ctx_st *ctx[MIMG_DIGEST_ALGS];
	uint8_t md[MIMG_DIGEST_ALGS][64];
	unsigned len[MIMG_DIGEST_ALGS];
	bool active, done;
};
int mimg__digests_init(struct mimg_digests *d);
void mimg__digests_update(struct mimg_digests *d, const void *buf, size_t n);
void mimg__digests_final(struct mimg_digests *d);
void mimg__digests_free(struct mimg_digests *d);

struct mimg_manifest_entry {
	char *name;
	int alg; /* index: SHA1, SHA256, SHA512 */
	uint8_t md[64];
	unsigned len;
};
struct mimg_manifest {
	struct mimg_manifest_entry *entries;
	int n;
};
/* Parse a manifest (LEN bytes, bounded by the caller). */
int mimg__manifest_parse(const uint8_t *text, size_t len, const char *aname,
			 struct mimg_manifest **mp);
void mimg__manifest_free(struct mimg_manifest *m);
/* 1 when MEMBER is listed and every digest listed for it matches D, 0
 * when it is not listed, -EINVAL with a message on a mismatch. */
int mimg__manifest_check(const struct mimg_manifest *m, const char *member,
			 const char *shown, const struct mimg_digests *d,
			 const char *aname);

/* Where an unpacked image came from. */
struct mimg_archive_origin {
	char filters
		[64]; /* "xz", "gzip", "xz,bzip2" (outermost first), or "" */
	bool tar;
	char *member;	/* tar member name (control bytes replaced), or NULL */
	char *ovf_name; /* an OVA's descriptor member, or NULL */
	struct mimg_ovf *ovf;	    /* its disks */
	int ovf_disk;		    /* the one opened (index into ovf->disks) */
	char *manifest;		    /* the .mf member, or NULL */
	int manifest_checked;	    /* members whose digests matched it */
	uint64_t archive_size;	    /* bytes of the archive file */
	uint64_t archive_allocated; /* its host storage, or 0 if unknown */
	uint64_t unpacked_size;	    /* bytes of the unpacked image */
	bool streamed;		    /* read in one pass, no temporary file */
};

/*
 * With SEQUENTIAL, an image whose format reads in one pass (raw,
 * streamOptimized VMDK: the driver's one_pass) and whose size the
 * archive declares is not unpacked: *FP becomes a file reading it in one
 * pass (file-stream.c).  A format other than raw, whose header gives
 * the image's size, is streamed from a compressed file that declares
 * no size (gzip, bzip2) too, its end found as it is read.
 * If *FP holds a compressed stream (gzip, bzip2, xz, zstd, lz4) or a tar
 * archive, possibly compressed, unpack its disk image into an anonymous
 * sparse file under $TMPDIR (or /tmp) and replace *FP with that file,
 * read-only, named as *FP was; the original is closed.  Returns 1 with
 * *ORIGINP set when it did, 0 when *FP is not an archive (left as it is),
 * or a negative errno with a message (*FP left open).
 */
int mimg__archive_unpack(struct mimg_file **fp,
			 struct mimg_archive_origin **originp, bool sequential,
			 const char *ova_disk);

/* What a streamed image reads from: a libarchive reader positioned in
 * the image's data, and the archive file and reader state it needs.
 * DATA sees every decoded chunk (limits, digests), END runs once the
 * declared size has been read (checks that need the rest of the
 * archive); both return 0 or a negative errno with a message. */
struct mimg_stream_in {
	struct mimg_file *archive;
	void *opaque;
	/* Up to N decoded bytes into BUF: a count, 0 at the end of the
	 * data, or a negative errno with a message. */
	ssize_t (*read)(void *opaque, uint8_t *buf, size_t n);
	int (*data)(void *opaque, const uint8_t *buf, size_t n);
	int (*end)(void *opaque);
	void (*release)(void *opaque);
	/* Optional: pass over the rest of the data without reading it;
	 * 1 when it did, 0 when the data must be read. */
	int (*skip)(void *opaque);
	uint64_t size;
	/* SIZE is only the most the data may hold (a gzip file declares
	 * no size): the data ends where READ returns 0, and the file's
	 * size is SIZE until then. */
	bool open_ended;
};

#ifdef MIMG_HAVE_LIBLZMA
/* The xz file F (NAME in messages) decoded from its start with liblzma
 * (file-xz.c), its memory capped: all its streams, nothing after
 * them. */
struct mimg_xz;
int mimg__xz_open(struct mimg_xz **xp, struct mimg_file *f, const char *name);
/* Up to N decoded bytes into BUF: a count, 0 at the end of the file, or
 * a negative errno with a message. */
ssize_t mimg__xz_read(struct mimg_xz *x, uint8_t *buf, size_t n);
/* Bytes of the file decoded so far. */
uint64_t mimg__xz_consumed(const struct mimg_xz *x);
void mimg__xz_close(struct mimg_xz *x);
#endif

/* The gzip file F (NAME in messages) decoded from its start with zlib
 * (file-gzip.c), every member's CRC-32 and length checked: all its
 * members, nothing but zero bytes after them. */
struct mimg_gzip;
int mimg__gzip_open(struct mimg_gzip **gp, struct mimg_file *f,
		    const char *name);
/* Up to N decoded bytes into BUF: a count, 0 at the end of the file, or
 * a negative errno with a message. */
ssize_t mimg__gzip_read(struct mimg_gzip *g, uint8_t *buf, size_t n);
/* Bytes of the file decoded so far. */
uint64_t mimg__gzip_consumed(const struct mimg_gzip *g);
void mimg__gzip_close(struct mimg_gzip *g);

/* Read the rest of the streamed image F, and the rest of its archive,
 * without keeping the data: what a reader that only describes the image
 * does so that the whole archive is checked, as when it is unpacked.
 * F's data can no longer be read.  0 or a negative errno with a
 * message. */
int mimg__stream_drain(struct mimg_file *f);

/* The size the compressed FILE declares it unpacks to, when FILTERS is
 * "xz" (its index, one stream) or "zstd" (its first frame header). */
bool mimg__declared_size(struct mimg_file *f, const char *filters,
			 uint64_t *sizep);

/* The size the xz FILE unpacks to and the number of its blocks, when it
 * is one stream with a valid index. */
bool mimg__xz_layout(struct mimg_file *f, uint64_t *sizep, uint64_t *blocksp);

/* A read-only file serving IN's SIZE bytes to readers going forward,
 * the first N of which are at HEAD.  With IN's open_ended, a read past
 * the end found reads as zeroes and the file's size becomes the end:
 * a reader checks the size again after a read to see where the data
 * ended.  It owns what IN names once this
 * returns 0; on failure the caller still does. */
int mimg__stream_open(struct mimg_file **fp, const char *name,
		      const struct mimg_stream_in *in, const uint8_t *head,
		      size_t n);
void mimg__archive_origin_free(struct mimg_archive_origin *o);

/* An anonymous read-write file in DIR, gone when closed whatever
 * happens (O_TMPFILE, else a name unlinked at once): a descriptor or a
 * negative errno. */
int mimg__anonymous_file(const char *dir);

#endif
