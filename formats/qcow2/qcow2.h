/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Internal state and helpers of the qcow2 driver.  The on-disk format is
 * described by qemu's docs/interop/qcow2.rst; every field read from an
 * image is validated before use.
 *
 * Locking: one metadata mutex (s->lock) protects the L1/refcount tables,
 * both caches, the allocator and the in-flight list.  Guest data is read
 * and written with the lock released; a write registers the guest
 * clusters it touches as in flight so that overlapping writes, discards
 * and zeroings of the same clusters wait for each other.  Reads map
 * through cached L2 tables without the lock, as readers of map_readers;
 * changes of the L1 table or of the L2 cache keep them out meanwhile.
 */
#ifndef MIMG_QCOW2_H
#define MIMG_QCOW2_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "group_sync.h"
#include "image.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104
/* qemu's caps on table sizes. */
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_BACKING_NAME 1023
/* Most bounce buffer an encrypted read or write uses per step. */
#define CRYPT_CHUNK (1u << 20)

/* Header extension types. */
#define QCOW2_EXT_END 0u
#define QCOW2_EXT_BACKING_FMT 0xe2792acau
#define QCOW2_EXT_FEATURES 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1full
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ull << 1)

/* Table entry bits. */
#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO (1ull << 0)
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_L1_RESERVED 0x7f000000000001ffull
#define QCOW2_L2_RESERVED 0x3f000000000001feull
#define QCOW2_SUBCLUSTERS 32
#define QCOW2_BITMAP_ALLOC 0xffffffffull
#define QCOW2_BITMAP_ZERO (0xffffffffull << 32)

enum qcow2_compression { QCOW2_COMPRESS_ZLIB = 0, QCOW2_COMPRESS_ZSTD = 1 };

/* What a guest range maps to. */
enum qcow2_kind {
	QCOW2_UNALLOCATED, /* read from the backing chain */
	QCOW2_ZERO,	   /* reads as zeroes */
	QCOW2_DATA,	   /* host data at host_off */
	QCOW2_COMPRESSED,  /* compressed cluster at host_off, csize bytes */
};

struct qcow2_map {
	enum qcow2_kind kind;
	uint64_t len;	   /* bytes of the run starting at the asked offset */
	uint64_t host_off; /* DATA, or another kind in a host cluster: host
			    * offset of the asked byte (else 0) */
	uint64_t csize;	   /* COMPRESSED: stored bytes */
	uint64_t cluster_guest; /* COMPRESSED: guest offset of the cluster */
};

/* One internal snapshot table entry. */
struct qcow2_snapshot {
	uint64_t l1_offset;
	uint32_t l1_size;
	char *id;
	char *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size; /* guest size when taken (UINT64_MAX: unknown) */
	bool has_icount;
	uint64_t icount;
	uint32_t extra_len;  /* bytes of extra data on disk */
	uint8_t *extra_more; /* extra data past the known 24 bytes */
};

/* A fixed-budget cache of cluster-sized metadata tables (L2 tables or
 * refcount blocks), keyed by host offset.  A modified entry is written
 * back (its dirty byte range) at the point the ordering rules allow:
 * refcount blocks at once, L2 tables at the next metadata sync. */
struct qcow2_cache_entry {
	uint64_t offset; /* 0: empty */
	/* Also refreshed by lookups outside the lock (qcow2_cache_peek). */
	_Atomic uint64_t last_use;
	uint32_t dirty_lo, dirty_hi;
	uint8_t *data;
};

struct qcow2_cache {
	struct qcow2_cache_entry *e;
	unsigned n;
	uint32_t size; /* bytes per table */
	_Atomic uint64_t tick;
	/* Called when every entry is dirty, to write them back. */
	int (*make_room)(void *opaque);
	void *opaque;
	/* When set, called with BEGIN true before the cache changes which
	 * tables it holds or what they say, and with false after: keeps
	 * out the lookups that run without the lock (qcow2_cache_peek). */
	void (*change)(void *opaque, bool begin);
	/* A failed write-back keeps the entry dirty (memory is what the
	 * disk must become: refcounts of clusters already in use) instead
	 * of forgetting it. */
	bool keep_on_error;
};

/* A cluster range whose reference is dropped once the metadata that
 * stopped using it is on disk. */
struct qcow2_pending_free {
	uint64_t off, len;
	bool discard;
};

/* One persistent dirty bitmap (qcow2-bitmap*.c).  FLAGS are the flags
 * the bitmap has once stored: a tracked bitmap is in use on disk while
 * the image is open for writing, and stored without the flag at close. */
struct qcow2_bitmap {
	char *name;
	uint32_t flags;
	uint8_t type;
	unsigned granularity_bits;
	uint64_t table_offset; /* 0: not stored yet */
	uint32_t table_size;
	uint64_t dir_pos; /* of the flags field inside the directory */
	uint32_t extra_len;
	uint8_t *extra;	 /* extra data, kept as it is */
	uint8_t *bits;	 /* the content, once loaded (else NULL) */
	uint64_t nbytes; /* bytes of BITS */
	bool changed;	 /* BITS differ from what is stored */
	bool tracked;	 /* writes set bits (enabled, consistent) */
};
/* A bitmap table the stored directory refers to. */
struct qcow2_bm_table {
	uint64_t off;
	uint32_t size;
};

/* Sorted cluster indexes of metadata not described by header fields
 * (qcow2-overlap.c). */
struct qcow2_meta_set {
	uint64_t *c;
	size_t n, cap;
};
struct qcow2_inflight {
	uint64_t first, last; /* guest cluster indexes, inclusive */
	struct qcow2_inflight *next;
};

struct qcow2 {
	struct mimg *img;
	struct mimg_file *file;	    /* the qcow2 file (metadata) */
	struct mimg_file *data;	    /* data clusters: file or external */
	struct mimg_file *data_own; /* opened external data file */
	char *data_file_name;
	bool data_raw;

	uint32_t version;
	unsigned cluster_bits;
	uint32_t cluster_size;
	uint32_t header_length;
	uint64_t incompat, compat, autoclear;
	unsigned refcount_order;
	unsigned refcount_bits;
	uint64_t refcount_max;
	enum qcow2_compression compression;
	bool extended_l2;
	bool has_bitmaps_ext;
	uint32_t nb_bitmaps;
	uint64_t bm_dir_offset, bm_dir_size;
	struct qcow2_bitmap *bitmaps; /* valid when bitmaps_loaded */
	bool bitmaps_loaded;
	bool bm_tracking;		  /* some bitmap is tracked */
	struct qcow2_bm_table *bm_stored; /* tables of the stored directory */
	uint32_t nb_bm_stored;
	unsigned l2e_size; /* 8 or 16 */
	unsigned l2_bits;  /* log2 of entries per L2 table */
	uint32_t l2_entries;
	unsigned sc_bits;    /* log2 of the subcluster size */
	uint32_t rb_entries; /* refcounts per refcount block */
	unsigned rb_bits;
	unsigned csize_shift; /* compressed descriptor: size field shift */
	uint64_t coffset_mask;
	uint64_t csize_mask;

	uint64_t *l1; /* host-endian copy of the L1 table */
	uint32_t l1_size;
	uint64_t l1_offset;
	uint32_t l1_alloc;   /* entries that fit in the L1's clusters */
	uint64_t *l1_active; /* the image's own L1 when a snapshot is read */

	uint64_t *reftable; /* host-endian */
	uint64_t reftable_offset;
	uint32_t reftable_clusters;
	uint64_t reftable_size; /* entries */

	uint64_t backing_off;
	uint32_t backing_len;
	struct qcow2_snapshot *snaps;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t snapshots_size; /* bytes of the snapshot table */
	int snapshot_selected;	 /* index or -1 */

	uint64_t free_hint; /* lowest cluster index that may be free */
	uint64_t free_byte; /* next byte for compressed data, 0: none */

	/* Whether the refcounts claim clearly more than the file holds
	 * (preallocation=metadata): 0 not known yet, 1 no, 2 yes. */
	int metadata_prealloc;

	struct qcow2_cache l2c, rbc;
	/* Reads of allocated data map without the lock: they enter
	 * map_readers (never waiting) and look at the L1 table and the L2
	 * cache, which change only while readers are kept out
	 * (qcow2_readers_block, under s->lock; nested READERS_BLOCKED
	 * deep). */
	struct mimg_readers map_readers;
	unsigned readers_blocked;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct qcow2_inflight *inflight;
	bool lock_init;
	struct qcow2_pending_free *pending;
	size_t npending, cappending;
	/* Exit-safe mode (qcow2-exitsafe.c). */
	bool exit_safe;
	bool resv_zeroed;	      /* the reservation reads as zeroes */
	uint64_t resv_next, resv_end; /* reserved clusters [next, end) */
	unsigned resv_grow;	      /* clusters the next reservation takes */
	struct mimg_group_sync gsync;
	/* Metadata that guest data must never overwrite (writable opens). */
	struct qcow2_meta_set meta;
	bool meta_tracked;
	/* Encryption (qcow2-crypt.c). */
	uint32_t crypt_method; /* 0 none, 1 AES-CBC (read only), 2 LUKS */
	bool has_crypt_ext;
	uint64_t crypt_hdr_off, crypt_hdr_len; /* the LUKS header's area */
	struct luks1_header *luks;
	bool crypt_ready; /* the key is loaded */
	struct mimg_sector_cipher cipher;
	pthread_mutex_t crypt_rmw; /* partial-sector read-modify-write */
	bool crypt_rmw_init;
};

static inline struct qcow2 *qcow2_of(struct mimg *img)
{
	return img->priv;
}

/* qcow2-header.c */
int qcow2_read_header(struct qcow2 *s, unsigned flags);
/* Read the table of ENTRIES 8-byte big-endian entries at OFF (WHAT names
 * it in errors) into *TABP in host order, in zeroed memory of whole
 * clusters holding at least ROOM entries, so the table can grow in
 * place; the caller frees it. */
int qcow2_load_table(struct qcow2 *s, uint64_t off, uint64_t entries,
		     uint64_t room, uint64_t **tabp, const char *what);
/* Rewrite the 8-byte incompatible-features field. */
int qcow2_write_incompat(struct qcow2 *s, uint64_t incompat);
/* Write the L1 offset and size fields together. */
int qcow2_write_l1_fields(struct qcow2 *s, uint64_t off, uint32_t size);
/* Write the refcount-table offset and cluster-count fields together. */
int qcow2_write_reftable_fields(struct qcow2 *s, uint64_t off,
				uint32_t clusters);
/* The same, with s->refcount_order, in one write (they lie in one
 * sector). */
int qcow2_write_reftable_order(struct qcow2 *s, uint64_t off,
			       uint32_t clusters);
/* Append header extension TYPE (LEN bytes of DATA, padded to 8) at POS
 * of the header cluster OUT; returns the position after it. */
uint64_t qcow2_put_extension(uint8_t *out, uint64_t pos, uint32_t type,
			     const void *data, uint32_t len);
/* Append the feature-name table qemu writes (v3, clusters > 4 KiB). */
uint64_t qcow2_put_feature_table(uint8_t *out, uint64_t pos);
uint64_t qcow2_feature_table_size(void);
/* Rewrite the header cluster from S (version, features, refcount order,
 * compression type, data file name) keeping the fields it does not
 * hold, the backing file and unknown extensions; one write, laid out as
 * qemu lays it out. */
int qcow2_rewrite_header(struct qcow2 *s);
const char *qcow2_path(const struct qcow2 *s);
/* Record NAME (NULL: none) and FMT as the backing file (driver op). */
int qcow2_set_backing(struct mimg *img, const char *name, const char *fmt);

/* qcow2-cache.c */
int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint32_t size);
void qcow2_cache_free(struct qcow2_cache *c);
/* Load the table at host OFFSET from F (validated by the caller). */
int qcow2_cache_get(struct qcow2_cache *c, struct mimg_file *f, uint64_t offset,
		    const char *what, uint8_t **datap);
/* The cached table at OFFSET, or NULL; changes nothing the lock guards,
 * for lookups outside it (see struct qcow2_cache's change). */
uint8_t *qcow2_cache_peek(struct qcow2_cache *c, uint64_t offset);
/* Install a freshly created table at OFFSET with contents DATA. */
int qcow2_cache_put_new(struct qcow2_cache *c, uint64_t offset,
			const uint8_t *data, uint8_t **datap);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, const uint8_t *data,
			    uint32_t lo, uint32_t hi);
/* Write every dirty entry's dirty range. */
int qcow2_cache_writeback(struct qcow2_cache *c, struct mimg_file *f);
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t offset);
void qcow2_cache_clear(struct qcow2_cache *c);

/* qcow2-sync.c (under s->lock) */
/* Drop the reference to [OFF, OFF+LEN) after the next metadata sync. */
int qcow2_defer_free(struct qcow2 *s, uint64_t off, uint64_t len, bool discard);
/* Make modified L2 tables durable in order: data and refcounts first
 * (flush), then the L2 tables (flush), then the deferred frees. */
int qcow2_metadata_sync(struct qcow2 *s);
int qcow2_sync_make_room(void *opaque);
bool qcow2_cache_has_dirty(const struct qcow2_cache *c);

/* qcow2-exitsafe.c (all under s->lock) */
/* Take N contiguous clusters from the reservation, refilling it (one
 * flush) when it is short; *ZEROEDP tells whether they read as zeroes. */
int qcow2_resv_take(struct qcow2 *s, uint64_t n, uint64_t *offp, bool *zeroedp);
/* Give the unused reserved clusters back. */
int qcow2_resv_release(struct qcow2 *s);
/* Make every write completed so far durable (a group flush; the lock is
 * released while it runs). */
int qcow2_data_barrier(struct qcow2 *s);
/* In exit-safe mode, write the modified L2 tables to the file now. */
int qcow2_publish_l2(struct qcow2 *s);
/* qcow2-overlap.c (under s->lock once the image is open) */
/* Collect the metadata clusters of a writable image. */
int qcow2_meta_build(struct qcow2 *s);
void qcow2_meta_free(struct qcow2 *s);
/* Record [OFF, OFF+LEN) as metadata; forget cluster C (freed). */
int qcow2_meta_add(struct qcow2 *s, uint64_t off, uint64_t len);
void qcow2_meta_remove_cluster(struct qcow2 *s, uint64_t c);
/* 0, or -EIO (marking the image corrupt) when host range [OFF, OFF+LEN)
 * overlaps metadata; ACTION names what was prevented. */
int qcow2_meta_guard(struct qcow2 *s, uint64_t off, uint64_t len,
		     const char *action);
/* -EIO once this handle found the image corrupt. */
int qcow2_refuse_if_corrupt(struct qcow2 *s);
/* qcow2-refcount.c (all under s->lock) */
int qcow2_get_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc);
/* *COUNT: clusters below END with a refcount, counting stops at LIMIT. */
int qcow2_count_referenced(struct qcow2 *s, uint64_t end, uint64_t limit,
			   uint64_t *count);
int qcow2_set_refcount(struct qcow2 *s, uint64_t cluster, uint64_t rc);
/* Allocate N contiguous clusters with refcount 1; *OFFP is the host
 * offset.  Refcount blocks are on disk when this returns. */
int qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, uint64_t *offp);
/* The same for guest data whose L2 entries wait in the cache for the
 * next metadata sync: outside exit-safe mode the refcounts wait too, and
 * that sync writes them before its first flush (one write per refcount
 * block instead of one per allocating request). */
int qcow2_alloc_data_clusters(struct qcow2 *s, uint64_t n, uint64_t *offp);
/* The same for a caller that writes the new refcounts itself, durably
 * with what they count (qcow2_refcount_durable): they are left in the
 * cache, not written twice. */
int qcow2_alloc_clusters_unwritten(struct qcow2 *s, uint64_t n, uint64_t *offp);
/* Allocate LEN bytes (<= one cluster) for compressed data (refcounts as
 * qcow2_alloc_data_clusters). */
int qcow2_alloc_bytes(struct qcow2 *s, uint64_t len, uint64_t *offp);
/* Drop one reference to each cluster overlapping [OFF, OFF+LEN);
 * clusters reaching zero are punched out of the file when DISCARD. */
int qcow2_free_range(struct qcow2 *s, uint64_t off, uint64_t len, bool discard);
int qcow2_refcount_writeback(struct qcow2 *s);
/* Use *TAB (CLUSTERS clusters of entries, already on disk at OFF and
 * named by the header) as the refcount table from now on; the old one
 * is freed and *TAB becomes NULL. */
void qcow2_use_reftable(struct qcow2 *s, uint64_t **tab, uint64_t off,
			uint32_t clusters);
/* Write WITH (when not NULL) and the refcounts of clusters [FIRST,
 * FIRST+N) again, durable on return (mimg_file_pwrite_durable): no
 * flush that would wait for much data written before. */
int qcow2_refcount_durable(struct qcow2 *s, uint64_t first, uint64_t n,
			   const struct mimg_file_write *with);
/* Add ADDEND to the refcount of CLUSTER (written back later, or when the
 * cache needs room); *RCP gets the new refcount.  -EINVAL past the
 * maximum (as qemu), -EIO below zero. */
int qcow2_refcount_add(struct qcow2 *s, uint64_t cluster, int addend,
		       uint64_t *rcp);
/* Drop the refcount blocks that count nothing but themselves from the
 * refcount table (after a shrink), as qemu does. */
int qcow2_shrink_reftable(struct qcow2 *s);
/* 0 when a refcount table of CLUSTERS clusters stays within the 8 MiB
 * qemu accepts, else -EFBIG with WHAT ("refcount table") in the error. */
int qcow2_reftable_fits(struct qcow2 *s, uint64_t clusters, const char *what);
/* Set up the refcount-block cache and the allocator's state. */
int qcow2_refcount_init(struct qcow2 *s);

/* qcow2-map.c (under s->lock) */
/* Map guest OFF (up to LEN bytes, stopping at the end of the L2 table). */
int qcow2_map(struct qcow2 *s, uint64_t off, uint64_t len, struct qcow2_map *m);
/* The same without the lock, inside map_readers: 1 when the L2 table is
 * not cached (map under the lock then). */
int qcow2_map_cached(struct qcow2 *s, uint64_t off, uint64_t len,
		     struct qcow2_map *m);
/* Keep the readers that map without the lock out while the L1 table or
 * the L2 cache changes (under s->lock, or with no I/O running); calls
 * nest.  The cache's change callback for l2c. */
void qcow2_readers_block(struct qcow2 *s);
void qcow2_readers_unblock(struct qcow2 *s);
void qcow2_l2c_change(void *opaque, bool begin);
/* Get the L2 table for guest cluster C, allocating it when ALLOC (COPIED
 * set in L1 afterwards).  *L2 is NULL when unallocated and !ALLOC. */
int qcow2_get_l2(struct qcow2 *s, uint64_t gcluster, bool alloc, uint8_t **l2p,
		 uint32_t *idxp);
uint64_t qcow2_l2_entry(const struct qcow2 *s, const uint8_t *l2, uint32_t idx);
uint64_t qcow2_l2_bitmap(const struct qcow2 *s, const uint8_t *l2,
			 uint32_t idx);
void qcow2_set_l2(struct qcow2 *s, uint8_t *l2, uint32_t idx, uint64_t entry,
		  uint64_t bitmap);
int qcow2_validate_l2_entry(struct qcow2 *s, uint64_t gcluster, uint64_t entry,
			    uint64_t bitmap);
void qcow2_compressed_extent(const struct qcow2 *s, uint64_t entry,
			     uint64_t *off, uint64_t *len);
int qcow2_resize_l1(struct qcow2 *s, uint64_t new_size);
uint64_t qcow2_l1_needed(const struct qcow2 *s, uint64_t size);

/* qcow2-read.c */
int qcow2_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		 uint64_t off, size_t len);
int qcow2_block_status(struct mimg *img, uint64_t off, uint64_t len,
		       uint64_t *pnum, unsigned *status, uint64_t *host_off);
/* The external data file, or NULL (the driver's host_file). */
struct mimg_file *qcow2_host_file(struct mimg *img, uint64_t off);
/* Read the guest bytes [OFF, OFF+LEN) of one cluster described by the
 * L2 ENTRY/BITMAP (which the caller took under the lock) into BUF. */
int qcow2_read_with_entry(struct qcow2 *s, uint64_t off, size_t len,
			  uint64_t entry, uint64_t bitmap, uint8_t *buf);

/* qcow2-compress.c */
int qcow2_decompress(struct qcow2 *s, const uint8_t *in, size_t inlen,
		     uint8_t *out, size_t outlen);
ssize_t qcow2_compress_buf(enum qcow2_compression type, int level,
			   const void *in, size_t inlen, void *out,
			   size_t outcap);
uint32_t qcow2_compress_unit(struct mimg *img);
ssize_t qcow2_compress(struct mimg *img, const void *in, size_t inlen,
		       void *out, size_t outcap);
int qcow2_write_compressed(struct mimg *img, uint64_t off, const void *data,
			   size_t len, bool compressed);

/* qcow2-write.c */
int qcow2_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
		  uint64_t off, size_t len);
int qcow2_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
			unsigned flags);
int qcow2_discard(struct mimg *img, uint64_t off, uint64_t len);
/* Make guest clusters [G0, G1] unallocated, releasing what they used
 * (their host space is punched once free). */
int qcow2_unmap_clusters(struct qcow2 *s, uint64_t g0, uint64_t g1);
int qcow2_flush(struct mimg *img);
int qcow2_truncate(struct mimg *img, uint64_t size,
		   enum mimg_prealloc prealloc);
/* In-flight tracking of guest clusters (under s->lock; waits). */
void qcow2_inflight_begin(struct qcow2 *s, struct qcow2_inflight *r,
			  uint64_t first, uint64_t last);
void qcow2_inflight_end(struct qcow2 *s, struct qcow2_inflight *r);

/* qcow2-snapshot.c */
int qcow2_read_snapshots(struct qcow2 *s);
void qcow2_free_snapshots(struct qcow2 *s);
/* The index of the snapshot whose ID, else whose name, is NAME (qemu's
 * order), or -ENOENT. */
int qcow2_find_snapshot(const struct qcow2 *s, const char *name);
int qcow2_select_snapshot(struct mimg *img, const char *id, const char *name);
int qcow2_info_snapshots(struct qcow2 *s, struct mimg_value *info);

/* qcow2-snapshot-write.c (driver ops; not concurrent with other calls) */
int qcow2_snapshot_create(struct mimg *img, const char *name);
int qcow2_snapshot_apply(struct mimg *img, const char *name);
int qcow2_snapshot_delete(struct mimg *img, const char *name);
/* Write the snapshot table again in fresh clusters, every entry with its
 * VM state and disk size (check's repair of incomplete entries); under
 * s->lock. */
int qcow2_snapshot_table_rewrite(struct qcow2 *s);

/* qcow2-shrink.c */
/* Make the image SIZE bytes smaller than it is (qcow2_truncate). */
int qcow2_shrink(struct mimg *img, uint64_t size);

/* qcow2-empty.c */
/* Drop every mapping of the active image (qemu's make_empty). */
int qcow2_make_empty(struct mimg *img);

/* qcow2-bitmap.c: the directory */
#define QCOW2_BM_IN_USE 1u
#define QCOW2_BM_AUTO 2u
#define QCOW2_BM_EXTRA_COMPAT 4u
#define QCOW2_BM_MAX_NAME 1023u
#define QCOW2_BM_MAX_COUNT 65535u
int qcow2_read_bitmaps(struct qcow2 *s);
/* Record the current tables as those of the stored directory. */
int qcow2_bitmaps_note_stored(struct qcow2 *s);
void qcow2_free_bitmaps(struct qcow2 *s);
int qcow2_info_bitmaps(struct qcow2 *s, struct mimg_value *data);
/* Call INC for every cluster range the bitmaps use. */
int qcow2_bitmap_refs(struct qcow2 *s,
		      void (*inc)(void *opaque, uint64_t off, uint64_t len),
		      void *opaque);
/* qcow2-bitmap-store.c: contents (under s->lock) */
/* Bytes of content of a bitmap of 2^GBITS granularity. */
uint64_t qcow2_bitmap_bytes(const struct qcow2 *s, unsigned gbits);
/* Make BITS (NBYTES bytes, qcow2_bitmap_bytes' count, owned by B from
 * now on) B's content, the bits past the end of the image cleared. */
void qcow2_bitmap_set_content(const struct qcow2 *s, struct qcow2_bitmap *b,
			      uint8_t *bits, uint64_t nbytes);
/* Read B's content into B->bits (validating its table). */
int qcow2_bitmap_load(struct qcow2 *s, struct qcow2_bitmap *b);
/* Write the changed contents and a new directory, switch the header to
 * it and free what the old one used.  FINAL: tracked bitmaps are stored
 * consistent (not in use). */
int qcow2_bitmaps_store(struct qcow2 *s, bool final);
/* qcow2-bitmap-track.c */
/* After open for writing: load the enabled bitmaps and flag them in use
 * on disk until they are stored at close. */
int qcow2_bitmaps_track(struct qcow2 *s);
/* Set bits FIRST..LAST (inclusive) of B's loaded content; thread-safe. */
void qcow2_bitmap_set(struct qcow2_bitmap *b, uint64_t first, uint64_t last);
/* Set the bits of every tracked bitmap over [OFF, OFF+LEN). */
void qcow2_bitmaps_dirty(struct qcow2 *s, uint64_t off, uint64_t len);
/* Before a resize: read every bitmap; after it: fit them to the new
 * size and store them. */
int qcow2_bitmaps_load_all(struct qcow2 *s);
int qcow2_bitmaps_resize(struct qcow2 *s);
int qcow2_bitmaps_close(struct mimg *img);
/* qcow2-bitmap-ops.c: driver operations */
int qcow2_bitmap_add(struct mimg *img, const char *name, uint64_t gran,
		     bool enabled);
int qcow2_bitmap_remove(struct mimg *img, const char *name);
int qcow2_bitmap_clear(struct mimg *img, const char *name);
int qcow2_bitmap_enable(struct mimg *img, const char *name, bool enable);
int qcow2_bitmap_merge(struct mimg *img, const char *name, struct mimg *src,
		       const char *src_name);
int qcow2_bitmap_status(struct mimg *img, const char *name, uint64_t off,
			uint64_t len, uint64_t *pnum, bool *dirty);

/* qcow2-crypt.c */
struct luks1_create_params;
/* Record the encryption header extension (P, LEN bytes). */
int qcow2_crypt_ext(struct qcow2 *s, const uint8_t *p, uint32_t len);
/* After the header: validate the encryption header, unlock it with the
 * open's secret (img->locked without one). */
int qcow2_crypt_open(struct qcow2 *s);
void qcow2_crypt_close(struct qcow2 *s);
/* 0 when the key is loaded, else -EACCES naming encrypt.key-secret. */
int qcow2_crypt_need_key(struct qcow2 *s);
/* For guest I/O of LEN bytes at OFF: 1 when the image is encrypted and
 * the range is not whole sectors (it goes through a bounce buffer), 0
 * when it goes straight, or qcow2_crypt_need_key's error. */
int qcow2_crypt_unaligned(struct qcow2 *s, uint64_t off, size_t len);
/* Move LEN bytes of the iovec, from SKIP, to (WRITE) or from the data
 * file at HOST, through the cipher when the image is encrypted.  GUEST,
 * where the guest sees them, is the legacy cipher's IV (only read). */
int qcow2_data_io(struct qcow2 *s, bool write, const struct iovec *iov,
		  int iovcnt, size_t skip, size_t len, uint64_t host,
		  uint64_t guest);
/* Encrypt or decrypt LEN bytes (whole sectors) of BUF, stored at host
 * offset HOST and seen by the guest at GUEST.  Thread-safe. */
int qcow2_crypt(struct qcow2 *s, bool encrypt, uint64_t host, uint64_t guest,
		uint8_t *buf, size_t len);
int qcow2_crypt_info(struct qcow2 *s, struct mimg_value *data);
/* Allocate and write a LUKS header for P unlocked by SEC; its area is
 * *OFFP, *LENP bytes (the header is the caller's to point at it). */
int qcow2_crypt_setup(struct mimg *img, const struct luks1_create_params *p,
		      const struct mimg_secret *sec, uint64_t *offp,
		      uint64_t *lenp);
/* Call INC for the clusters the encryption header uses. */
int qcow2_crypt_refs(struct qcow2 *s,
		     void (*inc)(void *opaque, uint64_t off, uint64_t len),
		     void *opaque);

/* qcow2-info.c */
int qcow2_info(struct mimg *img, struct mimg_value *info);

/* qcow2-check.c */
int qcow2_check(struct mimg *img, unsigned flags,
		struct mimg_check_result *res);
/* Rewrite the refcount structure with 2^ORDER-bit entries (amend). */
int qcow2_change_refcount_order(struct qcow2 *s, unsigned order);
/* Rebuild refcounts of a dirty image opened read-write. */
int qcow2_rebuild_dirty(struct qcow2 *s);

/* Options that qcow2 create and amend share (qemu-img's help texts). */
#define QCOW2_OPT_BACKING_FILE                                                 \
	{                                                                      \
		"backing_file", MIMG_OPTK_STRING, "File name of a base image", \
			NULL, NULL, NULL, 0                                    \
	}
#define QCOW2_OPT_BACKING_FMT                                                  \
	{                                                                      \
		"backing_fmt", MIMG_OPTK_STRING,                               \
			"Image format of the base image", NULL, NULL, NULL, 0  \
	}
#define QCOW2_OPT_DATA_FILE                                                    \
	{                                                                      \
		"data_file", MIMG_OPTK_STRING,                                 \
			"File name of an external data "                       \
			"file",                                                \
			NULL, NULL, NULL, 0                                    \
	}
#define QCOW2_OPT_DATA_FILE_RAW                                                \
	{                                                                      \
		"data_file_raw", MIMG_OPTK_BOOL,                               \
			"The external data file must "                         \
			"stay valid as a raw image",                           \
			"off", NULL, NULL, 0                                   \
	}
#define QCOW2_OPT_LAZY_REFCOUNTS                                               \
	{                                                                      \
		"lazy_refcounts", MIMG_OPTK_BOOL, "Postpone refcount updates", \
			"off", NULL, NULL, 0                                   \
	}
#define QCOW2_OPT_REFCOUNT_BITS                                                \
	{                                                                      \
		"refcount_bits", MIMG_OPTK_NUMBER,                             \
			"Width of a reference count "                          \
			"entry in bits",                                       \
			"16", NULL, NULL, 0                                    \
	}

/* qcow2-amend.c */
extern const struct mimg_optdesc qcow2_amend_opts[];
int qcow2_amend(struct mimg *img, const struct mimg_optval *vals,
		unsigned flags,
		void (*progress)(void *opaque, uint64_t done, uint64_t total),
		void *opaque);

/* qcow2-create.c */
extern const struct mimg_optdesc qcow2_create_opts[];
/* Allocate every unallocated cluster from guest offset FROM to the end
 * (preallocation=metadata|falloc|full); new clusters read as zeroes. */
int qcow2_preallocate(struct mimg *img, uint64_t from, enum mimg_prealloc mode);
int qcow2_create(const char *path, uint64_t size, const struct mimg_opt *opts,
		 size_t nopts, struct mimg *backing);
/* qcow2_create with the secret of encrypt.format=luks. */
int qcow2_create_secret(const char *path, uint64_t size,
			const struct mimg_opt *opts, size_t nopts,
			struct mimg *backing, const struct mimg_secret *secret);

#endif
