/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * readers.h, the read-mostly lock with per-thread reader counts: a
 * reader never sees a writer's change half done, readers that may not
 * wait are turned away while a writer holds or waits, and a writer
 * beside readers that never pause still gets its turn.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "mimg.h"
#include "readers.h"
#include "testutil.h"

#define READERS 6
#define WRITES 2000

struct shared {
	struct mimg_readers lock;
	/* Changed together by writers, so a reader must see them equal. */
	uint64_t a, b;
	atomic_bool stop;
	atomic_int torn;
	atomic_ulong reads, turned_away;
};

static void *reader(void *arg)
{
	struct shared *sh = arg;
	unsigned long n = 0;
	while (!atomic_load(&sh->stop)) {
		unsigned slot;
		/* Every other read may not wait and goes without. */
		if (n++ % 2 == 0) {
			slot = mimg_readers_enter(&sh->lock);
		} else if (!mimg_readers_try_enter(&sh->lock, &slot)) {
			atomic_fetch_add(&sh->turned_away, 1);
			continue;
		}
		if (sh->a != sh->b)
			atomic_fetch_add(&sh->torn, 1);
		mimg_readers_leave(&sh->lock, slot);
		atomic_fetch_add(&sh->reads, 1);
	}
	return NULL;
}

START_TEST(writers_exclude_readers)
{
	struct shared sh = {0};
	pthread_t t[READERS];
	ck_assert_int_eq(mimg_readers_init(&sh.lock), 0);
	for (int i = 0; i < READERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, reader, &sh), 0);
	/* The readers never pause: each write must still get its turn.
	 * Writes start once every reader can be reading, and every 100th
	 * waits for a read between two writes, so that reads happen beside
	 * the writes however the threads are scheduled (a writer is
	 * preferred: on a busy machine it could otherwise finish before a
	 * reader first runs). */
	while (atomic_load(&sh.reads) < READERS)
		sched_yield();
	for (int i = 0; i < WRITES; i++) {
		unsigned long before = atomic_load(&sh.reads);
		while (i % 100 == 0 && atomic_load(&sh.reads) == before)
			sched_yield();
		mimg_readers_write_lock(&sh.lock);
		sh.a++;
		sched_yield(); /* leave the change half done a while */
		sh.b++;
		mimg_readers_write_unlock(&sh.lock);
	}
	atomic_store(&sh.stop, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&sh.torn), 0);
	ck_assert_uint_eq(sh.a, WRITES);
	ck_assert_uint_gt(atomic_load(&sh.reads), 0);
	mimg_readers_destroy(&sh.lock);
}
END_TEST

START_TEST(try_enter_fails_while_written)
{
	struct mimg_readers l;
	unsigned slot;
	ck_assert_int_eq(mimg_readers_init(&l), 0);
	ck_assert(mimg_readers_try_enter(&l, &slot));
	/* Readers nest while no writer waits. */
	unsigned slot2 = mimg_readers_enter(&l);
	mimg_readers_leave(&l, slot2);
	mimg_readers_leave(&l, slot);
	mimg_readers_write_lock(&l);
	ck_assert(!mimg_readers_try_enter(&l, &slot));
	mimg_readers_write_unlock(&l);
	ck_assert(mimg_readers_try_enter(&l, &slot));
	mimg_readers_leave(&l, slot);
	mimg_readers_destroy(&l);
}
END_TEST

struct waiter {
	struct mimg_readers *l;
	atomic_bool entered;
};

static void *enter_and_leave(void *arg)
{
	struct waiter *w = arg;
	unsigned slot = mimg_readers_enter(w->l);
	atomic_store(&w->entered, true);
	mimg_readers_leave(w->l, slot);
	return NULL;
}

START_TEST(enter_waits_for_writer)
{
	struct mimg_readers l;
	struct waiter w = {.l = &l};
	pthread_t t;
	ck_assert_int_eq(mimg_readers_init(&l), 0);
	mimg_readers_write_lock(&l);
	ck_assert_int_eq(pthread_create(&t, NULL, enter_and_leave, &w), 0);
	for (int i = 0; i < 100; i++)
		sched_yield();
	ck_assert(!atomic_load(&w.entered));
	mimg_readers_write_unlock(&l);
	pthread_join(t, NULL);
	ck_assert(atomic_load(&w.entered));
	mimg_readers_destroy(&l);
}
END_TEST

int main(void)
{
	return tu_main("readers", "readers",
		       TU_TESTS(writers_exclude_readers,
				try_enter_fails_while_written,
				enter_waits_for_writer));
}
