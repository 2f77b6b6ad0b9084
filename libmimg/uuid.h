/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Random UUIDs for the images the library creates.
 */
#ifndef MIMG_UUID_H
#define MIMG_UUID_H

#include <stdint.h>

/* A random (version 4, RFC 4122 variant) UUID in U: from the system's
 * random source or, should that fail, from the time and an address,
 * which still tells images apart. */
void mimg__uuid_random(uint8_t u[16]);

#endif
