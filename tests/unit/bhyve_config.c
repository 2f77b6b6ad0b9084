/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The pci_emul_add_boot_device() recorder described in bhyve_config.h.
 */
#include "bhyve_config.h"

int test_boot_calls, test_boot_index, test_boot_ret;
struct pci_devinst *test_boot_pi;

int pci_emul_add_boot_device(struct pci_devinst *pi, int bootindex)
{
	test_boot_calls++;
	test_boot_pi = pi;
	test_boot_index = bootindex;
	return test_boot_ret;
}
