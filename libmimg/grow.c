/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Arrays that grow by doubling (grow.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "error.h"
#include "grow.h"

void *mimg__grow(void *p, size_t *cap, size_t n, size_t size, size_t first)
{
	if (n <= *cap)
		return p;
	size_t c = *cap ? *cap : first;
	while (c < n && c <= SIZE_MAX / 2)
		c *= 2;
	if (c < n || c > SIZE_MAX / size) {
		mimg_err(-ENOMEM, "out of memory");
		return NULL;
	}
	void *np = realloc(p, c * size);
	if (!np) {
		mimg_err(-ENOMEM, "out of memory");
		return NULL;
	}
	*cap = c;
	return np;
}
