/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Arrays that grow by doubling (lists built while walking metadata).
 */
#ifndef MIMG_GROW_H
#define MIMG_GROW_H

#include <stddef.h>

/* The array P (room for *CAP elements of SIZE bytes) with room for N:
 * P itself when it has it, else P reallocated with its room doubled
 * (from FIRST) until N fit, *CAP updated.  NULL with -ENOMEM's message
 * when memory or size_t runs out; P is then unchanged and still owned
 * by the caller. */
void *mimg__grow(void *p, size_t *cap, size_t n, size_t size, size_t first);

#endif
