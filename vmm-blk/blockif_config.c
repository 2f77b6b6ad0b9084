/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif over bhyve's configuration tree: blockif_open(nvlist_t *),
 * blockif_legacy_config() and blockif_add_boot_device().  The config-tree
 * functions and pci_emul_add_boot_device() are bhyve's (config.c,
 * pci_emul.c) and resolve when the program links; this file is kept apart
 * from the rest of blockif so programs that open devices otherwise (the
 * vmm-blk daemon, blockif_open_optstr users) need none of them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "blockif_impl.h"

/* bhyve's config.h and pci_emul.h, as FreeBSD 14 declares them. */
const char *get_config_value_node(const nvlist_t *parent, const char *name);
bool get_config_bool_node_default(const nvlist_t *parent, const char *name,
				  bool def);
void set_config_value_node(nvlist_t *parent, const char *name,
			   const char *value);
void set_config_bool_node(nvlist_t *parent, const char *name, bool value);
int pci_emul_add_boot_device(struct pci_devinst *pi, int bootindex);

/* The keys of blockif_open(), into O (strings stay owned by NVL). */
static int read_config(const nvlist_t *nvl, struct blockif_opts *o,
		       const char *ident)
{
	const char *v;

	o->nocache = get_config_bool_node_default(nvl, "nocache", false);
	o->nodelete = get_config_bool_node_default(nvl, "nodelete", false);
	o->sync = get_config_bool_node_default(nvl, "sync", false) ||
		  get_config_bool_node_default(nvl, "direct", false);
	o->ro = get_config_bool_node_default(nvl, "ro", false);
	o->untrusted = get_config_bool_node_default(nvl, "untrusted", false);
	v = get_config_value_node(nvl, "sectorsize");
	if (v && blockif_parse_sectorsize(v, o, ident) < 0)
		return -1;
	v = get_config_value_node(nvl, "bootindex");
	if (v)
		blockif_parse_bootindex(v, o);
	v = get_config_value_node(nvl, "keyfile");
	if (v && *v)
		o->keyfile = v;
	v = get_config_value_node(nvl, "format");
	if (v && *v)
		o->format = v;
	o->path = get_config_value_node(nvl, "path");
	if (!o->path) {
		blockif_warn(ident, "missing \"path\" for block device");
		return -1;
	}
	return 0;
}

struct blockif_ctxt *blockif_open(nvlist_t *nvl, const char *ident)
{
	struct blockif_opts o = {.sectsz = 0};

	if (!nvl || read_config(nvl, &o, ident) < 0) {
		errno = EINVAL;
		return NULL;
	}
	return blockif_open_opts(&o, ident);
}

/* One "name" or "name=value" of a legacy option string into NVL. */
static void set_legacy_option(nvlist_t *nvl, char *opt)
{
	char *value = strchr(opt, '=');

	if (value) {
		*value++ = '\0';
		set_config_value_node(nvl, opt, value);
	} else {
		set_config_bool_node(nvl, opt, true);
	}
}

int blockif_legacy_config(nvlist_t *nvl, const char *opts)
{
	char *copy, *rest, *opt;

	if (!opts)
		return 0;
	copy = strdup(opts);
	if (!copy)
		return -1;
	rest = copy;
	opt = strsep(&rest, ",");
	set_config_value_node(nvl, "path", opt);
	while ((opt = strsep(&rest, ",")) != NULL)
		set_legacy_option(nvl, opt);
	free(copy);
	return 0;
}

int blockif_add_boot_device(struct pci_devinst *const pi,
			    struct blockif_ctxt *const bc)
{
	if (bc->bootindex < 0)
		return 0;
	return pci_emul_add_boot_device(pi, bc->bootindex);
}
