/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * crc32c.h against the published check values of CRC-32C (RFC 3720's
 * iSCSI test vectors) and the checksum-field convention of VHDX.
 */
#include <string.h>

#include "crc32c.h"
#include "endian.h"
#include "mimg.h"
#include "testutil.h"

START_TEST(check_values)
{
	uint8_t buf[32];
	ck_assert_uint_eq(mimg__crc32c(0, "123456789", 9), 0xe3069283u);
	memset(buf, 0, sizeof(buf));
	ck_assert_uint_eq(mimg__crc32c(0, buf, 32), 0x8a9136aau);
	memset(buf, 0xff, sizeof(buf));
	ck_assert_uint_eq(mimg__crc32c(0, buf, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	ck_assert_uint_eq(mimg__crc32c(0, buf, 32), 0x46dd794eu);
	/* in pieces, as the sum of the whole */
	ck_assert_uint_eq(mimg__crc32c(mimg__crc32c(0, buf, 5), buf + 5, 27),
			  0x46dd794eu);
	ck_assert_uint_eq(mimg__crc32c(0, buf, 0), 0);
}
END_TEST

START_TEST(without_checksum_field)
{
	uint8_t buf[64];
	for (int i = 0; i < 64; i++)
		buf[i] = (uint8_t)(i * 7);
	uint8_t zeroed[64];
	memcpy(zeroed, buf, 64);
	memset(zeroed + 4, 0, 4);
	uint32_t want = mimg__crc32c(0, zeroed, 64);
	ck_assert_uint_eq(mimg__crc32c_without(buf, 64, 4), want);
	/* storing it makes the structure check out */
	st_le32(buf + 4, want);
	ck_assert_uint_eq(mimg__crc32c_without(buf, 64, 4), ld_le32(buf + 4));
}
END_TEST

int main(void)
{
	return tu_main("crc32c", "crc32c",
		       TU_TESTS(check_values, without_checksum_field));
}
