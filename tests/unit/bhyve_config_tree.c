/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The configuration tree described in bhyve_config_tree.h.  Allocation
 * failures end the program: this is test scaffolding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bhyve_config_tree.h"

struct nvlist {
	char *name, *value;
	struct nvlist *child, *next;
};

static nvlist_t root;

static void *must(void *p)
{
	if (!p) {
		fprintf(stderr, "configuration tree: out of memory\n");
		exit(4);
	}
	return p;
}

static nvlist_t *child_of(const nvlist_t *n, const char *name, size_t len,
			  bool create)
{
	nvlist_t *c;

	for (c = n->child; c; c = c->next)
		if (strlen(c->name) == len && !strncmp(c->name, name, len))
			return c;
	if (!create)
		return NULL;
	c = must(calloc(1, sizeof(*c)));
	c->name = must(strndup(name, len));
	c->next = n->child;
	((nvlist_t *)n)->child = c;
	return c;
}

static void fail(const char *what, const char *name)
{
	fprintf(stderr, "%s %s\n", what, name);
	exit(4);
}

/* The node at the dotted PATH below N (the root when NULL), made on the
 * way when CREATE; NULL for a path with an empty part, as bhyve. */
static nvlist_t *walk(const nvlist_t *n, const char *path, bool create)
{
	if (!n)
		n = &root;
	if (!*path)
		return NULL;
	for (;;) {
		size_t len = strcspn(path, ".");

		if (len == 0)
			return NULL;
		n = child_of(n, path, len, create);
		if (!n || !path[len])
			return (nvlist_t *)n;
		path += len + 1;
		if (!*path)
			return NULL;
	}
}

nvlist_t *test_nvlist_create(void)
{
	return must(calloc(1, sizeof(nvlist_t)));
}

static void free_children(nvlist_t *n)
{
	while (n->child) {
		nvlist_t *c = n->child;

		n->child = c->next;
		free_children(c);
		free(c->name);
		free(c->value);
		free(c);
	}
}

void test_nvlist_destroy(nvlist_t *nvl)
{
	if (!nvl)
		return;
	free_children(nvl);
	free(nvl->name);
	free(nvl->value);
	free(nvl);
}

nvlist_t *create_relative_config_node(nvlist_t *parent, const char *path)
{
	return walk(parent, path, true);
}

nvlist_t *find_relative_config_node(nvlist_t *parent, const char *path)
{
	return walk(parent, path, false);
}

nvlist_t *create_config_node(const char *path)
{
	return walk(&root, path, true);
}

nvlist_t *find_config_node(const char *path)
{
	return walk(&root, path, false);
}

const char *get_config_value_node(const nvlist_t *parent, const char *name)
{
	nvlist_t *n = walk(parent, name, false);

	return n ? n->value : NULL;
}

const char *get_config_value(const char *path)
{
	return get_config_value_node(&root, path);
}

void set_config_value_node(nvlist_t *parent, const char *name,
			   const char *value)
{
	nvlist_t *n;
	char *copy;

	/* bhyve takes one level here; paths go through the other calls. */
	if (strchr(name, '.'))
		fail("Invalid config node name", name);
	if (!(n = walk(parent, name, true)))
		fail("Invalid config node name", name);
	copy = must(strdup(value)); /* VALUE may be the old one */
	free(n->value);
	n->value = copy;
}

void set_config_value_node_if_unset(nvlist_t *const parent,
				    const char *const name,
				    const char *const value)
{
	if (!get_config_value_node(parent, name))
		set_config_value_node(parent, name, value);
}

void set_config_value(const char *path, const char *value)
{
	nvlist_t *n = walk(&root, path, true);
	char *copy;

	if (!n)
		fail("Invalid config node name", path);
	copy = must(strdup(value));
	free(n->value);
	n->value = copy;
}

/* bhyve accepts these spellings and exits on anything else. */
static bool parse_bool(const char *name, const char *v)
{
	if (!strcasecmp(v, "true") || !strcasecmp(v, "on") ||
	    !strcasecmp(v, "yes") || !strcmp(v, "1"))
		return true;
	if (!strcasecmp(v, "false") || !strcasecmp(v, "off") ||
	    !strcasecmp(v, "no") || !strcmp(v, "0"))
		return false;
	fprintf(stderr, "invalid value %s for boolean variable %s\n", v, name);
	exit(4);
}

/* A boolean that must be there: bhyve exits when it is not. */
static bool required_bool(const nvlist_t *parent, const char *name)
{
	const char *v = get_config_value_node(parent, name);

	if (!v)
		fail("Failed to fetch boolean variable", name);
	return parse_bool(name, v);
}

bool get_config_bool_node_default(const nvlist_t *parent, const char *name,
				  bool def)
{
	const char *v = get_config_value_node(parent, name);

	return v ? parse_bool(name, v) : def;
}

bool get_config_bool_node(const nvlist_t *parent, const char *name)
{
	return required_bool(parent, name);
}

bool get_config_bool_default(const char *path, bool def)
{
	return get_config_bool_node_default(&root, path, def);
}

bool get_config_bool(const char *path)
{
	return required_bool(&root, path);
}

void set_config_bool_node(nvlist_t *parent, const char *name, bool value)
{
	set_config_value_node(parent, name, value ? "true" : "false");
}

void set_config_bool(const char *path, bool value)
{
	set_config_value(path, value ? "true" : "false");
}
