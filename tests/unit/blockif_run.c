/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * One blockif request run to its completion (see blockif_run.h).
 */
#include <string.h>

#include "blockif_run.h"

void blockif_completed(struct blockif_req *br, int err)
{
	struct blockif_completion *c = br->br_param;

	pthread_mutex_lock(&c->lock);
	c->err = err;
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

int blockif_completion_wait(struct blockif_completion *c)
{
	pthread_mutex_lock(&c->lock);
	while (!c->done)
		pthread_cond_wait(&c->cond, &c->lock);
	c->done = false;
	pthread_mutex_unlock(&c->lock);
	return c->err;
}

int blockif_run(int (*op)(struct blockif_ctxt *, struct blockif_req *),
		struct blockif_ctxt *bc, void *buf, size_t len, uint64_t off,
		int *err)
{
	struct blockif_completion c = BLOCKIF_COMPLETION_INIT;
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
	br.br_callback = blockif_completed;
	br.br_param = &c;
	if ((r = op(bc, &br)) != 0)
		return r;
	*err = blockif_completion_wait(&c);
	return 0;
}
