/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz inputs are images on disk: the library opens paths.
 */
#ifndef MIMG_FUZZ_INPUT_H
#define MIMG_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

/* Write DATA into NAME inside a private temporary directory (made on the
 * first call, removed at exit with what it holds) and return its path,
 * or NULL on failure.  A target uses at most four names. */
const char *fuzz_input_write(const uint8_t *data, size_t size,
			     const char *name);

#endif
