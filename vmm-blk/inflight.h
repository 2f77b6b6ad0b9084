/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Inflight I/O tracking for split virtqueues, in the shared region layout
 * of qemu's docs/interop/vhost-user.rst ("Inflight I/O tracking"): the
 * front-end keeps the region across back-end restarts, so a restarted
 * back-end knows which requests it had taken and not answered, and takes
 * them again in the order it first took them.
 *
 * One queue's region, native byte order:
 *   u64 features, u16 version (1; 0 = never used), u16 desc_num (queue
 *   size), u16 last_batch_head, u16 used_idx, then desc_num entries of
 *   16 bytes: u8 inflight, 5 padding bytes, u16 next, u64 counter.
 * Regions follow one another, each rounded up to 64 bytes.
 *
 * The region is shared with the front-end: recovery reads each value once
 * and checks it.  Updates of one queue's region are serialised by the
 * caller.
 */
#ifndef VMMBLK_INFLIGHT_H
#define VMMBLK_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

/* Bytes one queue of QSIZE entries occupies in the region. */
size_t vqi_queue_bytes(unsigned qsize);

/* A request with descriptor head HEAD was taken from the available ring;
 * COUNTER orders it among the others. */
void vqi_mark(uint8_t *reg, uint16_t head, uint64_t counter);
/* The request taken last was given back to the ring untouched. */
void vqi_unmark(uint8_t *reg, uint16_t head);
/* Around publishing HEAD on the used ring: before, HEAD becomes the last
 * batch; after, it is no longer in flight and USED_IDX is the ring's new
 * used index. */
void vqi_used_begin(uint8_t *reg, uint16_t head);
void vqi_used_end(uint8_t *reg, uint16_t head, uint16_t used_idx);

/*
 * Prepare REG for a queue of QSIZE entries whose used ring index is
 * RING_USED.  A region never used is initialised (returns 0).  Otherwise
 * the last batch is settled and the heads still in flight are stored in
 * HEADS (room for QSIZE) in the order they were taken; returns their
 * number, and *NEXT_COUNTER is the counter to use for new requests.
 * -EINVAL when the region describes another queue size.
 */
int vqi_recover(uint8_t *reg, unsigned qsize, uint16_t ring_used,
		uint16_t *heads, uint64_t *next_counter);

#endif
