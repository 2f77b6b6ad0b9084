/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz target for the DMG driver: trailer, property list, resource fork and
 * chunk table parsing, reads, block status, info.
 */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image_run(data, size, "dmg", "input.dmg");
	return 0;
}
