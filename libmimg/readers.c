/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The read-mostly lock of readers.h.  A reader's count and the writer's
 * flag are Dekker's pair: the reader counts itself, then looks at the
 * flag; the writer raises the flag, then looks at the counts (all
 * sequentially consistent), so at least one of them sees the other.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "readers.h"

#define MIMG_READERS_SLOTS 32u
/* Two lines: adjacent-line prefetch pairs 64-byte lines. */
#define SLOT_BYTES 128u

struct mimg_readers_slot {
	_Alignas(SLOT_BYTES) atomic_ulong n;
};

/* Threads take slots in turn: with up to MIMG_READERS_SLOTS threads
 * reading, no two share one. */
static atomic_uint next_slot;
/* Initial-exec: read at a fixed offset from the thread pointer, not
 * through __tls_get_addr on every request (four bytes of the static TLS
 * space glibc keeps for libraries loaded later). */
static _Thread_local unsigned thread_slot
	__attribute__((tls_model("initial-exec"))); /* slot + 1, 0: none */

static unsigned my_slot(void)
{
	if (!thread_slot)
		thread_slot = atomic_fetch_add_explicit(&next_slot, 1,
							memory_order_relaxed) %
				      MIMG_READERS_SLOTS +
			      1;
	return thread_slot - 1;
}

int mimg_readers_init(struct mimg_readers *l)
{
	memset(l, 0, sizeof(*l));
	l->slots = aligned_alloc(SLOT_BYTES,
				 MIMG_READERS_SLOTS * sizeof(*l->slots));
	if (!l->slots)
		return mimg_err(-ENOMEM, "out of memory");
	for (unsigned i = 0; i < MIMG_READERS_SLOTS; i++)
		atomic_init(&l->slots[i].n, 0);
	atomic_init(&l->writer, false);
	if (pthread_mutex_init(&l->m, NULL) != 0) {
		free(l->slots);
		l->slots = NULL;
		return mimg_err(-ENOMEM, "out of memory");
	}
	if (pthread_cond_init(&l->cond, NULL) != 0) {
		pthread_mutex_destroy(&l->m);
		free(l->slots);
		l->slots = NULL;
		return mimg_err(-ENOMEM, "out of memory");
	}
	return 0;
}

void mimg_readers_destroy(struct mimg_readers *l)
{
	if (!l->slots)
		return;
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->m);
	free(l->slots);
	l->slots = NULL;
}

bool mimg_readers_try_enter(struct mimg_readers *l, unsigned *slot)
{
	unsigned i = my_slot();
	atomic_fetch_add(&l->slots[i].n, 1);
	if (!atomic_load(&l->writer)) {
		*slot = i;
		return true;
	}
	mimg_readers_leave(l, i);
	return false;
}

unsigned mimg_readers_enter(struct mimg_readers *l)
{
	unsigned slot;
	while (!mimg_readers_try_enter(l, &slot)) {
		pthread_mutex_lock(&l->m);
		while (atomic_load(&l->writer))
			pthread_cond_wait(&l->cond, &l->m);
		pthread_mutex_unlock(&l->m);
	}
	return slot;
}

void mimg_readers_leave(struct mimg_readers *l, unsigned slot)
{
	atomic_fetch_sub(&l->slots[slot].n, 1);
	if (atomic_load(&l->writer)) {
		/* The writer checks the counts under M before it sleeps. */
		pthread_mutex_lock(&l->m);
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->m);
	}
}

static bool readers_inside(struct mimg_readers *l)
{
	for (unsigned i = 0; i < MIMG_READERS_SLOTS; i++)
		if (atomic_load(&l->slots[i].n))
			return true;
	return false;
}

void mimg_readers_write_lock(struct mimg_readers *l)
{
	pthread_mutex_lock(&l->m);
	while (l->writing)
		pthread_cond_wait(&l->cond, &l->m);
	l->writing = true;
	atomic_store(&l->writer, true);
	while (readers_inside(l))
		pthread_cond_wait(&l->cond, &l->m);
	pthread_mutex_unlock(&l->m);
}

void mimg_readers_write_unlock(struct mimg_readers *l)
{
	pthread_mutex_lock(&l->m);
	l->writing = false;
	atomic_store(&l->writer, false);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->m);
}
