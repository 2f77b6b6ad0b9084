/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Overflow-checked arithmetic and alignment helpers.  Each returns false on
 * overflow, leaving *out unspecified.  Use them for every computation on a
 * value that came from an image.
 */
#ifndef MIMG_CHECKED_H
#define MIMG_CHECKED_H

#include <stdbool.h>
#include <stdint.h>

static inline bool ck_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

static inline bool ck_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

static inline bool ck_sub_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_sub_overflow(a, b, out);
}

/* [off, off+len) lies within [0, limit). */
static inline bool ck_range_within(uint64_t off, uint64_t len, uint64_t limit)
{
	uint64_t end;
	return ck_add_u64(off, len, &end) && end <= limit;
}

static inline bool is_pow2_u64(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* ALIGN must be a power of two. */
static inline bool is_aligned_u64(uint64_t x, uint64_t align)
{
	return (x & (align - 1)) == 0;
}

static inline uint64_t align_down_u64(uint64_t x, uint64_t align)
{
	return x & ~(align - 1);
}

/* Round up; false on overflow. */
static inline bool ck_align_up_u64(uint64_t x, uint64_t align, uint64_t *out)
{
	uint64_t t;
	if (!ck_add_u64(x, align - 1, &t))
		return false;
	*out = t & ~(align - 1);
	return true;
}

/* Ceiling division, B > 0. */
static inline uint64_t div_round_up_u64(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

#endif
