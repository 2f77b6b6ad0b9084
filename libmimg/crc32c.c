/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * CRC-32C (crc32c.h), a byte at a time through a table built on first
 * use: the checksummed structures are at most a few hundred KiB per
 * open, so nothing faster pays.
 */
#include <pthread.h>

#include "crc32c.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		table[i] = c;
	}
}

uint32_t mimg__crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	pthread_once(&table_once, build_table);
	crc = ~crc;
	for (size_t i = 0; i < len; i++)
		crc = (crc >> 8) ^ table[(crc ^ p[i]) & 0xff];
	return ~crc;
}

uint32_t mimg__crc32c_without(const void *buf, size_t len, size_t ck_off)
{
	static const uint8_t zero[4];
	const uint8_t *p = buf;
	uint32_t crc = mimg__crc32c(0, p, ck_off);
	crc = mimg__crc32c(crc, zero, 4);
	return mimg__crc32c(crc, p + ck_off + 4, len - ck_off - 4);
}
