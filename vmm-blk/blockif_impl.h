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

/* bhyve's numbers: a ring's worth of requests plus one per worker. */
#define BLOCKIF_NUMTHR 8
#define BLOCKIF_MAXREQ (BLOCKIF_RING_MAX + BLOCKIF_NUMTHR)

/* A write (with split_reads a read) of at least two BLOCKIF_PART_MIN is
 * cut, at segment boundaries, into up to BLOCKIF_MAX_PARTS parts (no more than there are
 * CPUs) that workers perform in parallel; the request completes when its
 * last part does. */
#define BLOCKIF_PART_MIN (128u << 10)
#define BLOCKIF_MAX_PARTS 4

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
	BST_DONE,    /* performed; its callback runs, it holds its slot */
};

struct blockif_elem {
	struct blockif_req *req;
	enum blockif_op op;
	enum blockif_state state;
	bool unmap;
	uint64_t start, end; /* byte range; flush has none */
	int deps;	     /* earlier unfinished requests it must wait for */
	/* Parts (1: not cut): part I is segments [part_iov[I],
	 * part_iov[I + 1]) at bytes [part_off[I], part_off[I + 1]) of the
	 * request.  Parts are taken in order; the request stays at the head
	 * of the ready FIFO until its last part is taken. */
	int nparts, next_part, parts_left;
	int part_err;	/* first error of a part */
	uint64_t moved; /* bytes the finished parts transferred */
	int part_iov[BLOCKIF_MAX_PARTS + 1];
	uint64_t part_off[BLOCKIF_MAX_PARTS + 1];
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
	int bootindex; /* -1: none */
	blockif_resize_cb *resize_cb;
	void *resize_arg;
	/* Raw images: a thread notices the file's size changing. */
	bool watching;
	pthread_t watcher;
	pthread_cond_t watch_cond; /* closing */
	char *watch_path;

	pthread_mutex_t mtx;
	pthread_cond_t work_cond; /* ready work or closing */
	pthread_cond_t done_cond; /* some request finished */
	bool closing;
	bool paused; /* blockif_pause: workers start nothing */
	int nbusy;   /* requests (parts) being performed */
	struct blockif_elem *active_head, *active_tail;
	struct blockif_elem *ready_head, *ready_tail;
	struct blockif_elem *free_list;
	int nthreads;
	int maxparts;	     /* parts a request may be cut into (plan_parts) */
	bool split_reads;    /* reads are cut too (nocache) */
	uint64_t part_align; /* parts start on multiples of this, or 1 */
	pthread_t threads[BLOCKIF_NUMTHR];
	struct blockif_elem elems[BLOCKIF_MAXREQ];
};

/* What blockif_open's option string says. */
struct blockif_opts {
	const char *path;
	const char *format; /* NULL: probe */
	bool nocache, sync, ro, nodelete;
	bool untrusted; /* refuse images that refer to other files */
	/* A file holding the passphrase of an encrypted image (its bytes as
	 * they are, as qemu's secret file=), or NULL. */
	const char *keyfile;
	int sectsz, psectsz; /* 0: defaults */
	bool has_bootindex;
	int bootindex; /* with has_bootindex; negative: none */
};

/* blockif_open with the options already parsed (for callers that have
 * them separately, such as the vmm-blk daemon: paths may contain
 * commas). */
struct blockif_ctxt *blockif_open_opts(struct blockif_opts *o,
				       const char *ident);

/* Parse bhyve's sectorsize value "L" or "L/P" as bhyve does into O.
 * Returns 0 or -1 after a message. */
int blockif_parse_sectorsize(const char *val, struct blockif_opts *o,
			     const char *ident);
/* Parse a bootindex value into O as bhyve does (atoi). */
void blockif_parse_bootindex(const char *val, struct blockif_opts *o);
/* A message on stderr naming the device. */
void blockif_warn(const char *ident, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Always in the library, declared by block_if.h under BHYVE_SNAPSHOT. */
void blockif_pause(struct blockif_ctxt *bc);
void blockif_resume(struct blockif_ctxt *bc);

/* Stop workers from starting requests and wait for the running ones;
 * returns whether they were stopped already.  Called with the mutex. */
bool blockif_quiesce(struct blockif_ctxt *bc);
/* The disk's size (it changes only by resizing, while requests run). */
uint64_t blockif_disk_size(struct blockif_ctxt *bc);

/* Start the worker threads of a filled-in BC (blockif.c).  Returns 0 or a
 * positive errno. */
int blockif_start(struct blockif_ctxt *bc);

#endif
