/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg measure: how large a new image of a format would be, for a given
 * virtual size or to hold an existing image's content, by qemu-img 7.2's
 * rules (so that numbers that tools allocate volumes by are the same):
 * "required" counts the metadata of a fully allocated image plus the
 * clusters holding data; "fully-allocated" every cluster.  An encrypted
 * image (luks, or qcow2 with encrypt.format=luks) adds its LUKS header,
 * whose size the cipher options decide (whole clusters in qcow2); a
 * LUKS image holds every byte of its data.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define QCOW2_MAX_L1_BYTES (32u << 20)

static void measure_help(void)
{
	printf("Usage: mimg measure [--output human|json] [-O fmt] [-o opts] "
	       "[--size N |\n"
	       "                    [--image-opts | -f fmt] [-l snapshot] "
	       "FILE]\n"
	       "\n"
	       "Print the size a new image of format FMT (raw, qcow2 or luks) "
	       "needs: "
	       "for N bytes\nof virtual size, or to hold FILE's content.\n"
	       "\n"
	       "  -O FMT            the new image's format (default raw)\n"
	       "  -o OPTS           its creation options (cluster_size, "
	       "compat,\n"
	       "                    refcount_bits, extended_l2, "
	       "preallocation, backing_file,\n"
	       "                    encrypt.format=luks and encrypt.*; "
	       "luks: key-secret,\n"
	       "                    cipher-alg, cipher-mode, ivgen-alg, "
	       "ivgen-hash-alg, hash-alg)\n"
	       "  --size N          virtual size (suffixes k, M, G, T, P, E)\n"
	       "  -f FMT            FILE's format (default: probe)\n"
	       "  --image-opts      FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  -l SNAPSHOT       measure FILE's internal snapshot SNAPSHOT "
	       "(as convert -l)\n"
	       "  --output FMT      human (default) or json\n" CLI_HELP_OBJECT
	       "  -h, --help        this help\n");
}

/* What the new image is to be, from -O and -o. */
struct target {
	bool qcow2, luks;
	bool encrypt;	      /* qcow2: encrypt.format=luks */
	uint64_t luks_header; /* bytes, after parse_target */
	uint64_t cluster_size;
	unsigned refcount_order;
	int version;
	bool extended_l2, backing, prealloc_all;
};

struct measure {
	uint64_t required, fully_allocated, bitmaps;
	bool has_bitmaps;
};

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static uint64_t div_up(uint64_t v, uint64_t d)
{
	return (v + d - 1) / d;
}

/* A value of the wrong type: qemu-img's two messages. */
static int bad_value(const char *key, const char *expects)
{
	cli_error("Parameter '%s' expects %s", key, expects);
	return cli_error("Invalid options for file format 'qcow2'");
}

/* An option FORMAT does not have: qemu-img's two messages. */
static int invalid_param(const char *key, const char *format)
{
	cli_error("Invalid parameter '%s'", key);
	return cli_error("Invalid options for file format '%s'", format);
}

static int parse_bool_opt(const char *key, const char *v, bool *out)
{
	return cli_parse_onoff(v, out) == 0 ? 0
					    : bad_value(key, "'on' or 'off'");
}

/* The LUKS creation options (qcow2 names them "encrypt." + these). */
static bool is_luks_opt(const char *key)
{
	static const char *const names[] = {"key-secret",     "cipher-alg",
					    "cipher-mode",    "ivgen-alg",
					    "ivgen-hash-alg", "hash-alg",
					    "iter-time",      NULL};
	for (const char *const *n = names; *n; n++)
		if (strcmp(key, *n) == 0)
			return true;
	return false;
}

static bool secret_defined(const char *id)
{
	struct mimg_named_secret s[16];
	size_t n = cli_named_secrets(s, 16);
	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].id, id) == 0)
			return true;
	return false;
}

/* The LUKS header of T from OPTS, with qemu-img's checks: the cipher
 * options first, then the secret the new image would be made with. */
static int luks_header(struct target *t, const struct mimg_opt *opts,
		       size_t nopts)
{
	const char *key = t->qcow2 ? "encrypt.key-secret" : "key-secret";
	const char *id = NULL;
	for (size_t i = 0; i < nopts; i++)
		if (strcmp(opts[i].key, key) == 0)
			id = opts[i].value;
	if (mimg_luks_header_size(t->qcow2 ? "qcow2" : "luks", opts, nopts,
				  &t->luks_header) < 0)
		return cli_error("%s", mimg_errmsg());
	if (!id)
		return cli_error("Parameter '%s' is required for cipher", key);
	if (!secret_defined(id))
		return cli_error("No secret with id '%s'", id);
	if (t->qcow2)
		t->luks_header = round_up(t->luks_header, t->cluster_size);
	return 0;
}

static int qcow2_opt(struct target *t, const char *key, const char *v,
		     bool *have_cs, uint64_t *refbits)
{
	if (strcmp(key, "cluster_size") == 0) {
		if (mimg_parse_size(v, &t->cluster_size) < 0)
			return bad_value(
				key,
				"a non-negative number below 2^64\n"
				"Optional suffix k, M, G, T, P or E means kilo-, "
				"mega-, giga-, tera-, peta-\nand exabytes, "
				"respectively.");
		if (t->cluster_size < 512 || t->cluster_size > (2u << 20) ||
		    (t->cluster_size & (t->cluster_size - 1)))
			return cli_error("Cluster size must be a power of two "
					 "between 512 and 2048k");
		*have_cs = true;
	} else if (strcmp(key, "compat") == 0) {
		if (strcmp(v, "0.10") == 0 || strcmp(v, "v2") == 0)
			t->version = 2;
		else if (strcmp(v, "1.1") == 0 || strcmp(v, "v3") == 0)
			t->version = 3;
		else
			return cli_error("Invalid compatibility level: '%s'",
					 v);
	} else if (strcmp(key, "refcount_bits") == 0) {
		char *end;
		*refbits = strtoull(v, &end, 10);
		if (*end || end == v)
			return bad_value(key, "a number");
		if (!*refbits || *refbits > 64 || (*refbits & (*refbits - 1)))
			return cli_error(
				"Refcount width must be a power of two "
				"and may not exceed 64 bits");
	} else if (strcmp(key, "extended_l2") == 0) {
		return parse_bool_opt(key, v, &t->extended_l2);
	} else if (strcmp(key, "preallocation") == 0) {
		if (strcmp(v, "full") == 0 || strcmp(v, "falloc") == 0)
			t->prealloc_all = true;
		else if (strcmp(v, "off") && strcmp(v, "metadata"))
			return cli_error("invalid parameter value: %s", v);
	} else if (strcmp(key, "backing_file") == 0) {
		t->backing = *v != 0;
	} else if (strcmp(key, "encrypt.format") == 0) {
		/* qemu-img measures any other value as unencrypted */
		t->encrypt = strcmp(v, "luks") == 0;
	} else if (strncmp(key, "encrypt.", 8) == 0 && is_luks_opt(key + 8)) {
		return 0; /* for mimg_luks_header_size */
	} else if (strcmp(key, "lazy_refcounts") == 0) {
		bool b;
		return parse_bool_opt(key, v, &b);
	} else if (strcmp(key, "size") && strcmp(key, "backing_fmt") &&
		   strcmp(key, "compression_type") &&
		   strcmp(key, "encryption") && strcmp(key, "data_file") &&
		   strcmp(key, "data_file_raw")) {
		return invalid_param(key, "qcow2");
	}
	return 0;
}

/* Apply -o to T, with qemu-img's checks and messages. */
static int parse_target(const char *fmt, const char *text, struct target *t)
{
	struct mimg_opt *opts = NULL;
	int n = 0, r = 0;
	bool have_cs = false;
	uint64_t refbits = 16;

	*t = (struct target){.cluster_size = 65536, .version = 3};
	if (strcmp(fmt, "qcow2") == 0) {
		t->qcow2 = true;
	} else if (strcmp(fmt, "luks") == 0) {
		t->luks = true;
	} else if (strcmp(fmt, "raw") != 0) {
		for (const char *const *f = mimg_formats(); *f; f++)
			if (strcmp(*f, fmt) == 0)
				return cli_error("Block driver '%s' does not "
						 "support size measurement",
						 fmt);
		return cli_error("Unknown file format '%s'", fmt);
	}
	if (text && (n = mimg_opts_parse(text, &opts)) < 0)
		return cli_error("%s", mimg_errmsg());
	for (int i = 0; i < n && r == 0; i++) {
		const char *k = opts[i].key, *v = opts[i].value;
		if (t->qcow2)
			r = qcow2_opt(t, k, v, &have_cs, &refbits);
		else if (t->luks &&
			 (is_luks_opt(k) || strcmp(k, "preallocation") == 0 ||
			  strcmp(k, "size") == 0))
			continue; /* qemu-img ignores preallocation here */
		else if (t->luks)
			r = invalid_param(k, "luks");
		else if (strcmp(k, "preallocation") == 0 && strcmp(v, "off") &&
			 strcmp(v, "falloc") && strcmp(v, "full"))
			r = cli_error("invalid parameter value: %s", v);
		else if (strcmp(k, "preallocation") && strcmp(k, "size"))
			r = invalid_param(k, "raw");
	}
	if (r == 0 && (t->luks || t->encrypt))
		r = luks_header(t, opts, (size_t)n);
	mimg_opts_free(opts, n > 0 ? (size_t)n : 0);
	if (r != 0 || !t->qcow2)
		return r;
	if (t->extended_l2 && t->cluster_size < 16384)
		return cli_error("Extended L2 entries are only supported with "
				 "cluster sizes of at least 16384 bytes");
	if (t->version == 2 && refbits != 16)
		return cli_error("Different refcount widths than 16 bits "
				 "require compatibility level 1.1 or above "
				 "(use compat=1.1 or greater)");
	while ((1ull << t->refcount_order) < refbits)
		t->refcount_order++;
	return 0;
}

/* Refcount table and block clusters needed to count CLUSTERS host
 * clusters and themselves: iterate until adding them needs no more. */
static uint64_t refcount_meta(uint64_t clusters, const struct target *t)
{
	uint64_t per_block = t->cluster_size * 8 >> t->refcount_order;
	uint64_t per_table = t->cluster_size / 8;
	uint64_t blocks = 0, table = 0, n = 0, last;
	do {
		last = n;
		blocks = div_up(clusters + table + blocks, per_block);
		table = div_up(blocks, per_table);
		n = clusters + blocks + table;
	} while (n != last);
	return (blocks + table) * t->cluster_size;
}

/* Every cluster of a fully allocated image of SIZE (cluster-aligned)
 * bytes: header, L2 and L1 tables, refcount metadata, data. */
static uint64_t qcow2_full_size(uint64_t size, const struct target *t)
{
	uint64_t cs = t->cluster_size, l2e = t->extended_l2 ? 16 : 8;
	uint64_t meta = cs;
	uint64_t nl2e = round_up(size / cs, cs / l2e);
	meta += nl2e * l2e;
	uint64_t nl1e = round_up(nl2e * l2e / cs, cs / 8);
	meta += nl1e * 8;
	meta += refcount_meta((meta + size) / cs, t);
	return meta + size;
}

/* Bytes of IMG's chain in clusters that hold data, as qemu-img counts
 * them: a data run is extended to its cluster's end, and the part of its
 * first cluster before it is added. */
static int data_bytes(struct mimg *img, uint64_t cs, uint64_t *out)
{
	uint64_t size = mimg_size(img), off = 0, pnum, req = 0;
	unsigned st;
	int depth;

	while (off < size) {
		if (mimg_block_status_chain(img, off, size - off, &pnum, &st,
					    &depth, NULL, 0) < 0)
			return cli_error("%s", mimg_errmsg());
		if (!(st & MIMG_BS_ZERO) &&
		    (st & (MIMG_BS_DATA | MIMG_BS_ALLOCATED)) ==
			    (MIMG_BS_DATA | MIMG_BS_ALLOCATED)) {
			pnum = round_up(off + pnum, cs) - off;
			req += off % cs + pnum;
		}
		off += pnum;
	}
	*out = req;
	return 0;
}

static const struct mimg_value *fs_data(const struct mimg_value *info,
					const char *key)
{
	const struct mimg_value *fs = mimg_value_get(info, "format-specific");
	const struct mimg_value *d = fs ? mimg_value_get(fs, "data") : NULL;
	return d ? mimg_value_get(d, key) : NULL;
}

/* Space the source's persistent bitmaps take in a new qcow2 image with
 * clusters of CS bytes; false when the source cannot have any. */
static bool bitmaps_size(struct mimg *img, uint64_t cs, uint64_t *out)
{
	struct mimg_value *info = NULL;
	const struct mimg_value *compat, *bms;
	uint64_t total = 0, dir = 0;
	bool ok = false;

	if (strcmp(mimg_format(img), "qcow2") != 0 || mimg_info(img, &info) < 0)
		goto out;
	compat = fs_data(info, "compat");
	if (!compat || compat->type != MIMG_VALUE_STRING ||
	    strcmp(compat->v.s, "0.10") == 0)
		goto out;
	ok = true;
	bms = fs_data(info, "bitmaps");
	for (size_t i = 0;
	     bms && bms->type == MIMG_VALUE_ARRAY && i < bms->v.list.n; i++) {
		const struct mimg_value *b = &bms->v.list.items[i];
		const struct mimg_value *name = mimg_value_get(b, "name");
		const struct mimg_value *gran = mimg_value_get(b,
							       "granularity");
		if (!name || name->type != MIMG_VALUE_STRING || !gran ||
		    gran->type != MIMG_VALUE_UINT || !gran->v.u)
			continue;
		uint64_t bytes = div_up(div_up(mimg_size(img), gran->v.u), 8);
		uint64_t clusters = div_up(bytes, cs);
		total += clusters * cs + round_up(clusters * 8, cs);
		dir += round_up(24 + strlen(name->v.s), 8);
	}
	total += round_up(dir, cs);
	*out = total;
out:
	mimg_value_free(info);
	return ok;
}

static int measure(const struct target *t, struct mimg *img, uint64_t size,
		   struct measure *m)
{
	if (t->luks) {
		/* every byte of the data, after the header */
		m->required = m->fully_allocated =
			t->luks_header + (img ? mimg_size(img) : size);
		return 0;
	}
	if (!t->qcow2) {
		m->required = m->fully_allocated = img ? mimg_size(img)
						       : round_up(size, 512);
		return 0;
	}
	uint64_t cs = t->cluster_size, l2e = t->extended_l2 ? 16 : 8;
	uint64_t vsize = round_up(size, cs), req = 0;
	if (div_up(vsize / cs, cs / l2e) * l2e > QCOW2_MAX_L1_BYTES)
		return cli_error("The image size is too large (try using a "
				 "larger cluster size)");
	if (img) {
		vsize = round_up(mimg_size(img), cs);
		/* A new backing file may share nothing with the source. */
		if (t->backing)
			req = vsize;
		else if (data_bytes(img, cs, &req) != 0)
			return EXIT_ERR;
	}
	if (t->prealloc_all)
		req = vsize;
	m->fully_allocated = t->luks_header + qcow2_full_size(vsize, t);
	m->required = m->fully_allocated - vsize + req;
	m->has_bitmaps = t->version >= 3 && img &&
			 bitmaps_size(img, cs, &m->bitmaps);
	return 0;
}

static void print_measure(const struct measure *m, enum output_format of)
{
	if (of == OUTPUT_JSON) {
		/* qemu-img's member order */
		printf("{\n");
		if (m->has_bitmaps)
			printf("    \"bitmaps\": %" PRIu64 ",\n", m->bitmaps);
		printf("    \"required\": %" PRIu64 ",\n"
		       "    \"fully-allocated\": %" PRIu64 "\n}\n",
		       m->required, m->fully_allocated);
		return;
	}
	printf("required size: %" PRIu64 "\nfully allocated size: %" PRIu64
	       "\n",
	       m->required, m->fully_allocated);
	if (m->has_bitmaps)
		printf("bitmaps size: %" PRIu64 "\n", m->bitmaps);
}

struct measure_args {
	const char *out_fmt, *snapshot, *size_text, *file;
	char *opts_text;
	struct cli_args ca; /* FILE's format or --image-opts */
};

static int parse_args(int argc, char **argv, struct measure_args *a)
{
	enum { OPT_SIZE = 256 };
	static const struct option longopts[] = {
		{"size", required_argument, NULL, OPT_SIZE},
		{NULL, 0, NULL, 0},
	};
	struct cli_args *ca = &a->ca;
	int c;
	*ca = (struct cli_args){.cmd = "measure",
				.help = measure_help,
				.longopts = CLI_OUTPUT | CLI_FORCE_SHARE |
					    CLI_IMAGE_OPTS};
	while ((c = cli_getopt(ca, argc, argv, ":hf:O:o:l:U", longopts)) >= 0) {
		switch (c) {
		case 'O': a->out_fmt = optarg; break;
		case 'o':
			if (cli_append_opts(&a->opts_text, optarg) != 0)
				return EXIT_ERR;
			break;
		case 'l':
			if (cli_snapshot_check(optarg) != 0)
				return EXIT_ERR;
			a->snapshot = optarg;
			break;
		case OPT_SIZE: a->size_text = optarg; break;
		}
	}
	if (c == CLI_ARGS_STOP) /* -1: exit 0 after the help */
		return ca->status == EXIT_OK ? -1 : ca->status;
	if (argc - optind > 1)
		return cli_error("At most one filename argument is allowed.");
	a->file = optind < argc ? argv[optind] : NULL;
	/* In qemu-img's order. */
	if (!a->file && (ca->fmt || ca->image_opts || a->snapshot))
		return cli_error("--image-opts, -f, and -l require a filename "
				 "argument.");
	if (a->file && a->size_text)
		return cli_error("--size N cannot be used together with a "
				 "filename.");
	if (!a->file && !a->size_text)
		return cli_error("Either --size N or one filename must be "
				 "specified.");
	return 0;
}

int cmd_measure(int argc, char **argv)
{
	struct measure_args a = {.out_fmt = "raw"};
	struct target t;
	struct measure m = {0};
	struct mimg *img = NULL;
	uint64_t size = 0;
	int status = EXIT_ERR, r;

	if ((r = parse_args(argc, argv, &a)) != 0) {
		free(a.opts_text);
		return r < 0 ? EXIT_OK : EXIT_ERR;
	}
	if (a.size_text && cli_parse_num("image size", a.size_text, 0,
					 CLI_NUM_MAX, &size) != 0)
		goto out;
	if (parse_target(a.out_fmt, a.opts_text, &t) != 0)
		goto out;
	if (a.file) {
		if (cli_open_arg(&img, &a.ca, a.file, 0) < 0) {
			cli_error("%s", cli_errmsg());
			goto out;
		}
		if (a.snapshot && cli_snapshot_select(img, a.snapshot) != 0)
			goto out;
	}
	if (measure(&t, img, size, &m) == 0) {
		print_measure(&m, a.ca.output);
		status = EXIT_OK;
	}
out:
	mimg_close(img);
	free(a.opts_text);
	return status;
}
