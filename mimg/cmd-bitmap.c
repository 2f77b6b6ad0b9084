/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg bitmap: add, remove, clear, enable, disable or merge persistent
 * dirty bitmaps, several actions applied in the order given, with
 * qemu-img bitmap's options, messages and exit codes.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void bitmap_help(void)
{
	printf("Usage: mimg bitmap (--merge SOURCE | --add | --remove | --clear "
	       "| --enable |\n"
	       "                    --disable)... [-b SOURCE_FILE [-F "
	       "SOURCE_FMT]] [-g GRANULARITY]\n"
	       "                    [--object OBJECTDEF] [--image-opts | -f "
	       "FMT] FILE BITMAP\n"
	       "\n"
	       "Change the persistent dirty bitmap BITMAP of FILE (qcow2), "
	       "action by action.\n"
	       "\n"
	       "  --add           add BITMAP, empty (enabled unless a later "
	       "--disable)\n"
	       "  --remove        remove BITMAP\n"
	       "  --clear         mark every range of BITMAP clean\n"
	       "  --enable        BITMAP records writes from now on\n"
	       "  --disable       BITMAP stops recording writes\n"
	       "  --merge SOURCE  set in BITMAP every range dirty in the bitmap "
	       "SOURCE\n"
	       "  -b, --source-file SOURCE_FILE\n"
	       "                  --merge takes SOURCE from this image\n"
	       "  -F, --source-format SOURCE_FMT\n"
	       "                  the format of SOURCE_FILE (default: probe)\n"
	       "  -g, --granularity GRANULARITY\n"
	       "                  bytes per bit for --add (power of two, 512 "
	       "to 2G;\n"
	       "                  default: the cluster size within 4k..64k)\n"
	       "  -f FMT          the format of FILE (default: probe)\n" CLI_HELP_OBJECT
	       "  --image-opts    FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  -h, --help      this help\n");
}

enum op { OP_ADD, OP_REMOVE, OP_CLEAR, OP_ENABLE, OP_DISABLE, OP_MERGE };
static const char *const op_names[] = {"add",	 "remove",  "clear",
				       "enable", "disable", "merge"};

struct action {
	enum op op;
	const char *src; /* OP_MERGE */
};

struct bitmap_args {
	struct action *actions;
	size_t n;
	struct cli_args ca; /* -f, --image-opts */
	const char *src_file, *src_fmt;
	uint64_t granularity;
	bool add, merge;
};

static int push(struct bitmap_args *a, enum op op, const char *src)
{
	struct action *p = realloc(a->actions, (a->n + 1) * sizeof(*p));
	if (!p)
		return cli_error("out of memory");
	a->actions = p;
	p[a->n++] = (struct action){op, src};
	a->add |= op == OP_ADD;
	a->merge |= op == OP_MERGE;
	return 0;
}

static int run_action(struct mimg *img, struct mimg *src,
		      const struct action *act, const char *name,
		      uint64_t granularity)
{
	int r = 0;
	switch (act->op) {
	case OP_ADD: r = mimg_bitmap_add(img, name, granularity, 0); break;
	case OP_REMOVE: r = mimg_bitmap_remove(img, name); break;
	case OP_CLEAR: r = mimg_bitmap_clear(img, name); break;
	case OP_ENABLE:
	case OP_DISABLE:
		r = mimg_bitmap_enable(img, name, act->op == OP_ENABLE);
		break;
	case OP_MERGE: r = mimg_bitmap_merge(img, name, src, act->src); break;
	}
	if (r == 0)
		return EXIT_OK;
	cli_error("Operation %s on bitmap %s failed: %s", op_names[act->op],
		  name, mimg_errmsg());
	if (r == -EBUSY)
		fprintf(stderr, "Try block-dirty-bitmap-remove to delete this "
				"bitmap from disk\n");
	return EXIT_ERR;
}

/* qemu-img's checks of the option combination, in its order. */
static int check_args(const struct bitmap_args *a, int argc)
{
	if (a->n == 0)
		return cli_error(
			"Need at least one of --add, --remove, --clear, "
			"--enable, --disable, or --merge");
	if (a->granularity && !a->add)
		return cli_error("granularity only supported with --add");
	if (a->src_fmt && !a->src_file)
		return cli_error("-F only supported with -b");
	if (a->src_file && !a->merge)
		return cli_error("Merge bitmap source file only supported with "
				 "--merge");
	if (optind != argc - 2)
		return cli_error("Expecting filename and bitmap name");
	return EXIT_OK;
}

static int parse_args(int argc, char **argv, struct bitmap_args *a)
{
	/* The actions, in enum op's order. */
	enum {
		OPT_ADD = 0x2000,
		OPT_REMOVE,
		OPT_CLEAR,
		OPT_ENABLE,
		OPT_DISABLE,
		OPT_MERGE
	};
	static const struct option longopts[] = {
		{"add", no_argument, NULL, OPT_ADD},
		{"remove", no_argument, NULL, OPT_REMOVE},
		{"clear", no_argument, NULL, OPT_CLEAR},
		{"enable", no_argument, NULL, OPT_ENABLE},
		{"disable", no_argument, NULL, OPT_DISABLE},
		{"merge", required_argument, NULL, OPT_MERGE},
		{"granularity", required_argument, NULL, 'g'},
		{"source-file", required_argument, NULL, 'b'},
		{"source-format", required_argument, NULL, 'F'},
		{NULL, 0, NULL, 0},
	};
	struct cli_args *ca = &a->ca;
	*ca = (struct cli_args){.cmd = "bitmap",
				.help = bitmap_help,
				.longopts = CLI_FORMAT | CLI_IMAGE_OPTS};
	int c;
	while ((c = cli_getopt(ca, argc, argv, ":b:f:F:g:h", longopts)) >= 0) {
		switch (c) {
		case OPT_ADD:
		case OPT_REMOVE:
		case OPT_CLEAR:
		case OPT_ENABLE:
		case OPT_DISABLE:
		case OPT_MERGE:
			if (push(a, (enum op)(c - OPT_ADD),
				 c == OPT_MERGE ? optarg : NULL))
				return EXIT_ERR;
			break;
		case 'b': a->src_file = optarg; break;
		case 'F': a->src_fmt = optarg; break;
		case 'g':
			if (cli_parse_num("granularity", optarg, 0, CLI_NUM_MAX,
					  &a->granularity) != 0)
				return EXIT_ERR;
			break;
		}
	}
	if (c == CLI_ARGS_STOP) /* -1: exit 0 after the help */
		return ca->status == EXIT_OK ? -1 : ca->status;
	return check_args(a, argc);
}

static int run(const struct bitmap_args *a, const char *arg, const char *name)
{
	struct mimg *img = NULL, *src = NULL;
	int status = EXIT_OK;
	if (cli_open_arg(&img, &a->ca, arg, MIMG_OPEN_RDWR) < 0)
		return cli_error("%s", cli_errmsg());
	if (a->src_file && cli_open(&src, a->src_file, a->src_fmt, 0) < 0) {
		status = cli_error("%s", cli_errmsg());
		a = NULL;
	}
	for (size_t i = 0; a && i < a->n && status == EXIT_OK; i++)
		status = run_action(img, src, &a->actions[i], name,
				    a->granularity);
	mimg_close(src);
	/* What the actions before a failure did stays, as with qemu-img. */
	if (mimg_close(img) < 0 && status == EXIT_OK)
		status = cli_error("%s", mimg_errmsg());
	return status;
}

int cmd_bitmap(int argc, char **argv)
{
	struct bitmap_args a = {0};
	int status = parse_args(argc, argv, &a);
	if (status != EXIT_OK) {
		free(a.actions);
		return status < 0 ? EXIT_OK : status;
	}
	status = run(&a, argv[optind], argv[optind + 1]);
	free(a.actions);
	return status;
}
