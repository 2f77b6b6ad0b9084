/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * One blockif request run to its completion (see blockif_run.h).
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "blockif_run.h"

struct completion {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
};

static void completed(struct blockif_req *br, int err)
{
	struct completion *c = br->br_param;

	pthread_mutex_lock(&c->lock);
	c->err = err;
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

int blockif_run(int (*op)(struct blockif_ctxt *, struct blockif_req *),
		struct blockif_ctxt *bc, void *buf, size_t len, uint64_t off,
		int *err)
{
	struct completion c = { PTHREAD_MUTEX_INITIALIZER,
				PTHREAD_COND_INITIALIZER, false, 0 };
	struct blockif_req br;
	int r;

	memset(&br, 0, sizeof(br));
	if (len) {
		br.br_iovcnt = 1;
		br.br_iov[0].iov_base = buf;
		br.br_iov[0].iov_len = len;
	}
	br.br_offset = (off_t)off;
	br.br_resid = (ssize_t)len;
	br.br_callback = completed;
	br.br_param = &c;
	if ((r = op(bc, &br)) != 0)
		return r;
	pthread_mutex_lock(&c.lock);
	while (!c.done)
		pthread_cond_wait(&c.cond, &c.lock);
	pthread_mutex_unlock(&c.lock);
	*err = c.err;
	return 0;
}
