/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow version 1 images, read-only: qemu's first format, which qemu-img
 * still reads and writes and which old image stores hold.  A 48-byte
 * big-endian header, a backing file name, an L1 table of L2 table
 * offsets, L2 tables of cluster offsets; an entry with its top bit set is
 * a compressed cluster (raw deflate, its size in the bits below the top
 * one).  AES-encrypted images are refused (qemu-img needs a secret for
 * them and no longer creates them by default).
 *
 * Every table and cluster is checked against the file before it is read;
 * a read that reaches an entry outside the file fails, naming it.  The
 * last inflated cluster is kept for the next read of it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "codec.h"
#include "decoded.h"
#include "endian.h"
#include "error.h"
#include "image.h"
#include "iov-file.h"
#include "iov.h"
#include "runs.h"

#define QCOW_MAGIC "QFI\xfb"
#define QCOW_HEADER 48
#define QCOW_COMPRESSED (1ull << 63)
#define QCOW_NAME_MAX 1023 /* qemu-img's bound on the backing file name */

struct qcow {
	unsigned cluster_bits, l2_bits;
	uint64_t cluster_size, l2_bytes;
	uint64_t *l1; /* host order */
	uint64_t l1_size;
	uint64_t file_size;
};

static int qcow_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)filename;
	return len >= 8 && memcmp(buf, QCOW_MAGIC, 4) == 0 &&
			       ld_be32(buf + 4) == 1
		       ? 100
		       : 0;
}

/* The header's fields, each checked before use, with qemu-img's limits
 * and words. */
static int parse_header(struct mimg *img, struct qcow *s, const uint8_t *h)
{
	const char *fn = img->filename;
	uint32_t v = ld_be32(h + 4);
	uint64_t size = ld_be64(h + 24);

	if (memcmp(h, QCOW_MAGIC, 4) != 0)
		return mimg_err(-EINVAL, "%s: Image not in qcow format", fn);
	if (v != 1)
		return mimg_err(-ENOTSUP,
				"%s: qcow (v1) does not support qcow version "
				"%u\nTry the 'qcow2' driver instead.",
				fn, v);
	if (size <= 1)
		return mimg_err(-EINVAL,
				"%s: Image size is too small (must be at "
				"least 2 bytes)",
				fn);
	s->cluster_bits = h[32];
	s->l2_bits = h[33];
	if (s->cluster_bits < 9 || s->cluster_bits > 16)
		return mimg_err(-EINVAL,
				"%s: Cluster size must be between 512 and 64k",
				fn);
	if (s->l2_bits < 6 || s->l2_bits > 13)
		return mimg_err(-EINVAL,
				"%s: L2 table size must be between 512 and 64k",
				fn);
	if ((v = ld_be32(h + 36)) > 1)
		return mimg_err(-EINVAL,
				"%s: invalid encryption method in qcow header",
				fn);
	if (v == 1)
		return mimg_err(-ENOTSUP,
				"%s: qcow: AES-encrypted images are not "
				"supported",
				fn);
	s->cluster_size = 1ull << s->cluster_bits;
	s->l2_bytes = 8ull << s->l2_bits;
	unsigned shift = s->cluster_bits + s->l2_bits;
	if (size > UINT64_MAX - (1ull << shift))
		return mimg_err(-EINVAL, "%s: Image too large", fn);
	s->l1_size = (size + (1ull << shift) - 1) >> shift;
	/* qemu-img reads whole sectors */
	img->size = size / 512 * 512;
	uint64_t l1_off = ld_be64(h + 40);
	if (s->l1_size > (uint64_t)INT32_MAX / 8 ||
	    !ck_range_within(l1_off, s->l1_size * 8, s->file_size))
		return mimg_err(-EINVAL,
				"%s: qcow: L1 table of %llu entries at %llu is "
				"outside the file",
				fn, (unsigned long long)s->l1_size,
				(unsigned long long)l1_off);
	if (!(s->l1 = mimg__img_calloc(img, s->l1_size, 8)))
		return -ENOMEM;
	int r = mimg_file_pread_exact(img->file, s->l1, s->l1_size * 8, l1_off,
				      "qcow L1 table");
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < s->l1_size; i++)
		s->l1[i] = ld_be64(&s->l1[i]);
	return 0;
}

static int read_backing_name(struct mimg *img, struct qcow *s, const uint8_t *h)
{
	uint64_t off = ld_be64(h + 8);
	uint32_t len = ld_be32(h + 16);
	char name[QCOW_NAME_MAX + 1];
	if (!off)
		return 0;
	if (len > QCOW_NAME_MAX)
		return mimg_err(-EINVAL, "%s: Backing file name too long",
				img->filename);
	if (!ck_range_within(off, len, s->file_size))
		return mimg_err(-EINVAL,
				"%s: qcow: backing file name at %llu of %u "
				"bytes is outside the file",
				img->filename, (unsigned long long)off, len);
	int r = mimg_file_pread_exact(img->file, name, len, off,
				      "qcow backing file name");
	if (r < 0)
		return r;
	name[len] = '\0';
	if (!(img->backing_name = strdup(name)))
		return mimg_err(-ENOMEM, "out of memory");
	return 0;
}

/* The L2 entry of the cluster holding OFF into *ENTRY (0: not
 * allocated), its L2 table checked against the file. */
static int lookup(struct mimg *img, uint64_t off, uint64_t *entry)
{
	struct qcow *s = img->priv;
	uint64_t l1i = off >> (s->cluster_bits + s->l2_bits);
	uint64_t l2i = (off >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
	uint64_t l2 = s->l1[l1i];
	uint8_t b[8];

	*entry = 0;
	if (!l2)
		return 0;
	if (!ck_range_within(l2, s->l2_bytes, s->file_size))
		return mimg_err(
			-EIO,
			"%s: qcow: L1 entry %llu places its L2 table at "
			"%llu, outside the file",
			img->filename, (unsigned long long)l1i,
			(unsigned long long)l2);
	int r = mimg_file_pread_exact(img->file, b, 8, l2 + l2i * 8,
				      "qcow L2 entry");
	if (r == 0)
		*entry = ld_be64(b);
	return r;
}

/* Where a compressed cluster's bytes are: *COFF, *CSIZE. */
static void compressed_at(const struct qcow *s, uint64_t entry, uint64_t *coff,
			  uint64_t *csize)
{
	unsigned shift = 63 - s->cluster_bits;
	*coff = entry & ((1ull << shift) - 1);
	*csize = (entry >> shift) & (s->cluster_size - 1);
}

static int inflate_cluster(void *arg, const struct mimg_decode_unit *u,
			   const uint8_t *in, uint8_t *out)
{
	struct mimg *img = arg;
	if (codec_inflate_raw(in, u->stored, out, u->size) < 0)
		return mimg_err(-EIO,
				"%s: qcow: compressed cluster at %llu does not "
				"inflate to a cluster",
				img->filename, (unsigned long long)u->at);
	return 0;
}

/* Where the compressed cluster RUN->unit (its L2 entry) is stored. */
static int compressed_unit(struct mimg *img, const struct mimg_run *run,
			   struct mimg_decode_unit *u)
{
	struct qcow *s = img->priv;
	uint64_t coff, csize;
	compressed_at(s, run->unit, &coff, &csize);
	if (!ck_range_within(coff, csize, s->file_size))
		return mimg_err(-EIO,
				"%s: qcow: compressed cluster at %llu of %llu "
				"bytes is outside the file",
				img->filename, (unsigned long long)coff,
				(unsigned long long)csize);
	u->at = coff;
	u->stored = (size_t)csize;
	u->size = s->cluster_size;
	return 0;
}

/* One cluster at a time: unallocated, compressed, or stored at its
 * offset, as qemu-img reports them. */
static int qcow_map(struct mimg *img, uint64_t off, uint64_t len,
		    struct mimg_run *run)
{
	struct qcow *s = img->priv;
	uint64_t entry, skip = off & (s->cluster_size - 1);
	int r = lookup(img, off, &entry);
	if (r < 0)
		return r;
	run->len = min_u64(len, s->cluster_size - skip);
	if (!entry) {
		run->kind = MIMG_RUN_BELOW;
	} else if (entry & QCOW_COMPRESSED) {
		run->kind = MIMG_RUN_DECODED;
		run->unit = entry;
		run->skip = skip;
		run->compressed = true;
	} else {
		run->kind = MIMG_RUN_DATA;
		run->host = entry + skip;
	}
	return 0;
}

static const struct mimg_runs qcow_runs = {.map = qcow_map,
					   .unit = compressed_unit,
					   .decode = inflate_cluster,
					   .what = "qcow compressed cluster"};

static int qcow_open(struct mimg *img)
{
	struct qcow *s = img->priv;
	uint8_t h[QCOW_HEADER];
	int r;

	if ((r = mimg__read_header(img, h, sizeof(h), &s->file_size)) < 0 ||
	    (r = parse_header(img, s, h)) < 0 ||
	    (r = read_backing_name(img, s, h)) < 0)
		return r;
	img->cluster_size = (uint32_t)s->cluster_size;
	return 0;
}

const struct mimg_driver mimg_qcow_driver = {
	.name = "qcow",
	.priv_size = sizeof(struct qcow),
	.probe = qcow_probe,
	.open = qcow_open,
	.preadv = mimg__runs_preadv,
	.block_status = mimg__runs_block_status,
	.read_only = "version 1 images are read only in mimg (convert them "
		     "to qcow2)",
	.runs = &qcow_runs,
};
