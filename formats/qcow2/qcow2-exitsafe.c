/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Exit-safe mode (MIMG_OPEN_EXIT_SAFE), for hypervisors: when a write
 * returns, its data and the L2 entries that make it visible are in the
 * host file, so the process may exit or be killed without losing it.
 * bhyve relies on this: it never closes its disks at power-off and its
 * NVMe model never flushes.
 *
 * A power cut must still leak clusters at worst, so an L2 entry may reach
 * the file only once what it points at is durable: the cluster's refcount
 * and, where the bytes the guest did not write could read differently
 * after a power cut, the data.  Flushing before every allocating write
 * would cost one fdatasync each, so clusters are taken from a
 * reservation instead: a run at the end of the allocator's search whose
 * refcounts are set, whose host range reads as zeroes (past the old end
 * of the file or punched) and which were made durable up front.  A
 * write into such a cluster whose copy-on-write parts are zeroes needs no
 * flush at all: if its data is lost, the cluster reads as the zeroes it
 * held.  Every other allocating write (copy-on-write of real data, a
 * reused cluster that could not be punched, a zero-flagged cluster, an
 * external data file) writes the cluster's new bytes O_DSYNC before its
 * L2 entry is written, so it never waits for the rest of the image's
 * unflushed data; encrypted images wait for a group flush shared with
 * the writers around it instead.
 *
 * Commit and publish happen in one hold of s->lock, so every modified L2
 * table in the cache is published before the lock is released and a
 * publish never carries another writer's unflushed entry along.
 *
 * The unused part of the reservation is given back at every flush, so an
 * image that was flushed and then abandoned has no leaked clusters.
 */
#include "checked.h"
#include "error.h"
#include "group_sync.h"
#include "qcow2.h"

/* Reservation sizes: grows fourfold while allocations keep coming, from
 * 16 clusters to 64 MiB, and starts small again after each flush.  A
 * refill at the end of the file costs two small O_DSYNC writes (or one
 * flush when little was written since the last), one that reuses freed
 * clusters a flush, so a guest filling its disk pays a few dozen of them
 * per GiB; a process killed before a flush leaks at most one
 * reservation (clusters with a refcount but no data: sparse, and
 * `check -r leaks` gives them back). */
#define RESV_MIN_CLUSTERS 16u
#define RESV_MAX_BYTES (64u << 20)

static uint64_t resv_cap(const struct qcow2 *s)
{
	uint64_t cap = max_u64(RESV_MIN_CLUSTERS,
			       RESV_MAX_BYTES >> s->cluster_bits);
	/* Stay within one refcount block's reach so the allocator finds
	 * the run among existing blocks. */
	return min_u64(cap, max_u64(1, s->rb_entries / 4));
}

/* Give back what is left of the reservation. */
static int resv_drop(struct qcow2 *s)
{
	uint64_t next = s->resv_next, end = s->resv_end;
	s->resv_next = s->resv_end = 0;
	if (next >= end)
		return 0;
	/* Nothing points at these clusters: dropping them is safe at any
	 * time and in any order. */
	return qcow2_free_range(s, next << s->cluster_bits,
				(end - next) << s->cluster_bits, false);
}

int qcow2_resv_release(struct qcow2 *s)
{
	s->resv_grow = RESV_MIN_CLUSTERS;
	return resv_drop(s);
}

/* A run past the end of the file: its refcounts and a file size that
 * covers it (a zero sector written at the run's end, so a lost data
 * write reads as zeroes, never past the end) are made durable without a
 * flush that would wait for all the guest data written before. */
static int resv_make_durable(struct qcow2 *s, uint64_t off, uint64_t n)
{
	static const uint8_t zero[512];
	struct mimg_file_write w = {zero, sizeof(zero),
				    off + (n << s->cluster_bits) -
					    sizeof(zero)};
	return qcow2_refcount_durable(s, off >> s->cluster_bits, n, &w);
}

static int resv_fill(struct qcow2 *s, uint64_t n)
{
	uint64_t cs = s->cluster_size;
	uint64_t want = max_u64(n, max_u64(s->resv_grow, RESV_MIN_CLUSTERS));
	uint64_t cap = resv_cap(s), size, off;
	int r;

	if (want > cap)
		want = max_u64(n, cap);
	if ((r = mimg_file_size(s->file, &size)) < 0)
		return r;
	if ((r = qcow2_alloc_clusters(s, want, &off)) < 0)
		return r;
	uint64_t end = off + want * cs;
	bool zeroed = true;
	if (off < size) {
		/* Reused clusters hold old bytes; only a flush makes the
		 * punch durable. */
		zeroed = mimg_file_punch_hole(s->file, off,
					      min_u64(size, end) - off) == 0;
		if (end > size)
			r = mimg_file_truncate(s->file, end);
		if (r == 0)
			r = mimg_file_flush(s->file);
	} else {
		r = resv_make_durable(s, off, want);
	}
	if (r < 0) {
		(void)qcow2_free_range(s, off, want * cs, false);
		return r;
	}
	s->resv_next = off >> s->cluster_bits;
	s->resv_end = s->resv_next + want;
	s->resv_zeroed = zeroed;
	s->resv_grow = (unsigned)min_u64(cap, want * 4);
	return 0;
}

int qcow2_resv_take(struct qcow2 *s, uint64_t n, uint64_t *offp, bool *zeroedp)
{
	int r;
	if (s->resv_end - s->resv_next < n) {
		if ((r = resv_drop(s)) < 0 || (r = resv_fill(s, n)) < 0)
			return r;
	}
	*offp = s->resv_next << s->cluster_bits;
	*zeroedp = s->resv_zeroed;
	s->resv_next += n;
	return 0;
}

int qcow2_data_barrier(struct qcow2 *s)
{
	struct mimg_file *files[2] = {s->data != s->file ? s->data : NULL,
				      s->file};
	return mimg_group_sync(&s->gsync, &s->lock, &s->cond, files, 2);
}

int qcow2_publish_l2(struct qcow2 *s)
{
	if (!s->exit_safe)
		return 0;
	return qcow2_cache_writeback(&s->l2c, s->file);
}
