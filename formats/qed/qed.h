/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * QED images (qemu's "enhanced disk", deprecated in qemu in favour of
 * qcow2, still read and written by qemu-img): shared definitions.
 *
 * A little-endian header in the first cluster(s), an L1 table of L2 table
 * offsets, L2 tables of data cluster offsets; each table is TABLE_SIZE
 * clusters.  A data cluster entry of 0 is unallocated (read from the
 * backing file), 1 is a cluster of zeroes.
 */
#ifndef MIMG_QED_H
#define MIMG_QED_H

#include <stdbool.h>
#include <stdint.h>

#include "image.h"

#define QED_HEADER 64
#define QED_F_BACKING_FILE 0x1ull
#define QED_F_NEED_CHECK 0x2ull
#define QED_F_BACKING_FORMAT_NO_PROBE 0x4ull
#define QED_F_KNOWN 0x7ull
#define QED_ZERO_CLUSTER 1ull

struct qed {
	uint32_t cluster_size, table_size, header_size;
	unsigned cluster_bits, table_bits; /* table_bits: entries per table */
	uint64_t features;
	uint64_t l1_offset;
	uint64_t *l1;	    /* the L1 entries the disk uses, host order */
	uint64_t l1_used;   /* how many */
	uint64_t file_size; /* rounded down to whole clusters */
};

/* True when OFF may be where a data cluster starts: aligned, after the
 * header, inside the file. */
bool qed_cluster_ok(const struct qed *s, uint64_t off);
/* The same for a table (all of its clusters). */
bool qed_table_ok(const struct qed *s, uint64_t off);
/* N entries of the table at TABLE (checked) from entry FIRST into OUT,
 * host order. */
int qed_read_entries(struct mimg *img, uint64_t table, uint64_t first,
		     uint64_t n, uint64_t *out);

int qed_check(struct mimg *img, unsigned flags, struct mimg_check_result *res);

#endif
