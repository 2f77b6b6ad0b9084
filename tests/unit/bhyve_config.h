/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * What the bhyve-facing blockif API needs from bhyve, for testing it where
 * bhyve is not linked: the configuration tree (bhyve_config_tree.h) and a
 * pci_emul_add_boot_device() that records its calls.
 */
#ifndef TEST_BHYVE_CONFIG_H
#define TEST_BHYVE_CONFIG_H

#include "bhyve_config_tree.h"
#include "vmm-blk/block_if.h"

/* pci_emul.h: records its arguments and returns test_boot_ret. */
struct pci_devinst;
int pci_emul_add_boot_device(struct pci_devinst *pi, int bootindex);
extern int test_boot_calls, test_boot_index, test_boot_ret;
extern struct pci_devinst *test_boot_pi;

#endif
