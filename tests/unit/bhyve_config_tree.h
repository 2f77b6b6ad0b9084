/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A stand-in for bhyve's configuration tree (usr.sbin/bhyve/config.h) for
 * code that is built without bhyve: the unit tests of the bhyve-facing
 * blockif API and scripts/bhyve-compat-check.sh, which compiles FreeBSD's
 * own device models against vmm-blk on Linux and uses this header as their
 * config.h.  Nodes hold string values and child nodes; names are dotted
 * paths relative to a node or to the root, as in bhyve.
 */
#ifndef BHYVE_CONFIG_TREE_H
#define BHYVE_CONFIG_TREE_H

#include <stdbool.h>

/* As FreeBSD's <sys/nv.h> declares it (the same guard). */
#ifndef _NVLIST_T_DECLARED
#define _NVLIST_T_DECLARED
struct nvlist;
typedef struct nvlist nvlist_t;
#endif

/* bhyve's config.h. */
const char *get_config_value_node(const nvlist_t *parent, const char *name);
const char *get_config_value(const char *path);
nvlist_t *create_config_node(const char *path);
nvlist_t *find_config_node(const char *path);
nvlist_t *create_relative_config_node(nvlist_t *parent, const char *path);
nvlist_t *find_relative_config_node(nvlist_t *parent, const char *path);
void set_config_value_node(nvlist_t *parent, const char *name,
			   const char *value);
void set_config_value_node_if_unset(nvlist_t *const parent,
				    const char *const name,
				    const char *const value);
void set_config_value(const char *path, const char *value);
/* These exit with status 4 on a value that is not a boolean, as bhyve
 * does. */
bool get_config_bool(const char *path);
bool get_config_bool_node(const nvlist_t *parent, const char *name);
bool get_config_bool_default(const char *path, bool def);
bool get_config_bool_node_default(const nvlist_t *parent, const char *name,
				  bool def);
void set_config_bool(const char *path, bool value);
void set_config_bool_node(nvlist_t *parent, const char *name, bool value);

/* A free-standing node, outside the root's tree (bhyve makes a device's
 * node with nvlist_create()), and its release with everything below it. */
nvlist_t *test_nvlist_create(void);
void test_nvlist_destroy(nvlist_t *nvl);

#endif
