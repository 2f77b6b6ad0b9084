/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum of
 * VHDX headers, region tables and log entries.
 */
#ifndef MIMG_CRC32C_H
#define MIMG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32C of LEN bytes at BUF, continuing from CRC (0 to start). */
uint32_t mimg__crc32c(uint32_t crc, const void *buf, size_t len);

/* The CRC-32C of LEN bytes at BUF with the four bytes at CK_OFF (the
 * stored checksum) taken as zeroes, as VHDX computes it. */
uint32_t mimg__crc32c_without(const void *buf, size_t len, size_t ck_off);

#endif
