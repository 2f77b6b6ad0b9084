/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg__host_overlaps(), which the VMDK and VHD checks use to find data
 * stored twice in the file: every range that starts inside an earlier one
 * is reported, also when the earlier one is not its neighbour.
 */
#include <stdint.h>

#include "driver.h"
#include "testutil.h"

struct seen {
	unsigned n;
	uint32_t prev[8], cur[8];
};

static void record(void *opaque, const struct mimg_host_range *prev,
		   const struct mimg_host_range *cur)
{
	struct seen *s = opaque;
	ck_assert_uint_lt(s->n, 8);
	s->prev[s->n] = prev->unit;
	s->cur[s->n] = cur->unit;
	s->n++;
}

START_TEST(neighbours_and_contained_ranges)
{
	/* Unit 1 holds units 2 and 3, which do not overlap each other; 4
	 * starts where 1 ends; 5 lies inside 4 and 6 straddles 4's end. */
	struct mimg_host_range r[] = {
		{3000, 100, 3}, {0, 4096, 1},  {1000, 100, 2},
		{4096, 512, 4}, {4200, 10, 5}, {4600, 100, 6},
	};
	struct seen s = {0};
	mimg__host_overlaps(r, 6, record, &s);
	ck_assert_uint_eq(s.n, 4);
	const uint32_t prev[] = {1, 1, 4, 4}, cur[] = {2, 3, 5, 6};
	for (unsigned i = 0; i < 4; i++) {
		ck_assert_uint_eq(s.prev[i], prev[i]);
		ck_assert_uint_eq(s.cur[i], cur[i]);
	}
}
END_TEST

START_TEST(ranges_past_the_end_of_offsets)
{
	/* Crafted lengths that run past 2^64 must not wrap around. */
	struct mimg_host_range r[] = {
		{UINT64_MAX - 10, UINT64_MAX, 1},
		{UINT64_MAX - 5, 1, 2},
		{0, 10, 3},
	};
	struct seen s = {0};
	mimg__host_overlaps(r, 3, record, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_uint_eq(s.prev[0], 1);
	ck_assert_uint_eq(s.cur[0], 2);
}
END_TEST

START_TEST(disjoint_and_tiny_sets)
{
	struct mimg_host_range r[] = {{512, 512, 2}, {0, 512, 1}};
	struct seen s = {0};
	mimg__host_overlaps(r, 2, record, &s);
	mimg__host_overlaps(r, 1, record, &s);
	mimg__host_overlaps(r, 0, record, &s);
	ck_assert_uint_eq(s.n, 0);
}
END_TEST

int main(void)
{
	return tu_main("host_overlaps", "overlaps",
		       TU_TESTS(neighbours_and_contained_ranges,
				ranges_past_the_end_of_offsets,
				disjoint_and_tiny_sets));
}
