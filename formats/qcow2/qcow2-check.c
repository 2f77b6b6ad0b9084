/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Consistency check and repair.  The check recomputes every cluster's
 * reference count from the metadata (header, L1/L2 tables of the image
 * and its snapshots, compressed extents, snapshot table, refcount
 * structures) and compares it with the stored refcounts:
 *   stored > computed: leak;  stored < computed: corruption.
 * Leaks and refcounts too small are repaired in place.  A used cluster
 * whose refcount is 0, or a damaged refcount table, is repaired by
 * writing a complete new refcount structure where nothing the old one
 * names lies (in clusters nothing uses, as qemu-img places it, for a
 * check; after the end of the file when a dirty image with lazy
 * refcounts is opened read-write) and switching the header to it in one
 * write.  What a check says, and when, follows qemu-img's check.
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

/* Tables read outside the L2 cache (unaligned ones, ones the file holds
 * in part): at most this many bytes per byte of the file, plus 64 MiB. */
#define TABLE_BYTES_PER_FILE_BYTE 16

struct checker {
	struct qcow2 *s;
	uint32_t *refs;
	uint64_t n; /* clusters tracked (the file's size) */
	uint64_t file_size;
	struct mimg_check_result *res;
	unsigned fix;	      /* MIMG_CHECK_REPAIR_* allowed while counting */
	uint64_t table_bytes; /* read by read_table so far */
	bool rebuild;	      /* the refcount table itself is damaged */
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

/* Count one reference to every cluster overlapping [OFF, OFF+LEN), as
 * qemu counts them: a region reaching a cluster or more past the end of
 * the file is refused (a corruption), one ending less than that past it
 * (a last cluster the file holds in part) is counted, and a count that
 * would exceed what a refcount entry holds is an overflow. */
static void inc(struct checker *c, uint64_t off, uint64_t len)
{
	struct qcow2 *s = c->s;
	if (len == 0)
		return;
	if (off + len < off || off + len >= c->file_size + s->cluster_size) {
		msg(c,
		    "ERROR: counting reference for region exceeding the end "
		    "of the file by one cluster or more: offset 0x%llx size "
		    "0x%llx",
		    (unsigned long long)off, (unsigned long long)len);
		corrupt(c);
		return;
	}
	uint64_t first = off >> s->cluster_bits;
	uint64_t last = (off + len - 1) >> s->cluster_bits;
	uint64_t max = s->refcount_max < UINT32_MAX ? s->refcount_max
						    : UINT32_MAX;
	for (uint64_t i = first; i <= last; i++) {
		if (i >= c->n)
			c->n = i + 1; /* the file's last, partial cluster */
		if (c->refs[i] >= max) {
			msg(c, "ERROR: overflow cluster offset=0x%llx",
			    (unsigned long long)(i << s->cluster_bits));
			msg(c, "Use qemu-img amend to increase the refcount "
			       "entry width or qemu-img convert to create a "
			       "clean copy if the image cannot be opened for "
			       "writing");
			corrupt(c);
			continue;
		}
		c->refs[i]++;
	}
}

/* A table of level LEVEL ("l1", "l2") could not be read: an error of
 * the check, in qemu's words. */
static void table_unreadable(struct checker *c, const char *level)
{
	msg(c, "ERROR: I/O error in check_refcounts_%s", level);
	if (c->res)
		c->res->check_errors++;
	mimg_err_clear();
}

/* Read what the file holds of a table of LEN bytes at OFF into BUF:
 * *IN_FILE bytes (the rest reads as zeroes, as qemu reads it: entries
 * with nothing to say, which the caller skips).  The bytes read this way
 * over the whole check are bounded by what the file holds, so that a
 * table named over and over costs no more than the file.  0, or a
 * negative errno after saying it (an error of the check). */
static int read_table(struct checker *c, const char *what, uint64_t off,
		      void *buf, size_t len, size_t *in_file)
{
	size_t n = 0;
	if (off < c->file_size)
		n = c->file_size - off < len ? (size_t)(c->file_size - off)
					     : len;
	*in_file = n;
	c->table_bytes += n;
	if (c->table_bytes >
	    TABLE_BYTES_PER_FILE_BYTE * c->file_size + (64u << 20)) {
		msg(c,
		    "ERROR %s at 0x%llx not read: the tables named exceed "
		    "%u bytes per byte of the file",
		    what, (unsigned long long)off, TABLE_BYTES_PER_FILE_BYTE);
		if (c->res)
			c->res->check_errors++;
		return -EFBIG;
	}
	int r = n ? mimg_file_pread_exact(c->s->file, buf, n, off, what) : 0;
	if (r < 0)
		table_unreadable(c,
				 strcmp(what, "L2 table") == 0 ? "l2" : "l1");
	return r;
}

/* The L2 table at OFF, as the check reads it: from the L2 cache when it
 * is where a table belongs (aligned, inside the file), else read into
 * *OWN (freed by the caller) as far as the file holds it.  *N: the
 * entries to look at.  0, or a negative errno (the table is said and
 * counted as unreadable). */
static int check_l2_table(struct checker *c, uint64_t off, uint8_t **l2,
			  uint8_t **own, uint32_t *n)
{
	struct qcow2 *s = c->s;
	size_t esz = s->l2e_size, len = s->l2_entries * esz;
	size_t in_file;
	*own = NULL;
	*n = s->l2_entries;
	if (is_aligned_u64(off, s->cluster_size) && off < c->file_size &&
	    len <= c->file_size - off) {
		int r = qcow2_cache_get(&s->l2c, s->file, off, "L2 table", l2);
		if (r < 0)
			table_unreadable(c, "l2");
		return r;
	}
	if (!(*own = malloc(len)))
		return mimg_err(-ENOMEM, "out of memory");
	int r = read_table(c, "L2 table", off, *own, len, &in_file);
	/* A last entry the file holds in part reads as zeroes after it. */
	memset(*own + in_file, 0, (in_file + esz - 1) / esz * esz - in_file);
	*n = (uint32_t)((in_file + esz - 1) / esz);
	*l2 = *own;
	return r;
}

/* A preallocated zero cluster at an unaligned offset becomes a plain
 * zero cluster (entry I of the L2 table at L2_OFF, held in L2): qemu's
 * repair.  0 or a negative errno. */
static int zero_unaligned_entry(struct checker *c, uint64_t l2_off, uint8_t *l2,
				uint32_t i)
{
	struct qcow2 *s = c->s;
	size_t esz = s->l2e_size;
	uint64_t bm = qcow2_l2_bitmap(s, l2, i);
	if (s->extended_l2) /* allocated subclusters read as zeroes */
		qcow2_set_l2(s, l2, i, 0,
			     ((bm | bm << 32) & QCOW2_BITMAP_ZERO));
	else
		qcow2_set_l2(s, l2, i, QCOW2_OFLAG_ZERO, 0);
	/* L2 is the cached table or the check's own copy: either way what
	 * it holds stays what the file holds. */
	int r = mimg_file_pwrite(s->file, l2 + i * esz, esz, l2_off + i * esz);
	if (r == 0)
		r = mimg_file_flush(s->file);
	return r;
}

/* Count what entry I of the L2 table at L2_OFF refers to, judging the
 * entry as qemu's check does (its words, its counts); ACTIVE: the
 * image's own L1, whose clusters the allocation figures count. */
static int check_l2_entry(struct checker *c, uint64_t l2_off, uint8_t *l2,
			  uint32_t i, bool active, uint64_t *next_contig)
{
	struct qcow2 *s = c->s;
	struct mimg_check_result *res = c->res;
	uint64_t e = qcow2_l2_entry(s, l2, i), bm = qcow2_l2_bitmap(s, l2, i);
	uint64_t off = e & QCOW2_OFFSET_MASK;
	bool ext = s->extended_l2;
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint64_t coff, clen;
		if (e & QCOW2_OFLAG_COPIED) {
			msg(c,
			    "ERROR: coffset=0x%llx: copied flag must never "
			    "be set for compressed clusters",
			    (unsigned long long)(e & s->coffset_mask));
			e &= ~QCOW2_OFLAG_COPIED;
			corrupt(c);
		}
		if (s->data_file_name || (ext && bm)) {
			msg(c,
			    "ERROR compressed cluster %u with %s, "
			    "entry=0x%llx",
			    i,
			    s->data_file_name ? "data file"
					      : "non-zero subcluster "
						"allocation bitmap",
			    (unsigned long long)e);
			corrupt(c);
			return 0;
		}
		qcow2_compressed_extent(s, e, &coff, &clen);
		inc(c, coff, clen);
		if (active && res) {
			res->allocated_clusters++;
			res->compressed_clusters++;
			/* Compressed clusters count as fragmented by
			 * nature, as qemu counts them. */
			res->fragmented_clusters++;
		}
		return 0;
	}
	if (e & QCOW2_L2_RESERVED) {
		msg(c, "ERROR found l2 entry with reserved bits set: %llx",
		    (unsigned long long)e);
		corrupt(c);
	}
	bool zero_flag = !ext && (e & QCOW2_OFLAG_ZERO);
	if (!off && !(s->data_file_name && (e & QCOW2_OFLAG_COPIED))) {
		if (!zero_flag && ext && (bm & QCOW2_BITMAP_ALLOC)) {
			msg(c, "ERROR: Unallocated cluster has non-zero "
			       "subcluster allocation map");
			corrupt(c);
		}
		return 0;
	}
	if (ext && ((bm >> 32) & bm)) {
		msg(c,
		    "ERROR offset=%llx: Allocated cluster has corrupted "
		    "subcluster allocation bitmap",
		    (unsigned long long)off);
		corrupt(c);
	}
	if (!is_aligned_u64(off, s->cluster_size)) {
		bool data = ext ? (bm & QCOW2_BITMAP_ALLOC) != 0 : !zero_flag;
		bool fix = !data && (c->fix & MIMG_CHECK_REPAIR_ERRORS);
		corrupt(c);
		if (data)
			msg(c,
			    "ERROR offset=%llx: Data cluster is not properly "
			    "aligned; L2 entry corrupted.",
			    (unsigned long long)off);
		else
			msg(c,
			    "%s offset=%llx: Preallocated cluster is not "
			    "properly aligned; L2 entry corrupted.",
			    fix ? "Repairing" : "ERROR",
			    (unsigned long long)off);
		if (fix) {
			int r = zero_unaligned_entry(c, l2_off, l2, i);
			if (r < 0) {
				msg(c,
				    "ERROR: Failed to overwrite L2 table "
				    "entry: %s",
				    strerror(-r));
				res->check_errors++;
				return r;
			}
			res->corruptions--;
			res->corruptions_fixed++;
			return 0; /* nothing refers to the cluster now */
		}
	}
	if (active && res) {
		res->allocated_clusters++;
		if (*next_contig && off != *next_contig)
			res->fragmented_clusters++;
	}
	*next_contig = off + s->cluster_size;
	if (!s->data_file_name)
		inc(c, off, s->cluster_size);
	return 0;
}

static int walk_l2(struct checker *c, uint64_t l2_off, bool active)
{
	uint64_t next_contig = 0;
	uint8_t *l2, *own;
	uint32_t n;
	int r = check_l2_table(c, l2_off, &l2, &own, &n);
	for (uint32_t i = 0; r == 0 && i < n; i++)
		r = check_l2_entry(c, l2_off, l2, i, active, &next_contig);
	free(own);
	/* A table that could not be read was said and counted. */
	return r == -ENOMEM ? r : 0;
}

static int walk_l1(struct checker *c, uint64_t l1_off, uint32_t l1_size,
		   const uint64_t *mem_l1, bool active)
{
	struct qcow2 *s = c->s;
	uint64_t *l1 = NULL;
	int r = 0;
	inc(c, l1_off, (uint64_t)l1_size * 8);
	if (!mem_l1) {
		/* Only what the file holds: the rest reads as zeroes. */
		size_t len = (size_t)l1_size * 8, in_file;
		if (l1_off >= c->file_size)
			len = 0;
		else if (c->file_size - l1_off < len)
			len = (size_t)(c->file_size - l1_off + 7) & ~(size_t)7;
		l1 = calloc(1, len + 8);
		if (!l1)
			return mimg_err(-ENOMEM, "out of memory");
		if (read_table(c, "snapshot L1 table", l1_off, l1, len,
			       &in_file) < 0) {
			free(l1);
			return 0;
		}
		l1_size = (uint32_t)((in_file + 7) / 8);
		for (uint32_t i = 0; i < l1_size; i++)
			l1[i] = ld_be64(&l1[i]);
		mem_l1 = l1;
	}
	for (uint32_t i = 0; i < l1_size && r == 0; i++) {
		uint64_t e = mem_l1[i], off = e & QCOW2_OFFSET_MASK;
		if (!e)
			continue;
		if (e & QCOW2_L1_RESERVED) {
			msg(c,
			    "ERROR found L1 entry with reserved bits set: "
			    "%llx",
			    (unsigned long long)e);
			corrupt(c);
		}
		inc(c, off, s->cluster_size);
		if (!is_aligned_u64(off, s->cluster_size)) {
			msg(c,
			    "ERROR l2_offset=%llx: Table is not cluster "
			    "aligned; L1 entry corrupted",
			    (unsigned long long)off);
			corrupt(c);
		}
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
	inc(opaque, off, len);
}

static void inc_crypt_cb(void *opaque, uint64_t off, uint64_t len)
{
	inc(opaque, off, len);
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
	inc(c, 0, s->cluster_size);
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
		inc(c, s->snapshots_offset, snapshot_table_size(s));
	if ((r = qcow2_bitmap_refs(s, inc_cb, c)) < 0)
		return r;
	if ((r = qcow2_crypt_refs(s, inc_crypt_cb, c)) < 0)
		return r;
	if (!with_refcount_structs)
		return 0;
	inc(c, s->reftable_offset,
	    (uint64_t)s->reftable_clusters * s->cluster_size);
	for (uint64_t i = 0; i < s->reftable_size; i++) {
		uint64_t e = s->reftable[i];
		enum refblock_fault f = refblock_entry_fault(c, e);
		if (f == REFBLOCK_OK) {
			uint64_t k = e >> s->cluster_bits;
			if (!e)
				continue;
			inc(c, e, s->cluster_size);
			/* A block something else uses too (or the table
			 * names twice) cannot be trusted: rebuild. */
			if (c->refs[k] != 1) {
				msg(c, "ERROR refcount block %llu refcount=%u",
				    (unsigned long long)i, c->refs[k]);
				corrupt(c);
				c->rebuild = true;
			}
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

/* C counting S's references into RES (NULL: counts only), repairing
 * what FIX (MIMG_CHECK_REPAIR_*) allows while it counts. */
static int checker_init(struct checker *c, struct qcow2 *s,
			struct mimg_check_result *res, unsigned fix)
{
	uint64_t fsize;
	int r = mimg_file_size(s->file, &fsize);
	if (r < 0)
		return r;
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->res = res;
	c->fix = fix;
	c->file_size = fsize;
	c->n = div_round_up_u64(fsize, s->cluster_size);
	/* One counter per host cluster: bound the memory (1 GiB). */
	if (c->n > (1ull << 28))
		return mimg_err(-ENOMEM,
				"%s: qcow2: %llu clusters are too many "
				"to check in memory",
				qcow2_path(s), (unsigned long long)c->n);
	/* One more: a region may end in the cluster after the file's. */
	c->refs = calloc(c->n + 1, sizeof(uint32_t));
	if (!c->refs)
		return mimg_err(-ENOMEM, "out of memory for %llu refcounts",
				(unsigned long long)c->n);
	return 0;
}

/* Block J of refcounts REFS (TOTAL clusters known) in S's entry width
 * into BLK (a cluster); counts past TOTAL are 0, counts too large for
 * the width are capped. */
static void encode_block(const struct qcow2 *s, uint8_t *blk,
			 const uint32_t *refs, uint64_t total, uint64_t j)
{
	uint64_t first = j * s->rb_entries;
	memset(blk, 0, s->cluster_size);
	for (uint64_t k = 0; k < s->rb_entries && first + k < total; k++) {
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
}

/* Write the table MT (E entries, T clusters, the blocks already written)
 * at TABLE_OFF and switch the header to it, with the refcount order too
 * when NEW_ORDER; S then uses it (MT is taken). */
static int switch_reftable(struct qcow2 *s, uint64_t **mt, uint64_t e,
			   uint64_t t, uint64_t table_off, bool new_order)
{
	uint8_t *tab = calloc(1, t * s->cluster_size);
	if (!tab)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint64_t j = 0; j < e; j++)
		st_be64(tab + j * 8, (*mt)[j]);
	int r = mimg_file_pwrite(s->file, tab, t * s->cluster_size, table_off);
	free(tab);
	if (r == 0)
		r = mimg_file_flush(s->file);
	if (r == 0)
		r = new_order ? qcow2_write_reftable_order(s, table_off,
							   (uint32_t)t)
			      : qcow2_write_reftable_fields(s, table_off,
							    (uint32_t)t);
	if (r < 0)
		return r;
	qcow2_use_reftable(s, mt, table_off, (uint32_t)t);
	qcow2_cache_clear(&s->rbc);
	s->free_hint = 0;
	s->free_byte = 0;
	return mimg_file_flush(s->file);
}

/* Write a fresh refcount structure for REFS (without refcount
 * structures) after the end of the file and switch the header to it
 * (with the refcount order too when NEW_ORDER): nothing the old
 * structure names is overwritten, whatever it counted. */
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
	uint64_t *mt = calloc(E, sizeof(uint64_t));
	r = 0;
	if (!blk || !mt) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t j = 0; j < B; j++) {
		encode_block(s, blk, refs, total, j);
		if ((r = mimg_file_pwrite(s->file, blk, cs, (start + j) * cs)) <
		    0)
			goto out;
		mt[j] = (start + j) * cs;
	}
	r = switch_reftable(s, &mt, E, T, (start + B) * cs, new_order);
out:
	free(blk);
	free(mt);
	return r;
}

/* A structure built as qemu's check builds it, in clusters the counted
 * references leave free: the old structure counts as used there, so
 * nothing it names is overwritten, and a crash before the header
 * switches leaves it whole. */
struct placement {
	struct qcow2 *s;
	uint32_t *refs;	     /* counts, grown with the allocations */
	uint64_t n;	     /* clusters counted */
	uint64_t *mt;	     /* the new table: block offsets */
	uint64_t entries;    /* its length, whole clusters of entries */
	uint64_t first_free; /* where the next search starts */
	uint8_t *blk;
};

static int placement_grow(struct placement *p, uint64_t n)
{
	if (n <= p->n)
		return 0;
	if (n > (1ull << 28) + (1ull << 20))
		return mimg_err(-ENOMEM,
				"%s: qcow2: rebuilt refcount "
				"structure too large",
				qcow2_path(p->s));
	uint32_t *refs = realloc(p->refs, n * sizeof(uint32_t));
	if (!refs)
		return mimg_err(-ENOMEM, "out of memory");
	memset(refs + p->n, 0, (n - p->n) * sizeof(uint32_t));
	p->refs = refs;
	p->n = n;
	return 0;
}

/* COUNT free clusters in a row from p->first_free on (the counts grow
 * past the end when none are), marked used; *CLUSTER is the first.
 * p->first_free moves to the first free cluster met. */
static int placement_alloc(struct placement *p, uint64_t count,
			   uint64_t *cluster)
{
	uint64_t cl = p->first_free, run = 0;
	bool first_gap = true;
	for (; cl < p->n && run < count; cl++) {
		if (p->refs[cl]) {
			run = 0;
			continue;
		}
		run++;
		if (first_gap) {
			p->first_free = cl;
			first_gap = false;
		}
	}
	int r = run < count ? placement_grow(p, cl + count - run) : 0;
	if (r < 0)
		return r;
	cl -= run;
	for (uint64_t i = 0; i < count; i++)
		p->refs[cl + i] = 1;
	*cluster = cl;
	return 0;
}

/* Write the blocks counting clusters [FIRST, END) that hold any in use,
 * each placed first where it has none yet; *GROWN when the table had to
 * grow for one. */
static int placement_write_blocks(struct placement *p, uint64_t first,
				  uint64_t end, bool *grown)
{
	struct qcow2 *s = p->s;
	uint64_t cs = s->cluster_size, per = cs / 8;
	int r;
	*grown = false;
	for (uint64_t cl = first; cl < end && cl < p->n; cl++) {
		if (!p->refs[cl])
			continue;
		uint64_t j = cl >> s->rb_bits, start = j << s->rb_bits;
		if (j >= p->entries || !p->mt[j]) {
			uint64_t at;
			if (p->first_free < start)
				p->first_free = start;
			if ((r = placement_alloc(p, 1, &at)) < 0)
				return r;
			if (at >= end)
				end = at + 1;
			if (j >= p->entries) {
				uint64_t e = (j / per + 1) * per;
				if ((r = qcow2_reftable_fits(
					     s, e / per,
					     "rebuilt refcount table")) < 0)
					return r;
				uint64_t *mt = realloc(p->mt, e * 8);
				if (!mt)
					return mimg_err(-ENOMEM,
							"out of memory");
				memset(mt + p->entries, 0,
				       (e - p->entries) * 8);
				p->mt = mt;
				p->entries = e;
				*grown = true;
			}
			p->mt[j] = at * cs;
		}
		encode_block(s, p->blk, p->refs, p->n, j);
		if ((r = mimg_file_pwrite(s->file, p->blk, cs, p->mt[j])) < 0)
			return r;
		cl = start + s->rb_entries - 1;
	}
	return 0;
}

/* Rebuild from C's counts (the old structure counted in them): the
 * blocks first, then the table in the first free run from the start,
 * the blocks counting its clusters written again, again until the table
 * stops growing. */
static int rebuild_in_free_clusters(struct qcow2 *s, struct checker *c)
{
	struct placement p = {.s = s, .refs = c->refs, .n = c->n};
	uint64_t per = s->cluster_size / 8, table = 0;
	bool grown;
	int r;
	c->refs = NULL;
	if (!(p.blk = malloc(s->cluster_size))) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	if ((r = placement_write_blocks(&p, 0, p.n, &grown)) < 0)
		goto out;
	do {
		p.first_free = 0;
		if ((r = placement_alloc(&p, p.entries / per, &table)) < 0 ||
		    (r = placement_write_blocks(&p, table,
						table + p.entries / per,
						&grown)) < 0)
			goto out;
	} while (grown);
	r = switch_reftable(s, &p.mt, p.entries, p.entries / per,
			    table * s->cluster_size, false);
out:
	c->refs = p.refs;
	c->n = p.n;
	free(p.mt);
	free(p.blk);
	return r;
}

/* The counters a comparison changes, kept aside where qemu's check
 * discards what a pass counted. */
struct counts {
	uint64_t corruptions, leaks, check_errors;
	uint64_t corruptions_fixed, leaks_fixed;
};

static struct counts counts_of(const struct mimg_check_result *res)
{
	return (struct counts){res->corruptions, res->leaks, res->check_errors,
			       res->corruptions_fixed, res->leaks_fixed};
}

static void set_counts(struct mimg_check_result *res, struct counts n)
{
	res->corruptions = n.corruptions;
	res->leaks = n.leaks;
	res->check_errors = n.check_errors;
	res->corruptions_fixed = n.corruptions_fixed;
	res->leaks_fixed = n.leaks_fixed;
}

/* Store refcount RC for cluster I; a cluster no longer used is given
 * back to the host file (qemu discards it too). */
static int repair_refcount(struct checker *c, uint64_t i, uint64_t rc)
{
	struct qcow2 *s = c->s;
	int r = qcow2_set_refcount(s, i, rc);
	if (r < 0 || rc)
		return r;
	qcow2_cache_drop(&s->l2c, i << s->cluster_bits);
	qcow2_meta_remove_cluster(s, i);
	(void)mimg_file_punch_hole(s->file, i << s->cluster_bits,
				   s->cluster_size);
	return 0;
}

/* Compare computed and stored refcounts, in qemu's words, repairing what
 * FIX (MIMG_CHECK_REPAIR_*) allows in place: leaks (stored too high)
 * and refcounts too small.  A used cluster whose stored refcount is 0
 * is not repaired here: *NEED_REBUILD (qemu's rule). */
static int compare(struct checker *c, unsigned fix, bool *need_rebuild,
		   uint64_t *highest)
{
	struct qcow2 *s = c->s;
	int r;
	*need_rebuild = c->rebuild;
	*highest = 0;
	for (uint64_t i = 0; i < c->n; i++) {
		uint64_t stored, want = c->refs[i];
		if ((r = stored_refcount(c, i, &stored)) < 0) {
			msg(c, "Can't get refcount for cluster %llu: %s",
			    (unsigned long long)i, strerror(-r));
			mimg_err_clear();
			c->res->check_errors++;
			continue;
		}
		if (stored || want)
			*highest = i + 1;
		if (stored == want)
			continue;
		bool leak = stored > want, repair = false;
		if (stored == 0)
			*need_rebuild = true;
		else
			repair = fix & (leak ? MIMG_CHECK_REPAIR_LEAKS
					     : MIMG_CHECK_REPAIR_ERRORS);
		msg(c, "%s cluster %llu refcount=%llu reference=%llu",
		    repair ? "Repairing"
		    : leak ? "Leaked"
			   : "ERROR",
		    (unsigned long long)i, (unsigned long long)stored,
		    (unsigned long long)want);
		/* A count the entries cannot hold stays a corruption. */
		if (repair && want <= s->refcount_max) {
			if ((r = repair_refcount(c, i, want)) < 0)
				return r;
			if (leak)
				c->res->leaks_fixed++;
			else
				c->res->corruptions_fixed++;
			continue;
		}
		if (leak)
			c->res->leaks++;
		else
			c->res->corruptions++;
	}
	return 0;
}

/* OFLAG_COPIED must be set exactly when the refcount is 1 (active L1 and
 * its L2 tables); FIX sets or clears it where it is wrong. */
static int check_copied(struct checker *c, bool fix)
{
	struct qcow2 *s = c->s;
	struct mimg_check_result *res = c->res;
	uint64_t *l1 = s->l1_active ? s->l1_active : s->l1;
	const char *verb = fix ? "Repairing" : "ERROR";
	size_t esz = s->l2e_size;
	int r = 0;
	for (uint32_t i = 0; i < s->l1_size && !s->l1_active && r == 0; i++) {
		uint64_t e = l1[i], off = e & QCOW2_OFFSET_MASK, rc;
		/* A refcount that cannot be read was said by compare. */
		if (!off ||
		    stored_refcount(c, off >> s->cluster_bits, &rc) < 0) {
			mimg_err_clear();
			continue;
		}
		if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
			msg(c,
			    "%s OFLAG_COPIED L2 cluster: l1_index=%u "
			    "l1_entry=%llx refcount=%llu",
			    verb, i, (unsigned long long)e,
			    (unsigned long long)rc);
			if (fix) {
				uint8_t b[8];
				l1[i] = rc == 1 ? (e | QCOW2_OFLAG_COPIED)
						: (e & ~QCOW2_OFLAG_COPIED);
				st_be64(b, l1[i]);
				if ((r = mimg_file_pwrite(s->file, b, 8,
							  s->l1_offset +
								  i * 8ull)) <
				    0)
					break;
				res->corruptions_fixed++;
			} else {
				res->corruptions++;
			}
		}
		uint8_t *l2, *own = NULL;
		uint32_t n;
		if (s->data_file_name) /* its clusters have no refcounts */
			continue;
		if ((r = check_l2_table(c, off, &l2, &own, &n)) < 0) {
			free(own);
			r = r == -ENOMEM ? r : 0; /* said and counted */
			continue;
		}
		uint64_t dirty = 0;
		for (uint32_t j = 0; j < n; j++) {
			uint64_t le = qcow2_l2_entry(s, l2, j);
			uint64_t host = le & QCOW2_OFFSET_MASK;
			if ((le & QCOW2_OFLAG_COMPRESSED) || !host ||
			    stored_refcount(c, host >> s->cluster_bits, &rc) <
				    0) {
				mimg_err_clear();
				continue;
			}
			if ((rc == 1) == !!(le & QCOW2_OFLAG_COPIED))
				continue;
			msg(c,
			    "%s OFLAG_COPIED data cluster: l2_entry=%llx "
			    "refcount=%llu",
			    verb, (unsigned long long)le,
			    (unsigned long long)rc);
			if (!fix) {
				res->corruptions++;
				continue;
			}
			qcow2_set_l2(s, l2, j,
				     rc == 1 ? (le | QCOW2_OFLAG_COPIED)
					     : (le & ~QCOW2_OFLAG_COPIED),
				     qcow2_l2_bitmap(s, l2, j));
			dirty++;
		}
		/* The cached table is written back dirty; a copy is written
		 * as far as it was read. */
		if (dirty)
			r = own ? mimg_file_pwrite(s->file, own, n * esz, off)
				: qcow2_cache_writeback(&s->l2c, s->file);
		free(own);
		if (r == 0)
			res->corruptions_fixed += dirty;
	}
	return r;
}

/* A refcount structure that cannot describe a used cluster, written
 * anew from the references C counted (the old structure's clusters
 * among them, as qemu counts them); then the references are counted
 * again and, with FIX's leak repair, the old structure, now leaked, is
 * freed ("Repairing cluster ..."), a repair the result does not count.
 * What was wrong before counts as fixed. */
static int rebuild_in_check(struct checker *c, unsigned fix, uint64_t *highest)
{
	struct qcow2 *s = c->s;
	struct mimg_check_result *res = c->res;
	struct counts old = counts_of(res);
	uint64_t fresh_leaks = 0;
	bool still_broken = false;
	msg(c, "Rebuilding refcount structure");
	int r = rebuild_in_free_clusters(s, c);
	if (r < 0)
		return r;
	res->corruptions = res->leaks = 0;
	free(c->refs);
	if ((r = checker_init(c, s, res, 0)) < 0 || (r = compute(c, true)) < 0)
		return r;
	if (fix & MIMG_CHECK_REPAIR_LEAKS) {
		struct counts saved = counts_of(res);
		set_counts(res, (struct counts){0});
		if ((r = compare(c, MIMG_CHECK_REPAIR_LEAKS, &still_broken,
				 highest)) < 0)
			return r;
		if (still_broken)
			msg(c, "ERROR rebuilt refcount structure is still "
			       "broken");
		fresh_leaks = res->leaks;
		set_counts(res, saved);
	}
	if (res->corruptions < old.corruptions)
		res->corruptions_fixed += old.corruptions - res->corruptions;
	if (res->leaks < old.leaks)
		res->leaks_fixed += old.leaks - res->leaks;
	res->leaks += fresh_leaks;
	return 0;
}

/* qemu's refcount check: count the references, compare (saying what
 * differs), then repair what FIX allows: in place by a second
 * comparison whose counts replace the first's, or, for a refcount of 0
 * on a used cluster, by rebuilding the structure (-r all; a repair
 * without MIMG_CHECK_REPAIR_ERRORS fails with -EIO there, as qemu's
 * does); the OFLAG_COPIED flags last. */
static int check_refcounts(struct qcow2 *s, struct mimg_check_result *res,
			   unsigned fix)
{
	struct checker c;
	bool need_rebuild;
	uint64_t highest;
	int r = checker_init(&c, s, res, fix);
	if (r < 0)
		return r;
	if ((r = compute(&c, true)) < 0)
		goto out;
	struct counts before = counts_of(res);
	if ((r = compare(&c, 0, &need_rebuild, &highest)) < 0)
		goto out;
	if (need_rebuild && (fix & MIMG_CHECK_REPAIR_ERRORS)) {
		r = rebuild_in_check(&c, fix, &highest);
	} else if (fix && need_rebuild) {
		msg(&c, "ERROR need to rebuild refcount structures");
		res->check_errors++;
		r = mimg_err(-EIO, "%s", strerror(EIO));
	} else if (fix && (res->leaks || res->corruptions)) {
		set_counts(res, before);
		r = compare(&c, fix, &need_rebuild, &highest);
	}
	if (r == 0)
		r = check_copied(&c, fix & MIMG_CHECK_REPAIR_ERRORS);
	res->image_end_offset = highest * s->cluster_size;
	res->total_clusters = div_round_up_u64(s->img->size, s->cluster_size);
out:
	free(c.refs);
	return r;
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

/* qemu's check of the snapshot table: a version 3 image's entries carry
 * at least the VM state and disk sizes (16 bytes of extra data).  Said
 * before the refcount check, as qemu says it; the number found. */
static uint64_t incomplete_snapshots(struct qcow2 *s,
				     struct mimg_check_result *res,
				     unsigned fix)
{
	struct checker c = {.s = s, .res = res};
	uint64_t n = 0;
	for (uint32_t i = 0; s->version >= 3 && i < s->nb_snapshots; i++) {
		if (s->snaps[i].extra_len >= 16)
			continue;
		msg(&c, "%s snapshot table entry %u is incomplete",
		    fix & MIMG_CHECK_REPAIR_ERRORS ? "Repairing" : "ERROR", i);
		n++;
	}
	return n;
}

int qcow2_check(struct mimg *img, unsigned flags, struct mimg_check_result *res)
{
	struct qcow2 *s = qcow2_of(img);
	unsigned fix = flags &
		       (MIMG_CHECK_REPAIR_LEAKS | MIMG_CHECK_REPAIR_ERRORS);
	int r;
	if (fix && img->read_only)
		return mimg_err(-EROFS, "%s: cannot repair a read-only image",
				qcow2_path(s));
	res->supported = true;
	pthread_mutex_lock(&s->lock);
	/* Deferred L2 updates and frees first: check what is on disk. */
	r = img->read_only ? 0 : qcow2_metadata_sync(s);
	uint64_t snap_errors = r == 0 ? incomplete_snapshots(s, res, fix) : 0;
	if (r == 0)
		r = check_refcounts(s, res, fix);
	/* The snapshot table is written again after the refcounts are
	 * sound: every error it had counts as fixed then (qemu's count). */
	if (r == 0 && snap_errors && (fix & MIMG_CHECK_REPAIR_ERRORS) &&
	    (r = qcow2_snapshot_table_rewrite(s)) == 0) {
		res->corruptions_fixed += snap_errors;
		snap_errors = 0;
	}
	res->corruptions += snap_errors;
	uint64_t flags_bits = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT;
	if (r == 0 && (s->incompat & flags_bits) && fix && !res->check_errors &&
	    !res->corruptions)
		r = qcow2_write_incompat(s, s->incompat & ~flags_bits);
	pthread_mutex_unlock(&s->lock);
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
