/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Resolving file names found inside images, under the untrusted-path
 * policy of DESIGN.md: backing files are followed as qemu-img does, but
 * extents and data files must stay inside the image's directory unless the
 * caller allows otherwise, and untrusted opens refuse every reference.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image.h"

/* Directory part of PATH including the trailing '/', or "" for none. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) + 1 : 0;
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, path, n);
		d[n] = 0;
	}
	return d;
}

static bool has_dotdot_component(const char *name)
{
	const char *p = name;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

/* With symlinks, a lexically contained name can still point outside:
 * when the target exists, its real path must be under the real directory. */
static bool really_contained(const char *dir, const char *path)
{
	char rdir[PATH_MAX], rpath[PATH_MAX];
	if (!realpath(*dir ? dir : ".", rdir))
		return true; /* nothing to compare with yet */
	if (!realpath(path, rpath))
		return true; /* does not exist: opening it will fail anyway */
	size_t n = strlen(rdir);
	if (n == 1) /* the image is in "/" */
		return true;
	return strncmp(rpath, rdir, n) == 0 && rpath[n] == '/';
}

int mimg__resolve_ref(const struct mimg *img, const char *name, bool contained,
		      const char *what, char **out)
{
	const struct mimg *top = img->top ? img->top : img;
	const char *file = img->filename;
	char *dir, *path;

	*out = NULL;
	if (!name || !*name)
		return mimg_err(-EINVAL, "%s: empty %s name", file, what);
	if (top->in_memory)
		return mimg_err(-EPERM,
				"%s: refers to %s '%s'; an image in memory may "
				"not refer to other files",
				file, what, name);
	if (top->flags & MIMG_OPEN_UNTRUSTED)
		return mimg_err(-EPERM,
				"%s: refers to %s '%s'; images that refer to "
				"other files are refused in untrusted mode",
				file, what, name);
	if (img->remote && name[0] != '/' && strncmp(name, "file:/", 6) != 0)
		return mimg_err(
			-EPERM,
			"%s: refers to %s '%s' by a relative name, which "
			"has no directory to resolve in on an NBD export",
			file, what, name);
	if (strncmp(name, "json:", 5) == 0)
		return mimg_err(
			-EPERM,
			"%s: %s name '%s' uses the json: pseudo-protocol, "
			"which is never interpreted",
			file, what, name);
	/* qemu writes "-b file:NAME" into the image as given and reads it
	 * as the plain file NAME. */
	if (strncmp(name, "file:", 5) == 0 && name[5])
		name += 5;
	if (contained && !(top->flags & MIMG_OPEN_ALLOW_EXTERNAL)) {
		if (name[0] == '/' || has_dotdot_component(name))
			return mimg_err(-EPERM,
					"%s: %s '%s' is outside the image's "
					"directory (allow external files to "
					"open it)",
					file, what, name);
	}
	dir = dir_of(file);
	if (!dir)
		return mimg_err(-ENOMEM, "out of memory");
	if (name[0] == '/') {
		path = strdup(name);
	} else {
		size_t n = strlen(dir) + strlen(name) + 1;
		path = malloc(n);
		if (path)
			snprintf(path, n, "%s%s", dir, name);
	}
	if (!path) {
		free(dir);
		return mimg_err(-ENOMEM, "out of memory");
	}
	if (contained && !(top->flags & MIMG_OPEN_ALLOW_EXTERNAL) &&
	    !really_contained(dir, path)) {
		free(dir);
		free(path);
		return mimg_err(-EPERM,
				"%s: %s '%s' resolves outside the image's "
				"directory through a symbolic link",
				file, what, name);
	}
	free(dir);
	*out = path;
	return 0;
}
