/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Parking blockif's workers: one flush per worker thread, each callback
 * blocking until released.  The worker count comes from blockif itself,
 * so waiting for every worker to arrive needs no timeout.
 */
#include <pthread.h>
#include <stdbool.h>

#include <check.h>

#include "../../vmm-blk/blockif_impl.h"
#include "blockif_park.h"

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static int parked;
static bool released;
static struct blockif_req parkers[BLOCKIF_NUMTHR];

static void park_cb(struct blockif_req *br, int err)
{
	(void)br;
	(void)err;
	pthread_mutex_lock(&park_lock);
	parked++;
	pthread_cond_broadcast(&park_cond);
	while (!released)
		pthread_cond_wait(&park_cond, &park_lock);
	pthread_mutex_unlock(&park_lock);
}

int park_workers(struct blockif_ctxt *bc)
{
	pthread_mutex_lock(&park_lock);
	released = false;
	parked = 0;
	pthread_mutex_unlock(&park_lock);
	/* Flushes of an idle context never wait for each other, so each is
	 * taken by a worker of its own. */
	for (int i = 0; i < BLOCKIF_NUMTHR; i++) {
		parkers[i] = (struct blockif_req){.br_callback = park_cb};
		ck_assert_int_eq(blockif_flush(bc, &parkers[i]), 0);
	}
	pthread_mutex_lock(&park_lock);
	while (parked < BLOCKIF_NUMTHR)
		pthread_cond_wait(&park_cond, &park_lock);
	pthread_mutex_unlock(&park_lock);
	return BLOCKIF_NUMTHR;
}

struct blockif_req *parked_request(int i)
{
	ck_assert(i >= 0 && i < BLOCKIF_NUMTHR);
	return &parkers[i];
}

void release_workers(void)
{
	pthread_mutex_lock(&park_lock);
	released = true;
	pthread_cond_broadcast(&park_cond);
	pthread_mutex_unlock(&park_lock);
}
