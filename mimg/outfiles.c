/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The files a command creates for its output, removed again when it fails
 * or is interrupted, so that a failed convert leaves no partial image
 * behind.  Only files that did not exist before are ever removed: the
 * names in the target's directory that start like the target (VMDK
 * extents are NAME-s001.vmdk, NAME-flat.vmdk ...) and a qcow2 data file,
 * compared before and after creation.  SIGINT, SIGTERM, SIGHUP and
 * SIGPIPE remove them too, unless ignored on entry (unlink is
 * async-signal-safe; the paths are ready before the handlers are
 * installed).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const int cleanup_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
#define NSIG_CLEANUP (sizeof(cleanup_signals) / sizeof(cleanup_signals[0]))

/* The armed set, for the signal handler. */
static struct cli_outfiles *volatile armed;

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Names in DIR that start with STEM (the output's own name included). */
static int list_names(const char *dir, const char *stem, char ***namesp,
		      size_t *np)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0, cap = 0;

	*namesp = NULL;
	*np = 0;
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, stem, strlen(stem)) != 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nv = realloc(v, nc * sizeof(*v));
			if (!nv)
				goto oom;
			v = nv;
			cap = nc;
		}
		if (!(v[n] = strdup(e->d_name)))
			goto oom;
		n++;
	}
	closedir(d);
	*namesp = v;
	*np = n;
	return 0;
oom:
	closedir(d);
	names_free(v, n);
	return -ENOMEM;
}

static bool has_name(char **v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], name) == 0)
			return true;
	return false;
}

int cli_outfiles_before(struct cli_outfiles *o, const char *target,
			const char *data_file)
{
	const char *slash = strrchr(target, '/');
	const char *base = slash ? slash + 1 : target;
	const char *dot = strrchr(base, '.');
	size_t stem_len = dot && dot != base ? (size_t)(dot - base)
					     : strlen(base);

	memset(o, 0, sizeof(*o));
	o->dir = slash ? strndup(target, (size_t)(slash - target + 1))
		       : strdup(".");
	o->stem = strndup(base, stem_len);
	if (!o->dir || !o->stem)
		return -ENOMEM;
	if (data_file && *data_file) {
		o->data_file = data_file[0] == '/'
				       ? strdup(data_file)
				       : path_join(o->dir, data_file);
		if (!o->data_file)
			return -ENOMEM;
		o->data_file_existed = exists(o->data_file);
	}
	/* An unreadable directory: nothing is known to be new. */
	if (list_names(o->dir, o->stem, &o->before, &o->n_before) < 0)
		o->unknown = true;
	return 0;
}

static void remove_all(struct cli_outfiles *o)
{
	for (size_t i = 0; i < o->n_created; i++) {
		struct stat st;
		/* Only the very file that was created. */
		if (lstat(o->created[i], &st) == 0 &&
		    st.st_dev == o->ids[i].dev && st.st_ino == o->ids[i].ino)
			unlink(o->created[i]);
	}
}

static void on_signal(int sig)
{
	struct cli_outfiles *o = armed;
	if (o)
		remove_all(o);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int add_created(struct cli_outfiles *o, char *path)
{
	struct stat st;
	if (!path)
		return -ENOMEM;
	if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		free(path);
		return 0;
	}
	char **nv = realloc(o->created, (o->n_created + 1) * sizeof(*nv));
	struct cli_file_id *ni = realloc(o->ids,
					 (o->n_created + 1) * sizeof(*ni));
	if (nv)
		o->created = nv;
	if (ni)
		o->ids = ni;
	if (!nv || !ni) {
		free(path);
		return -ENOMEM;
	}
	o->created[o->n_created] = path;
	o->ids[o->n_created].dev = st.st_dev;
	o->ids[o->n_created].ino = st.st_ino;
	o->n_created++;
	return 0;
}

/* Signals stay blocked from creation until the handlers know the files,
 * so that no interruption in between leaves one behind. */
void cli_outfiles_block(struct cli_outfiles *o)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < NSIG_CLEANUP; i++)
		sigaddset(&set, cleanup_signals[i]);
	o->blocked = sigprocmask(SIG_BLOCK, &set, &o->old_mask) == 0;
}

/* The files that are new since cli_outfiles_before. */
static int find_created(struct cli_outfiles *o)
{
	char **after = NULL;
	size_t n_after = 0;
	int r = 0;

	if (o->listed)
		return 0;
	o->listed = true;
	if (!o->unknown && list_names(o->dir, o->stem, &after, &n_after) == 0) {
		for (size_t i = 0; i < n_after && r == 0; i++)
			if (!has_name(o->before, o->n_before, after[i]))
				r = add_created(o, path_join(o->dir, after[i]));
		names_free(after, n_after);
	}
	if (r == 0 && o->data_file && !o->data_file_existed)
		r = add_created(o, strdup(o->data_file));
	return r;
}

int cli_outfiles_after(struct cli_outfiles *o)
{
	int r = find_created(o);

	if (r == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		armed = o;
		/* A signal ignored on entry (nohup) stays ignored. */
		for (size_t i = 0; i < NSIG_CLEANUP; i++)
			if (sigaction(cleanup_signals[i], NULL,
				      &o->old_sa[i]) == 0 &&
			    o->old_sa[i].sa_handler != SIG_IGN &&
			    sigaction(cleanup_signals[i], &sa, NULL) == 0)
				o->handled |= 1u << i;
	}
	if (o->blocked) {
		sigprocmask(SIG_SETMASK, &o->old_mask, NULL);
		o->blocked = false;
	}
	return r;
}

static void disarm(struct cli_outfiles *o)
{
	if (o->blocked) {
		sigprocmask(SIG_SETMASK, &o->old_mask, NULL);
		o->blocked = false;
	}
	for (size_t i = 0; i < NSIG_CLEANUP; i++)
		if (o->handled & (1u << i))
			sigaction(cleanup_signals[i], &o->old_sa[i], NULL);
	o->handled = 0;
	armed = NULL;
}

void cli_outfiles_end(struct cli_outfiles *o, bool remove)
{
	/* The files are removed before the handlers go: a signal now finds
	 * nothing left to do. */
	if (remove) {
		/* Creation itself may have failed half-way. */
		find_created(o);
		remove_all(o);
	}
	disarm(o);
	names_free(o->before, o->n_before);
	names_free(o->created, o->n_created);
	free(o->ids);
	free(o->dir);
	free(o->stem);
	free(o->data_file);
	memset(o, 0, sizeof(*o));
}
