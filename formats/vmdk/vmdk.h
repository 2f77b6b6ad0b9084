/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VMDK driver internals: the text descriptor, hosted sparse extents
 * (KDMV, versions 1-3, including streamOptimized) and flat/zero extents.
 *
 * Facts about the format come from VMware's "Virtual Disk Format 5.0"
 * description and from what qemu-img 7.2 and VMware products write.
 */
#ifndef MIMG_VMDK_H
#define MIMG_VMDK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "group_sync.h"
#include "mimg.h"

struct mimg;
struct mimg_file;

#define VMDK_SECTOR 512u
#define VMDK_MAGIC 0x564d444bu	    /* "KDMV" little-endian */
#define VMDK_COWD_MAGIC 0x44574f43u /* "COWD": ESX 3 VMFSSPARSE */
#define VMDK_COWD_GT_ENTRIES 4096u
#define VMDK_GD_AT_END 0xffffffffffffffffull

/* Sparse header flags. */
#define VMDK_FLAG_NL_DETECT (1u << 0)
#define VMDK_FLAG_RGD (1u << 1)
#define VMDK_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK_FLAG_COMPRESSED (1u << 16)
#define VMDK_FLAG_MARKERS (1u << 17)

/* Stream marker types (the marker's size field is 0 for these). */
#define VMDK_MARKER_EOS 0
#define VMDK_MARKER_GT 1
#define VMDK_MARKER_GD 2
#define VMDK_MARKER_FOOTER 3

/* A grain-table entry of 1 means "reads as zeroes" when the extent has
 * VMDK_FLAG_ZERO_GRAIN. */
#define VMDK_GTE_ZERO 1u

/* Limits on untrusted values. */
#define VMDK_MAX_DESC_SIZE (1u << 20) /* descriptor text */
#define VMDK_MAX_EXTENTS 4096
#define VMDK_MAX_GRAIN_SECTORS 0x200000u /* 1 GiB, as qemu */
#define VMDK_MAX_COMPRESSED_GRAIN (16u << 20)
#define VMDK_MAX_GT_ENTRIES 4096u
#define VMDK_MAX_GD_BYTES (32u << 20)
#define VMDK_MAX_SECTORS (1ull << 54) /* 8 EiB / 512, sanity cap */
/* Memory for all grain directories of one image, and for the grain-table
 * caches (split between the extents of a descriptor). */
#define VMDK_MAX_TOTAL_GD_BYTES (64u << 20)
#define VMDK_GT_CACHE_BUDGET (8u << 20)
#define VMDK_GT_CACHE_TOTAL (32u << 20)

/* ------------------------------------------------------------------ */
/* Descriptor                                                          */

enum vmdk_access { VMDK_RW, VMDK_RDONLY, VMDK_NOACCESS };
enum vmdk_ext_type {
	VMDK_EXT_SPARSE,
	VMDK_EXT_FLAT,
	VMDK_EXT_ZERO,
	VMDK_EXT_VMFS,
	VMDK_EXT_VMFSSPARSE
};

struct vmdk_desc_extent {
	enum vmdk_access access;
	enum vmdk_ext_type type;
	uint64_t sectors;
	uint64_t offset; /* sectors into the file (FLAT/VMFS) */
	char *filename;	 /* NULL for ZERO */
};

struct vmdk_desc {
	uint32_t cid;
	uint32_t parent_cid;
	char *create_type; /* NULL when absent */
	char *parent_hint; /* parentFileNameHint, NULL when absent */
	struct vmdk_desc_extent *ext;
	size_t n_ext, cap_ext;
};

/* Parse descriptor TEXT (LEN bytes, may contain a NUL that ends it).
 * WHERE names the file for messages.  -EINVAL with a message naming the
 * line on malformed input.  NEED_EXTENTS: no extent line is an error. */
int vmdk_desc_parse(const char *text, size_t len, const char *where,
		    struct vmdk_desc *d, bool need_extents);
void vmdk_desc_free(struct vmdk_desc *d);
const char *vmdk_ext_type_name(enum vmdk_ext_type t);
/* Replace the value of the CID= line of TEXT with NEW_CID; returns a new
 * malloc'ed text (or NULL on -ENOMEM). */
char *vmdk_desc_set_cid(const char *text, size_t len, uint32_t new_cid,
			size_t *newlen);

/* Parameters of a descriptor written by create. */
struct vmdk_desc_params {
	uint32_t cid, parent_cid;
	const char *create_type;
	const char *parent_hint; /* NULL: none */
	const char *adapter_type;
	const char *hwversion;
	const char *toolsversion;
	uint64_t total_sectors;
	bool vmware_fields; /* encoding, longContentID, toolsInstallType */
	const struct vmdk_desc_extent *ext;
	size_t n_ext;
};
/* Returns a malloc'ed text or NULL. */
char *vmdk_desc_format(const struct vmdk_desc_params *p);
/* A random CID other than 0xffffffff / 0xfffffffe. */
uint32_t vmdk_random_cid(void);

/* ------------------------------------------------------------------ */
/* Sparse extents                                                      */

struct vmdk_gt_slot {
	uint64_t tag;  /* GD index + 1, 0 = empty */
	uint32_t *gte; /* gt_entries entries, host order */
};

/* Grains being allocated by a writer that dropped the extent lock. */
struct vmdk_inflight {
	uint64_t first, n;
	struct vmdk_inflight *next;
};

struct vmdk_sread;

struct vmdk_sparse {
	struct mimg_file *file;
	const char *path; /* for messages */
	uint32_t version;
	uint32_t flags;
	uint64_t capacity; /* sectors */
	uint64_t grain_sectors;
	uint64_t grain_bytes;
	uint32_t gt_entries;
	uint64_t gt_bytes; /* one grain table on disk */
	uint64_t gd_entries;
	uint64_t desc_sector, desc_sectors;
	uint64_t overhead;   /* sectors */
	uint64_t gd_sector;  /* the directory in use */
	uint64_t rgd_sector; /* 0: none */
	uint32_t *gd;	     /* the directory in use */
	uint32_t *rgd;	     /* NULL when none or unusable */
	bool compressed, markers, zero_grain;
	bool has_parent;	     /* the image has a parent (delta link) */
	bool gd_at_end;		     /* footer layout (stream) */
	bool cowd;		     /* ESX 3 "COWD" extent (read-only) */
	bool primary_damaged;	     /* fell back to the redundant directory */
	uint8_t header[VMDK_SECTOR]; /* as read (for the footer copy) */
	uint64_t file_end;	     /* bytes; where the next grain goes */
	/* The file's size as last flushed: new grains and tables go below
	 * it, so a lost write reads as zeroes, never past the end. */
	uint64_t durable_end;
	struct mimg_group_sync gsync; /* data before table entries */

	uint64_t cache_budget; /* bytes of cached GTs; 0: default */
	pthread_mutex_t lock;  /* GD/GT cache, allocation, file_end */
	pthread_cond_t inflight_done;
	struct vmdk_inflight *inflight;
	struct vmdk_gt_slot *slots;
	size_t nslots;
	/* Sorted sectors of every grain table, so that no guest write or
	 * punch lands on one (built on first use, dropped when a table is
	 * added). */
	uint32_t *gt_sorted;
	size_t n_gt_sorted;
	bool gt_sorted_valid;
	struct vmdk_sread *sr; /* read in one pass (stream-read.c) */
};

/* Parse and validate the 512-byte sparse header at the start of FILE,
 * loading the grain directory (falling back to the redundant one when the
 * primary is damaged).  FILE_SIZE is the file's size. */
int vmdk_sparse_open(struct vmdk_sparse *sp, struct mimg_file *file,
		     const char *path, uint64_t file_size);
void vmdk_sparse_close(struct vmdk_sparse *sp);
/* Make room for BYTES more at the end of the file inside a durable size
 * (sp->lock held). */
int vmdk_sparse_reserve(struct vmdk_sparse *sp, uint64_t bytes);
/* Make every write completed so far durable (sp->lock held; released
 * while the flush runs). */
int vmdk_sparse_barrier(struct vmdk_sparse *sp);

enum vmdk_grain_state { VMDK_GRAIN_UNALLOC, VMDK_GRAIN_ZERO, VMDK_GRAIN_DATA };
/* Look up grain GRAIN (index within the extent): state and, for DATA,
 * the host byte offset.  Validates the entry against the file. */
int vmdk_sparse_lookup(struct vmdk_sparse *sp, uint64_t grain,
		       enum vmdk_grain_state *state, uint64_t *host_off);
/* The same with sp->lock held by the caller. */
int vmdk_sparse_lookup_locked(struct vmdk_sparse *sp, uint64_t grain,
			      enum vmdk_grain_state *state, uint64_t *host_off);
/* Read LEN bytes at IN_OFF within compressed grain at HOST_OFF into BUF. */
int vmdk_sparse_read_compressed(struct vmdk_sparse *sp, uint64_t grain,
				uint64_t host_off, uint64_t in_off, void *buf,
				size_t len);
/* Point grains [FIRST, FIRST+N) of the extent at consecutive grains from
 * HOST_SECTOR on (or, with SAME_VALUE, all at HOST_SECTOR, e.g.
 * VMDK_GTE_ZERO), in the redundant GT first, then in the GT.  The caller
 * holds sp->lock.  Allocates missing grain tables at the end of the file. */
int vmdk_sparse_set_gtes(struct vmdk_sparse *sp, uint64_t first, uint64_t n,
			 uint32_t host_sector, bool same_value);
/* Load the grain directory at SECTOR into *OUT (host order), checking
 * that its tables lie within the file; WHAT names it in messages. */
int vmdk_sparse_load_gd(struct vmdk_sparse *sp, uint64_t sector, uint32_t **out,
			const char *what);
/* Read one whole grain table (GD index GDI) from the given directory
 * into OUT (gt_entries entries, host order); zeroes when unallocated. */
int vmdk_sparse_read_gt(struct vmdk_sparse *sp, const uint32_t *gd,
			uint64_t gdi, uint32_t *out);

/* ------------------------------------------------------------------ */
/* Image state                                                         */

struct vmdk_extent {
	enum vmdk_access access;
	enum vmdk_ext_type type; /* VMFSSPARSE is handled as SPARSE */
	const char *type_name;	 /* as in the descriptor, for info */
	uint64_t start;		 /* guest byte offset */
	uint64_t size;		 /* bytes */
	uint64_t flat_offset;	 /* bytes into file (FLAT/VMFS) */
	char *filename;		 /* as in the descriptor (or image name) */
	struct mimg_file *file;	 /* NULL for ZERO */
	bool own_file;		 /* opened by us, close it */
	bool regular;		 /* file is a regular file */
	struct vmdk_sparse *sp;	 /* SPARSE only */
};

struct vmdk_stream_writer;

struct vmdk_state {
	struct vmdk_desc desc;
	char *desc_text; /* the raw descriptor */
	size_t desc_len;
	bool desc_embedded;	/* in the first sparse extent */
	bool monolithic_sparse; /* the image file itself is KDMV */
	struct vmdk_extent *ext;
	size_t n_ext;
	pthread_mutex_t cid_lock;
	bool cid_updated; /* CID renewed after the first write (or there is
			   * no descriptor to renew it in) */
	bool parent_checked;
	int parent_err;
	struct vmdk_stream_writer *sw; /* fresh streamOptimized write */
};

extern const struct mimg_driver mimg_vmdk_driver;

/* io.c */
int vmdk_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		uint64_t off, size_t len);
int vmdk_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
		 uint64_t off, size_t len);
int vmdk_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
		       unsigned flags);
int vmdk_block_status(struct mimg *img, uint64_t off, uint64_t len,
		      uint64_t *pnum, unsigned *status, uint64_t *host_off);
struct mimg_file *vmdk_host_file(struct mimg *img, uint64_t off);
int vmdk_flush(struct mimg *img);
int vmdk_discard(struct mimg *img, uint64_t off, uint64_t len);

/* create.c */
extern const struct mimg_optdesc vmdk_create_opts[];
int vmdk_create(const char *path, uint64_t size, const struct mimg_opt *opts,
		size_t nopts, struct mimg *backing);
/* Write a sparse extent header + empty tables into FILE; used by create.
 * STREAM selects the streamOptimized layout (footer, no redundant GD). */
struct vmdk_sparse_params {
	uint64_t capacity; /* sectors */
	bool stream;
	bool zeroed_grain;
	const char *desc; /* embedded descriptor or NULL */
};
int vmdk_write_new_sparse(struct mimg_file *f, const char *path,
			  const struct vmdk_sparse_params *p);
/* An empty streamOptimized image of SIZE bytes on the empty file F, its
 * embedded descriptor naming NAME as its extent, ADAPTER its
 * ddb.adapterType (the image inside an OVA). */
int vmdk_create_stream_on(struct mimg_file *f, const char *name, uint64_t size,
			  const char *adapter);
/* Fill a 512-byte header. */
void vmdk_fill_header(uint8_t *h, uint32_t version, uint32_t flags,
		      uint64_t capacity, uint64_t grain_sectors,
		      uint64_t desc_sector, uint64_t desc_sectors,
		      uint32_t gt_entries, uint64_t rgd_sector,
		      uint64_t gd_sector, uint64_t overhead);

/* stream.c */
int vmdk_stream_start(struct mimg *img);
void vmdk_stream_free(struct vmdk_stream_writer *sw);
int vmdk_stream_finish(struct mimg *img);
uint32_t vmdk_compress_unit(struct mimg *img);
ssize_t vmdk_compress(struct mimg *img, const void *in, size_t inlen, void *out,
		      size_t outcap);
int vmdk_write_compressed(struct mimg *img, uint64_t off, const void *data,
			  size_t len, bool compressed);
bool vmdk_stream_only(struct mimg *img);
int vmdk_stream_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
			uint64_t off, size_t len);

/* stream-read.c: a streamOptimized extent over a file read in one pass
 * (mimg_file_is_stream), its header parsed into SP. */
int vmdk_sread_open(struct vmdk_sparse *sp);
void vmdk_sread_free(struct vmdk_sread *sr);
/* vmdk_sparse_lookup_locked for such an extent: grains are looked up
 * going forward (at most the stream's memory behind, else -ESPIPE). */
int vmdk_sread_lookup(struct vmdk_sparse *sp, uint64_t grain,
		      enum vmdk_grain_state *state, uint64_t *host_off);

/* info.c */
int vmdk_info(struct mimg *img, struct mimg_value *info);
int vmdk_check(struct mimg *img, unsigned flags, struct mimg_check_result *res);

/* vmdk.c */
/* Give the image a new CID after its first modification (once). */
int vmdk_touch_cid(struct mimg *img);
/* Rewrite the descriptor text where it lives. */
int vmdk_write_descriptor(struct mimg *img, const char *text, size_t len);

#endif
