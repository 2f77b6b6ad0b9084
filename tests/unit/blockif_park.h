/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Park every blockif worker thread inside a completion callback, so a test
 * can fill blockif's queue, or a device's in-flight limit, without timing
 * assumptions.
 */
#ifndef TEST_BLOCKIF_PARK_H
#define TEST_BLOCKIF_PARK_H

#include "vmm-blk/block_if.h"

/* Submit one flush per worker and wait until each worker is held in its
 * callback.  Returns the number of workers parked. */
int park_workers(struct blockif_ctxt *bc);

/* The flush request that parked worker I (0-based) is running. */
struct blockif_req *parked_request(int i);

/* Let the parked workers return from their callbacks. */
void release_workers(void);

#endif
