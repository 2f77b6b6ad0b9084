/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VHDX GUIDs as text.  They are stored as Windows stores them: the first
 * three fields little-endian, the last eight bytes in order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "endian.h"
#include "vhdx.h"

bool vhdx_guid_is(const uint8_t *g, const char *text)
{
	char got[37];
	snprintf(got, sizeof(got),
		 "%08" PRIX32 "-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 ld_le32(g), ld_le16(g + 4), ld_le16(g + 6), g[8], g[9], g[10],
		 g[11], g[12], g[13], g[14], g[15]);
	return strcmp(got, text) == 0;
}

static unsigned hex_byte(const char *p)
{
	unsigned v = 0;
	for (int i = 0; i < 2; i++) {
		char c = p[i];
		v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'A' + 10);
	}
	return v;
}

void vhdx_put_guid(uint8_t *g, const char *text)
{
	/* Byte I of the text form, hyphens skipped. */
	uint8_t b[16];
	for (int i = 0, pos = 0; i < 16; i++, pos += 2) {
		if (text[pos] == '-')
			pos++;
		b[i] = (uint8_t)hex_byte(text + pos);
	}
	st_le32(g, ld_be32(b));
	st_le16(g + 4, ld_be16(b + 4));
	st_le16(g + 6, ld_be16(b + 6));
	memcpy(g + 8, b + 8, 8);
}
