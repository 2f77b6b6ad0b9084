/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif: bhyve's block-device interface, served from any image libmimg
 * opens (raw, qcow2, VMDK, backing chains).  The names, types and
 * semantics are bhyve's (usr.sbin/bhyve/block_if.h), so bhyve's virtio-blk,
 * AHCI and NVMe emulations link against this unchanged.
 *
 * Model
 *  - blockif_read/write/flush/delete queue a request and return at once:
 *    0 when queued, E2BIG when the queue (blockif_queuesz() requests) is
 *    full, EINVAL for a malformed request.  Errors are positive errno
 *    values, as in bhyve.
 *  - Worker threads perform the request and call br_callback(req, err)
 *    with err 0 or a positive errno.  The callback runs on a worker thread
 *    without any blockif lock held; the queue slot is released before it
 *    runs, so the callback may submit new requests.
 *  - br_resid: on completion, the bytes not transferred (0 on success).
 *    For blockif_delete (and blockif_write_zeroes) the caller sets
 *    br_offset and br_resid to the byte range; br_iov is not used.
 *  - Ordering: a request that overlaps an earlier, still unfinished
 *    request waits for it when either one modifies data, so requests to
 *    the same blocks complete in submission order.  A flush waits for the
 *    modifying requests submitted before it.  Reads of disjoint ranges run
 *    in parallel.
 *  - All functions are thread-safe.  Requests must stay valid until their
 *    callback has run (or blockif_cancel returned 0).
 */
#ifndef VMMBLK_BLOCK_IF_H
#define VMMBLK_BLOCK_IF_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most segments in one request (not practical to be IOV_MAX). */
#define BLOCKIF_IOV_MAX 128

struct blockif_req {
	int br_iovcnt;
	off_t br_offset;
	ssize_t br_resid;
	void (*br_callback)(struct blockif_req *req, int err);
	void *br_param;
	struct iovec br_iov[BLOCKIF_IOV_MAX];
};

struct blockif_ctxt;

/*
 * Open a block device from bhyve's option string:
 *   path[,nocache][,direct][,sync][,ro][,sectorsize=L[/P]][,nodelete]
 *       [,format=raw|qcow2|vmdk][,untrusted]
 * nocache opens host files with O_DIRECT; direct and sync with O_DSYNC; ro
 * opens read-only; sectorsize sets the logical (and physical) sector size
 * (powers of two, 512..65536, L <= P); nodelete turns deletes off; format
 * names the image format (probed when absent; a probed raw image cannot
 * have its first sector turned into another format's header); untrusted
 * refuses images that refer to any other file (backing files, VMDK
 * extents, data files), for images a tenant uploaded.  format= and
 * untrusted are mimg additions.
 * IDENT names the device in messages (may be NULL).
 * Returns NULL with errno set and a message on stderr on failure.
 */
struct blockif_ctxt *blockif_open(const char *optstr, const char *ident);

/* Size in bytes (of the image's virtual disk). */
off_t blockif_size(struct blockif_ctxt *bc);
/* Legacy CHS geometry derived from the size (the VHD/ATA rules). */
void blockif_chs(struct blockif_ctxt *bc, uint16_t *c, uint8_t *h,
		 uint8_t *s);
/* Logical sector size in bytes. */
int blockif_sectsz(struct blockif_ctxt *bc);
/* Physical sector size and the offset of the first aligned sector. */
void blockif_psectsz(struct blockif_ctxt *bc, int *size, int *off);
/* Requests that can be queued at once. */
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
 * callback never runs); EBUSY when it was already being performed (this
 * waits for it to finish; its callback runs normally); EINVAL when the
 * request is unknown.
 */
int blockif_cancel(struct blockif_ctxt *bc, struct blockif_req *breq);
/* Finish the queued requests, flush and close the image, free BC.
 * Returns 0 or the positive errno of the final flush. */
int blockif_close(struct blockif_ctxt *bc);

/* ---- mimg extensions (not in bhyve) ------------------------------- */

/* Make [br_offset, br_offset + br_resid) read as zeroes; with UNMAP the
 * image may deallocate the range.  EROFS when read-only. */
int blockif_write_zeroes(struct blockif_ctxt *bc, struct blockif_req *breq,
			 int unmap);
/* Allocation granularity of the image (cluster/grain size) or 0. */
int blockif_cluster_size(struct blockif_ctxt *bc);

#ifdef __cplusplus
}
#endif
#endif /* VMMBLK_BLOCK_IF_H */
