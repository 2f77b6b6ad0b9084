/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * QED consistency check, counting as qemu-img 7.2 counts: every table and
 * data cluster is referenced once, at a valid offset (a corruption each
 * time it is not; a table that shares a cluster with another is not
 * walked); clusters of the file no table references are leaks.  Allocated
 * and fragmented clusters are counted per L2 table, zero clusters apart.
 * Read-only: repairs need the image open for writing, which this driver
 * does not do.
 */
#include <errno.h>
#include <stdlib.h>

#include "checked.h"
#include "error.h"
#include "qed.h"

#define BATCH 512u

struct walk {
	struct mimg *img;
	struct qed *s;
	struct mimg_check_result *res;
	uint8_t *used; /* one bit per cluster of the file */
	uint64_t nclusters;
};

/* Mark the N clusters from file offset OFF used: false when one was
 * already (each such cluster is a corruption). */
static bool claim(struct walk *w, uint64_t off, uint64_t n)
{
	bool fresh = true;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t c = (off >> w->s->cluster_bits) + i;
		if (w->used[c / 8] & (1u << (c % 8))) {
			w->res->corruptions++;
			fresh = false;
		}
		w->used[c / 8] |= (uint8_t)(1u << (c % 8));
	}
	return fresh;
}

/* Walk entry ENTRIES of the table at TABLE, calling FN on each batch. */
static int for_each_entry(struct walk *w, uint64_t table,
			  void (*fn)(struct walk *w, const uint64_t *e,
				     uint64_t n, void *arg),
			  void *arg)
{
	uint64_t e[BATCH], total = 1ull << w->s->table_bits;
	for (uint64_t i = 0; i < total; i += BATCH) {
		uint64_t n = min_u64(BATCH, total - i);
		int r = qed_read_entries(w->img, table, i, n, e);
		if (r < 0)
			return r;
		fn(w, e, n, arg);
	}
	return 0;
}

/* Data cluster entries of one L2 table: LAST is the previous data
 * cluster of the table, for fragmentation. */
static void check_data(struct walk *w, const uint64_t *e, uint64_t n, void *arg)
{
	uint64_t *last = arg;
	for (uint64_t i = 0; i < n; i++) {
		if (e[i] == 0 || e[i] == QED_ZERO_CLUSTER)
			continue;
		w->res->allocated_clusters++;
		if (*last && *last + w->s->cluster_size != e[i])
			w->res->fragmented_clusters++;
		*last = e[i];
		if (!qed_cluster_ok(w->s, e[i]))
			w->res->corruptions++;
		else
			claim(w, e[i], 1);
	}
}

static int check_l2(struct walk *w, uint64_t l2)
{
	uint64_t last = 0;
	if (!qed_table_ok(w->s, l2)) {
		w->res->corruptions++;
		return 0;
	}
	if (!claim(w, l2, w->s->table_size))
		return 0;
	return for_each_entry(w, l2, check_data, &last);
}

/* L1 entries: ARG collects the first error of an L2 table's walk. */
static void check_tables(struct walk *w, const uint64_t *e, uint64_t n,
			 void *arg)
{
	int *r = arg;
	for (uint64_t i = 0; i < n && *r == 0; i++)
		if (e[i])
			*r = check_l2(w, e[i]);
}

int qed_check(struct mimg *img, unsigned flags, struct mimg_check_result *res)
{
	struct qed *s = img->priv;
	struct walk w = {img, s, res, NULL, s->file_size >> s->cluster_bits};
	int r = 0;

	(void)flags; /* a read-only format: never asked to repair */
	res->supported = true;
	res->total_clusters = div_round_up_u64(img->size, s->cluster_size);
	/* One bit per cluster the file holds: bounded by the file. */
	if (!(w.used = calloc(w.nclusters / 8 + 1, 1)))
		return mimg_err(-ENOMEM, "out of memory");
	claim(&w, s->l1_offset, s->table_size);
	int walk = for_each_entry(&w, s->l1_offset, check_tables, &r);
	if (walk < 0 || r < 0) {
		free(w.used);
		return walk < 0 ? walk : r;
	}
	for (uint64_t c = s->header_size; c < w.nclusters; c++)
		if (!(w.used[c / 8] & (1u << (c % 8))))
			res->leaks++;
	free(w.used);
	return 0;
}
