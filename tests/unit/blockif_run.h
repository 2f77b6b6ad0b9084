/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * One blockif request run to its completion, for tests that need the
 * result of a single read, write or flush before going on.
 */
#ifndef TEST_BLOCKIF_RUN_H
#define TEST_BLOCKIF_RUN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm-blk/block_if.h"

/* A request's completion to wait for: blockif_completed as br_callback,
 * the struct as br_param. */
struct blockif_completion {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
};
#define BLOCKIF_COMPLETION_INIT                                                \
	{                                                                      \
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0  \
	}
void blockif_completed(struct blockif_req *br, int err);
/* Wait for the completion and return its error (0 or an errno value);
 * C is ready for the next request. */
int blockif_completion_wait(struct blockif_completion *c);

/* Submit with OP (blockif_read, blockif_write, blockif_flush, ...) a
 * request of LEN bytes at OFF over BUF (LEN 0: no data).  Returns what OP
 * returns; when that is 0 (queued), waits for the completion and stores
 * its error (0 or an errno value) in *ERR.  Uses no Check assertion, so
 * a forked child may call it. */
int blockif_run(int (*op)(struct blockif_ctxt *, struct blockif_req *),
		struct blockif_ctxt *bc, void *buf, size_t len, uint64_t off,
		int *err);

#endif
