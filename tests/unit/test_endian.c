/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * endian.h: byte order of loads and stores, unaligned access, and
 * round trips at every width.
 */
#include <stdint.h>
#include <string.h>

#include "endian.h"
#include "mimg.h"
#include "testutil.h"

static const uint8_t seq[9] = {0xAA, 0x01, 0x02, 0x03, 0x04,
			       0x05, 0x06, 0x07, 0x08};

START_TEST(big_endian_loads)
{
	ck_assert_uint_eq(ld_be16(seq + 1), 0x0102);
	ck_assert_uint_eq(ld_be32(seq + 1), 0x01020304u);
	ck_assert_uint_eq(ld_be64(seq + 1), 0x0102030405060708ull);
	/* the qcow2 magic */
	const uint8_t qfi[4] = {'Q', 'F', 'I', 0xfb};
	ck_assert_uint_eq(ld_be32(qfi), 0x514649fbu);
}
END_TEST

START_TEST(little_endian_loads)
{
	ck_assert_uint_eq(ld_le16(seq + 1), 0x0201);
	ck_assert_uint_eq(ld_le32(seq + 1), 0x04030201u);
	ck_assert_uint_eq(ld_le64(seq + 1), 0x0807060504030201ull);
	/* the VMDK sparse magic "KDMV" */
	ck_assert_uint_eq(ld_le32("KDMV"), 0x564d444bu);
}
END_TEST

START_TEST(high_bits_do_not_sign_extend)
{
	const uint8_t ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	const uint8_t top[8] = {0x80, 0, 0, 0, 0, 0, 0, 0x80};
	ck_assert_uint_eq(ld_be16(ff), 0xffff);
	ck_assert_uint_eq(ld_be32(ff), 0xffffffffu);
	ck_assert_uint_eq(ld_be64(ff), UINT64_MAX);
	ck_assert_uint_eq(ld_le64(ff), UINT64_MAX);
	ck_assert_uint_eq(ld_be32(top), 0x80000000u);
	ck_assert_uint_eq(ld_le32(top + 4), 0x80000000u);
	ck_assert_uint_eq(ld_be64(top), 0x8000000000000080ull);
	ck_assert_uint_eq(ld_le64(top), 0x8000000000000080ull);
}
END_TEST

START_TEST(stores_byte_order)
{
	uint8_t b[9];
	memset(b, 0xEE, sizeof(b));
	st_be64(b + 1, 0x0102030405060708ull);
	ck_assert_mem_eq(b + 1, seq + 1, 8);
	ck_assert_uint_eq(b[0], 0xEE); /* nothing outside touched */

	const uint8_t le[8] = {8, 7, 6, 5, 4, 3, 2, 1};
	memset(b, 0xEE, sizeof(b));
	st_le64(b + 1, 0x0102030405060708ull);
	ck_assert_mem_eq(b + 1, le, 8);
	ck_assert_uint_eq(b[0], 0xEE);

	memset(b, 0xEE, sizeof(b));
	st_be32(b, 0xA1B2C3D4u);
	st_le16(b + 4, 0xBEEF);
	st_be16(b + 6, 0xBEEF);
	const uint8_t want[9] = {0xA1, 0xB2, 0xC3, 0xD4, 0xEF,
				 0xBE, 0xBE, 0xEF, 0xEE};
	ck_assert_mem_eq(b, want, 9);
	st_le32(b + 1, 0xA1B2C3D4u);
	const uint8_t want2[4] = {0xD4, 0xC3, 0xB2, 0xA1};
	ck_assert_mem_eq(b + 1, want2, 4);
}
END_TEST

START_TEST(round_trips)
{
	uint8_t b[16];
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (int i = 0; i < 1000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		for (int a = 0; a < 8; a++) { /* every misalignment */
			st_be64(b + a, x);
			ck_assert_uint_eq(ld_be64(b + a), x);
			st_le64(b + a, x);
			ck_assert_uint_eq(ld_le64(b + a), x);
			st_be32(b + a, (uint32_t)x);
			ck_assert_uint_eq(ld_be32(b + a), (uint32_t)x);
			st_le32(b + a, (uint32_t)x);
			ck_assert_uint_eq(ld_le32(b + a), (uint32_t)x);
			st_be16(b + a, (uint16_t)x);
			ck_assert_uint_eq(ld_be16(b + a), (uint16_t)x);
			st_le16(b + a, (uint16_t)x);
			ck_assert_uint_eq(ld_le16(b + a), (uint16_t)x);
		}
	}
}
END_TEST

int main(void)
{
	return tu_main("endian", "endian",
		       TU_TESTS(big_endian_loads, little_endian_loads,
				high_bits_do_not_sign_extend, stores_byte_order,
				round_trips));
}
