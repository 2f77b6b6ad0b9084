/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * checked.h: overflow-checked arithmetic and alignment helpers, at and
 * around the 64-bit limits where image fields try to wrap.
 */
#include <stdint.h>

#include "checked.h"
#include "mimg.h"
#include "testutil.h"

START_TEST(add_overflow)
{
	uint64_t r;
	ck_assert(ck_add_u64(1, 2, &r));
	ck_assert_uint_eq(r, 3);
	ck_assert(ck_add_u64(UINT64_MAX - 1, 1, &r));
	ck_assert_uint_eq(r, UINT64_MAX);
	ck_assert(!ck_add_u64(UINT64_MAX, 1, &r));
	ck_assert(!ck_add_u64(UINT64_MAX / 2 + 1, UINT64_MAX / 2 + 1, &r));
}
END_TEST

START_TEST(mul_overflow)
{
	uint64_t r;
	ck_assert(ck_mul_u64(0, UINT64_MAX, &r));
	ck_assert_uint_eq(r, 0);
	ck_assert(ck_mul_u64(1ull << 31, 1ull << 32, &r));
	ck_assert_uint_eq(r, 1ull << 63);
	ck_assert(!ck_mul_u64(1ull << 32, 1ull << 32, &r));
	/* an L1 size times 8 from a hostile header */
	ck_assert(!ck_mul_u64(0x2000000000000001ull, 8, &r));
	ck_assert(ck_mul_u64(UINT64_MAX, 1, &r));
	ck_assert_uint_eq(r, UINT64_MAX);
}
END_TEST

START_TEST(sub_underflow)
{
	uint64_t r;
	ck_assert(ck_sub_u64(5, 5, &r));
	ck_assert_uint_eq(r, 0);
	ck_assert(!ck_sub_u64(4, 5, &r));
	ck_assert(!ck_sub_u64(0, UINT64_MAX, &r));
	ck_assert(ck_sub_u64(UINT64_MAX, UINT64_MAX - 7, &r));
	ck_assert_uint_eq(r, 7);
}
END_TEST

START_TEST(range_within)
{
	ck_assert(ck_range_within(0, 0, 0));
	ck_assert(ck_range_within(0, 10, 10));
	ck_assert(ck_range_within(10, 0, 10));
	ck_assert(!ck_range_within(1, 10, 10));
	ck_assert(!ck_range_within(11, 0, 10));
	/* off + len wraps around to a small number */
	ck_assert(!ck_range_within(UINT64_MAX, 2, 100));
	ck_assert(!ck_range_within(16, UINT64_MAX - 8, UINT64_MAX));
	ck_assert(ck_range_within(UINT64_MAX - 1, 1, UINT64_MAX));
}
END_TEST

START_TEST(pow2_and_alignment)
{
	ck_assert(!is_pow2_u64(0));
	ck_assert(is_pow2_u64(1));
	ck_assert(is_pow2_u64(512));
	ck_assert(!is_pow2_u64(513));
	ck_assert(!is_pow2_u64(3 << 20));
	ck_assert(is_pow2_u64(1ull << 63));
	ck_assert(!is_pow2_u64(UINT64_MAX));

	ck_assert(is_aligned_u64(0, 65536));
	ck_assert(is_aligned_u64(131072, 65536));
	ck_assert(!is_aligned_u64(131073, 65536));
	ck_assert_uint_eq(align_down_u64(131073, 65536), 131072);
	ck_assert_uint_eq(align_down_u64(65535, 65536), 0);
	ck_assert_uint_eq(align_down_u64(UINT64_MAX, 4096), UINT64_MAX - 4095);
}
END_TEST

START_TEST(align_up)
{
	uint64_t r;
	ck_assert(ck_align_up_u64(0, 512, &r));
	ck_assert_uint_eq(r, 0);
	ck_assert(ck_align_up_u64(1, 512, &r));
	ck_assert_uint_eq(r, 512);
	ck_assert(ck_align_up_u64(512, 512, &r));
	ck_assert_uint_eq(r, 512);
	ck_assert(ck_align_up_u64(UINT64_MAX - 4095, 4096, &r));
	ck_assert_uint_eq(r, UINT64_MAX - 4095);
	ck_assert(!ck_align_up_u64(UINT64_MAX - 4094, 4096, &r));
	ck_assert(!ck_align_up_u64(UINT64_MAX, 2, &r));
}
END_TEST

START_TEST(div_min_max)
{
	ck_assert_uint_eq(div_round_up_u64(0, 7), 0);
	ck_assert_uint_eq(div_round_up_u64(7, 7), 1);
	ck_assert_uint_eq(div_round_up_u64(8, 7), 2);
	/* no overflow from the naive (a + b - 1) / b */
	ck_assert_uint_eq(div_round_up_u64(UINT64_MAX, 2),
			  (UINT64_MAX >> 1) + 1);
	ck_assert_uint_eq(div_round_up_u64(UINT64_MAX, UINT64_MAX), 1);
	ck_assert_uint_eq(min_u64(3, UINT64_MAX), 3);
	ck_assert_uint_eq(max_u64(3, UINT64_MAX), UINT64_MAX);
	ck_assert_uint_eq(min_u64(4, 4), 4);
}
END_TEST

int main(void)
{
	return tu_main("checked", "checked",
		       TU_TESTS(add_overflow, mul_overflow, sub_underflow,
				range_within, pow2_and_alignment, align_up,
				div_min_max));
}
