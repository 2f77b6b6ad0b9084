/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A read-mostly lock whose readers write no shared cache line: each
 * reader counts itself in a slot of its own (threads take slots in turn)
 * and then checks a writer flag that only changes when a writer comes.
 * A writer raises the flag and waits until every slot is empty.  Two
 * threads reading at a million requests a second each would otherwise
 * bounce the one counter of a pthread rwlock between their CPUs.
 *
 * Readers either wait for a writer to finish (mimg_readers_enter) or
 * give up at once (mimg_readers_try_enter) and take another path.
 * Writers are first: once a writer waits, new readers wait or give up,
 * so a writer beside steady reads is not starved.  A reader must not
 * enter again while inside (a waiting writer would deadlock it).
 */
#ifndef MIMG_READERS_H
#define MIMG_READERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct mimg_readers_slot;

struct mimg_readers {
	struct mimg_readers_slot *slots; /* MIMG_READERS_SLOTS, own lines */
	atomic_bool writer;		 /* a writer holds or waits */
	bool writing;			 /* under M: a writer holds it */
	pthread_mutex_t m;
	pthread_cond_t cond; /* readers gone, or writer done */
};

/* 0, or -ENOMEM (with a message). */
int mimg_readers_init(struct mimg_readers *l);
void mimg_readers_destroy(struct mimg_readers *l);

/* Enter as a reader, waiting while a writer holds or waits for L.
 * Returns the slot to give to mimg_readers_leave. */
unsigned mimg_readers_enter(struct mimg_readers *l);
/* Enter as a reader unless a writer holds or waits for L: true and
 * *SLOT set when entered. */
bool mimg_readers_try_enter(struct mimg_readers *l, unsigned *slot);
void mimg_readers_leave(struct mimg_readers *l, unsigned slot);

/* Exclusive: waits for other writers and for the readers inside. */
void mimg_readers_write_lock(struct mimg_readers *l);
void mimg_readers_write_unlock(struct mimg_readers *l);

#endif
