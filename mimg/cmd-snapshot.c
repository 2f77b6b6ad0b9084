/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg snapshot: list, create, apply or delete internal snapshots, with
 * qemu-img snapshot's options, messages and exit codes.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void snapshot_help(void)
{
	printf("Usage: mimg snapshot [-f fmt] [-U] [-q] "
	       "[-l | -a snapshot | -c snapshot | -d snapshot] FILE\n"
	       "\n"
	       "List, create, apply or delete the internal snapshots of FILE "
	       "(qcow2).\n"
	       "\n"
	       "  -l              list the snapshots\n"
	       "  -c NAME         create a snapshot named NAME of the current "
	       "content\n"
	       "  -a SNAPSHOT     revert the content (and size) to SNAPSHOT "
	       "(its id, else\n"
	       "                  its name); the snapshot stays\n"
	       "  -d NAME         delete the first snapshot named NAME\n"
	       "  -f FMT          the image format (default: probe)\n"
	       "  -U, --force-share  accepted with -l for qemu-img "
	       "compatibility\n"
	       "  -q              quiet\n" CLI_HELP_OBJECT
	       "  --image-opts    FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  -h, --help      this help\n");
}

enum action { NONE, LIST, CREATE, APPLY, DELETE };

static int list(struct mimg *img)
{
	struct mimg_value *info = NULL;
	if (mimg_info(img, &info) < 0)
		return cli_error("%s", mimg_errmsg());
	const struct mimg_value *snaps = mimg_value_get(info, "snapshots");
	if (snaps && snaps->type == MIMG_VALUE_ARRAY && snaps->v.list.n)
		cli_print_snapshots(stdout, snaps);
	mimg_value_free(info);
	return EXIT_OK;
}

/* qemu-img's messages: creation reports the errno, applying a missing
 * snapshot the driver's "Failed to load snapshot", deleting one whose
 * name is unknown "snapshot not found"; mimg's own detail comes first
 * where qemu-img has none. */
static int run(struct mimg *img, enum action action, const char *name)
{
	int r;
	switch (action) {
	case NONE: return EXIT_OK;
	case LIST: return list(img);
	case CREATE:
		if ((r = mimg_snapshot_create(img, name)) < 0) {
			if (r != -ENOTSUP)
				cli_error("%s", mimg_errmsg());
			return cli_error("Could not create snapshot '%s': %d "
					 "(%s)",
					 name, r, strerror(-r));
		}
		return EXIT_OK;
	case APPLY:
		if ((r = mimg_snapshot_apply(img, name)) == -ENOTSUP)
			return cli_error("Could not apply snapshot '%s': Block "
					 "driver does not support snapshots",
					 name);
		if (r < 0) {
			if (r != -ENOENT)
				cli_error("%s", mimg_errmsg());
			return cli_error(
				"Could not apply snapshot '%s': Failed "
				"to load snapshot: %s",
				name, strerror(-r));
		}
		return EXIT_OK;
	case DELETE:
		r = mimg_snapshot_delete(img, name);
		if (r == -ENOENT || r == -ENOTSUP)
			return cli_error("Could not delete snapshot '%s': "
					 "snapshot not found",
					 name);
		if (r < 0)
			return cli_error("Could not delete snapshot '%s': %s",
					 name, mimg_errmsg());
		return EXIT_OK;
	}
	return EXIT_ERR;
}

/* Record the action option OPT (-l, -a, -c or -d) asks for, naming the
 * snapshot ARG; one only, as in qemu-img. */
static int set_action(enum action *cur, int opt, const char **namep,
		      const char *arg)
{
	static const struct {
		int opt;
		enum action action;
	} actions[] = {
		{'l', LIST},
		{'a', APPLY},
		{'c', CREATE},
		{'d', DELETE},
	};
	if (*cur != NONE)
		return cli_usage_error("snapshot", "Cannot mix '-l', '-a', "
						   "'-c', '-d'");
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (actions[i].opt == opt)
			*cur = actions[i].action;
	*namep = arg;
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	struct cli_args ca = {.cmd = "snapshot",
			      .help = snapshot_help,
			      .longopts = CLI_FORMAT | CLI_FORCE_SHARE |
					  CLI_IMAGE_OPTS};
	enum action action = NONE;
	const char *name = NULL;
	struct mimg *img = NULL;
	int c;

	/* -q: nothing is printed but the list */
	while ((c = cli_getopt(&ca, argc, argv, ":la:c:d:f:Uqh", NULL)) >= 0)
		if (set_action(&action, c, &name, c == 'l' ? NULL : optarg))
			return EXIT_ERR;
	if (!cli_one_file(&ca, c, argc, argv))
		return ca.status;
	int status;
	if (ca.force_share && action != LIST) {
		status = cli_error("Could not open '%s': force-share=on can "
				   "only be used with read-only images",
				   argv[optind]);
	} else if (cli_open_arg(&img, &ca, argv[optind],
				action == LIST ? 0 : MIMG_OPEN_RDWR) < 0) {
		status = cli_error("%s", cli_errmsg());
	} else {
		status = run(img, action, name);
		if (mimg_close(img) < 0 && status == EXIT_OK)
			status = cli_error("%s", mimg_errmsg());
	}
	return status;
}
