/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif: bhyve's block-device interface, served from any image libmimg
 * opens (raw, qcow2, VMDK, backing chains).  The names, types and
 * semantics are those of FreeBSD 14/15 (usr.sbin/bhyve/block_if.h), so
 * bhyve's virtio-blk, AHCI and NVMe models compile against this header
 * unchanged and link with libvmmblk and libmimg in place of bhyve's own
 * block_if.c.  Define VMMBLK_BLOCKIF_LEGACY_API before including it for
 * the FreeBSD 12 interface (blockif_open() taking an option string).
 *
 * Model
 *  - blockif_read/write/flush/delete queue a request and return at once:
 *    0 when queued, E2BIG when all slots are taken.  Every other outcome,
 *    malformed requests included, reaches br_callback(req, err) with err 0
 *    or a positive errno, on a worker thread (never in the submitter's
 *    context, so a submitter may hold the lock its callback takes).
 *  - Slots: BLOCKIF_RING_MAX + 8 requests may be queued or running at
 *    once; blockif_queuesz() reports one less, as bhyve's does.  A request
 *    holds its slot until its callback returns; a callback may submit new
 *    requests (the same one again, too) while slots are free.
 *  - br_iovcnt may exceed BLOCKIF_IOV_MAX when the request is followed in
 *    memory by the extra iovecs (bhyve's NVMe model embeds the request in a
 *    structure with a tail of 385 more, for 513 segments).  Any count that
 *    fits in an int is served.
 *  - br_resid: set by the caller to the bytes requested; a read or write
 *    subtracts the bytes transferred.  A read or write that crosses the end
 *    of the disk transfers the part inside and completes with err 0 and
 *    the rest in br_resid, as bhyve over a disk device does; a read that
 *    starts at or past the end transfers nothing (err 0), a write that
 *    starts past it fails with EIO.  Images never grow by writes (bhyve
 *    over a regular file would extend it).
 *    blockif_delete (and blockif_write_zeroes) take the byte range in
 *    br_offset and br_resid, do not look at br_iov, and set br_resid to 0
 *    on success; the part of the range past the end is ignored.
 *  - Ordering: a request that overlaps an earlier, still unfinished
 *    request waits for it when either one modifies data, so requests to
 *    the same blocks complete in submission order.  A flush waits for the
 *    modifying requests submitted before it.  Reads of disjoint ranges run
 *    in parallel.
 *  - Durability: when a write's callback runs, its data and the metadata
 *    that make it visible are in the image file; flush makes them durable.
 *  - All functions are thread-safe.  Requests must stay valid until their
 *    callback has returned (or blockif_cancel returned 0).
 */
#ifndef VMMBLK_BLOCK_IF_H
#define VMMBLK_BLOCK_IF_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* nvlist_t as FreeBSD's <sys/nv.h> declares it (the same guard, so either
 * may come first). */
#ifdef __FreeBSD__
#include <sys/nv.h>
#endif
#ifndef _NVLIST_T_DECLARED
#define _NVLIST_T_DECLARED
struct nvlist;
typedef struct nvlist nvlist_t;
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct vm_snapshot_meta;
struct pci_devinst;

/*
 * BLOCKIF_IOV_MAX: segments held in a struct blockif_req (more may follow
 * it, see above).  BLOCKIF_RING_MAX: the requests a device model may keep
 * queued; bhyve's virtio-blk sizes its ring from it.
 */
#define BLOCKIF_IOV_MAX 128
#define BLOCKIF_RING_MAX 128

struct blockif_req {
	int br_iovcnt;
	off_t br_offset;
	ssize_t br_resid;
	void (*br_callback)(struct blockif_req *req, int err);
	void *br_param;
	/* Last, so a longer array may follow (bhyve's NVMe model). */
	struct iovec br_iov[BLOCKIF_IOV_MAX];
};

struct blockif_ctxt;

/* Called with the new size in bytes after the image's size changed. */
typedef void blockif_resize_cb(struct blockif_ctxt *, void *, size_t);

#ifndef VMMBLK_BLOCKIF_LEGACY_API
/*
 * Open the device that the configuration node NVL describes, with bhyve's
 * keys:
 *   path         the image (required)
 *   nocache      bypass the host page cache (O_DIRECT) where the format
 *                allows (raw; qcow2 and VMDK are opened cached, with a
 *                warning)
 *   sync, direct write through (O_DSYNC)
 *   ro           read-only (also chosen when the image cannot be written)
 *   nodelete     never free space on delete
 *   sectorsize   L or L/P: logical and physical sector size (powers of
 *                two, 512 <= L <= P; 0 keeps the defaults: 512 and the
 *                host file's st_blksize)
 *   bootindex    the boot order blockif_add_boot_device() reports
 * and mimg's:
 *   format       raw, qcow2, vmdk, ... (probed when absent; a probed raw
 *                image cannot have a header of another format written
 *                into its first sector)
 *   untrusted    refuse images that refer to other files (backing files,
 *                VMDK extents, data files), for images a tenant uploaded
 * Values are read with bhyve's config-tree functions (config.h:
 * get_config_value_node(), get_config_bool_node_default()), which the
 * program provides: bhyve does; see doc/bhyve.md for other programs.
 * IDENT names the device in messages (may be NULL).  Returns NULL with a
 * message on stderr (and errno set) on failure.
 */
struct blockif_ctxt *blockif_open(nvlist_t *nvl, const char *ident);
/*
 * Store a legacy option string "path[,opt[=value]]..." in NVL as the keys
 * above (a bare option becomes "true"), with bhyve's set_config_value_node()
 * and set_config_bool_node().  NULL OPTS does nothing.  Returns 0.
 */
int blockif_legacy_config(nvlist_t *nvl, const char *opts);
/* Report the device's bootindex to bhyve (pci_emul_add_boot_device());
 * 0 without one, else what that returns. */
int blockif_add_boot_device(struct pci_devinst *const pi,
			    struct blockif_ctxt *const bc);
#endif

/*
 * Call CB(bc, CB_ARG, new_size) whenever the image's size changes: after
 * blockif_resize() (on its caller's thread) and, for a writable raw image,
 * when another program resizes the file (noticed within a second, on a
 * blockif thread).  0, EINVAL for a NULL CB, EBUSY when one is registered
 * already, or the errno of starting the watch.
 */
int blockif_register_resize_callback(struct blockif_ctxt *bc,
				     blockif_resize_cb *cb, void *cb_arg);
/* Size in bytes (of the image's virtual disk). */
off_t blockif_size(struct blockif_ctxt *bc);
/* Legacy CHS geometry derived from the size, as bhyve computes it (the
 * VHD specification's algorithm). */
void blockif_chs(struct blockif_ctxt *bc, uint16_t *c, uint8_t *h, uint8_t *s);
/* Logical sector size in bytes. */
int blockif_sectsz(struct blockif_ctxt *bc);
/* Physical sector size and the offset of the first aligned sector. */
void blockif_psectsz(struct blockif_ctxt *bc, int *size, int *off);
/* Requests that may be queued at once (BLOCKIF_RING_MAX + 7). */
int blockif_queuesz(struct blockif_ctxt *bc);
int blockif_is_ro(struct blockif_ctxt *bc);
/* True when delete frees space in the image (and is not turned off). */
int blockif_candelete(struct blockif_ctxt *bc);

int blockif_read(struct blockif_ctxt *bc, struct blockif_req *breq);
int blockif_write(struct blockif_ctxt *bc, struct blockif_req *breq);
/* Make completed writes durable. */
int blockif_flush(struct blockif_ctxt *bc, struct blockif_req *breq);
/* Discard [br_offset, br_offset + br_resid): completes with EOPNOTSUPP
 * when !blockif_candelete(), EROFS when read-only. */
int blockif_delete(struct blockif_ctxt *bc, struct blockif_req *breq);
/*
 * Cancel a request: 0 when it was still queued (it is dropped and its
 * callback never runs); EBUSY when it was being performed (this waits for
 * the transfer to end, not for the callback) or its callback is running or
 * about to run; EINVAL when the request is unknown.  A request submitted
 * again from its own callback counts as queued.
 */
int blockif_cancel(struct blockif_ctxt *bc, struct blockif_req *breq);
/* Finish the queued requests, flush and close the image, free BC.
 * Returns 0 or the positive errno of the final flush. */
int blockif_close(struct blockif_ctxt *bc);

/* Stop starting requests and wait for the running ones, then flush
 * (bhyve's snapshot support); blockif_resume starts them again.  Declared
 * under BHYVE_SNAPSHOT as in bhyve, always present in the library. */
#ifdef BHYVE_SNAPSHOT
void blockif_pause(struct blockif_ctxt *bc);
void blockif_resume(struct blockif_ctxt *bc);
#endif

/* ---- mimg extensions (not in bhyve) ------------------------------- */

/* blockif_open with a FreeBSD 12 option string:
 *   path[,nocache][,direct][,sync][,ro][,nodelete][,sectorsize=L[/P]]
 *       [,bootindex=N][,format=F][,untrusted]
 * (the keys above).  Needs no config-tree functions. */
struct blockif_ctxt *blockif_open_optstr(const char *optstr, const char *ident);
#ifdef VMMBLK_BLOCKIF_LEGACY_API
static inline struct blockif_ctxt *blockif_open(const char *optstr,
						const char *ident)
{
	return blockif_open_optstr(optstr, ident);
}
#endif

/* Make [br_offset, br_offset + br_resid) read as zeroes; with UNMAP the
 * image may deallocate the range.  EROFS when read-only. */
int blockif_write_zeroes(struct blockif_ctxt *bc, struct blockif_req *breq,
			 int unmap);
/* blockif_read / blockif_write, except that when no other request is
 * queued or running (and blockif is not paused) the request is performed
 * in the calling thread: its callback has run, in the caller's context,
 * when this returns 0.  A lone request so skips the hand-over to a worker
 * thread and back; a caller that expects more requests soon should use
 * blockif_read / blockif_write, which run them in parallel.  A write of
 * 256 KiB or more (a read too, with nocache), which blockif performs in
 * parts on several threads,
 * has its parts performed by the caller in turn while workers take the
 * others; its callback runs in the thread that finishes the last one. */
int blockif_read_here(struct blockif_ctxt *bc, struct blockif_req *breq);
int blockif_write_here(struct blockif_ctxt *bc, struct blockif_req *breq);
/* Allocation granularity of the image (cluster/grain size) or 0. */
int blockif_cluster_size(struct blockif_ctxt *bc);
/* Change the image's virtual size to SIZE bytes (growing reads as zeroes)
 * and call the resize callback.  0 or a positive errno. */
int blockif_resize(struct blockif_ctxt *bc, off_t size);

#ifdef __cplusplus
}
#endif
#endif /* VMMBLK_BLOCK_IF_H */
