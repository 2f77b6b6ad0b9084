/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Consistency check and repair.  The check recomputes every cluster's
 * reference count from the metadata (header, L1/L2 tables of the image
 * and its snapshots, compressed extents, snapshot table, refcount
 * structures) and compares it with the stored refcounts:
 *   stored > computed: leak;  stored < computed: corruption.
 * Leaks are repaired in place.  Refcount errors are repaired by writing
 * a complete new refcount structure after the end of the file and
 * switching the header to it in one write; the same rebuild runs when a
 * dirty image (lazy refcounts) is opened read-write.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"

struct checker {
	struct qcow2 *s;
	uint32_t *refs;
	uint64_t n; /* clusters tracked (the file's size) */
	struct mimg_check_result *res;
	bool rebuild; /* the refcount table itself is damaged */
};

static void msg(struct checker *c, const char *fmt, ...) MIMG_PRINTF(2, 3);

static void msg(struct checker *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	mimg__check_vreport(c->res, fmt, ap);
	va_end(ap);
}

static void corrupt(struct checker *c)
{
	if (c->res)
		c->res->corruptions++;
}

/* Count one reference to every cluster overlapping [OFF, OFF+LEN). */
static void inc(struct checker *c, uint64_t off, uint64_t len, const char *what)
{
	struct qcow2 *s = c->s;
	if (len == 0)
		return;
	uint64_t first = off >> s->cluster_bits;
	uint64_t last = (off + len - 1) >> s->cluster_bits;
	if (off + len < off || last >= c->n) {
		msg(c,
		    "ERROR %s at offset 0x%llx is beyond the end of the "
		    "image file",
		    what, (unsigned long long)off);
		corrupt(c);
		return;
	}
	for (uint64_t i = first; i <= last; i++)
		if (c->refs[i] != UINT32_MAX)
			c->refs[i]++;
}

/* WHAT at OFF (LEN bytes) could not be read.  Past the end of the file
 * that is the image's fault, a corruption (qemu, which reads the missing
 * part as zeroes, finds it corrupt too); otherwise the check's, an error
 * of the check. */
static void unreadable_table(struct checker *c, const char *what, uint64_t off,
			     uint64_t len)
{
	uint64_t size;
	if (mimg_file_size(c->s->file, &size) == 0 &&
	    (off > size || len > size - off)) {
		msg(c,
		    "ERROR %s at offset 0x%llx is beyond the end of the "
		    "image file",
		    what, (unsigned long long)off);
		corrupt(c);
	} else {
		msg(c, "ERROR reading %s at 0x%llx", what,
		    (unsigned long long)off);
		if (c->res)
			c->res->check_errors++;
	}
	mimg_err_clear();
}

static int walk_l2(struct checker *c, uint64_t l2_off, bool active)
{
	struct qcow2 *s = c->s;
	uint8_t *l2;
	uint64_t next_contig = 0;
	int r = qcow2_cache_get(&s->l2c, s->file, l2_off, "L2 table", &l2);
	if (r < 0) {
		unreadable_table(c, "L2 table", l2_off, s->cluster_size);
		return 0;
	}
	for (uint32_t i = 0; i < s->l2_entries; i++) {
		uint64_t e = qcow2_l2_entry(s, l2, i);
		uint64_t bm = qcow2_l2_bitmap(s, l2, i);
		if (!e && !bm)
			continue;
		if (qcow2_validate_l2_entry(s, i, e, bm) < 0) {
			msg(c,
			    "ERROR invalid L2 entry 0x%llx in table at "
			    "0x%llx",
			    (unsigned long long)e, (unsigned long long)l2_off);
			corrupt(c);
			continue;
		}
		if (e & QCOW2_OFLAG_COMPRESSED) {
			uint64_t coff, clen;
			qcow2_compressed_extent(s, e, &coff, &clen);
			inc(c, coff & ~511ull, clen + (coff & 511),
			    "compressed cluster");
			if (active && c->res) {
				c->res->allocated_clusters++;
				c->res->compressed_clusters++;
				/* Compressed clusters count as fragmented
				 * by nature, as qemu counts them. */
				c->res->fragmented_clusters++;
			}
			continue;
		}
		uint64_t host = e & QCOW2_OFFSET_MASK;
		if (!host && !(s->data_file_name && (e & QCOW2_OFLAG_COPIED)))
			continue;
		if (active && c->res) {
			c->res->allocated_clusters++;
			if (next_contig && host != next_contig)
				c->res->fragmented_clusters++;
		}
		next_contig = host + s->cluster_size;
		if (!s->data_file_name)
			inc(c, host, s->cluster_size, "data cluster");
	}
	return 0;
}

static int walk_l1(struct checker *c, uint64_t l1_off, uint32_t l1_size,
		   const uint64_t *mem_l1, bool active)
{
	struct qcow2 *s = c->s;
	uint64_t *l1 = NULL;
	int r = 0;
	inc(c, l1_off, (uint64_t)l1_size * 8, "L1 table");
	if (!mem_l1) {
		l1 = malloc((size_t)l1_size * 8 + 8);
		if (!l1)
			return mimg_err(-ENOMEM, "out of memory");
		if (mimg_file_pread_exact(s->file, l1, (size_t)l1_size * 8,
					  l1_off, "snapshot L1 table") < 0) {
			unreadable_table(c, "L1 table", l1_off,
					 (uint64_t)l1_size * 8);
			free(l1);
			return 0;
		}
		for (uint32_t i = 0; i < l1_size; i++)
			l1[i] = ld_be64(&l1[i]);
		mem_l1 = l1;
	}
	for (uint32_t i = 0; i < l1_size && r == 0; i++) {
		uint64_t e = mem_l1[i], off = e & QCOW2_OFFSET_MASK;
		if (!off)
			continue;
		if (!is_aligned_u64(off, s->cluster_size) ||
		    (e & QCOW2_L1_RESERVED) ||
		    (off >> s->cluster_bits) >= c->n) {
			msg(c, "ERROR invalid L1 entry %u: 0x%llx", i,
			    (unsigned long long)e);
			corrupt(c);
			continue;
		}
		inc(c, off, s->cluster_size, "L2 table");
		r = walk_l2(c, off, active);
	}
	free(l1);
	return r;
}

static uint64_t snapshot_table_size(struct qcow2 *s)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		/* Entry sizes are re-read cheaply from the parsed table:
		 * 40 + extra + id + name, padded to 8. */
		uint8_t h[40];
		if (mimg_file_pread(s->file, h, 40,
				    s->snapshots_offset + total) < 0)
			break;
		uint64_t sz = 40ull + ld_be32(h + 36) + ld_be16(h + 12) +
			      ld_be16(h + 14);
		total += (sz + 7) & ~7ull;
	}
	return total;
}

static void inc_cb(void *opaque, uint64_t off, uint64_t len)
{
	inc(opaque, off, len, "bitmap metadata");
}

static void inc_crypt_cb(void *opaque, uint64_t off, uint64_t len)
{
	inc(opaque, off, len, "encryption header");
}

enum refblock_fault {
	REFBLOCK_OK,
	REFBLOCK_RESERVED_BITS,
	REFBLOCK_UNALIGNED,
	REFBLOCK_OUTSIDE,
};

/* What is wrong with refcount table entry E, judged as qemu does: the
 * low nine bits are reserved, all the others are the offset. */
static enum refblock_fault refblock_entry_fault(const struct checker *c,
						uint64_t e)
{
	const struct qcow2 *s = c->s;
	uint64_t off = e & ~0x1ffull;
	if (e & 0x1ff)
		return REFBLOCK_RESERVED_BITS;
	if (!is_aligned_u64(off, s->cluster_size))
		return REFBLOCK_UNALIGNED;
	if ((off >> s->cluster_bits) >= c->n)
		return REFBLOCK_OUTSIDE;
	return REFBLOCK_OK;
}

/* The stored refcount of CLUSTER.  A refcount block the table names
 * wrongly (reported by compute) holds nothing: its clusters count as
 * zero (qemu reads a block past the end of the file as zeroes, and one
 * with reserved bits at the offset they mask; neither is trusted here),
 * so that they show as corruptions and a repair rebuilds the structure. */
static int stored_refcount(const struct checker *c, uint64_t cluster,
			   uint64_t *rc)
{
	const struct qcow2 *s = c->s;
	uint64_t i = cluster >> s->rb_bits;
	if (i < s->reftable_size &&
	    refblock_entry_fault(c, s->reftable[i]) != REFBLOCK_OK) {
		*rc = 0;
		return 0;
	}
	return qcow2_get_refcount(c->s, cluster, rc);
}

/* Compute references into c->refs (which the caller sized). */
static int compute(struct checker *c, bool with_refcount_structs)
{
	struct qcow2 *s = c->s;
	const uint64_t *active_l1 = s->l1_active ? s->l1_active : s->l1;
	int r;
	inc(c, 0, s->cluster_size, "header");
	if (s->l1_active) {
		/* A snapshot is selected: the image's own L1 is on disk. */
		r = walk_l1(c, s->l1_offset, s->l1_size, NULL, true);
	} else {
		r = walk_l1(c, s->l1_offset, s->l1_size, active_l1, true);
	}
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if ((r = walk_l1(c, s->snaps[i].l1_offset, s->snaps[i].l1_size,
				 NULL, false)) < 0)
			return r;
	if (s->nb_snapshots)
		inc(c, s->snapshots_offset, snapshot_table_size(s),
		    "snapshot table");
	if ((r = qcow2_bitmap_refs(s, inc_cb, c)) < 0)
		return r;
	if ((r = qcow2_crypt_refs(s, inc_crypt_cb, c)) < 0)
		return r;
	if (!with_refcount_structs)
		return 0;
	inc(c, s->reftable_offset,
	    (uint64_t)s->reftable_clusters * s->cluster_size, "refcount table");
	for (uint64_t i = 0; i < s->reftable_size; i++) {
		uint64_t e = s->reftable[i];
		enum refblock_fault f = refblock_entry_fault(c, e);
		if (f == REFBLOCK_OK) {
			if (e)
				inc(c, e, s->cluster_size, "refcount block");
			continue;
		}
		/* qemu's words.  A block outside the file qemu reaches by
		 * growing the file, where it reads as zeroes; a new
		 * structure replaces it here instead. */
		if (f == REFBLOCK_RESERVED_BITS)
			msg(c,
			    "ERROR refcount table entry %llu has reserved "
			    "bits set",
			    (unsigned long long)i);
		else if (f == REFBLOCK_UNALIGNED)
			msg(c,
			    "ERROR refcount block %llu is not cluster "
			    "aligned; refcount table entry corrupted",
			    (unsigned long long)i);
		else
			msg(c, "ERROR refcount block %llu is outside image",
			    (unsigned long long)i);
		corrupt(c);
		c->rebuild = true;
	}
	return 0;
}

static int checker_init(struct checker *c, struct qcow2 *s,
			struct mimg_check_result *res, uint64_t extra)
{
	uint64_t fsize;
	int r = mimg_file_size(s->file, &fsize);
	if (r < 0)
		return r;
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->res = res;
	c->n = div_round_up_u64(fsize, s->cluster_size);
	/* One counter per host cluster: bound the memory (1 GiB). */
	if (c->n + extra > (1ull << 28))
		return mimg_err(-ENOMEM,
				"%s: qcow2: %llu clusters are too many "
				"to check in memory",
				qcow2_path(s), (unsigned long long)c->n);
	c->refs = calloc(c->n + extra + 1, sizeof(uint32_t));
	if (!c->refs)
		return mimg_err(-ENOMEM, "out of memory for %llu refcounts",
				(unsigned long long)c->n);
	return 0;
}

/* Write a fresh refcount structure for REFS (without refcount
 * structures) after the end of the file and switch the header to it
 * (with the refcount order too when NEW_ORDER). */
static int rebuild(struct qcow2 *s, struct checker *c, bool new_order)
{
	uint64_t cs = s->cluster_size, per = cs / 8;
	uint64_t start = c->n, B = 1, T = 1, E;
	for (int iter = 0; iter < 64; iter++) {
		uint64_t M = start + B + T;
		uint64_t nb = div_round_up_u64(M, s->rb_entries);
		E = div_round_up_u64(nb, per) * per;
		uint64_t nt = E / per;
		if (nb == B && nt == T)
			break;
		B = nb;
		T = nt;
	}
	E = T * per;
	int r = qcow2_reftable_fits(s, T, "rebuilt refcount table");
	if (r < 0)
		return r;
	uint32_t *refs = realloc(c->refs, (start + B + T) * sizeof(uint32_t));
	if (!refs)
		return mimg_err(-ENOMEM, "out of memory");
	c->refs = refs;
	for (uint64_t i = start; i < start + B + T; i++)
		refs[i] = 1;
	uint64_t total = start + B + T;
	uint8_t *blk = malloc(cs);
	uint8_t *tab = calloc(1, T * cs);
	uint64_t *mt = calloc(E, sizeof(uint64_t));
	r = 0;
	if (!blk || !tab || !mt) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	/* Refcounts are written with the generic setter on a scratch
	 * structure: point the in-memory table at the new blocks first. */
	for (uint64_t j = 0; j < B; j++) {
		uint64_t first = j * s->rb_entries;
		memset(blk, 0, cs);
		for (uint64_t k = 0; k < s->rb_entries && first + k < total;
		     k++) {
			uint64_t v = refs[first + k];
			if (v > s->refcount_max)
				v = s->refcount_max;
			uint64_t bit = k * s->refcount_bits;
			switch (s->refcount_order) {
			case 6: st_be64(blk + k * 8, v); break;
			case 5: st_be32(blk + k * 4, (uint32_t)v); break;
			case 4: st_be16(blk + k * 2, (uint16_t)v); break;
			case 3: blk[k] = (uint8_t)v; break;
			default: blk[bit / 8] |= (uint8_t)(v << (bit % 8));
			}
		}
		if ((r = mimg_file_pwrite(s->file, blk, cs, (start + j) * cs)) <
		    0)
			goto out;
		mt[j] = (start + j) * cs;
		st_be64(tab + j * 8, mt[j]);
	}
	if ((r = mimg_file_pwrite(s->file, tab, T * cs, (start + B) * cs)) < 0)
		goto out;
	if ((r = mimg_file_flush(s->file)) < 0)
		goto out;
	r = new_order ? qcow2_write_reftable_order(s, (start + B) * cs,
						   (uint32_t)T)
		      : qcow2_write_reftable_fields(s, (start + B) * cs,
						    (uint32_t)T);
	if (r < 0)
		goto out;
	qcow2_use_reftable(s, &mt, (start + B) * cs, (uint32_t)T);
	qcow2_cache_clear(&s->rbc);
	s->free_hint = 0;
	s->free_byte = 0;
	r = mimg_file_flush(s->file);
out:
	free(blk);
	free(tab);
	free(mt);
	return r;
}

/* What a comparison of refcounts does with what it finds. */
enum compare_mode {
	REPORT,		   /* says and counts it */
	FIX_LEAKS,	   /* repairs leaks, says so; says the rest */
	FIX_LEAKS_QUIETLY, /* the same without a word: a second pass */
};

/* Compare computed and stored refcounts; *REBUILD when a stored one is
 * too small. */
static int compare(struct checker *c, enum compare_mode mode,
		   bool *need_rebuild, uint64_t *highest)
{
	bool fix_leaks = mode != REPORT, quiet = mode == FIX_LEAKS_QUIETLY;
	struct qcow2 *s = c->s;
	int r;
	*need_rebuild = c->rebuild;
	*highest = 0;
	for (uint64_t i = 0; i < c->n; i++) {
		uint64_t stored, want = c->refs[i];
		if ((r = stored_refcount(c, i, &stored)) < 0) {
			msg(c, "ERROR cannot get refcount of cluster %llu",
			    (unsigned long long)i);
			c->res->check_errors++;
			continue;
		}
		if (stored || want)
			*highest = i + 1;
		if (stored == want)
			continue;
		if (stored > want && fix_leaks) {
			if ((r = qcow2_set_refcount(s, i, want)) < 0)
				return r;
			if (!quiet)
				msg(c,
				    "Repairing cluster %llu refcount=%llu "
				    "reference=%llu",
				    (unsigned long long)i,
				    (unsigned long long)stored,
				    (unsigned long long)want);
			c->res->leaks_fixed++;
			continue;
		}
		if (!quiet)
			msg(c, "%s cluster %llu refcount=%llu reference=%llu",
			    stored < want ? "ERROR" : "Leaked",
			    (unsigned long long)i, (unsigned long long)stored,
			    (unsigned long long)want);
		if (stored < want) {
			c->res->corruptions++;
			*need_rebuild = true;
		} else {
			c->res->leaks++;
		}
	}
	return 0;
}

/* OFLAG_COPIED must be set exactly when the refcount is 1 (active L1 and
 * its L2 tables). */
static int check_copied(struct checker *c, bool fix)
{
	struct qcow2 *s = c->s;
	uint64_t *l1 = s->l1_active ? s->l1_active : s->l1;
	int r;
	for (uint32_t i = 0; i < s->l1_size && !s->l1_active; i++) {
		uint64_t e = l1[i], off = e & QCOW2_OFFSET_MASK, rc;
		if (!off || !is_aligned_u64(off, s->cluster_size) ||
		    (off >> s->cluster_bits) >= c->n)
			continue;
		if ((r = stored_refcount(c, off >> s->cluster_bits, &rc)) < 0)
			return r;
		if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
			if (fix && rc) {
				uint8_t b[8];
				l1[i] = rc == 1 ? (e | QCOW2_OFLAG_COPIED)
						: (e & ~QCOW2_OFLAG_COPIED);
				st_be64(b, l1[i]);
				if ((r = mimg_file_pwrite(s->file, b, 8,
							  s->l1_offset +
								  i * 8ull)) <
				    0)
					return r;
				c->res->corruptions_fixed++;
			} else {
				msg(c,
				    "ERROR OFLAG_COPIED L2 cluster: l1_index=%u "
				    "l1_entry=%llx refcount=%llu",
				    i, (unsigned long long)e,
				    (unsigned long long)rc);
				c->res->corruptions++;
			}
		}
		if (s->data_file_name)
			continue;
		uint8_t *l2;
		if (qcow2_cache_get(&s->l2c, s->file, off, "L2 table", &l2) < 0)
			continue;
		bool dirty = false;
		for (uint32_t j = 0; j < s->l2_entries; j++) {
			uint64_t le = qcow2_l2_entry(s, l2, j);
			uint64_t host = le & QCOW2_OFFSET_MASK;
			if ((le & QCOW2_OFLAG_COMPRESSED) || !host ||
			    !is_aligned_u64(host, s->cluster_size) ||
			    (host >> s->cluster_bits) >= c->n)
				continue;
			if ((r = stored_refcount(c, host >> s->cluster_bits,
						 &rc)) < 0)
				return r;
			if ((rc == 1) == !!(le & QCOW2_OFLAG_COPIED))
				continue;
			if (fix && rc) {
				uint64_t ne =
					rc == 1 ? (le | QCOW2_OFLAG_COPIED)
						: (le & ~QCOW2_OFLAG_COPIED);
				qcow2_set_l2(s, l2, j, ne,
					     qcow2_l2_bitmap(s, l2, j));
				dirty = true;
				c->res->corruptions_fixed++;
			} else {
				msg(c,
				    "ERROR OFLAG_COPIED data cluster: "
				    "l2_entry=%llx refcount=%llu",
				    (unsigned long long)le,
				    (unsigned long long)rc);
				c->res->corruptions++;
			}
		}
		if (dirty && (r = qcow2_cache_writeback(&s->l2c, s->file)) < 0)
			return r;
	}
	return 0;
}

static int run_check(struct qcow2 *s, struct mimg_check_result *res,
		     bool fix_leaks, bool fix_errors, bool *need_rebuild,
		     struct checker *c)
{
	uint64_t highest;
	int r = checker_init(c, s, res, 0);
	if (r < 0)
		return r;
	if ((r = compute(c, true)) < 0)
		return r;
	/* A repair first compares without fixing, as qemu does: its
	 * messages tell what was found ("Leaked cluster"), then those of the
	 * repair follow ("Repairing cluster"), counted once.  Refcounts too
	 * small need the structure rebuilt: without -r all that is an
	 * error; with it the caller rebuilds, and the leaks are fixed here
	 * first without repeating what was said. */
	uint64_t leaks = res->leaks, corruptions = res->corruptions;
	uint64_t errors = res->check_errors;
	if ((r = compare(c, REPORT, need_rebuild, &highest)) < 0)
		return r;
	if (fix_leaks && (*need_rebuild || res->leaks > leaks ||
			  res->corruptions > corruptions)) {
		if (*need_rebuild && !fix_errors) {
			msg(c, "ERROR need to rebuild refcount structures");
			res->check_errors++;
		} else {
			res->leaks = leaks;
			res->corruptions = corruptions;
			res->check_errors = errors;
			if ((r = compare(c,
					 *need_rebuild ? FIX_LEAKS_QUIETLY
						       : FIX_LEAKS,
					 need_rebuild, &highest)) < 0)
				return r;
		}
	}
	/* Refcounts about to be rebuilt would make every flag look wrong:
	 * the pass after the rebuild checks the flags (qemu checks them once,
	 * after its rebuild). */
	if (!(fix_errors && *need_rebuild) &&
	    (r = check_copied(c, fix_errors)) < 0)
		return r;
	res->image_end_offset = highest * s->cluster_size;
	res->total_clusters = div_round_up_u64(s->img->size, s->cluster_size);
	return 0;
}

static void reset_counts(struct mimg_check_result *res)
{
	res->corruptions = res->leaks = res->check_errors = 0;
	res->allocated_clusters = res->fragmented_clusters = 0;
	res->compressed_clusters = 0;
}

static int rebuild_from_metadata(struct qcow2 *s)
{
	struct checker c;
	int r = checker_init(&c, s, NULL, 0);
	if (r < 0)
		return r;
	r = compute(&c, false);
	if (r == 0)
		r = rebuild(s, &c, false);
	free(c.refs);
	return r;
}

/* Set the refcount width fields of S for ORDER (the on-disk structures
 * are the caller's business). */
static void set_refcount_order(struct qcow2 *s, unsigned order)
{
	s->refcount_order = order;
	s->refcount_bits = 1u << order;
	s->refcount_max = order == 6 ? UINT64_MAX
				     : (1ull << s->refcount_bits) - 1;
	s->rb_bits = s->cluster_bits + 3 - order;
	s->rb_entries = 1u << s->rb_bits;
}

/* Rewrite the refcounts with entries of 2^ORDER bits: computed from the
 * metadata, written after the end of the file, then the header switches
 * to them (table offset, size and order in one write), so a crash leaves
 * the old or the new structure, never a mix.  The old structure's
 * clusters are free afterwards. */
int qcow2_change_refcount_order(struct qcow2 *s, unsigned order)
{
	unsigned old = s->refcount_order;
	uint64_t old_table = s->reftable_offset;
	struct checker c;
	int r;
	if (order == old)
		return 0;
	if ((r = qcow2_metadata_sync(s)) < 0 ||
	    (r = checker_init(&c, s, NULL, 0)) < 0)
		return r;
	if ((r = compute(&c, false)) < 0)
		goto out;
	uint64_t max = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
	for (uint64_t i = 0; i < c.n; i++)
		if (c.refs[i] > max) {
			r = mimg_err(
				-EINVAL,
				"Cannot decrease refcount entry "
				"width to %u bits: Cluster at offset %#llx "
				"has a refcount of %llu",
				1u << order,
				(unsigned long long)(i * s->cluster_size),
				(unsigned long long)c.refs[i]);
			goto out;
		}
	if ((r = qcow2_refcount_writeback(s)) < 0)
		goto out;
	set_refcount_order(s, order);
	if ((r = rebuild(s, &c, true)) < 0 && s->reftable_offset == old_table) {
		/* The header still names the old structure. */
		set_refcount_order(s, old);
		qcow2_cache_clear(&s->rbc);
	}
out:
	free(c.refs);
	return r;
}

int qcow2_check(struct mimg *img, unsigned flags, struct mimg_check_result *res)
{
	struct qcow2 *s = qcow2_of(img);
	bool fix_leaks = flags & MIMG_CHECK_REPAIR_LEAKS;
	bool fix_errors = flags & MIMG_CHECK_REPAIR_ERRORS;
	bool need_rebuild = false;
	struct checker c = {0};
	int r;
	if ((fix_leaks || fix_errors) && img->read_only)
		return mimg_err(-EROFS, "%s: cannot repair a read-only image",
				qcow2_path(s));
	res->supported = true;
	pthread_mutex_lock(&s->lock);
	/* Deferred L2 updates and frees first: check what is on disk. */
	r = img->read_only ? 0 : qcow2_metadata_sync(s);
	if (r == 0)
		r = run_check(s, res, fix_leaks, fix_errors, &need_rebuild, &c);
	free(c.refs);
	if (r == 0 && need_rebuild && fix_errors) {
		uint64_t before = res->corruptions;
		msg(&c, "Rebuilding refcount structure");
		if ((r = rebuild_from_metadata(s)) == 0) {
			uint64_t leaks_fixed = res->leaks_fixed;
			reset_counts(res);
			r = run_check(s, res, fix_leaks, fix_errors,
				      &need_rebuild, &c);
			free(c.refs);
			res->leaks_fixed = leaks_fixed;
			if (before > res->corruptions)
				res->corruptions_fixed += before -
							  res->corruptions;
		}
	}
	uint64_t flags_bits = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT;
	if (r == 0 && (s->incompat & flags_bits) && fix_errors &&
	    !res->corruptions)
		r = qcow2_write_incompat(s, s->incompat & ~flags_bits);
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		/* The caller only frees results of a check that ran. */
		char *keep = strdup(mimg_errmsg());
		mimg_check_result_free(res);
		if (keep) {
			mimg_err(r, "%s", keep);
			free(keep);
		}
	}
	return r;
}

int qcow2_rebuild_dirty(struct qcow2 *s)
{
	pthread_mutex_lock(&s->lock);
	int r = rebuild_from_metadata(s);
	if (r == 0)
		r = qcow2_write_incompat(s,
					 s->incompat & ~QCOW2_INCOMPAT_DIRTY);
	if (r == 0)
		r = mimg_file_flush(s->file);
	pthread_mutex_unlock(&s->lock);
	return r;
}
