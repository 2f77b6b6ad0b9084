/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * QED images, read-only: qemu deprecated the format in favour of qcow2
 * and keeps it for existing images, which this driver reads so that they
 * can be converted.  The header's fields are checked with qemu-img's
 * limits; every table and data cluster offset is checked against the
 * file before it is used, and a read that meets a bad one fails, naming
 * it.  Tables of one cluster are read although qemu-img refuses them.
 * An image marked as needing a check (a writer did not close it) is read
 * as it is, as qemu-img reads it read-only; its info shows no dirty flag,
 * as qemu-img's does not.
 *
 * The driver keeps the L1 entries the disk uses and reads L2 entries as
 * requests need them, a batch at a time: no cache to keep coherent, so
 * requests run in parallel.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qed.h"
#include "runs.h"

#define QED_MAGIC "QED\0"
/* qemu-img's bound on a backing file name (its PATH_MAX buffer). */
#define QED_NAME_MAX 4095u
/* L2 entries read at once: a run of clusters is found in one read. */
#define QED_BATCH 512u

/* A power of 2 in [LO, HI]. */
static bool pow2_in(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && is_pow2_u64(v);
}

bool qed_cluster_ok(const struct qed *s, uint64_t off)
{
	return (off & (s->cluster_size - 1)) == 0 &&
	       off >= (uint64_t)s->header_size * s->cluster_size &&
	       off < s->file_size;
}

bool qed_table_ok(const struct qed *s, uint64_t off)
{
	uint64_t last = (uint64_t)(s->table_size - 1) * s->cluster_size;
	return off <= UINT64_MAX - last && qed_cluster_ok(s, off) &&
	       qed_cluster_ok(s, off + last);
}

int qed_read_entries(struct mimg *img, uint64_t table, uint64_t first,
		     uint64_t n, uint64_t *out)
{
	int r = mimg_file_pread_exact(img->file, out, n * 8, table + first * 8,
				      "qed table");
	for (uint64_t i = 0; r == 0 && i < n; i++)
		out[i] = ld_le64(&out[i]);
	return r;
}

static int qed_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)filename;
	/* A shorter file is still one: qemu-img pads what it probes with
	 * zeroes (its driver then refuses it). */
	return len >= 4 && memcmp(buf, QED_MAGIC, 4) == 0 ? 100 : 0;
}

/* The sizes in the header, each checked before use. */
static int parse_geometry(struct mimg *img, struct qed *s, const uint8_t *h)
{
	const char *fn = img->filename;
	s->cluster_size = ld_le32(h + 4);
	s->table_size = ld_le32(h + 8);
	s->header_size = ld_le32(h + 12);
	if (!pow2_in(s->cluster_size, 4096, 1u << 26))
		return mimg_err(-EINVAL,
				"%s: qed: cluster size %" PRIu32
				" is not a power of 2 in [4096, 67108864]",
				fn, s->cluster_size);
	if (!pow2_in(s->table_size, 1, 16))
		return mimg_err(-EINVAL,
				"%s: qed: table size %" PRIu32
				" is not a power of 2 in [1, 16]",
				fn, s->table_size);
	if ((uint64_t)s->header_size * s->cluster_size > s->file_size)
		return mimg_err(-EINVAL,
				"%s: qed: header of %" PRIu32
				" clusters does not fit the file",
				fn, s->header_size);
	s->cluster_bits = (unsigned)__builtin_ctz(s->cluster_size);
	s->table_bits = (unsigned)__builtin_ctzll((uint64_t)s->table_size *
						  s->cluster_size / 8);
	uint64_t size = ld_le64(h + 48);
	unsigned span_bits = s->cluster_bits + 2 * s->table_bits;
	if (size % 512 || (span_bits < 64 && size > (1ull << span_bits)))
		return mimg_err(-EINVAL,
				"%s: qed: image size %llu is not whole "
				"sectors, or more than the tables map",
				fn, (unsigned long long)size);
	img->size = size;
	img->cluster_size = s->cluster_size;
	return 0;
}

/* The L1 entries that map the disk (the rest of the table is unused). */
static int read_l1(struct mimg *img, struct qed *s)
{
	unsigned l2_bits = s->cluster_bits + s->table_bits;
	if (!qed_table_ok(s, s->l1_offset))
		return mimg_err(-EINVAL,
				"%s: qed: the L1 table at %llu is not a whole "
				"table of clusters inside the file",
				img->filename,
				(unsigned long long)s->l1_offset);
	/* At most the table's entries: the size was checked against
	 * what the tables map. */
	s->l1_used = div_round_up_u64(img->size, 1ull << l2_bits);
	if (!(s->l1 = mimg__img_calloc(img, s->l1_used, 8)))
		return -ENOMEM;
	return qed_read_entries(img, s->l1_offset, 0, s->l1_used, s->l1);
}

static int read_backing_name(struct mimg *img, struct qed *s, const uint8_t *h)
{
	uint32_t off = ld_le32(h + 56), len = ld_le32(h + 60);
	char name[QED_NAME_MAX + 1];
	/* An empty name is no backing file, as qemu-img reads it. */
	if (!(s->features & QED_F_BACKING_FILE) || len == 0)
		return 0;
	if (len > QED_NAME_MAX ||
	    (uint64_t)off + len > (uint64_t)s->header_size * s->cluster_size)
		return mimg_err(-EINVAL,
				"%s: qed: backing file name at %" PRIu32
				" of %" PRIu32
				" bytes is not inside the header",
				img->filename, off, len);
	int r = mimg_file_pread_exact(img->file, name, len, off,
				      "qed backing file name");
	if (r < 0)
		return r;
	name[len] = '\0';
	if (!(img->backing_name = strdup(name)))
		return mimg_err(-ENOMEM, "out of memory");
	/* The flag says the backing file is raw, never probed. */
	if ((s->features & QED_F_BACKING_FORMAT_NO_PROBE) &&
	    !(img->backing_fmt = strdup("raw")))
		return mimg_err(-ENOMEM, "out of memory");
	return 0;
}

/* The kind of a data cluster entry E. */
static enum mimg_run_kind entry_kind(uint64_t e)
{
	return e == 0		       ? MIMG_RUN_BELOW
	       : e == QED_ZERO_CLUSTER ? MIMG_RUN_ZERO
				       : MIMG_RUN_DATA;
}

/*
 * The run at OFF, at most LEN bytes and within one L2 table.  Data
 * clusters make one run while each follows the one before in the file.
 */
static int qed_map(struct mimg *img, uint64_t off, uint64_t len,
		   struct mimg_run *run)
{
	struct qed *s = img->priv;
	unsigned l2_bits = s->cluster_bits + s->table_bits; /* at most 53 */
	uint64_t l1i = off >> l2_bits;
	uint64_t in_table = off & ((1ull << l2_bits) - 1);
	uint64_t cmask = s->cluster_size - 1;
	uint64_t l2 = s->l1[l1i], e[QED_BATCH];

	len = min_u64(len, (1ull << l2_bits) - in_table);
	if (!l2) {
		run->kind = MIMG_RUN_BELOW;
		run->len = len;
		return 0;
	}
	if (!qed_table_ok(s, l2))
		return mimg_err(-EIO,
				"%s: qed: L1 entry %llu gives the L2 table an "
				"invalid offset %llu",
				img->filename, (unsigned long long)l1i,
				(unsigned long long)l2);
	uint64_t first = in_table >> s->cluster_bits;
	uint64_t count = min_u64(QED_BATCH, ((off & cmask) + len + cmask) >>
						    s->cluster_bits);
	int r = qed_read_entries(img, l2, first, count, e);
	if (r < 0)
		return r;
	uint64_t i;
	for (i = 0; i < count; i++) {
		enum mimg_run_kind k = entry_kind(e[i]);
		if (k == MIMG_RUN_DATA && !qed_cluster_ok(s, e[i])) {
			if (i > 0)
				break; /* the run before it first */
			return mimg_err(-EIO,
					"%s: qed: L2 entry %llu of the table "
					"at %llu is an invalid cluster offset "
					"%llu",
					img->filename,
					(unsigned long long)(first + i),
					(unsigned long long)l2,
					(unsigned long long)e[i]);
		}
		if (i == 0)
			run->kind = k;
		else if (k != run->kind ||
			 (k == MIMG_RUN_DATA &&
			  e[i] != e[0] + (i << s->cluster_bits)))
			break;
	}
	if (run->kind == MIMG_RUN_DATA)
		run->host = e[0] + (off & cmask);
	run->len = min_u64(len, (i << s->cluster_bits) - (off & cmask));
	return 0;
}

static const struct mimg_runs qed_runs = {.map = qed_map};

static int qed_open(struct mimg *img)
{
	struct qed *s = img->priv;
	uint8_t h[QED_HEADER];
	uint64_t file_size;
	int r;

	if ((r = mimg__read_header(img, h, sizeof(h), &file_size)) < 0)
		return r;
	if (memcmp(h, QED_MAGIC, 4) != 0)
		return mimg_err(-EINVAL, "%s: Image not in QED format",
				img->filename);
	s->features = ld_le64(h + 16);
	if (s->features & ~QED_F_KNOWN)
		return mimg_err(-ENOTSUP, "%s: Unsupported QED features: %llx",
				img->filename,
				(unsigned long long)(s->features &
						     ~QED_F_KNOWN));
	s->file_size = file_size;
	if ((r = parse_geometry(img, s, h)) < 0)
		return r;
	/* Clusters start on whole clusters of the file. */
	s->file_size = file_size & ~(uint64_t)(s->cluster_size - 1);
	s->l1_offset = ld_le64(h + 40);
	if ((r = read_l1(img, s)) < 0 || (r = read_backing_name(img, s, h)) < 0)
		return r;
	return 0;
}

const struct mimg_driver mimg_qed_driver = {
	.name = "qed",
	.priv_size = sizeof(struct qed),
	.probe = qed_probe,
	.open = qed_open,
	.preadv = mimg__runs_preadv,
	.block_status = mimg__runs_block_status,
	.check = qed_check,
	.read_only = "images are read only in mimg (convert them to qcow2)",
	.runs = &qed_runs,
};
