/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 header and header extensions: parse, validate, update fields.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"

const char *qcow2_path(const struct qcow2 *s)
{
	return s->img->filename;
}

/* Names of incompatible bits from the image's own feature-name table, so
 * that unknown features are refused by name as qemu does. */
struct feature_names {
	char name[64][47];
};

static void report_unknown_incompat(struct qcow2 *s, uint64_t bits,
				    const struct feature_names *fn)
{
	char msg[1024];
	size_t used = 0;
	msg[0] = 0;
	for (unsigned b = 0; b < 64; b++) {
		if (!(bits & (1ull << b)))
			continue;
		int n = snprintf(msg + used, sizeof(msg) - used, "%s%s%s",
				 used ? ", " : "",
				 fn->name[b][0] ? fn->name[b] : "unknown", "");
		if (n < 0 || (size_t)n >= sizeof(msg) - used)
			break;
		used += (size_t)n;
		n = snprintf(msg + used, sizeof(msg) - used, " (bit %u)", b);
		if (n < 0 || (size_t)n >= sizeof(msg) - used)
			break;
		used += (size_t)n;
	}
	mimg_err(-ENOTSUP,
		 "%s: qcow2: unsupported incompatible feature(s): "
		 "%s",
		 qcow2_path(s), msg);
}

static int parse_extensions(struct qcow2 *s, const uint8_t *hdr, uint64_t start,
			    uint64_t end, struct feature_names *fn)
{
	const char *path = qcow2_path(s);
	uint64_t off = start;

	while (off + 8 <= end) {
		uint32_t type = ld_be32(hdr + off);
		uint32_t len = ld_be32(hdr + off + 4);
		off += 8;
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - off)
			return mimg_err(-EINVAL,
					"%s: qcow2: header extension "
					"0x%x length %u runs past the header "
					"area",
					path, type, len);
		const uint8_t *p = hdr + off;
		switch (type) {
		case QCOW2_EXT_BACKING_FMT:
			if (len > QCOW2_MAX_BACKING_NAME || len == 0)
				return mimg_err(-EINVAL,
						"%s: qcow2: backing "
						"format extension length %u "
						"invalid",
						path, len);
			free(s->img->backing_fmt);
			s->img->backing_fmt = strndup((const char *)p, len);
			if (!s->img->backing_fmt)
				return mimg_err(-ENOMEM, "out of memory");
			break;
		case QCOW2_EXT_FEATURES:
			for (uint32_t i = 0; i + 48 <= len; i += 48) {
				uint8_t ftype = p[i], bit = p[i + 1];
				if (ftype == 0 && bit < 64) {
					memcpy(fn->name[bit], p + i + 2, 46);
					fn->name[bit][46] = 0;
				}
			}
			break;
		case QCOW2_EXT_DATA_FILE:
			if (len == 0 || len > 4096)
				return mimg_err(-EINVAL,
						"%s: qcow2: data file "
						"name length %u invalid",
						path, len);
			free(s->data_file_name);
			s->data_file_name = strndup((const char *)p, len);
			if (!s->data_file_name)
				return mimg_err(-ENOMEM, "out of memory");
			break;
		case QCOW2_EXT_BITMAPS:
			if (len < 24)
				return mimg_err(
					-EINVAL,
					"%s: qcow2: bitmaps "
					"extension too short (%u bytes)",
					path, len);
			s->has_bitmaps_ext = true;
			s->nb_bitmaps = ld_be32(p);
			s->bm_dir_size = ld_be64(p + 8);
			s->bm_dir_offset = ld_be64(p + 16);
			break;
		case QCOW2_EXT_CRYPTO: {
			int r = qcow2_crypt_ext(s, p, len);
			if (r < 0)
				return r;
			break;
		}
		default: break; /* unknown extensions are ignored, as qemu */
		}
		uint64_t adv;
		if (!ck_align_up_u64(len, 8, &adv))
			return mimg_err(-EINVAL, "%s: qcow2: bad extension",
					path);
		off += adv;
	}
	return 0;
}

int qcow2_load_table(struct qcow2 *s, uint64_t off, uint64_t entries,
		     uint64_t room, uint64_t **tabp, const char *what)
{
	uint64_t bytes = entries * 8;
	uint64_t alloc_bytes;
	if (room < entries)
		room = entries;
	if (room > UINT64_MAX / 8 ||
	    !ck_align_up_u64(room ? room * 8 : 8, s->cluster_size,
			     &alloc_bytes))
		return mimg_err(-EINVAL, "%s: qcow2: %s too large",
				qcow2_path(s), what);
	uint64_t *t = calloc(1, alloc_bytes);
	if (!t)
		return mimg_err(-ENOMEM, "%s: out of memory for the %s",
				qcow2_path(s), what);
	if (bytes) {
		int r = mimg_file_pread_exact(s->file, t, bytes, off, what);
		if (r < 0) {
			free(t);
			return r;
		}
	}
	for (uint64_t i = 0; i < entries; i++)
		t[i] = ld_be64(&t[i]);
	*tabp = t;
	return 0;
}

static int check_offset(struct qcow2 *s, uint64_t off, uint64_t bytes,
			uint64_t file_size, const char *what)
{
	if (!is_aligned_u64(off, s->cluster_size))
		return mimg_err(-EINVAL,
				"%s: qcow2: %s offset 0x%llx is not "
				"aligned to a cluster",
				qcow2_path(s), what, (unsigned long long)off);
	if (!ck_range_within(off, bytes, file_size))
		return mimg_err(-EINVAL,
				"%s: qcow2: %s at 0x%llx (%llu "
				"bytes) lies past the end of the file "
				"(%llu bytes)",
				qcow2_path(s), what, (unsigned long long)off,
				(unsigned long long)bytes,
				(unsigned long long)file_size);
	return 0;
}

uint64_t qcow2_l1_needed(const struct qcow2 *s, uint64_t size)
{
	unsigned shift = s->cluster_bits + s->l2_bits;
	return div_round_up_u64(size, 1ull << shift);
}

static int parse_fields(struct qcow2 *s, const uint8_t *h, unsigned flags,
			uint64_t file_size)
{
	const char *path = qcow2_path(s);
	struct mimg *img = s->img;

	if (ld_be32(h) != QCOW2_MAGIC)
		return mimg_err(-EINVAL, "%s: Image is not in qcow2 format",
				path);
	s->version = ld_be32(h + 4);
	if (s->version != 2 && s->version != 3)
		return mimg_err(-ENOTSUP, "%s: Unsupported qcow2 version %u",
				path, s->version);
	s->backing_off = ld_be64(h + 8);
	s->backing_len = ld_be32(h + 16);
	s->cluster_bits = ld_be32(h + 20);
	if (s->cluster_bits < 9 || s->cluster_bits > 21)
		return mimg_err(-EINVAL,
				"%s: qcow2: cluster_bits %u out of "
				"range 9..21",
				path, s->cluster_bits);
	s->cluster_size = 1u << s->cluster_bits;
	/* qemu counts the size in whole sectors and drops an odd tail (no
	 * tool writes one): reading the same bytes as qemu-img. */
	img->size = align_down_u64(ld_be64(h + 24), 512);
	s->crypt_method = ld_be32(h + 32);
	if (s->crypt_method > 2)
		return mimg_err(-ENOTSUP,
				"%s: qcow2: unsupported encryption "
				"method %u",
				path, s->crypt_method);
	s->l1_size = ld_be32(h + 36);
	s->l1_offset = ld_be64(h + 40);
	s->reftable_offset = ld_be64(h + 48);
	s->reftable_clusters = ld_be32(h + 56);
	s->nb_snapshots = ld_be32(h + 60);
	s->snapshots_offset = ld_be64(h + 64);

	if (s->version == 2) {
		s->header_length = QCOW2_V2_HEADER_LEN;
		s->refcount_order = 4;
	} else {
		s->incompat = ld_be64(h + 72);
		s->compat = ld_be64(h + 80);
		s->autoclear = ld_be64(h + 88);
		s->refcount_order = ld_be32(h + 96);
		s->header_length = ld_be32(h + 100);
		if (s->header_length < QCOW2_V3_HEADER_LEN ||
		    s->header_length > s->cluster_size)
			return mimg_err(-EINVAL,
					"%s: qcow2: header_length %u "
					"invalid",
					path, s->header_length);
		if (s->refcount_order > 6)
			return mimg_err(-EINVAL,
					"%s: qcow2: refcount_order "
					"%u out of range 0..6",
					path, s->refcount_order);
	}
	s->refcount_bits = 1u << s->refcount_order;
	s->refcount_max = s->refcount_bits == 64
				  ? UINT64_MAX
				  : (1ull << s->refcount_bits) - 1;
	s->compression = QCOW2_COMPRESS_ZLIB;
	if (s->incompat & QCOW2_INCOMPAT_COMPRESSION) {
		if (s->header_length < 105)
			return mimg_err(-EINVAL,
					"%s: qcow2: compression type "
					"bit set but header_length %u has no "
					"compression_type field",
					path, s->header_length);
		uint8_t ct = h[104];
		if (ct != QCOW2_COMPRESS_ZLIB && ct != QCOW2_COMPRESS_ZSTD)
			return mimg_err(-ENOTSUP,
					"%s: qcow2: unknown "
					"compression type %u",
					path, ct);
		s->compression = ct;
	} else if (s->header_length >= 105 && h[104] != 0) {
		return mimg_err(-EINVAL,
				"%s: qcow2: compression_type %u "
				"without the compression type feature bit",
				path, h[104]);
	}
	s->extended_l2 = (s->incompat & QCOW2_INCOMPAT_EXTL2) != 0;
	if (s->extended_l2 && s->cluster_bits < 14)
		return mimg_err(-EINVAL,
				"%s: qcow2: extended L2 entries need "
				"a cluster size of at least 16 KiB (have %u)",
				path, s->cluster_size);
	s->l2e_size = s->extended_l2 ? 16 : 8;
	s->l2_bits = s->cluster_bits - (s->extended_l2 ? 4 : 3);
	s->l2_entries = 1u << s->l2_bits;
	s->sc_bits = s->extended_l2 ? s->cluster_bits - 5 : s->cluster_bits;
	s->rb_bits = s->cluster_bits + 3 - s->refcount_order;
	s->rb_entries = 1u << s->rb_bits;
	s->csize_shift = 62 - (s->cluster_bits - 8);
	s->coffset_mask = (1ull << s->csize_shift) - 1;
	s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;

	/* Tables. */
	uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
	if (l1_bytes > QCOW2_MAX_L1_BYTES)
		return mimg_err(-EFBIG,
				"%s: qcow2: L1 size %u exceeds the "
				"32 MiB limit",
				path, s->l1_size);
	if (img->size > (uint64_t)INT64_MAX)
		return mimg_err(-EINVAL,
				"%s: qcow2: virtual size %llu too "
				"large",
				path, (unsigned long long)img->size);
	if (qcow2_l1_needed(s, img->size) > s->l1_size)
		return mimg_err(-EINVAL,
				"%s: qcow2: L1 table (%u entries) is "
				"too small for the virtual size %llu",
				path, s->l1_size,
				(unsigned long long)img->size);
	int r;
	if (s->l1_size && (r = check_offset(s, s->l1_offset, l1_bytes,
					    file_size, "L1 table")) < 0)
		return r;
	uint64_t rt_bytes = (uint64_t)s->reftable_clusters << s->cluster_bits;
	if (s->reftable_clusters == 0 || rt_bytes > QCOW2_MAX_REFTABLE_BYTES)
		return mimg_err(-EINVAL,
				"%s: qcow2: refcount table of %u "
				"clusters is out of range (max 8 MiB)",
				path, s->reftable_clusters);
	if ((r = check_offset(s, s->reftable_offset, rt_bytes, file_size,
			      "refcount table")) < 0)
		return r;
	s->reftable_size = rt_bytes / 8;
	if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return mimg_err(-EINVAL,
				"%s: qcow2: %u snapshots exceed the "
				"limit of %u",
				path, s->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
	if (s->nb_snapshots &&
	    (r = check_offset(s, s->snapshots_offset, 40, file_size,
			      "snapshot table")) < 0)
		return r;

	if (s->backing_off) {
		if (s->backing_len == 0 ||
		    s->backing_len > QCOW2_MAX_BACKING_NAME ||
		    !ck_range_within(s->backing_off, s->backing_len,
				     s->cluster_size))
			return mimg_err(-EINVAL,
					"%s: qcow2: backing file name "
					"at 0x%llx (%u bytes) is outside the "
					"first cluster",
					path,
					(unsigned long long)s->backing_off,
					s->backing_len);
	}
	(void)flags;
	return 0;
}

static int check_features(struct qcow2 *s, unsigned flags,
			  const struct feature_names *fn)
{
	const char *path = qcow2_path(s);
	uint64_t unknown = s->incompat & ~QCOW2_INCOMPAT_KNOWN;
	if (unknown) {
		report_unknown_incompat(s, unknown, fn);
		return -ENOTSUP;
	}
	if ((s->incompat & QCOW2_INCOMPAT_CORRUPT) && !s->img->read_only &&
	    !(flags & MIMG_OPEN_CHECK))
		return mimg_err(-EACCES,
				"%s: qcow2: image is marked corrupt; "
				"it can only be opened read-only",
				path);
	if (s->incompat & QCOW2_INCOMPAT_DATA_FILE) {
		if (!s->data_file_name)
			return mimg_err(-EINVAL,
					"%s: qcow2: image uses an "
					"external data file but names none",
					path);
		s->data_raw = (s->autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW) !=
			      0;
	} else if (s->data_file_name) {
		/* qemu ignores a data file name without the feature bit. */
		free(s->data_file_name);
		s->data_file_name = NULL;
	}
	return 0;
}

int qcow2_read_header(struct qcow2 *s, unsigned flags)
{
	struct feature_names *fn = NULL;
	uint8_t *h = NULL;
	uint64_t file_size;
	int r = mimg_file_size(s->file, &file_size);
	if (r < 0)
		return r;
	if (file_size < QCOW2_V2_HEADER_LEN)
		return mimg_err(-EINVAL,
				"%s: qcow2: file too short for a "
				"header (%llu bytes)",
				qcow2_path(s), (unsigned long long)file_size);
	/* The header and its extensions live in the first cluster; read
	 * the largest possible first cluster. */
	size_t hlen = (size_t)min_u64(file_size, 1u << 21);
	if (!(h = calloc(1, 1u << 21)) || !(fn = calloc(1, sizeof(*fn)))) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	if ((r = mimg_file_pread(s->file, h, hlen, 0)) < 0)
		goto out;
	if ((r = parse_fields(s, h, flags, file_size)) < 0)
		goto out;

	uint64_t ext_end = s->cluster_size;
	if (s->backing_off && s->backing_off < ext_end)
		ext_end = s->backing_off;
	if (s->version == 3 &&
	    (r = parse_extensions(s, h, s->header_length, ext_end, fn)) < 0)
		goto out;
	if (s->version == 2 &&
	    (r = parse_extensions(s, h, QCOW2_V2_HEADER_LEN, ext_end, fn)) < 0)
		goto out;
	if ((r = check_features(s, flags, fn)) < 0)
		goto out;
	if (s->backing_off) {
		s->img->backing_name = strndup((const char *)h + s->backing_off,
					       s->backing_len);
		if (!s->img->backing_name) {
			r = mimg_err(-ENOMEM, "out of memory");
			goto out;
		}
	}
	s->img->cluster_size = s->cluster_size;
	if ((r = qcow2_load_table(s, s->l1_offset, s->l1_size, 0, &s->l1,
				  "L1 table")) < 0)
		goto out;
	s->l1_alloc = (uint32_t)min_u64(div_round_up_u64((uint64_t)s->l1_size *
								 8,
							 s->cluster_size) *
						s->cluster_size / 8,
					QCOW2_MAX_L1_BYTES / 8);
	if (s->l1_alloc < s->l1_size)
		s->l1_alloc = s->l1_size;
	r = qcow2_load_table(s, s->reftable_offset, s->reftable_size, 0,
			     &s->reftable, "refcount table");
out:
	free(h);
	free(fn);
	return r;
}

static int write_be(struct qcow2 *s, uint64_t off, const void *buf, size_t len)
{
	int r = mimg_file_pwrite(s->file, buf, len, off);
	if (r < 0)
		return mimg_err_prefix(r, "%s: qcow2: header update",
				       qcow2_path(s));
	return 0;
}

int qcow2_write_incompat(struct qcow2 *s, uint64_t incompat)
{
	uint8_t b[8];
	if (s->version < 3)
		return 0;
	st_be64(b, incompat);
	int r = write_be(s, 72, b, 8);
	if (r == 0)
		s->incompat = incompat;
	return r;
}

int qcow2_write_l1_fields(struct qcow2 *s, uint64_t off, uint32_t size)
{
	uint8_t b[12];
	st_be32(b, size);
	st_be64(b + 4, off);
	return write_be(s, 36, b, 12);
}

int qcow2_write_reftable_fields(struct qcow2 *s, uint64_t off,
				uint32_t clusters)
{
	uint8_t b[12];
	st_be64(b, off);
	st_be32(b + 8, clusters);
	return write_be(s, 48, b, 12);
}

int qcow2_write_reftable_order(struct qcow2 *s, uint64_t off, uint32_t clusters)
{
	uint8_t b[52];
	int r = mimg_file_pread(s->file, b, sizeof(b), 48);
	if (r < 0)
		return mimg_err_prefix(r, "%s: qcow2: header read",
				       qcow2_path(s));
	st_be64(b, off);
	st_be32(b + 8, clusters);
	st_be32(b + 48, s->refcount_order);
	return write_be(s, 48, b, sizeof(b));
}

/* The extension of HDR at OFF, before END: its *TYPE and *ADV, its data
 * length rounded up to 8.  Returns 1, 0 at the end marker or the end of
 * the area, or -EINVAL when its length runs past END.  The extensions
 * were validated at open, but the header is re-read by the callers, so
 * lengths are checked again. */
static int next_extension(struct qcow2 *s, const uint8_t *hdr, uint64_t off,
			  uint64_t end, uint32_t *type, uint64_t *adv)
{
	if (off + 8 > end)
		return 0;
	*type = ld_be32(hdr + off);
	uint32_t len = ld_be32(hdr + off + 4);
	if (*type == QCOW2_EXT_END)
		return 0;
	if (!ck_align_up_u64(len, 8, adv) || *adv > end - off - 8)
		return mimg_err(-EINVAL,
				"%s: qcow2: header extension "
				"0x%x length %u runs past the header "
				"area",
				qcow2_path(s), *type, len);
	return 1;
}

/* Whether TYPE is one of SKIP, a list ended by QCOW2_EXT_END. */
static bool extension_listed(uint32_t type, const uint32_t *skip)
{
	for (; *skip != QCOW2_EXT_END; skip++)
		if (*skip == type)
			return true;
	return false;
}

/* Copy the extensions of OLD between START and END, but those of the
 * types in SKIP (the ones the caller writes itself), into OUT (CAP
 * bytes) at *POS, in their order; stop at the end marker. */
static int copy_extensions(struct qcow2 *s, const uint8_t *old, uint64_t start,
			   uint64_t end, const uint32_t *skip, uint8_t *out,
			   uint64_t *pos, uint64_t cap)
{
	uint32_t type;
	uint64_t adv;
	int r;
	for (uint64_t off = start;
	     (r = next_extension(s, old, off, end, &type, &adv)) > 0;
	     off += 8 + adv) {
		if (extension_listed(type, skip))
			continue;
		if (*pos + 8 + adv > cap)
			return mimg_err(-ENOSPC,
					"%s: qcow2: header extensions do not "
					"fit in the header cluster",
					qcow2_path(s));
		memcpy(out + *pos, old + off, 8 + adv);
		*pos += 8 + adv;
	}
	return r;
}

uint64_t qcow2_put_extension(uint8_t *out, uint64_t pos, uint32_t type,
			     const void *data, uint32_t len)
{
	st_be32(out + pos, type);
	st_be32(out + pos + 4, len);
	if (len)
		memcpy(out + pos + 8, data, len);
	return pos + 8 + ((len + 7u) & ~7u);
}

/* The feature names qemu 7.2 writes, in its order. */
static const struct {
	uint8_t type, bit;
	const char *name;
} feature_names[] = {
	{0, 0, "dirty bit"},
	{0, 1, "corrupt bit"},
	{0, 2, "external data file"},
	{0, 3, "compression type"},
	{0, 4, "extended L2 entries"},
	{1, 0, "lazy refcounts"},
	{2, 0, "bitmaps"},
	{2, 1, "raw external data"},
};
#define N_FEATURE_NAMES (sizeof(feature_names) / sizeof(feature_names[0]))

uint64_t qcow2_put_feature_table(uint8_t *out, uint64_t pos)
{
	uint8_t ft[N_FEATURE_NAMES][48];
	memset(ft, 0, sizeof(ft));
	for (size_t i = 0; i < N_FEATURE_NAMES; i++) {
		ft[i][0] = feature_names[i].type;
		ft[i][1] = feature_names[i].bit;
		memcpy(&ft[i][2], feature_names[i].name,
		       strlen(feature_names[i].name));
	}
	return qcow2_put_extension(out, pos, QCOW2_EXT_FEATURES, ft,
				   (uint32_t)sizeof(ft));
}

uint64_t qcow2_feature_table_size(void)
{
	return 8 + N_FEATURE_NAMES * 48;
}

/* Build the new header cluster OUT from S and the old one OLD, with the
 * backing file NAME (NLEN bytes, none when 0) of format BFMT (NULL:
 * none), in the order qemu writes: the header, the backing format, the
 * data file, the LUKS header's place, the feature table, the bitmaps,
 * unknown extensions, the end, the backing file's name. */
static int build_header(struct qcow2 *s, const uint8_t *old, uint8_t *out,
			const char *name, size_t nlen, const char *bfmt)
{
	uint64_t cs = s->cluster_size;
	uint32_t old_version = ld_be32(old + 4);
	uint64_t old_len = old_version >= 3 ? ld_be32(old + 100)
					    : QCOW2_V2_HEADER_LEN;
	uint64_t ext_end = cs, pos;
	int r;
	if (s->backing_off && s->backing_off < ext_end)
		ext_end = s->backing_off;
	if (old_len > ext_end)
		return mimg_err(-EINVAL,
				"%s: qcow2: header length %llu beyond "
				"the header area",
				qcow2_path(s), (unsigned long long)old_len);
	memcpy(out, old, QCOW2_V2_HEADER_LEN);
	st_be32(out + 4, s->version);
	pos = QCOW2_V2_HEADER_LEN;
	if (s->version >= 3) {
		st_be64(out + 72, s->incompat);
		st_be64(out + 80, s->compat);
		st_be64(out + 88, s->autoclear);
		st_be32(out + 96, s->refcount_order);
		out[104] = (uint8_t)s->compression;
		pos = 112;
		/* Header fields this version does not know are kept. */
		if (old_version >= 3 && old_len > pos) {
			memcpy(out + pos, old + pos, old_len - pos);
			pos = old_len;
		}
		st_be32(out + 100, (uint32_t)pos);
	}
	/* Room: each name, the feature table and the end marker. */
	uint64_t need = pos + 8 + 8 + nlen;
	if (nlen && bfmt)
		need += 8 + ((strlen(bfmt) + 7) & ~(size_t)7);
	if (s->data_file_name)
		need += 8 + ((strlen(s->data_file_name) + 7) & ~(size_t)7);
	if (s->crypt_method == 2)
		need += 8 + 16;
	if (s->version >= 3 && cs > 4096)
		need += qcow2_feature_table_size();
	if (need > cs)
		return mimg_err(-ENOSPC,
				"%s: qcow2: the header does not fit in "
				"one cluster",
				qcow2_path(s));
	if (nlen && bfmt)
		pos = qcow2_put_extension(out, pos, QCOW2_EXT_BACKING_FMT, bfmt,
					  (uint32_t)strlen(bfmt));
	if ((s->incompat & QCOW2_INCOMPAT_DATA_FILE) && s->data_file_name)
		pos = qcow2_put_extension(out, pos, QCOW2_EXT_DATA_FILE,
					  s->data_file_name,
					  (uint32_t)strlen(s->data_file_name));
	if (s->crypt_method == 2) {
		/* where the LUKS header is: without it the image is lost */
		uint8_t ext[16];
		st_be64(ext, s->crypt_hdr_off);
		st_be64(ext + 8, s->crypt_hdr_len);
		pos = qcow2_put_extension(out, pos, QCOW2_EXT_CRYPTO, ext,
					  sizeof(ext));
	}
	if (s->version >= 3 && cs > 4096)
		pos = qcow2_put_feature_table(out, pos);
	uint8_t *rest = calloc(1, cs);
	uint64_t rpos = 0;
	if (!rest)
		return mimg_err(-ENOMEM, "out of memory");
	/* Unknown extensions are kept; the bitmaps one is written from S. */
	static const uint32_t rewritten[] = {QCOW2_EXT_BACKING_FMT,
					     QCOW2_EXT_FEATURES,
					     QCOW2_EXT_DATA_FILE,
					     QCOW2_EXT_CRYPTO,
					     QCOW2_EXT_BITMAPS,
					     QCOW2_EXT_END};
	r = copy_extensions(s, old, old_len, ext_end, rewritten, rest, &rpos,
			    cs);
	if (r == 0 && s->has_bitmaps_ext && s->nb_bitmaps) {
		uint8_t ext[24] = {0};
		st_be32(ext, s->nb_bitmaps);
		st_be64(ext + 8, s->bm_dir_size);
		st_be64(ext + 16, s->bm_dir_offset);
		if (pos + 8 + sizeof(ext) > cs)
			r = mimg_err(-ENOSPC,
				     "%s: qcow2: the header does not "
				     "fit in one cluster",
				     qcow2_path(s));
		else
			pos = qcow2_put_extension(out, pos, QCOW2_EXT_BITMAPS,
						  ext, sizeof(ext));
	}
	if (r == 0 && pos + rpos + 8 + nlen > cs)
		r = mimg_err(-ENOSPC,
			     "%s: qcow2: the header does not fit in "
			     "one cluster",
			     qcow2_path(s));
	if (r == 0) {
		memcpy(out + pos, rest, rpos);
		pos = qcow2_put_extension(out, pos + rpos, QCOW2_EXT_END, "",
					  0);
		st_be64(out + 8, nlen ? pos : 0);
		st_be32(out + 16, (uint32_t)nlen);
		memcpy(out + pos, name, nlen);
	}
	free(rest);
	return r;
}

/* Rewrite the header cluster with NAME/FMT as the backing file, in one
 * write of the whole cluster as qemu writes it (a crash leaves the old
 * or the new header).  NAME NULL: the one the header has. */
static int write_header(struct qcow2 *s, const char *name, size_t nlen,
			const char *fmt)
{
	size_t cs = s->cluster_size;
	uint8_t *old = calloc(1, cs), *out = calloc(1, cs);
	uint64_t fsize;
	int r;
	if (!old || !out) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	if ((r = mimg_file_size(s->file, &fsize)) < 0 ||
	    (r = mimg_file_pread(s->file, old, (size_t)min_u64(fsize, cs), 0)) <
		    0)
		goto out;
	if ((uint64_t)s->backing_off + s->backing_len > cs) {
		r = mimg_err(-EINVAL,
			     "%s: qcow2: backing file name outside the "
			     "header cluster",
			     qcow2_path(s));
		goto out;
	}
	if (!name) {
		name = (const char *)old + s->backing_off;
		nlen = s->backing_len;
	}
	if ((r = build_header(s, old, out, name, nlen, fmt)) < 0)
		goto out;
	if ((r = mimg_file_pwrite(s->file, out, cs, 0)) < 0) {
		r = mimg_err_prefix(r, "%s: qcow2: header update",
				    qcow2_path(s));
		goto out;
	}
	s->header_length = s->version >= 3 ? ld_be32(out + 100)
					   : QCOW2_V2_HEADER_LEN;
	s->backing_off = ld_be64(out + 8);
	s->backing_len = (uint32_t)nlen;
out:
	free(old);
	free(out);
	return r;
}

int qcow2_rewrite_header(struct qcow2 *s)
{
	return write_header(s, NULL, 0, s->img->backing_fmt);
}

/* Record NAME/FMT as the backing file (NULL NAME: none), in the header
 * rewritten whole (write_header). */
int qcow2_set_backing(struct mimg *img, const char *name, const char *fmt)
{
	struct qcow2 *s = img->priv;
	size_t nlen = name ? strlen(name) : 0, flen = fmt ? strlen(fmt) : 0;
	if (nlen > QCOW2_MAX_BACKING_NAME || flen > QCOW2_MAX_BACKING_NAME)
		return mimg_err(-EINVAL,
				"%s: qcow2: backing file name or "
				"format longer than %u bytes",
				qcow2_path(s), QCOW2_MAX_BACKING_NAME);
	pthread_mutex_lock(&s->lock);
	int r = write_header(s, name ? name : "", nlen, nlen ? fmt : NULL);
	pthread_mutex_unlock(&s->lock);
	return r;
}
