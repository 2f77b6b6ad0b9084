/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Inflight I/O tracking for split virtqueues (see inflight.h).  Stores use
 * release ordering so that, when the process dies at any point, the
 * region and the used ring are in one of the states the recovery steps of
 * the vhost-user specification expect.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inflight.h"

#define VQI_VERSION 1
#define VQI_ALIGN 64
#define OFF_VERSION 8
#define OFF_DESC_NUM 10
#define OFF_LAST_BATCH 12
#define OFF_USED_IDX 14
#define OFF_DESC 16
#define DESC_BYTES 16
#define DESC_INFLIGHT 0
#define DESC_NEXT 6
#define DESC_COUNTER 8

size_t vqi_queue_bytes(unsigned qsize)
{
	size_t n = OFF_DESC + (size_t)qsize * DESC_BYTES;

	return (n + VQI_ALIGN - 1) / VQI_ALIGN * VQI_ALIGN;
}

static uint8_t *desc_at(uint8_t *reg, uint16_t head)
{
	return reg + OFF_DESC + (size_t)head * DESC_BYTES;
}

static uint16_t *u16_at(uint8_t *p)
{
	return (uint16_t *)p;
}

static uint16_t load_u16(uint8_t *p)
{
	return __atomic_load_n(u16_at(p), __ATOMIC_ACQUIRE);
}

static void store_u16(uint8_t *p, uint16_t v)
{
	__atomic_store_n(u16_at(p), v, __ATOMIC_RELEASE);
}

void vqi_mark(uint8_t *reg, uint16_t head, uint64_t counter)
{
	uint8_t *d = desc_at(reg, head);

	__atomic_store_n((uint64_t *)(d + DESC_COUNTER), counter,
			 __ATOMIC_RELAXED);
	__atomic_store_n(d + DESC_INFLIGHT, 1, __ATOMIC_RELEASE);
}

void vqi_unmark(uint8_t *reg, uint16_t head)
{
	__atomic_store_n(desc_at(reg, head) + DESC_INFLIGHT, 0,
			 __ATOMIC_RELEASE);
}

void vqi_used_begin(uint8_t *reg, uint16_t head)
{
	store_u16(desc_at(reg, head) + DESC_NEXT,
		  load_u16(reg + OFF_LAST_BATCH));
	store_u16(reg + OFF_LAST_BATCH, head);
}

void vqi_used_end(uint8_t *reg, uint16_t head, uint16_t used_idx)
{
	__atomic_store_n(desc_at(reg, head) + DESC_INFLIGHT, 0,
			 __ATOMIC_RELEASE);
	store_u16(reg + OFF_USED_IDX, used_idx);
}

/* The used ring moved past the region's used_idx: the process died
 * between publishing a batch and clearing its entries.  Clear them. */
static void settle_last_batch(uint8_t *reg, unsigned qsize, uint16_t ring_used)
{
	uint16_t n = (uint16_t)(ring_used - load_u16(reg + OFF_USED_IDX));
	uint16_t head = load_u16(reg + OFF_LAST_BATCH);

	/* A batch is never longer than the queue; the list's links are
	 * shared memory, so each one is checked before use. */
	for (unsigned i = 0; i < n && i < qsize && head < qsize; i++) {
		uint8_t *d = desc_at(reg, head);

		__atomic_store_n(d + DESC_INFLIGHT, 0, __ATOMIC_RELAXED);
		head = load_u16(d + DESC_NEXT);
	}
	store_u16(reg + OFF_USED_IDX, ring_used);
}

struct taken {
	uint64_t counter;
	uint16_t head;
};

static int by_counter(const void *a, const void *b)
{
	const struct taken *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return x->head < y->head ? -1 : x->head > y->head;
}

int vqi_recover(uint8_t *reg, unsigned qsize, uint16_t ring_used,
		uint16_t *heads, uint64_t *next_counter)
{
	struct taken *t;
	uint64_t next = 1;
	unsigned n = 0;

	*next_counter = 1;
	if (load_u16(reg + OFF_VERSION) == 0) {
		memset(reg, 0, vqi_queue_bytes(qsize));
		store_u16(reg + OFF_DESC_NUM, (uint16_t)qsize);
		store_u16(reg + OFF_USED_IDX, ring_used);
		store_u16(reg + OFF_VERSION, VQI_VERSION);
		return 0;
	}
	if (load_u16(reg + OFF_VERSION) != VQI_VERSION ||
	    load_u16(reg + OFF_DESC_NUM) != (uint16_t)qsize)
		return -EINVAL;
	if (load_u16(reg + OFF_USED_IDX) != ring_used)
		settle_last_batch(reg, qsize, ring_used);
	t = malloc(sizeof(*t) * (qsize ? qsize : 1));
	if (!t)
		return -ENOMEM;
	for (unsigned i = 0; i < qsize; i++) {
		uint8_t *d = desc_at(reg, (uint16_t)i);

		if (__atomic_load_n(d + DESC_INFLIGHT, __ATOMIC_ACQUIRE) != 1)
			continue;
		t[n].head = (uint16_t)i;
		t[n].counter = __atomic_load_n((uint64_t *)(d + DESC_COUNTER),
					       __ATOMIC_RELAXED);
		if (t[n].counter >= next)
			next = t[n].counter + 1;
		n++;
	}
	qsort(t, n, sizeof(*t), by_counter);
	for (unsigned i = 0; i < n; i++)
		heads[i] = t[i].head;
	free(t);
	*next_counter = next;
	return (int)n;
}
