/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Random UUIDs (uuid.h).
 */
#include <sys/random.h>
#include <time.h>

#include "endian.h"
#include "uuid.h"

void mimg__uuid_random(uint8_t u[16])
{
	if (getrandom(u, 16, 0) != 16) {
		uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)u;
		st_le64(u, t);
		st_le64(u + 8, ~t);
	}
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}
