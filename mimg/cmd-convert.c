/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg convert: copy an image's content into a new (or existing) image of
 * any format.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static void convert_help(void)
{
	printf("Usage: mimg convert [-f fmt] [-O fmt] [-o opts] [-c] [-p] [-q] "
	       "[-n] [-S size]\n"
	       "                    [-m N] [-W] [-t cache] [-l snapshot] "
	       "[--target-is-zero]\n"
	       "                    [--untrusted] SRC DST\n"
	       "\n"
	       "Copy the content of SRC (through its backing chain) into "
	       "DST.\n"
	       "\n"
	       "  -f FMT            source format (default: probe)\n"
	       "  -O FMT            output format (default raw)\n"
	       "  -o OPTS           output format options (as for create)\n"
	       "  -c                compress the output (qcow2, vmdk)\n"
	       "  -p                show progress on a terminal\n"
	       "  -q                quiet\n"
	       "  -n                DST exists: do not create it\n"
	       "  -S SIZE           zero runs of SIZE bytes are not written "
	       "(default 4k; 0 writes every byte)\n"
	       "  -m N              requests in flight (default 8)\n"
	       "  -W                allow out-of-order writes\n"
	       "  -t CACHE          output cache mode: unsafe (default), "
	       "writeback, none,\n"
	       "                    writethrough, directsync\n"
	       "  -T CACHE          source cache mode (none or writeback)\n"
	       "  -l SNAPSHOT       read internal snapshot SNAPSHOT "
	       "(name or id, or\n"
	       "                    snapshot.name=NAME / snapshot.id=ID)\n"
	       "  -U                accepted for qemu-img compatibility\n"
	       "  --target-is-zero  DST reads as zeroes (with -n)\n"
	       "  --untrusted       refuse sources that refer to other "
	       "files\n"
	       "  --object secret,id=ID,data=TEXT|file=PATH[,format=raw|base64]\n"
	       "                    a secret (LUKS passphrase)\n"
	       "  --image-opts      FILE is driver=FMT,file.filename=PATH,key-secret=ID\n"
	       "  --ova-disk N|NAME the disk of an OVA SRC to convert: index "
	       "from 0, file\n"
	       "                    name or disk id (default 0)\n"
	       "  -h, --help        this help\n");
}

/* qemu-img's cache modes as open flags. */
static int cache_flags(const char *mode, unsigned *flags)
{
	if (strcmp(mode, "unsafe") == 0)
		*flags = MIMG_OPEN_NO_FLUSH;
	else if (strcmp(mode, "writeback") == 0)
		*flags = 0;
	else if (strcmp(mode, "none") == 0)
		*flags = MIMG_OPEN_DIRECT;
	else if (strcmp(mode, "writethrough") == 0)
		*flags = MIMG_OPEN_SYNC;
	else if (strcmp(mode, "directsync") == 0)
		*flags = MIMG_OPEN_DIRECT | MIMG_OPEN_SYNC;
	else
		return cli_error("Invalid cache option: %s", mode);
	return 0;
}

/* "-l snapshot.name=X", "-l snapshot.id=X" or "-l X". */
static const char *snapshot_arg(const char *arg)
{
	if (strncmp(arg, "snapshot.name=", 14) == 0)
		return arg + 14;
	if (strncmp(arg, "snapshot.id=", 12) == 0)
		return arg + 12;
	return arg;
}

struct convert_args {
	const char *src_fmt, *dst_fmt, *snapshot, *src, *dst, *ova_disk;
	char *opts_text;
	unsigned src_flags, dst_flags;
	bool quiet, progress;
	struct mimg_convert_opts copts;
};

/* True when some file this process has open is TS: the source's other
 * files (VMDK extents, qcow2 data files) are all open once it is. */
static bool file_is_open(const struct stat *ts)
{
	static const char *const fd_dirs[] = {"/proc/self/fd", "/dev/fd"};
	for (size_t d = 0; d < 2; d++) {
		DIR *dir = opendir(fd_dirs[d]);
		struct dirent *e;
		struct stat st;
		bool found = false;
		if (!dir)
			continue;
		while (!found && (e = readdir(dir)) != NULL) {
			char *end;
			long fd = strtol(e->d_name, &end, 10);
			if (*end || end == e->d_name || fd == dirfd(dir))
				continue;
			found = fstat((int)fd, &st) == 0 &&
				st.st_dev == ts->st_dev &&
				st.st_ino == ts->st_ino;
		}
		closedir(dir);
		return found;
	}
	return false;
}

/* A target that is the source, an image of its backing chain or a file
 * the source reads would be truncated while it is read (qemu-img refuses
 * it through its image locks).  Returns true when DST is such a file. */
static bool target_is_source(struct mimg *src, const char *dst)
{
	struct stat ts, ss;
	if (stat(dst, &ts) != 0)
		return false;
	for (struct mimg *i = src; i; i = mimg_backing(i)) {
		if (stat(mimg_filename(i), &ss) == 0 &&
		    ss.st_dev == ts.st_dev && ss.st_ino == ts.st_ino) {
			cli_error("Refusing to write to '%s': it is %s '%s'",
				  dst, i == src ? "the source image"
						: "in the backing chain of",
				  i == src ? mimg_filename(i)
					   : mimg_filename(src));
			return true;
		}
	}
	if ((S_ISREG(ts.st_mode) || S_ISBLK(ts.st_mode)) && file_is_open(&ts)) {
		cli_error("Refusing to write to '%s': it is a file that '%s' "
			  "reads", dst, mimg_filename(src));
		return true;
	}
	return false;
}

static int run_convert(struct convert_args *a)
{
	struct mimg *src = NULL, *dst = NULL;
	struct mimg_opt *opts = NULL;
	struct cli_progress prog;
	int nopts = 0, r, status = EXIT_ERR;

	/* convert reads its source in order: archives may stream */
	if ((r = a->ova_disk
		     ? mimg_open_ova_disk(&src, a->src, a->src_fmt,
					  a->src_flags | MIMG_OPEN_SEQUENTIAL,
					  a->ova_disk)
		     : cli_open(&src, a->src, a->src_fmt,
				a->src_flags | MIMG_OPEN_SEQUENTIAL)) < 0)
		goto err;
	if (a->snapshot && (r = mimg_select_snapshot(src, a->snapshot)) < 0)
		goto err;
	if (a->opts_text && (nopts = mimg_opts_parse(a->opts_text, &opts)) < 0)
		goto err;
	if (target_is_source(src, a->dst))
		goto out;
	if (!a->copts.existing_target) {
		r = cli_create(a->dst, a->dst_fmt, mimg_size(src), opts,
			       (size_t)nopts, 0);
		if (r < 0)
			goto err;
	}
	/* the target is opened with the secret it was created with */
	const char *dst_secret = NULL;
	for (int i = 0; i < nopts; i++)
		if (strcmp(opts[i].key, "key-secret") == 0)
			dst_secret = opts[i].value;
	r = cli_open_id(&dst, a->dst, a->dst_fmt,
			MIMG_OPEN_RDWR | MIMG_OPEN_NO_BACKING | a->dst_flags,
			dst_secret);
	if (r < 0)
		goto err;
	cli_progress_init(&prog, a->progress && !a->quiet);
	a->copts.progress = cli_progress_cb;
	a->copts.opaque = &prog;
	r = mimg_convert(src, dst, &a->copts);
	cli_progress_end(&prog);
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
	mimg_close(src);
	mimg_opts_free(opts, nopts > 0 ? (size_t)nopts : 0);
	return status;
}

int cmd_convert(int argc, char **argv)
{
	enum { OPT_TARGET_IS_ZERO = 256, OPT_UNTRUSTED, OPT_OVA_DISK };
	static const struct option longopts[] = {
		{"target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO},
		{"untrusted", no_argument, NULL, OPT_UNTRUSTED},
		{"object", required_argument, NULL, OPT_OBJECT},
		{"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
		{"ova-disk", required_argument, NULL, OPT_OVA_DISK},
		{"force-share", no_argument, NULL, 'U'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct convert_args a = {.dst_fmt = "raw",
				 .dst_flags = MIMG_OPEN_NO_FLUSH};
	char *opts_text = NULL, *src_path = NULL, *src_fmt_alloc = NULL;
	bool image_opts = false;
	int c, status;
	uint64_t v;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:O:o:cpqnS:m:Wt:T:l:Uh",
				longopts, NULL)) != -1) {
		switch (c) {
		case 'f': a.src_fmt = optarg; break;
		case 'O': a.dst_fmt = optarg; break;
		case 'o': {
			/* Several -o accumulate, as in qemu-img. */
			size_t n = (opts_text ? strlen(opts_text) + 1 : 0) +
				   strlen(optarg) + 1;
			char *t = malloc(n);
			if (!t)
				return cli_error("out of memory");
			snprintf(t, n, "%s%s%s", opts_text ? opts_text : "",
				 opts_text ? "," : "", optarg);
			free(opts_text);
			opts_text = t;
			break;
		}
		case 'c': a.copts.compress = 1; break;
		case 'p': a.progress = true; break;
		case 'q': a.quiet = true; break;
		case 'n': a.copts.existing_target = 1; break;
		case 'S':
			if (mimg_parse_size(optarg, &v) < 0 || v % 512 ||
			    v > (16u << 20)) {
				free(opts_text);
				return cli_error("Invalid buffer size for sparse "
						 "output specified. Valid sizes "
						 "are multiples of 512 up to "
						 "16777216. Select 0 to disable "
						 "sparse detection (fully "
						 "allocates output).");
			}
			a.copts.sparse_size = v ? v : MIMG_CONVERT_NO_SPARSE;
			break;
		case 'm': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 64) {
				free(opts_text);
				return cli_error("Invalid number of coroutines. "
						 "Allowed number of coroutines "
						 "is between 1 and 64");
			}
			a.copts.parallel = (int)n;
			break;
		}
		case 'W': a.copts.out_of_order = 1; break;
		case 't':
			if (cache_flags(optarg, &a.dst_flags) != 0) {
				free(opts_text);
				return EXIT_ERR;
			}
			break;
		case 'T': {
			unsigned f;
			if (cache_flags(optarg, &f) != 0) {
				free(opts_text);
				return EXIT_ERR;
			}
			a.src_flags |= f & MIMG_OPEN_DIRECT;
			break;
		}
		case 'l': a.snapshot = snapshot_arg(optarg); break;
		case 'U': break;
		case OPT_TARGET_IS_ZERO: a.copts.target_is_zero = 1; break;
		case OPT_UNTRUSTED: a.src_flags |= MIMG_OPEN_UNTRUSTED; break;
		case OPT_OBJECT:
			if (cli_object_add(optarg) < 0)
				return EXIT_ERR;
			break;
		case OPT_IMAGE_OPTS: image_opts = true; break;
		case OPT_OVA_DISK: a.ova_disk = optarg; break;
		case 'h':
			free(opts_text);
			convert_help();
			return EXIT_OK;
		default:
			free(opts_text);
			return cli_usage_error("convert", "invalid option");
		}
	}
	if (argc - optind != 2) {
		free(opts_text);
		return cli_usage_error("convert", argc - optind < 2
						   ? "Expecting a source and "
						     "a target file name"
						   : "Converting several "
						     "sources into one is not "
						     "supported");
	}
	if (a.copts.target_is_zero && !a.copts.existing_target) {
		free(opts_text);
		return cli_error("--target-is-zero requires use of -n flag");
	}
	if (a.copts.existing_target && opts_text) {
		free(opts_text);
		return cli_error("-o has no effect when skipping image "
				 "creation");
	}
	a.src = argv[optind];
	if (image_opts) {
		char *ifmt;
		if (cli_image_opts(argv[optind], &src_path, &ifmt) < 0) {
			free(opts_text);
			return EXIT_ERR;
		}
		a.src = src_path;
		if (ifmt)
			a.src_fmt = ifmt;
		src_fmt_alloc = ifmt;
	}
	a.dst = argv[optind + 1];
	a.opts_text = opts_text;
	status = run_convert(&a);
	free(opts_text);
	free(src_path);
	free(src_fmt_alloc);
	return status;
}
