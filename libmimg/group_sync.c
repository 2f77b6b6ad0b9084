/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Group flush (see group_sync.h).
 */
#include "group_sync.h"

int mimg_group_sync(struct mimg_group_sync *g, pthread_mutex_t *lock,
		    pthread_cond_t *cond, struct mimg_file *const *files,
		    int nfiles)
{
	/* A flush already running may have started before our writes
	 * completed: only the next one to start is sure to cover them. */
	uint64_t need = g->started + 1;
	while (g->finished < need) {
		if (g->running) {
			pthread_cond_wait(cond, lock);
			continue;
		}
		g->running = true;
		uint64_t mine = ++g->started;
		pthread_mutex_unlock(lock);
		int r = 0;
		for (int i = 0; i < nfiles && r == 0; i++)
			if (files[i])
				r = mimg_file_flush(files[i]);
		pthread_mutex_lock(lock);
		g->running = false;
		g->finished = mine;
		if (r < 0 && g->err == 0)
			g->err = r;
		pthread_cond_broadcast(cond);
	}
	/* A failed flush may have dropped written pages (Linux reports
	 * that once), so nothing written since can be trusted durable. */
	return g->err;
}
