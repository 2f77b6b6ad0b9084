/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * --image-opts: an image named by a qemu option string,
 *   driver=FMT,file.filename=PATH[,key-secret=ID][,OPTION=VALUE...]
 * The options taken are those whose meaning mimg has: the file and its
 * format, the secret, qemu's generic block options (read-only,
 * force-share, cache.direct, cache.no-flush; node-name, auto-read-only,
 * and discard and detect-zeroes at their defaults), the "file" protocol
 * options that name what mimg does anyway, and the format's own options
 * (raw's offset and size), which the library checks when the image is
 * opened (mimg_open_opts).  Anything else is refused rather than
 * ignored: a caller must not believe an option took effect when it did
 * not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* What an option string says besides the file and the format. */
struct image_opts {
	char *path, *format;
	char *secret;	 /* key-secret's id, or NULL */
	unsigned flags;	 /* MIMG_OPEN_DIRECT, MIMG_OPEN_NO_FLUSH */
	int read_only;	 /* -1: not given, else 0 or 1 */
	int force_share; /* -1: not given, else 0 or 1 */
	/* The format's options, in order (keys and values malloc'ed). */
	struct mimg_opt *fmt_opts;
	size_t nfmt;
};

/* The files option strings named, with the string and its format
 * options, for the opens of those files (cli_image_spec), kept until
 * exit.  A file named twice must be given the same format options: the
 * opens of one file cannot tell one option string from the other. */
enum { MAX_NAMED = 4 };
static struct named_opts {
	char *path, *spec;
	struct mimg_opt *opts;
	size_t n;
} named[MAX_NAMED];
static size_t n_named;

static bool same_opts(const struct mimg_opt *a, size_t na,
		      const struct mimg_opt *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].key, b[i].key) != 0 ||
		    strcmp(a[i].value, b[i].value) != 0)
			return false;
	return true;
}

/* Keep SPEC and IO's format options for the opens of its file (taking
 * the options from IO); -1 with the message set when that file was named
 * with others. */
static int keep_format_opts(struct image_opts *io, const char *spec)
{
	for (size_t i = 0; i < n_named; i++) {
		if (strcmp(named[i].path, io->path) != 0)
			continue;
		if (same_opts(named[i].opts, named[i].n, io->fmt_opts,
			      io->nfmt))
			return 0;
		cli_set_errmsg("--image-opts: '%s' is named twice with "
			       "different format options",
			       io->path);
		return -1;
	}
	if (n_named == MAX_NAMED) {
		cli_set_errmsg("--image-opts: too many images");
		return -1;
	}
	named[n_named].path = strdup(io->path);
	if (!named[n_named].path || !(named[n_named].spec = strdup(spec))) {
		free(named[n_named].path);
		cli_set_errmsg("out of memory");
		return -1;
	}
	named[n_named].opts = io->fmt_opts;
	named[n_named].n = io->nfmt;
	n_named++;
	io->fmt_opts = NULL;
	io->nfmt = 0;
	return 0;
}

const char *cli_image_spec(const char *path, const struct mimg_opt **opts,
			   size_t *n)
{
	size_t i = 0;
	while (i < n_named && strcmp(named[i].path, path) != 0)
		i++;
	if (opts)
		*opts = i < n_named ? named[i].opts : NULL;
	if (n)
		*n = i < n_named ? named[i].n : 0;
	return i < n_named ? named[i].spec : NULL;
}

/* Options of qemu's "file" protocol layer that name what mimg does
 * anyway, with the values qemu takes: the image is a file or a device
 * node, opened without locks, and how its I/O is issued is mimg's own
 * choice.  Other values are refused: mimg cannot honour them (aio=native
 * also needs cache.direct, which qemu-img checks and mimg does not take
 * here).  discard and detect-zeroes are taken at qemu's defaults only:
 * other values change what writes allocate. */
static const struct {
	const char *key, *values[5];
} fixed_opts[] = {
	{"file.driver", {"file", "host_device", "host_cdrom", NULL}},
	{"file.locking", {"off", "auto", "on", NULL}},
	{"file.aio", {"threads", "io_uring", NULL}},
	{"discard", {"ignore", "off", NULL}},
	{"detect-zeroes", {"off", NULL}},
};

/* An on/off parameter of the option string SPEC, with qemu-img's
 * message for a bad value. */
static int parse_bool(const char *spec, const char *key, const char *v,
		      bool *out)
{
	if (cli_parse_onoff(v, out) == 0)
		return 0;
	cli_set_errmsg("Could not open '%s': Parameter '%s' expects 'on' or "
		       "'off'",
		       spec, key);
	return -1;
}

/* qemu's rule for node names: a letter, then letters, digits, '-', '.'
 * and '_', fewer than 32 in all.  The name itself is not used. */
static int check_node_name(const char *spec, const char *v)
{
	if (strlen(v) >= 32) {
		cli_set_errmsg("Could not open '%s': Node name too long", spec);
		return -1;
	}
	bool ok = (*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z');
	for (const char *p = v; ok && *p; p++)
		ok = strchr("abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._",
			    *p) != NULL;
	if (!ok) {
		cli_set_errmsg("Could not open '%s': Invalid node-name: '%s'",
			       spec, v);
		return -1;
	}
	return 0;
}

/* 1 when KEY=VALUE is one of fixed_opts, 0 when KEY is not, -1 (with the
 * message set) when VALUE is not one it takes. */
static int fixed_opt(const char *key, const char *value)
{
	for (size_t i = 0; i < sizeof(fixed_opts) / sizeof(*fixed_opts); i++) {
		if (strcmp(key, fixed_opts[i].key) != 0)
			continue;
		for (const char *const *v = fixed_opts[i].values; *v; v++)
			if (strcmp(value, *v) == 0)
				return 1;
		cli_set_errmsg("--image-opts: unsupported value '%s' for '%s'",
			       value, key);
		return -1;
	}
	return 0;
}

/* qemu's generic on/off block options: FLAG is the open flag "on" sets;
 * read-only and force-share are kept apart (check_access), and
 * auto-read-only is taken and not used: mimg opens an image as the
 * command needs it, and a file that cannot be written fails then, as it
 * would in qemu-img at the first write. */
static const struct {
	const char *key;
	unsigned flag;
} bool_opts[] = {
	{"read-only", 0},
	{"force-share", 0},
	{"auto-read-only", 0},
	{"cache.direct", MIMG_OPEN_DIRECT},
	{"cache.no-flush", MIMG_OPEN_NO_FLUSH},
};

/* The generic block options: 1 when KEY is one (0 or -1 with the
 * message set in *R), 0 when not. */
static int generic_opt(const char *spec, const char *key, const char *v,
		       struct image_opts *io, int *r)
{
	bool b;
	*r = 0;
	if (strcmp(key, "node-name") == 0) {
		*r = check_node_name(spec, v);
		return 1;
	}
	for (size_t i = 0; i < sizeof(bool_opts) / sizeof(*bool_opts); i++) {
		if (strcmp(key, bool_opts[i].key) != 0)
			continue;
		if ((*r = parse_bool(spec, key, v, &b)) < 0)
			return 1;
		if (bool_opts[i].flag)
			io->flags = b ? io->flags | bool_opts[i].flag
				      : io->flags & ~bool_opts[i].flag;
		else if (strcmp(key, "read-only") == 0)
			io->read_only = b;
		else if (strcmp(key, "force-share") == 0)
			io->force_share = b;
		return 1;
	}
	return 0;
}

/* qemu's "file" driver, when named, opens regular files only, and its
 * host_device and host_cdrom drivers device nodes only (unnamed, mimg
 * opens either). */
static int check_node_kind(const char *driver, const char *path)
{
	struct stat st;
	if (!driver || stat(path, &st) != 0)
		return 0;
	bool file = strcmp(driver, "file") == 0;
	if (file ? S_ISREG(st.st_mode)
		 : S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode))
		return 0;
	cli_set_errmsg(file ? "'%s' driver requires '%s' to be a regular file"
			    : "'%s' driver requires '%s' to be either a "
			      "character or block device",
		       driver, path);
	return -1;
}

static void image_opts_free(struct image_opts *io)
{
	free(io->path);
	free(io->format);
	free(io->secret);
	io->path = io->format = io->secret = NULL;
	for (size_t i = 0; i < io->nfmt; i++) {
		free((char *)io->fmt_opts[i].key);
		free((char *)io->fmt_opts[i].value);
	}
	free(io->fmt_opts);
	io->fmt_opts = NULL;
	io->nfmt = 0;
}

/* KEY=VALUE for the format (the library says whether it takes it), or
 * refused when KEY is one of the "file" layer's, which mimg does not
 * have.  -1 with the message set on error. */
static int add_format_opt(struct image_opts *io, const char *key,
			  const char *value)
{
	if (strncmp(key, "file.", 5) == 0) {
		cli_set_errmsg("--image-opts: unsupported option '%s'", key);
		return -1;
	}
	struct mimg_opt *o = realloc(io->fmt_opts,
				     (io->nfmt + 1) * sizeof(*io->fmt_opts));
	if (!o) {
		cli_set_errmsg("out of memory");
		return -1;
	}
	io->fmt_opts = o;
	o[io->nfmt] = (struct mimg_opt){strdup(key), strdup(value)};
	if (!o[io->nfmt].key || !o[io->nfmt].value) {
		free((char *)o[io->nfmt].key);
		free((char *)o[io->nfmt].value);
		cli_set_errmsg("out of memory");
		return -1;
	}
	io->nfmt++;
	return 0;
}

/* Parse SPEC into IO.  -1 with the message set (cli_errmsg) on error. */
static int parse(const char *spec, struct image_opts *io)
{
	struct mimg_opt *opts = NULL;
	int n = mimg_opts_parse(spec, &opts), r = 0;
	*io = (struct image_opts){.read_only = -1, .force_share = -1};
	cli_set_errmsg(NULL);
	if (n < 0) {
		cli_set_errmsg("--image-opts: %s", mimg_errmsg());
		return -1;
	}
	const char *driver = NULL;
	for (int i = 0; i < n && r == 0; i++) {
		const char *k = opts[i].key, *v = opts[i].value;
		int known = fixed_opt(k, v);
		if (known) {
			r = known < 0 ? -1 : 0;
			if (strcmp(k, "file.driver") == 0)
				driver = v;
			continue;
		}
		if (generic_opt(spec, k, v, io, &r))
			continue;
		char **slot = strcmp(k, "driver") == 0 ? &io->format
			      : strcmp(k, "file.filename") == 0 ||
					      strcmp(k, "filename") == 0
				      ? &io->path
			      : cli_is_key_secret(k) ? &io->secret
						     : NULL;
		if (!slot) {
			r = add_format_opt(io, k, v);
			continue;
		}
		free(*slot);
		if (!(*slot = strdup(v))) {
			cli_set_errmsg("out of memory");
			r = -1;
		}
	}
	if (r == 0 && !io->path) {
		cli_set_errmsg("--image-opts: file.filename is missing");
		r = -1;
	}
	if (r == 0)
		r = check_node_kind(driver, io->path);
	if (r == 0)
		r = keep_format_opts(io, spec);
	mimg_opts_free(opts, n > 0 ? (size_t)n : 0);
	if (r < 0)
		image_opts_free(io);
	return r;
}

/* Whether IO may be opened as the command needs (WRITABLE), with -U
 * (FORCE_SHARE) given or not, as qemu-img decides it: -1 with the message
 * set when not. */
static int check_access(const struct image_opts *io, const char *spec,
			bool writable, bool force_share)
{
	if (force_share && io->force_share == 0) {
		cli_set_errmsg("--force-share/-U conflicts with image options");
		return -1;
	}
	bool read_only = io->read_only == 1 ||
			 (io->read_only == -1 && !writable);
	if ((force_share || io->force_share == 1) && !read_only) {
		cli_set_errmsg("Could not open '%s': force-share=on can only "
			       "be used with read-only images",
			       spec);
		return -1;
	}
	if (writable && io->read_only == 1) {
		cli_set_errmsg("Could not open '%s': Block node is read-only",
			       spec);
		return -1;
	}
	return 0;
}

int cli_image_arg(struct cli_args *a, const char **filep, const char **fmtp,
		  bool writable, const char **secretp)
{
	struct image_opts io;
	if (!a->image_opts)
		return 0;
	/* Refused when the image is opened, after the argument count, as
	 * qemu-img does. */
	if (a->fmt) {
		cli_error("--image-opts and --format are mutually exclusive");
		return -1;
	}
	if (parse(*filep, &io) < 0 ||
	    check_access(&io, *filep, writable, a->force_share) < 0 ||
	    (!secretp && cli_choose_secret(io.secret) < 0)) {
		image_opts_free(&io);
		return cli_error("%s", cli_errmsg()), -1;
	}
	a->image_path = io.path;
	a->image_fmt = io.format;
	a->image_secret = io.secret;
	a->image_flags = io.flags;
	if (secretp)
		*secretp = a->image_secret;
	*filep = a->image_path;
	*fmtp = a->image_fmt;
	return 0;
}

int cli_open_arg(struct mimg **imgp, const struct cli_args *a, const char *arg,
		 unsigned flags)
{
	struct image_opts io;
	*imgp = NULL;
	if (!a->image_opts)
		return cli_open(imgp, arg, a->fmt, flags);
	if (a->fmt) {
		/* -f, or compare's -F: refused here, when the image is
		 * opened, as qemu-img does. */
		cli_set_errmsg("--image-opts and --format are mutually "
			       "exclusive");
		return -EINVAL;
	}
	if (parse(arg, &io) < 0)
		return -EINVAL;
	/* Each option string names its own secret, if any. */
	int r = check_access(&io, arg, flags & MIMG_OPEN_RDWR, a->force_share);
	if (r == 0)
		r = cli_choose_secret(io.secret);
	if (r == 0)
		r = cli_open_named(imgp, io.path, io.format, flags | io.flags,
				   NULL, arg);
	else
		r = -EINVAL;
	image_opts_free(&io);
	return r;
}
