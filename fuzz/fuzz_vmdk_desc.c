/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz the VMDK descriptor text parser alone (the text of a descriptor
 * file, or of the descriptor embedded in a sparse extent): quoting, key
 * lines, extent lines with their sizes, types, offsets and file names,
 * CID/parentCID, line endings.  Byte 0 selects whether extent lines are
 * required; the rest is the text.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../formats/vmdk/vmdk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmdk_desc d;

	if (size < 1)
		return 0;
	if (vmdk_desc_parse((const char *)data + 1, size - 1, "fuzz", &d,
			    data[0] & 1) == 0)
		vmdk_desc_free(&d);
	return 0;
}
