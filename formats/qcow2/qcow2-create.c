/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Creating qcow2 images with qemu-img's options and layout: header in
 * cluster 0, refcount table in cluster 1, the first refcount block in
 * cluster 2, the L1 table from cluster 3, then (with preallocation) L2
 * tables and data clusters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "crypto/luks1.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"

struct create_opts {
	uint32_t version;
	uint32_t cluster_size;
	enum mimg_prealloc prealloc;
	bool lazy;
	unsigned refcount_bits;
	enum qcow2_compression compression;
	bool extended_l2;
	const char *data_file;
	bool data_file_raw;
	const char *backing_file;
	const char *backing_fmt;
	bool encrypt;		       /* encrypt.format=luks */
	uint64_t crypt_off, crypt_len; /* its header, once allocated */
};

static const char *const compat_values[] = {"0.10", "v2", "1.1", "v3", NULL};
static const char *const compression_values[] = {"zlib", "zstd", NULL};
static const char *const prealloc_values[] = {"off", "metadata", "falloc",
					      "full", NULL};

/* qemu-img 7.2's qcow2 create options, its help texts, sorted by name. */
enum {
	QC_BACKING_FILE,
	QC_BACKING_FMT,
	QC_CLUSTER_SIZE,
	QC_COMPAT,
	QC_COMPRESSION,
	QC_DATA_FILE,
	QC_DATA_FILE_RAW,
	QC_ENC_FIRST,
	QC_ENC_LAST = QC_ENC_FIRST + 7,
	QC_ENCRYPTION,
	QC_EXTENDED_L2,
	QC_LAZY,
	QC_PREALLOC,
	QC_REFCOUNT_BITS,
	QC_SIZE,
	QC_COUNT
};
const struct mimg_optdesc qcow2_create_opts[] = {
	QCOW2_OPT_BACKING_FILE,
	QCOW2_OPT_BACKING_FMT,
	{"cluster_size", MIMG_OPTK_SIZE, "qcow2 cluster size", "65536", NULL,
	 NULL, 0},
	{"compat", MIMG_OPTK_ENUM,
	 "Compatibility level (v2 [0.10] or v3 [1.1])", "1.1", compat_values,
	 "version", 0},
	{"compression_type", MIMG_OPTK_ENUM,
	 "Compression method used for image cluster compression", "zlib",
	 compression_values, "compression-type", 0},
	QCOW2_OPT_DATA_FILE,
	QCOW2_OPT_DATA_FILE_RAW,
	{"encrypt.cipher-alg", MIMG_OPTK_STRING,
	 "Name of encryption cipher algorithm", NULL, NULL, NULL, 0},
	{"encrypt.cipher-mode", MIMG_OPTK_STRING,
	 "Name of encryption cipher mode", NULL, NULL, NULL, 0},
	{"encrypt.format", MIMG_OPTK_STRING,
	 "Encrypt the image, format choices: 'aes', 'luks'", NULL, NULL, NULL,
	 0},
	{"encrypt.hash-alg", MIMG_OPTK_STRING,
	 "Name of encryption hash algorithm", NULL, NULL, NULL, 0},
	{"encrypt.iter-time", MIMG_OPTK_NUMBER,
	 "Time to spend in PBKDF in milliseconds", NULL, NULL, NULL, 0},
	{"encrypt.ivgen-alg", MIMG_OPTK_STRING,
	 "Name of IV generator algorithm", NULL, NULL, NULL, 0},
	{"encrypt.ivgen-hash-alg", MIMG_OPTK_STRING,
	 "Name of IV generator hash algorithm", NULL, NULL, NULL, 0},
	{"encrypt.key-secret", MIMG_OPTK_STRING,
	 "ID of secret providing qcow AES key or LUKS passphrase", NULL, NULL,
	 NULL, 0},
	{"encryption", MIMG_OPTK_BOOL,
	 "Encrypt the image with format 'aes'. (Deprecated in favor of "
	 "encrypt.format=aes)",
	 NULL, NULL, NULL, 0},
	{"extended_l2", MIMG_OPTK_BOOL, "Extended L2 tables", "off", NULL, NULL,
	 0},
	QCOW2_OPT_LAZY_REFCOUNTS,
	{"preallocation", MIMG_OPTK_ENUM,
	 "Preallocation mode (allowed values: off, metadata, falloc, full)",
	 "off", prealloc_values, NULL, 0},
	QCOW2_OPT_REFCOUNT_BITS,
	MIMG_OPT_SIZE,
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};
MIMG_OPTS_INDEXED(qcow2_create_opts, QC_COUNT);

/* encrypt.format (or the old encryption=on, which meant AES-CBC). */
static int parse_encrypt(const struct mimg_opt *opts, size_t nopts, bool *luks)
{
	const char *v = mimg__opt(opts, nopts, "encrypt.format");
	bool aes = false;
	int r;
	*luks = false;
	if ((v = mimg__opt(opts, nopts, "encryption")) &&
	    (r = mimg__opt_bool("encryption", v, &aes)) < 0)
		return r;
	v = mimg__opt(opts, nopts, "encrypt.format");
	if (v && strcmp(v, "luks") == 0 && !aes)
		*luks = true;
	else if (aes || (v && strcmp(v, "aes") == 0))
		return mimg_err(-ENOTSUP,
				"qcow2: AES-CBC encryption "
				"(encrypt.format=aes, encryption=on) is not "
				"created, only read: use encrypt.format=luks");
	else if (v)
		return mimg_err(-EINVAL,
				"qcow2: Invalid parameter '%s' "
				"for encrypt.format (luks)",
				v);
	if (!*luks)
		for (size_t i = 0; i < nopts; i++)
			if (strncmp(opts[i].key, "encrypt.", 8) == 0 &&
			    strcmp(opts[i].key, "encrypt.key-secret") != 0)
				return mimg_err(-EINVAL,
						"qcow2: %s needs "
						"encrypt.format=luks",
						opts[i].key);
	return 0;
}

static int parse_opts(const struct mimg_opt *opts, size_t nopts,
		      struct create_opts *o)
{
	struct mimg_optval v[QC_COUNT];
	int r;
	memset(o, 0, sizeof(*o));
	if ((r = mimg__opts_validate(qcow2_create_opts, NULL, opts, nopts, v)) <
	    0)
		return r;
	if ((r = parse_encrypt(opts, nopts, &o->encrypt)) < 0)
		return r;
	o->version = v[QC_COMPAT].u < 2 ? 2 : 3;
	o->cluster_size = (uint32_t)v[QC_CLUSTER_SIZE].u;
	if (!is_pow2_u64(v[QC_CLUSTER_SIZE].u) || v[QC_CLUSTER_SIZE].u < 512 ||
	    v[QC_CLUSTER_SIZE].u > (2u << 20))
		return mimg_err(-EINVAL, "Cluster size must be a power "
					 "of two between 512 and 2048k");
	o->prealloc = (enum mimg_prealloc)v[QC_PREALLOC].u;
	o->lazy = v[QC_LAZY].b;
	if (!is_pow2_u64(v[QC_REFCOUNT_BITS].u) || v[QC_REFCOUNT_BITS].u > 64)
		return mimg_err(-EINVAL, "Refcount width must be a "
					 "power of two and may not exceed 64 "
					 "bits");
	o->refcount_bits = (unsigned)v[QC_REFCOUNT_BITS].u;
	o->compression = v[QC_COMPRESSION].u ? QCOW2_COMPRESS_ZSTD
					     : QCOW2_COMPRESS_ZLIB;
	o->extended_l2 = v[QC_EXTENDED_L2].b;
	if (v[QC_DATA_FILE].s && *v[QC_DATA_FILE].s)
		o->data_file = v[QC_DATA_FILE].s;
	o->data_file_raw = v[QC_DATA_FILE_RAW].b;
	if (v[QC_BACKING_FILE].s && *v[QC_BACKING_FILE].s)
		o->backing_file = v[QC_BACKING_FILE].s;
	if (v[QC_BACKING_FMT].s && *v[QC_BACKING_FMT].s)
		o->backing_fmt = v[QC_BACKING_FMT].s;

	/* Combinations qemu refuses, with its wording. */
	if (o->version < 3) {
		if (o->lazy)
			return mimg_err(-EINVAL,
					"Lazy refcounts only supported "
					"with compatibility level 1.1 and "
					"above (use version=v3 or greater)");
		if (o->refcount_bits != 16)
			return mimg_err(-EINVAL,
					"Different refcount widths "
					"than 16 bits require compatibility "
					"level 1.1 or above (use version=v3 "
					"or greater)");
		if (o->data_file)
			return mimg_err(-EINVAL,
					"External data files are only "
					"supported with compatibility level "
					"1.1 and above (use version=v3 or "
					"greater)");
		if (o->compression != QCOW2_COMPRESS_ZLIB)
			return mimg_err(-EINVAL,
					"Non-zlib compression type is "
					"only supported with compatibility "
					"level 1.1 and above (use version=v3 "
					"or greater)");
		if (o->extended_l2)
			return mimg_err(-EINVAL,
					"Extended L2 entries are only "
					"supported with compatibility level "
					"1.1 and above (use version=v3 or "
					"greater)");
	}
	if (o->encrypt && o->data_file_raw)
		return mimg_err(-ENOTSUP, "qcow2: data_file_raw cannot hold "
					  "an encrypted image's data");
	if (o->encrypt && o->prealloc != MIMG_PREALLOC_OFF)
		return mimg_err(-ENOTSUP, "qcow2: preallocation is not "
					  "supported for encrypted images");
	if (o->data_file_raw && !o->data_file)
		return mimg_err(-EINVAL, "data-file-raw requires data-file");
	if (o->data_file_raw && o->backing_file)
		return mimg_err(-EINVAL,
				"Backing file and data-file-raw cannot "
				"be used at the same time");
	if (o->extended_l2 && o->cluster_size < 16384)
		return mimg_err(-EINVAL,
				"Extended L2 entries are only "
				"supported with cluster sizes of at least "
				"16384 bytes");
	if (o->backing_file && !o->backing_fmt)
		return mimg_err(-EINVAL, "Backing file specified without "
					 "backing format");
	if (o->backing_file && o->prealloc != MIMG_PREALLOC_OFF &&
	    !o->extended_l2)
		return mimg_err(-EINVAL,
				"Backing file and preallocation can "
				"only be used at the same time if extended_l2 "
				"is on");
	return 0;
}

/* Build cluster 0 (header, extensions, backing name). */
static int build_header(const char *path, const struct create_opts *o,
			uint64_t size, uint8_t *h)
{
	uint32_t cs = o->cluster_size;
	unsigned cbits = (unsigned)__builtin_ctz(cs);
	unsigned rorder = (unsigned)__builtin_ctz(o->refcount_bits);
	st_be32(h, QCOW2_MAGIC);
	st_be32(h + 4, o->version);
	st_be32(h + 20, cbits);
	st_be64(h + 24, size);
	st_be64(h + 48, cs); /* refcount table in cluster 1 */
	st_be32(h + 56, 1);
	size_t off = QCOW2_V2_HEADER_LEN;
	if (o->version >= 3) {
		uint64_t incompat = 0, compat = 0, autoclear = 0;
		if (o->data_file)
			incompat |= QCOW2_INCOMPAT_DATA_FILE;
		if (o->compression != QCOW2_COMPRESS_ZLIB)
			incompat |= QCOW2_INCOMPAT_COMPRESSION;
		if (o->extended_l2)
			incompat |= QCOW2_INCOMPAT_EXTL2;
		if (o->lazy)
			compat |= QCOW2_COMPAT_LAZY_REFCOUNTS;
		if (o->data_file_raw)
			autoclear |= QCOW2_AUTOCLEAR_DATA_FILE_RAW;
		st_be64(h + 72, incompat);
		st_be64(h + 80, compat);
		st_be64(h + 88, autoclear);
		st_be32(h + 96, rorder);
		st_be32(h + 100, 112);
		h[104] = (uint8_t)o->compression;
		off = 112;
	}
	if (o->backing_fmt && o->backing_file)
		off = qcow2_put_extension(h, off, QCOW2_EXT_BACKING_FMT,
					  o->backing_fmt,
					  (uint32_t)strlen(o->backing_fmt));
	if (o->data_file)
		off = qcow2_put_extension(h, off, QCOW2_EXT_DATA_FILE,
					  o->data_file,
					  (uint32_t)strlen(o->data_file));
	if (o->crypt_len) {
		uint8_t ext[16];
		st_be32(h + 32, 2); /* crypt_method LUKS */
		st_be64(ext, o->crypt_off);
		st_be64(ext + 8, o->crypt_len);
		off = qcow2_put_extension(h, off, QCOW2_EXT_CRYPTO, ext,
					  sizeof(ext));
	}
	/* qemu leaves the feature-name table out of clusters of 4 KiB and
	 * less, to keep room in the header cluster. */
	if (o->version >= 3 && o->cluster_size > 4096)
		off = qcow2_put_feature_table(h, off);
	off += 8; /* end of extensions */
	if (o->backing_file) {
		size_t bl = strlen(o->backing_file);
		if (bl > QCOW2_MAX_BACKING_NAME || off + bl > cs)
			return mimg_err(-EINVAL,
					"%s: qcow2: backing file name "
					"too long for the header",
					path);
		memcpy(h + off, o->backing_file, bl);
		st_be64(h + 8, off);
		st_be32(h + 16, (uint32_t)bl);
		off += bl;
	}
	if (off > cs)
		return mimg_err(-EINVAL,
				"%s: qcow2: header does not fit in "
				"one cluster of %u bytes",
				path, cs);
	return 0;
}

static int write_initial(const char *path, const struct create_opts *o,
			 uint64_t size)
{
	uint32_t cs = o->cluster_size;
	struct mimg_file *f = NULL;
	uint8_t *buf = calloc(3, cs);
	int r;
	if (!buf)
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = build_header(path, o, size, buf)) < 0)
		goto out;
	st_be64(buf + cs, 2ull * cs); /* refcount table -> block */
	/* Refcounts of clusters 0, 1 and 2 in the block. */
	uint8_t *rb = buf + 2 * cs;
	for (unsigned i = 0; i < 3; i++) {
		switch (o->refcount_bits) {
		case 64: st_be64(rb + 8 * i, 1); break;
		case 32: st_be32(rb + 4 * i, 1); break;
		case 16: st_be16(rb + 2 * i, 1); break;
		case 8: rb[i] = 1; break;
		default: {
			unsigned bits = o->refcount_bits, per = 8 / bits;
			rb[i / per] |= (uint8_t)(1u << ((i % per) * bits));
		}
		}
	}
	if ((r = mimg_file_open(&f, path, MIMG_FILE_RDWR | MIMG_FILE_CREATE)) <
	    0)
		goto out;
	r = mimg_file_pwrite(f, buf, 3ull * cs, 0);
	if (r == 0)
		r = mimg_file_flush(f);
out:
	if (f) {
		int rc = mimg_file_close(f);
		if (r == 0)
			r = rc;
	}
	free(buf);
	return r;
}

/* The data file is created next to the image (names inside images
 * resolve relative to the image's directory). */
static int create_data_file(const char *path, const struct create_opts *o,
			    uint64_t size)
{
	char *full = NULL;
	struct mimg_file *f = NULL;
	int r;
	if (o->data_file[0] == '/') {
		full = strdup(o->data_file);
	} else {
		const char *slash = strrchr(path, '/');
		size_t dl = slash ? (size_t)(slash - path + 1) : 0;
		full = malloc(dl + strlen(o->data_file) + 1);
		if (full) {
			memcpy(full, path, dl);
			strcpy(full + dl, o->data_file);
		}
	}
	if (!full)
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg_file_open(&f, full, MIMG_FILE_RDWR | MIMG_FILE_CREATE);
	free(full);
	if (r < 0)
		return r;
	r = mimg_file_truncate(f, size);
	int rc = mimg_file_close(f);
	return r < 0 ? r : rc;
}

/* Clusters reused from inside the file may hold old data: make them read
 * as zeroes before an L2 entry points at them. */
static int zero_reused(struct qcow2 *s, uint64_t host, uint64_t len,
		       uint64_t old_end)
{
	static const uint8_t z[65536];
	if (host >= old_end)
		return 0;
	len = min_u64(len, old_end - host);
	if (mimg_file_zero_range(s->data, host, len, false) == 0)
		return 0;
	for (uint64_t o = 0; o < len;) {
		size_t n = (size_t)min_u64(sizeof(z), len - o);
		int r = mimg_file_pwrite(s->data, z, n, host + o);
		if (r < 0)
			return r;
		o += n;
	}
	return 0;
}

int qcow2_preallocate(struct mimg *img, uint64_t from, enum mimg_prealloc mode)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t cs = s->cluster_size;
	uint64_t nclusters = div_round_up_u64(img->size, cs);
	uint64_t end_off = 0, old_end;
	int r = mimg_file_size(s->data, &old_end);
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	for (uint64_t g = from / cs; g < nclusters && r == 0;) {
		uint8_t *l2;
		uint32_t idx;
		uint64_t span = min_u64(nclusters - g,
					s->l2_entries -
						(g & (s->l2_entries - 1)));
		if ((r = qcow2_get_l2(s, g, true, &l2, &idx)) < 0)
			break;
		/* The run of unallocated entries starting at G. */
		uint64_t n = 0;
		while (n < span && !qcow2_l2_entry(s, l2, idx + (uint32_t)n) &&
		       !qcow2_l2_bitmap(s, l2, idx + (uint32_t)n))
			n++;
		if (n == 0) {
			g++;
			continue;
		}
		n = min_u64(n, max_u64(1, s->rb_entries / 4));
		uint64_t host;
		if (s->data_file_name)
			host = g * cs;
		else if ((r = qcow2_alloc_clusters(s, n, &host)) < 0)
			break;
		if ((r = zero_reused(s, host, n * cs, old_end)) < 0)
			break;
		if ((r = qcow2_get_l2(s, g, true, &l2, &idx)) < 0)
			break;
		for (uint64_t i = 0; i < n; i++)
			qcow2_set_l2(s, l2, idx + (uint32_t)i,
				     (host + i * cs) | QCOW2_OFLAG_COPIED, 0);
		if ((r = qcow2_cache_writeback(&s->l2c, s->file)) < 0)
			break;
		if (!s->data_file_name)
			end_off = max_u64(end_off, host + n * cs);
		g += n;
	}
	pthread_mutex_unlock(&s->lock);
	if (r < 0 || s->data_file_name)
		return r;
	uint64_t fsize;
	if ((r = mimg_file_size(s->file, &fsize)) < 0)
		return r;
	if (mode == MIMG_PREALLOC_FALLOC && end_off > 0) {
		r = mimg_file_allocate(s->file, 0, end_off);
		if (r == -ENOTSUP)
			r = 0;
	} else if (mode == MIMG_PREALLOC_FULL && end_off > fsize) {
		static const uint8_t z[65536];
		for (uint64_t o = fsize; o < end_off && r == 0;) {
			size_t n = (size_t)min_u64(sizeof(z), end_off - o);
			r = mimg_file_pwrite(s->file, z, n, o);
			o += n;
		}
	}
	if (r == 0 && end_off > fsize)
		r = mimg_file_truncate(s->file, end_off);
	return r;
}

/* Point the header at the LUKS header: cluster 0 built again with the
 * encryption extension and the table fields the open image has now. */
static int write_encrypted_header(struct mimg *img, const char *path,
				  const struct create_opts *o, uint64_t size)
{
	struct qcow2 *s = qcow2_of(img);
	uint8_t *h = calloc(1, o->cluster_size);
	int r;
	if (!h)
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = build_header(path, o, size, h)) == 0) {
		st_be32(h + 36, s->l1_size);
		st_be64(h + 40, s->l1_offset);
		st_be64(h + 48, s->reftable_offset);
		st_be32(h + 56, s->reftable_clusters);
		r = mimg_file_pwrite(s->file, h, o->cluster_size, 0);
	}
	if (r == 0)
		r = mimg_file_flush(s->file);
	free(h);
	return r;
}

static int create_image(const char *path, uint64_t size,
			const struct mimg_opt *opts, size_t nopts,
			const struct mimg_secret *secret)
{
	struct luks1_create_params cp;
	struct create_opts o;
	struct mimg *img = NULL;
	int r;
	/* Refusals name the file, as qemu-img's do. */
	if ((r = parse_opts(opts, nopts, &o)) < 0)
		return mimg_err_prefix(r, "%s", path);
	if (o.encrypt && !secret)
		return mimg_err(-EINVAL,
				"%s: Parameter 'encrypt.key-secret' is "
				"required for cipher",
				path);
	if (!o.encrypt && secret)
		return mimg_err(-EINVAL,
				"%s: qcow2: a secret was given "
				"without encrypt.format=luks",
				path);
	if (o.encrypt) {
		if ((r = luks1_create_opts(path, opts, nopts, "encrypt.",
					   &cp)) < 0)
			return r;
		cp.max_iters = secret->max_pbkdf2_iters;
	}
	if (!ck_align_up_u64(size, 512, &size) || size > (uint64_t)INT64_MAX)
		return mimg_err(-EFBIG, "%s: qcow2: size too large", path);
	if (o.data_file && (r = create_data_file(path, &o, size)) < 0)
		return r;
	if ((r = write_initial(path, &o, 0)) < 0)
		return r;
	/* Finish through the driver itself: the L1 table (and any
	 * preallocation) is allocated like any later growth. */
	r = mimg_open(&img, path, "qcow2",
		      MIMG_OPEN_RDWR | MIMG_OPEN_NO_BACKING |
			      MIMG_OPEN_ALLOW_EXTERNAL);
	if (r < 0)
		return r;
	if ((r = qcow2_truncate(img, size, MIMG_PREALLOC_OFF)) == 0) {
		enum mimg_prealloc mode = o.prealloc;
		if (o.data_file_raw && mode == MIMG_PREALLOC_OFF)
			mode = MIMG_PREALLOC_METADATA;
		if (mode != MIMG_PREALLOC_OFF && size)
			r = qcow2_preallocate(img, 0, mode);
	}
	/* The LUKS header goes after the tables, as qemu places it. */
	if (r == 0 && o.encrypt &&
	    (r = qcow2_crypt_setup(img, &cp, secret, &o.crypt_off,
				   &o.crypt_len)) == 0)
		r = write_encrypted_header(img, path, &o, size);
	int rc = mimg_close(img);
	return r < 0 ? r : rc;
}

int qcow2_create(const char *path, uint64_t size, const struct mimg_opt *opts,
		 size_t nopts, struct mimg *backing)
{
	(void)backing;
	return create_image(path, size, opts, nopts, NULL);
}

int qcow2_create_secret(const char *path, uint64_t size,
			const struct mimg_opt *opts, size_t nopts,
			struct mimg *backing, const struct mimg_secret *secret)
{
	(void)backing;
	return create_image(path, size, opts, nopts, secret);
}
