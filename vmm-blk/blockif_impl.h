/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Internals of blockif shared by its source files.
 */
#ifndef VMMBLK_BLOCKIF_IMPL_H
#define VMMBLK_BLOCKIF_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "include/vmm-blk/block_if.h"

struct mimg;

/* Queue depth: enough for several virtqueues of 256 entries each. */
#define BLOCKIF_MAXREQ 1024
#define BLOCKIF_NUMTHR 8

enum blockif_op {
	BOP_READ,
	BOP_WRITE,
	BOP_FLUSH,
	BOP_DELETE,
	BOP_ZEROES,
};

enum blockif_state {
	BST_FREE,
	BST_WAITING, /* overlaps an earlier unfinished request */
	BST_READY,   /* in the ready FIFO */
	BST_BUSY,    /* a worker is performing it */
};

struct blockif_elem {
	struct blockif_req *req;
	enum blockif_op op;
	enum blockif_state state;
	bool unmap;
	uint64_t start, end; /* byte range; flush has none */
	int deps;	     /* earlier unfinished requests it must wait for */
	/* All unfinished requests in submission order. */
	struct blockif_elem *prev, *next;
	/* Ready FIFO or free list. */
	struct blockif_elem *link;
};

struct blockif_ctxt {
	struct mimg *img;
	char ident[64];
	uint64_t size;
	int sectsz, psectsz, psectoff;
	bool ro, candelete;

	pthread_mutex_t mtx;
	pthread_cond_t work_cond; /* ready work or closing */
	pthread_cond_t done_cond; /* some request finished */
	bool closing;
	struct blockif_elem *active_head, *active_tail;
	struct blockif_elem *ready_head, *ready_tail;
	struct blockif_elem *free_list;
	int nthreads;
	pthread_t threads[BLOCKIF_NUMTHR];
	struct blockif_elem elems[BLOCKIF_MAXREQ];
};

/* What blockif_open's option string says. */
struct blockif_opts {
	const char *path;
	const char *format; /* NULL: probe */
	bool nocache, sync, ro, nodelete;
	bool untrusted; /* refuse images that refer to other files */
	int sectsz, psectsz; /* 0: defaults */
};

/* blockif_open with the options already parsed (for callers that have
 * them separately, such as the vmm-blk daemon: paths may contain
 * commas). */
struct blockif_ctxt *blockif_open_opts(struct blockif_opts *o,
				       const char *ident);

/* Start the worker threads of a filled-in BC (blockif.c).  Returns 0 or a
 * positive errno. */
int blockif_start(struct blockif_ctxt *bc);

#endif
