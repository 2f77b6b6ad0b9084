/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz the text parsers of an OVA: the OVF descriptor (libxml2 with DTDs,
 * entities and network refused; disks, references, the virtual system
 * and its hardware) and the manifest (.mf digest lines).  Byte 0 bit 0
 * selects the manifest parser; the rest is the text.
 */
#include <stddef.h>
#include <stdint.h>

#include "../libmimg/file-archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		struct mimg_manifest *m;
		if (mimg__manifest_parse(data + 1, size - 1, "fuzz", &m) == 0)
			mimg__manifest_free(m);
		return 0;
	}
	struct mimg_ovf *ovf;
	if (mimg__ovf_parse(data + 1, size - 1, "fuzz", &ovf) == 0)
		mimg__ovf_free(ovf);
	return 0;
}
