/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * convert's and measure's -l SNAPSHOT as qemu-img 7.2 takes it: a plain
 * argument names a snapshot by id, else by name; one starting with
 * "snapshot." is an option list, "snapshot.id=ID,snapshot.name=NAME"
 * with either or both (the last of each counts), and a snapshot must
 * then match all that is given.  The list is checked while the options
 * are read and used once the image is open, with qemu-img's messages.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define SNAPSHOT_OPTS "snapshot."

/* ARG's id and name into *ID and *NAME (malloc'ed, NULL when not given):
 * 0, or EXIT_ERR with the reason printed. */
static int parse_opts(const char *arg, char **id, char **name)
{
	struct mimg_opt *o;
	int n = mimg_opts_parse(arg, &o);
	bool bad = n < 0, oom = false;

	*id = *name = NULL;
	for (int i = 0; i < n && !bad && !oom; i++) {
		char **slot = strcmp(o[i].key, "snapshot.id") == 0     ? id
			      : strcmp(o[i].key, "snapshot.name") == 0 ? name
								       : NULL;
		if (!slot) {
			cli_error("Invalid parameter '%s'", o[i].key);
			bad = true;
			break;
		}
		free(*slot);
		oom = !(*slot = strdup(o[i].value));
	}
	if (n >= 0)
		mimg_opts_free(o, (size_t)n);
	if (!bad && !oom)
		return 0;
	free(*id);
	free(*name);
	return oom ? cli_error("out of memory")
		   : cli_error("Failed in parsing snapshot param '%s'", arg);
}

int cli_snapshot_check(const char *arg)
{
	char *id, *name;
	if (strncmp(arg, SNAPSHOT_OPTS, strlen(SNAPSHOT_OPTS)) != 0)
		return 0;
	if (parse_opts(arg, &id, &name) != 0)
		return EXIT_ERR;
	free(id);
	free(name);
	return 0;
}

int cli_snapshot_select(struct mimg *img, const char *arg)
{
	char *id = NULL, *name = NULL;
	int r;
	if (strncmp(arg, SNAPSHOT_OPTS, strlen(SNAPSHOT_OPTS)) != 0)
		r = mimg_select_snapshot(img, arg);
	else if (parse_opts(arg, &id, &name) != 0)
		return EXIT_ERR;
	else
		r = mimg_select_snapshot_by(img, id, name);
	free(id);
	free(name);
	if (r == -ENOENT)
		return cli_error(
			"Failed to load snapshot: Can't find snapshot");
	if (r < 0)
		return cli_error("Failed to load snapshot: %s", mimg_errmsg());
	return 0;
}
