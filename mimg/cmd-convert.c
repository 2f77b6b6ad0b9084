/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg convert: copy an image's content into a new (or existing) image of
 * any format.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void convert_help(void)
{
	printf("Usage: mimg convert [-f fmt] [-O fmt] [-o opts] [-c] [-p] [-q] "
	       "[-n] [-S size]\n"
	       "                    [-m N] [-W] [-r rate] [-t cache] "
	       "[-l snapshot]\n"
	       "                    [--target-is-zero] [--image-opts] "
	       "[--target-image-opts]\n"
	       "                    [--object spec] [-B backing [-F fmt]] "
	       "[-C] [--salvage]\n"
	       "                    [--bitmaps] [--skip-broken-bitmaps] "
	       "[--untrusted]\n"
	       "                    [--compression-level N] "
	       "SRC [SRC...] DST\n"
	       "\n"
	       "Copy the content of SRC (through its backing chain) into "
	       "DST; several\nsources are copied one after the other.\n"
	       "\n"
	       "  -f FMT            source format (default: probe)\n"
	       "  -O FMT            output format (default raw; ova: an "
	       "appliance, each SRC\n"
	       "                    a disk, -o name=,cpus=,memory=,"
	       "controller=,network=)\n"
	       "  -o OPTS           output format options (as for create)\n"
	       "  -c                compress the output (qcow2, vmdk)\n"
	       "  -p                show progress (on stdout, as qemu-img)\n"
	       "  -q                quiet\n"
	       "  -n                DST exists: do not create it\n"
	       "  -S SIZE           zero runs of SIZE bytes are not written "
	       "(default 4k; 0 writes every byte)\n"
	       "  -m N              requests in flight (default: one per "
	       "CPU, at least 8)\n"
	       "  -W                allow out-of-order writes\n"
	       "  -r RATE           read the source's data at most RATE "
	       "bytes a second\n"
	       "  -t CACHE          output cache mode: unsafe (default), "
	       "writeback, none,\n"
	       "                    writethrough, directsync\n"
	       "  -T CACHE          source cache mode (none or writeback)\n"
	       "  -l SNAPSHOT       read internal snapshot SNAPSHOT (its id, "
	       "else its name), or\n"
	       "                    snapshot.id=ID,snapshot.name=NAME "
	       "(either or both)\n"
	       "  -U                accepted for qemu-img compatibility\n"
	       "  --target-is-zero  DST reads as zeroes (with -n)\n"
	       "  --target-image-opts\n"
	       "                    DST is driver=FMT,file.filename=PATH,"
	       "key-secret=ID (with -n)\n"
	       "  -B BACKING        DST is an overlay of BACKING: only what "
	       "SRC's top layer\n"
	       "                    defines is written (-o backing_file=... "
	       "too)\n"
	       "  -F FMT            BACKING's format\n"
	       "  -C                copy offloading (copy_file_range) where "
	       "possible\n"
	       "  --salvage         unreadable sectors become zeroes, with a "
	       "warning\n"
	       "  --bitmaps         copy SRC's persistent bitmaps (qcow2)\n"
	       "  --skip-broken-bitmaps  with --bitmaps, skip bitmaps in use "
	       "(inconsistent)\n"
	       "  --untrusted       refuse sources that refer to other "
	       "files\n"
	       "  --compression-level N\n"
	       "                    level of compressed output: deflate "
	       "1-12 (qcow2 zlib\n"
	       "                    1-9), zstd 1-22; default qemu-img's "
	       "(deflate 6, zstd 3)\n" CLI_HELP_OBJECT
	       "  --image-opts      FILE is driver=FMT,file.filename=PATH,key-secret=ID\n"
	       "  --ova-disk N|NAME the disk of an OVA SRC to convert: index "
	       "from 0, file\n"
	       "                    name or disk id (default 0)\n"
	       "  --output-compression xz|zstd|gzip|none\n"
	       "                    write raw output compressed (default: "
	       "by DST's name,\n"
	       "                    .xz, .zst or .gz)\n"
	       "  -h, --help        this help\n");
}

#define MAX_SOURCES 64

struct convert_args {
	const char *src_fmt, *dst_fmt, *snapshot, *dst;
	const char *srcs[MAX_SOURCES];
	int nsrc;
	const char *backing, *backing_fmt;
	/* backing_file, backing_fmt and preallocation given in -o
	 * (malloc'ed). */
	char *opts_backing, *opts_backing_fmt, *opts_prealloc;
	const char *ova_disk;
	const char *packed; /* compressed raw output: xz, zstd, gzip */
	char *opts_text;
	unsigned src_flags, dst_flags;
	bool quiet, progress, bitmaps, skip_broken;
	/* --target-image-opts: DST was an option string (DST_FMT is NULL
	 * when it names no driver: probed), DST_SECRET its key-secret. */
	bool target_opts, dst_fmt_given;
	const char *dst_secret, *dst_spec;
	struct mimg_convert_opts copts;
};

/* Progress over several sources: each conversion reports its own bytes. */
struct multi_progress {
	struct cli_progress *bar;
	uint64_t base, total;
};

static void multi_progress_cb(void *opaque, uint64_t done, uint64_t total)
{
	struct multi_progress *m = opaque;
	(void)total;
	cli_progress_cb(m->bar, m->base + done, m->total);
}

static void salvage_warn(void *opaque, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "%s: warning: %s\n", cli_prog, msg);
}

/* A target that is the source, an image of its backing chain or a file
 * the source reads would be truncated while it is read (qemu-img refuses
 * it through its image locks).  Returns true when DST is such a file. */
static bool target_is_source(struct mimg *src, const char *dst)
{
	if (mimg_reads_file(src, dst) == 0)
		return false;
	cli_error("%s", mimg_errmsg());
	return true;
}

/* The format-specific data of an image's INFO, or NULL. */
static const struct mimg_value *format_data(const struct mimg_value *info)
{
	const struct mimg_value *fs = mimg_value_get(info, "format-specific");
	return fs ? mimg_value_get(fs, "data") : NULL;
}

/* The persistent bitmaps IMG's info lists (an array), or NULL; the info
 * in *INFOP (to free; NULL when it could not be had). */
static const struct mimg_value *bitmap_list(struct mimg *img,
					    struct mimg_value **infop)
{
	const struct mimg_value *data, *bm;
	*infop = NULL;
	if (mimg_info(img, infop) < 0)
		return NULL;
	if ((data = format_data(*infop)) &&
	    (bm = mimg_value_get(data, "bitmaps")) &&
	    bm->type == MIMG_VALUE_ARRAY)
		return bm;
	return NULL;
}

static bool has_flag(const struct mimg_value *bm, const char *flag)
{
	const struct mimg_value *fl = mimg_value_get(bm, "flags");
	for (size_t i = 0;
	     fl && fl->type == MIMG_VALUE_ARRAY && i < fl->v.list.n; i++)
		if (fl->v.list.items[i].type == MIMG_VALUE_STRING &&
		    strcmp(fl->v.list.items[i].v.s, flag) == 0)
			return true;
	return false;
}

/* Whether IMG, whose info is INFO, can hold persistent bitmaps: qcow2
 * from version 3. */
static bool keeps_bitmaps(struct mimg *img, const struct mimg_value *info)
{
	const struct mimg_value *d = info ? format_data(info) : NULL;
	const struct mimg_value *compat = d ? mimg_value_get(d, "compat")
					    : NULL;
	return strcmp(mimg_format(img), "qcow2") == 0 && compat &&
	       compat->type == MIMG_VALUE_STRING &&
	       strcmp(compat->v.s, "0.10") != 0;
}

/* --bitmaps: qemu-img's refusals before anything is written. */
static int check_bitmaps(struct convert_args *a, struct mimg *src)
{
	struct mimg_value *info;
	const struct mimg_value *list = bitmap_list(src, &info);
	int status = EXIT_OK;
	if (!keeps_bitmaps(src, info)) {
		mimg_value_free(info);
		return cli_error("Source lacks bitmap support");
	}
	/* (a qcow2 target, or one probed at --target-image-opts, is checked
	 * once open: its version decides; qemu-img refuses the others once
	 * it made them, mimg before) */
	if (a->dst_fmt && strcmp(a->dst_fmt, "qcow2") != 0) {
		mimg_value_free(info);
		return cli_error("Format driver '%s' does not support bitmaps",
				 a->dst_fmt);
	}
	/* qemu-img walks its bitmaps last to first */
	for (size_t i = list ? list->v.list.n : 0; i-- > 0;) {
		const struct mimg_value *bm = &list->v.list.items[i];
		const struct mimg_value *name = mimg_value_get(bm, "name");
		if (!has_flag(bm, "in-use") || a->skip_broken || !name)
			continue;
		cli_error("Cannot copy inconsistent bitmap '%s'", name->v.s);
		fprintf(stderr, "Try --skip-broken-bitmaps, or use 'qemu-img "
				"bitmap --remove' to delete it\n");
		status = EXIT_ERR;
		break;
	}
	mimg_value_free(info);
	return status;
}

/* Copy SRC's bitmaps into DST after the data, as qemu-img does. */
static int copy_bitmaps(struct mimg *src, struct mimg *dst)
{
	struct mimg_value *info;
	const struct mimg_value *list = bitmap_list(src, &info);
	int r = 0;
	/* warned about last to first, as qemu-img walks them */
	for (size_t i = list ? list->v.list.n : 0; i-- > 0;) {
		const struct mimg_value *bm = &list->v.list.items[i];
		const struct mimg_value *name = mimg_value_get(bm, "name");
		if (name && name->type == MIMG_VALUE_STRING &&
		    has_flag(bm, "in-use"))
			fprintf(stderr,
				"%s: warning: Skipping inconsistent "
				"bitmap '%s'\n",
				cli_prog, name->v.s);
	}
	for (size_t i = 0; list && i < list->v.list.n && r == 0; i++) {
		const struct mimg_value *bm = &list->v.list.items[i];
		const struct mimg_value *name = mimg_value_get(bm, "name");
		const struct mimg_value *gran = mimg_value_get(bm,
							       "granularity");
		if (!name || name->type != MIMG_VALUE_STRING || !gran ||
		    gran->type != MIMG_VALUE_UINT || has_flag(bm, "in-use"))
			continue;
		r = mimg_bitmap_add(dst, name->v.s, gran->v.u,
				    has_flag(bm, "auto")
					    ? 0
					    : MIMG_BITMAP_DISABLED);
		if (r == 0)
			r = mimg_bitmap_merge(dst, name->v.s, src, name->v.s);
	}
	mimg_value_free(info);
	return r;
}

/* The target's backing file as qemu-img takes it: -B, else -o's
 * backing_file, which makes the target an overlay just as -B does (only
 * what differs from the backing file is copied). */
static const char *target_backing(const struct convert_args *a)
{
	return a->backing ? a->backing : a->opts_backing;
}

/* Pick backing_file, backing_fmt and preallocation out of -o; a text
 * that does not parse is left to the target's creation to report. */
static int read_target_opts(struct convert_args *a)
{
	struct mimg_opt *o;
	int n = a->opts_text ? mimg_opts_parse(a->opts_text, &o) : 0;
	for (int i = 0; i < n; i++) {
		char **to = !strcmp(o[i].key, "backing_file") ? &a->opts_backing
			    : !strcmp(o[i].key, "backing_fmt")
				    ? &a->opts_backing_fmt
			    : !strcmp(o[i].key, "preallocation")
				    ? &a->opts_prealloc
				    : NULL;
		if (to && o[i].value) {
			free(*to);
			if (!(*to = strdup(o[i].value))) {
				mimg_opts_free(o, (size_t)n);
				return cli_error("out of memory");
			}
		}
	}
	if (n > 0)
		mimg_opts_free(o, (size_t)n);
	return EXIT_OK;
}

/* The -o text with -B's backing_file/backing_fmt appended (malloc'ed). */
static char *create_options(const struct convert_args *a)
{
	const char *o = a->opts_text ? a->opts_text : "";
	size_t n = strlen(o) + 64 + (a->backing ? 2 * strlen(a->backing) : 0) +
		   (a->backing_fmt ? strlen(a->backing_fmt) : 0);
	char *t = malloc(n);
	if (!t)
		return NULL;
	snprintf(t, n, "%s", o);
	if (a->backing) {
		size_t l = strlen(t);
		char *p = t + l;
		/* ',' doubles inside an option value */
		p += sprintf(p, "%sbacking_file=", l ? "," : "");
		for (const char *c = a->backing; *c; c++) {
			*p++ = *c;
			if (*c == ',')
				*p++ = ',';
		}
		*p = 0;
		if (a->backing_fmt)
			sprintf(p, ",backing_fmt=%s", a->backing_fmt);
	}
	return t;
}

static int open_sources(struct convert_args *a, struct mimg **srcs,
			uint64_t *totalp)
{
	uint64_t total = 0;
	for (int i = 0; i < a->nsrc; i++) {
		/* convert reads its sources in order: archives may stream */
		unsigned flags = a->src_flags | MIMG_OPEN_SEQUENTIAL;
		if ((a->ova_disk ? mimg_open_ova_disk(&srcs[i], a->srcs[i],
						      a->src_fmt, flags,
						      a->ova_disk)
				 : cli_open(&srcs[i], a->srcs[i], a->src_fmt,
					    flags)) < 0)
			return -1;
		if (a->snapshot &&
		    cli_snapshot_select(srcs[i], a->snapshot) != 0)
			return -2;
		uint64_t sz = mimg_size(srcs[i]);
		if (total + sz < total)
			return cli_error("the sources are too large "
					 "together"),
			       -2;
		total += sz;
	}
	*totalp = total;
	return 0;
}

/* qemu-img's words for a target it could not create: a format that cannot
 * create, an option it does not know or a value of the wrong type as it
 * parses them, a -B backing file that does not open (qemu-img creates
 * the target and fails to open it; mimg creates nothing), what the format
 * refused as "DST: error while converting FMT: why". */
static void create_failed(const struct convert_args *a)
{
	static const char no_backing[] = "\nCould not open backing image.";
	const char *m = cli_errmsg();
	size_t n = strlen(a->dst), len;
	if (strncmp(m, a->dst, n) == 0 && strncmp(m + n, ": ", 2) == 0)
		m += n + 2;
	len = strlen(m);
	if (target_backing(a) && len > sizeof(no_backing) - 1 &&
	    strcmp(m + len - (sizeof(no_backing) - 1), no_backing) == 0) {
		/* the library names the backing file (resolved beside the
		 * target) where qemu-img does not */
		const char *b = target_backing(a), *colon = strstr(m, ": ");
		size_t bn = strlen(b);
		if (colon && (size_t)(colon - m) >= bn &&
		    strncmp(colon - bn, b, bn) == 0 &&
		    (colon - bn == m || colon[-(ptrdiff_t)bn - 1] == '/'))
			m = colon + 2;
		len = strlen(m);
		cli_error("Could not open '%s': Could not open backing file: "
			  "%.*s",
			  a->dst, (int)(len - (sizeof(no_backing) - 1)), m);
	} else if (strncmp(m, "Invalid parameter '", 19) == 0 ||
		   (strncmp(m, "Parameter '", 11) == 0 &&
		    strstr(m, "' expects ")) ||
		   (strncmp(m, "Format driver '", 15) == 0 &&
		    strstr(m, "' does not support image creation")))
		cli_error("%s", m);
	else
		cli_error("%s: error while converting %s: %s", a->dst,
			  a->dst_fmt, m);
}

/* -O ova (every source a disk of one appliance, mimg_ova_write) and
 * compressed raw output (mimg_convert_packed): files written whole. */
static int run_convert_whole(struct convert_args *a, struct mimg **srcs,
			     const struct mimg_opt *opts, int nopts)
{
	struct cli_outfiles out;
	struct cli_progress prog;
	int fd, r;

	if (a->copts.existing_target || target_backing(a))
		return cli_error("-n and -B do not apply to %s output",
				 a->packed ? a->packed : a->dst_fmt);
	if (a->packed && nopts)
		return cli_error("-o does not apply to %s output", a->packed);
	if (cli_outfiles_before(&out, a->dst, NULL) < 0) {
		cli_outfiles_end(&out, false);
		return cli_error("out of memory");
	}
	cli_outfiles_block(&out);
	if ((fd = open(a->dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0666)) >= 0)
		close(fd);
	if (cli_outfiles_after(&out) < 0 || fd < 0) {
		if (fd < 0)
			cli_error("%s: %s", a->dst, strerror(errno));
		cli_outfiles_end(&out, true);
		return EXIT_ERR;
	}
	cli_progress_init(&prog, a->progress && !a->quiet);
	a->copts.progress = cli_progress_cb;
	a->copts.opaque = &prog;
	r = a->packed ? mimg_convert_packed(srcs, (size_t)a->nsrc, a->dst,
					    a->packed, &a->copts)
		      : mimg_ova_write(a->dst, srcs, (size_t)a->nsrc, opts,
				       (size_t)nopts, &a->copts);
	cli_progress_end(&prog, r >= 0);
	if (r < 0)
		cli_error("%s", cli_errmsg());
	cli_outfiles_end(&out, r < 0);
	return r < 0 ? EXIT_ERR : EXIT_OK;
}

static int run_convert(struct convert_args *a)
{
	struct mimg *srcs[MAX_SOURCES] = {NULL}, *dst = NULL;
	struct mimg_opt *opts = NULL;
	struct cli_progress prog;
	struct multi_progress mp;
	char *create_text = NULL;
	uint64_t total;
	struct cli_outfiles out;
	bool created = false;
	int nopts = 0, r, status = EXIT_ERR;

	if ((r = open_sources(a, srcs, &total)) < 0) {
		if (r == -1)
			goto err;
		goto out;
	}
	if (a->bitmaps && check_bitmaps(a, srcs[0]) != EXIT_OK)
		goto out;
	if (!(create_text = create_options(a))) {
		cli_error("out of memory");
		goto out;
	}
	if (*create_text && (nopts = mimg_opts_parse(create_text, &opts)) < 0)
		goto err;
	for (int i = 0; i < a->nsrc; i++)
		if (target_is_source(srcs[i], a->dst))
			goto out;
	if (a->packed || (a->dst_fmt && strcmp(a->dst_fmt, "ova") == 0)) {
		status = run_convert_whole(a, srcs, opts, nopts);
		goto out;
	}
	if (!a->copts.existing_target) {
		/* Whatever this creates goes again if the conversion fails
		 * or is interrupted; an existing target is never removed. */
		const char *data_file = NULL;
		for (int i = 0; i < nopts; i++)
			if (strcmp(opts[i].key, "data_file") == 0)
				data_file = opts[i].value;
		if (cli_outfiles_before(&out, a->dst, data_file) < 0) {
			cli_outfiles_end(&out, false);
			cli_error("out of memory");
			goto out;
		}
		created = true;
		cli_outfiles_block(&out);
		r = cli_create(a->dst, a->dst_fmt, total, opts, (size_t)nopts,
			       0);
		if (r < 0) {
			create_failed(a);
			goto out;
		}
		if (cli_outfiles_after(&out) < 0) {
			cli_error("out of memory");
			goto out;
		}
	}
	/* the target is opened with the secret it was created with */
	const char *dst_secret = NULL;
	for (int i = 0; i < nopts; i++)
		if (cli_is_key_secret(opts[i].key))
			dst_secret = opts[i].value;
	if (a->target_opts)
		dst_secret = a->dst_secret;
	r = cli_open_named(&dst, a->dst, a->dst_fmt,
			   MIMG_OPEN_RDWR | MIMG_OPEN_NO_BACKING | a->dst_flags,
			   dst_secret, a->dst_spec);
	if (r < 0)
		goto err;
	if (a->bitmaps) {
		struct mimg_value *info;
		bitmap_list(dst, &info);
		bool keeps = keeps_bitmaps(dst, info);
		mimg_value_free(info);
		if (!keeps) {
			cli_error("Format driver '%s' does not support bitmaps",
				  mimg_format(dst));
			goto out;
		}
	}
	/* qemu-img's words; with -c, after its check of the format */
	if (a->copts.existing_target && !a->copts.compress &&
	    mimg_size(dst) < total) {
		cli_error("output file is smaller than input file");
		goto out;
	}
	cli_progress_init(&prog, a->progress && !a->quiet);
	mp = (struct multi_progress){.bar = &prog, .total = total};
	a->copts.progress = multi_progress_cb;
	a->copts.opaque = &mp;
	a->copts.target_has_backing = target_backing(a) != NULL;
	if (!a->quiet)
		a->copts.warn = salvage_warn;
	for (int i = 0; i < a->nsrc && r >= 0; i++) {
		a->copts.dst_offset = mp.base;
		r = mimg_convert(srcs[i], dst, &a->copts);
		mp.base += mimg_size(srcs[i]);
	}
	cli_progress_end(&prog, r >= 0);
	if (r == 0 && a->bitmaps)
		r = copy_bitmaps(srcs[0], dst);
	if (r < 0)
		goto err;
	r = mimg_close(dst);
	dst = NULL;
	if (r < 0)
		goto err;
	status = EXIT_OK;
	goto out;
err:
	cli_error("%s", cli_errmsg());
out:
	mimg_close(dst);
	if (created)
		cli_outfiles_end(&out, status != EXIT_OK);
	for (int i = 0; i < a->nsrc; i++)
		mimg_close(srcs[i]);
	mimg_opts_free(opts, nopts > 0 ? (size_t)nopts : 0);
	free(create_text);
	return status;
}

/* Raw output is compressed when asked (--output-compression) or when
 * the target's name ends in .xz, .zst or .gz. */
static int packed_output(struct convert_args *a)
{
	static const char *const names[][2] = {
		{".xz", "xz"},
		{".zst", "zstd"},
		{".gz", "gzip"},
	};
	size_t n = strlen(a->dst);
	if (a->packed) {
		if (strcmp(a->packed, "none") == 0) {
			a->packed = NULL;
			return EXIT_OK;
		}
		if (strcmp(a->packed, "xz") && strcmp(a->packed, "zstd") &&
		    strcmp(a->packed, "gzip"))
			return cli_error("--output-compression: '%s' is not "
					 "xz, zstd, gzip or none",
					 a->packed);
		if (!a->dst_fmt || strcmp(a->dst_fmt, "raw") != 0)
			return cli_error("--output-compression needs -O raw");
		return EXIT_OK;
	}
	if (a->target_opts || strcmp(a->dst_fmt, "raw") != 0)
		return EXIT_OK;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t m = strlen(names[i][0]);
		if (n > m && strcmp(a->dst + n - m, names[i][0]) == 0)
			a->packed = names[i][1];
	}
	return EXIT_OK;
}

/* qemu-img's refusals of option combinations, in its order. */
/* Options that exclude each other, refused before the file names are
 * counted, in qemu-img's order. */
static int check_options(const struct convert_args *a, bool explicit_sparse,
			 bool have_opts)
{
	if (a->copts.copy_offload && a->copts.compress)
		return cli_error("Cannot enable copy offloading when -c is "
				 "used");
	if (a->copts.copy_offload && explicit_sparse)
		return cli_error("Cannot enable copy offloading when -S is "
				 "used");
	if (a->copts.copy_offload && a->copts.salvage)
		return cli_error("Cannot use copy offloading in salvaging "
				 "mode");
	if (a->target_opts && !a->copts.existing_target)
		return cli_error("--target-image-opts requires use of -n flag");
	if (a->copts.target_is_zero && !a->copts.existing_target)
		return cli_error("--target-is-zero requires use of -n flag");
	if (a->copts.existing_target && have_opts)
		return cli_error("-o has no effect when skipping image "
				 "creation");
	return EXIT_OK;
}

/* Whether FMT has the create option NAME: 1 or 0, or a negative errno
 * with the message set (a format unknown or that cannot be created). */
static int format_takes(const char *fmt, const char *name)
{
	struct mimg_opt_info o = {.size = sizeof(o)};
	int r = 0;
	for (size_t i = 0;
	     (r = mimg_format_opt_info(fmt, MIMG_OPTS_CREATE, i, &o)) == 0; i++)
		if (strcmp(o.name, name) == 0)
			return 1;
	return r == -ENOENT ? 0 : r;
}

/* What the sources and the target's options exclude. */
static int check_combinations(const struct convert_args *a)
{
	if (a->nsrc > 1 && a->snapshot)
		return cli_error("No support for concatenating multiple "
				 "snapshot");
	if (a->skip_broken && !a->bitmaps)
		return cli_error("Use of --skip-broken-bitmaps requires "
				 "--bitmaps");
	if (a->bitmaps && a->nsrc > 1)
		return cli_error("Copying bitmaps only possible with single "
				 "source");
	const char *backing = target_backing(a);
	/* qemu-img sets the backing file among the format's options */
	int takes = backing && !a->copts.existing_target && a->dst_fmt
			    ? format_takes(a->dst_fmt, "backing_file")
			    : 1;
	if (takes < 0)
		return cli_error("%s", mimg_errmsg());
	if (takes == 0)
		return cli_error("Backing file not supported for file format "
				 "'%s'",
				 a->dst_fmt);
	/* qemu-img prints this one and exits with status 0, converting
	 * nothing; a failure is a failure here. */
	if (backing && a->copts.target_is_zero)
		return cli_error("Cannot use --target-is-zero when the "
				 "destination image has a backing file");
	if (backing && a->nsrc > 1)
		return cli_error("Having a backing file for the target makes "
				 "no sense when concatenating multiple input "
				 "images");
	if (backing && !a->backing_fmt && !a->opts_backing_fmt)
		return cli_error("Use of backing file requires explicit "
				 "backing format");
	if (a->copts.compress && a->opts_prealloc &&
	    strcmp(a->opts_prealloc, "off") != 0)
		return cli_error("Compression and preallocation not supported "
				 "at the same time");
	if (a->backing_fmt && !backing)
		return cli_error(
			"%s: error while converting %s: Backing format "
			"cannot be used without backing file",
			a->dst, a->dst_fmt ? a->dst_fmt : "");
	return EXIT_OK;
}

int cmd_convert(int argc, char **argv)
{
	enum {
		OPT_TARGET_IS_ZERO = 256,
		OPT_SALVAGE,
		OPT_BITMAPS,
		OPT_LEVEL,
		OPT_OVA_DISK,
		OPT_PACK,
		OPT_SKIP_BROKEN,
		OPT_TARGET_OPTS
	};
	static const struct option longopts[] = {
		{"target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO},
		{"salvage", no_argument, NULL, OPT_SALVAGE},
		{"bitmaps", no_argument, NULL, OPT_BITMAPS},
		{"skip-broken-bitmaps", no_argument, NULL, OPT_SKIP_BROKEN},
		{"ova-disk", required_argument, NULL, OPT_OVA_DISK},
		{"output-compression", required_argument, NULL, OPT_PACK},
		{"compression-level", required_argument, NULL, OPT_LEVEL},
		{"target-image-opts", no_argument, NULL, OPT_TARGET_OPTS},
		{NULL, 0, NULL, 0},
	};
	struct cli_args ca = {.cmd = "convert",
			      .help = convert_help,
			      .longopts = CLI_FORCE_SHARE | CLI_IMAGE_OPTS |
					  CLI_UNTRUSTED | CLI_CACHE,
			      /* qemu-img convert's default: unsafe */
			      .cache_flags = MIMG_OPEN_NO_FLUSH};
	struct convert_args a = {.dst_fmt = "raw",
				 .copts = {.size = sizeof(a.copts)}};
	char *opts_text = NULL;
	bool explicit_sparse = false;
	int c, status;
	uint64_t v;

	while ((c = cli_getopt(&ca, argc, argv,
			       ":f:O:o:cpqnS:m:Wt:T:l:UhB:F:Cr:", longopts)) >=
	       0) {
		switch (c) {
		case 'O':
			a.dst_fmt = optarg;
			a.dst_fmt_given = true;
			break;
		case 'o':
			if (cli_append_opts(&opts_text, optarg) != 0) {
				free(opts_text);
				return EXIT_ERR;
			}
			break;
		case 'c': a.copts.compress = true; break;
		case 'n': a.copts.existing_target = true; break;
		case 'S':
			if (cli_parse_num("buffer size for sparse output",
					  optarg, 0, CLI_NUM_MAX, &v) != 0) {
				free(opts_text);
				return EXIT_ERR;
			}
			if (v % 512 || v > (16u << 20)) {
				free(opts_text);
				return cli_error(
					"Invalid buffer size for sparse "
					"output specified. Valid sizes "
					"are multiples of 512 up to "
					"16777216. Select 0 to disable "
					"sparse detection (fully "
					"allocates output).");
			}
			a.copts.sparse_size = v ? v : MIMG_CONVERT_NO_SPARSE;
			explicit_sparse = true;
			break;
		case 'r':
			if (cli_parse_rate(optarg, &a.copts.rate_limit) != 0) {
				free(opts_text);
				return EXIT_ERR;
			}
			break;
		case 'm': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 64) {
				free(opts_text);
				return cli_error(
					"Invalid number of coroutines. "
					"Allowed number of coroutines "
					"is between 1 and 64");
			}
			a.copts.parallel = (int)n;
			break;
		}
		case 'W': a.copts.out_of_order = true; break;
		case OPT_LEVEL: {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || end == optarg || n < 1 || n > 22) {
				free(opts_text);
				return cli_error("Invalid compression level "
						 "'%s': 1 to 22 (deflate "
						 "up to 12)",
						 optarg);
			}
			a.copts.compression_level = (int)n;
			break;
		}
		case 'T': {
			unsigned f;
			if (cli_cache_flags(optarg, &f, true) != 0) {
				free(opts_text);
				return EXIT_ERR;
			}
			a.src_flags |= f & MIMG_OPEN_DIRECT;
			break;
		}
		case 'l':
			if (cli_snapshot_check(optarg) != 0) {
				free(opts_text);
				return EXIT_ERR;
			}
			a.snapshot = optarg;
			break;
		case 'B': a.backing = optarg; break;
		case 'F': a.backing_fmt = optarg; break;
		case 'C': a.copts.copy_offload = true; break;
		case OPT_SALVAGE: a.copts.salvage = true; break;
		case OPT_BITMAPS: a.bitmaps = true; break;
		case OPT_SKIP_BROKEN: a.skip_broken = true; break;
		case OPT_TARGET_IS_ZERO: a.copts.target_is_zero = true; break;
		case OPT_TARGET_OPTS: a.target_opts = true; break;
		case OPT_OVA_DISK: a.ova_disk = optarg; break;
		case OPT_PACK: a.packed = optarg; break;
		}
	}
	if (c == CLI_ARGS_STOP) {
		free(opts_text);
		return ca.status;
	}
	a.src_fmt = ca.fmt;
	a.dst_flags = ca.cache_flags;
	a.quiet = ca.quiet;
	a.progress = ca.progress;
	a.src_flags |= ca.open_flags;
	if (check_options(&a, explicit_sparse, opts_text != NULL) != EXIT_OK) {
		free(opts_text);
		return EXIT_ERR;
	}
	if (opts_text && mimg_opts_has_help(opts_text)) {
		free(opts_text);
		return cli_opts_help(a.dst_fmt, argc - optind >= 2
							? MIMG_OPTS_FILE
							: MIMG_OPTS_CREATE);
	}
	if (argc - optind < 2) {
		free(opts_text);
		return cli_error("Must specify image file name");
	}
	if (argc - optind - 1 > MAX_SOURCES) {
		free(opts_text);
		return cli_usage_error("convert",
				       "At most %d sources can be converted "
				       "into one",
				       MAX_SOURCES);
	}
	a.nsrc = argc - optind - 1;
	for (int i = 0; i < a.nsrc; i++)
		a.srcs[i] = argv[optind + i];
	if (ca.image_opts && a.nsrc > 1) {
		free(opts_text);
		return cli_error("--image-opts takes one source");
	}
	if (cli_image_arg(&ca, &a.srcs[0], &a.src_fmt, false, NULL) < 0) {
		free(opts_text);
		return EXIT_ERR;
	}
	a.src_flags |= ca.image_flags;
	a.dst = a.dst_spec = argv[argc - 1];
	a.opts_text = opts_text;
	/* The target's option string: its secret is its own. */
	struct cli_args ta = {.image_opts = a.target_opts,
			      .fmt = a.dst_fmt_given ? a.dst_fmt : NULL};
	status = EXIT_ERR;
	if (a.target_opts &&
	    cli_image_arg(&ta, &a.dst, &a.dst_fmt, true, &a.dst_secret) < 0)
		goto out;
	a.dst_flags |= ta.image_flags;
	if (packed_output(&a) == EXIT_OK && read_target_opts(&a) == EXIT_OK &&
	    check_combinations(&a) == EXIT_OK)
		status = run_convert(&a);
out:
	free(opts_text);
	free(a.opts_backing);
	free(a.opts_backing_fmt);
	free(a.opts_prealloc);
	cli_args_free(&ca);
	cli_args_free(&ta);
	return status;
}
