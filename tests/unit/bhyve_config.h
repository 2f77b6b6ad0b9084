/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A minimal stand-in for the parts of bhyve's configuration tree
 * (usr.sbin/bhyve/config.h) that blockif uses, so the bhyve-facing blockif
 * API can be tested where bhyve is not linked: one flat node of string
 * values per nvlist_t, the same function names and signatures, and the
 * same boolean spellings.  Also records pci_emul_add_boot_device() calls.
 */
#ifndef TEST_BHYVE_CONFIG_H
#define TEST_BHYVE_CONFIG_H

#include <stdbool.h>

#include "vmm-blk/block_if.h"

nvlist_t *test_nvlist_create(void);
void test_nvlist_destroy(nvlist_t *nvl);

/* bhyve's names (config.h). */
const char *get_config_value_node(const nvlist_t *parent, const char *name);
void set_config_value_node(nvlist_t *parent, const char *name,
			   const char *value);
bool get_config_bool_node_default(const nvlist_t *parent, const char *name,
				  bool def);
void set_config_bool_node(nvlist_t *parent, const char *name, bool value);

/* pci_emul.h: records its arguments and returns test_boot_ret. */
struct pci_devinst;
int pci_emul_add_boot_device(struct pci_devinst *pi, int bootindex);
extern int test_boot_calls, test_boot_index, test_boot_ret;
extern struct pci_devinst *test_boot_pi;

#endif
