/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz target for the VDI driver: header and block map parsing, reads,
 * allocation, block status, info and check.
 */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image_run(data, size, "vdi", "input.vdi");
	return 0;
}
