/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Group flush: many threads that each need "everything I wrote so far is
 * durable" share one fdatasync.  A caller waits for a flush that started
 * after its own writes finished; whoever finds none running starts one
 * on behalf of everybody who arrived while the previous one ran.  The
 * caller's mutex is released during the flush and while waiting, so
 * writers keep moving data meanwhile.
 */
#ifndef MIMG_GROUP_SYNC_H
#define MIMG_GROUP_SYNC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "file.h"

struct mimg_group_sync {
	uint64_t started;  /* flushes begun */
	uint64_t finished; /* flushes whose result is known */
	int err;	   /* first failure, sticky */
	bool running;
};

/*
 * Make every write that completed before this call durable in FILES
 * (NFILES of them, NULL entries skipped).  LOCK is held on entry and on
 * return; COND is broadcast when a flush finishes (the caller's other
 * waiters on COND must tolerate spurious wake-ups).  Returns 0, or the
 * negative errno of the first flush that ever failed: after a failed
 * flush no later write can be promised durable.
 */
int mimg_group_sync(struct mimg_group_sync *g, pthread_mutex_t *lock,
		    pthread_cond_t *cond, struct mimg_file *const *files,
		    int nfiles);

#endif
