/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Fuzz target for the VHDX driver: header, region table, metadata, log
 * and BAT parsing, reads, block status, info and check.
 *
 * A VHDX file is at least 3 MiB (its regions are MiB-aligned after a
 * 1 MiB header section) and mostly zeroes, so the input describes a
 * sparse file: byte 0 holds flags, byte 1 the file's size (1 to 16 MiB),
 * then pieces of (offset: 4 bytes, length: 2 bytes, little-endian; the
 * bytes).  fuzz/vhdx-seed.py turns an image into this form.  Unless
 * flag bit 0 is set, the checksums of the headers and region tables
 * found in the file are made right, so that mutations reach what they
 * protect.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "endian.h"
#include "fuzz_image.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MIB (1u << 20)

/* Recompute the CRC-32C of the LEN-byte structure at OFF when it starts
 * with SIG. */
static void fix_checksum(int fd, off_t off, size_t len, const char *sig)
{
	static uint8_t buf[0x10000];
	if (pread(fd, buf, len, off) != (ssize_t)len ||
	    memcmp(buf, sig, 4) != 0)
		return;
	st_le32(buf + 4, mimg__crc32c_without(buf, len, 4));
	if (pwrite(fd, buf + 4, 4, off + 4) != 4)
		return;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	const char *path = fuzz_input_write(NULL, 0, "input.vhdx");
	if (!path)
		return 0;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0;
	uint8_t flags = data[0];
	uint64_t fsize = (uint64_t)(data[1] % 16 + 1) * MIB;
	int ok = ftruncate(fd, (off_t)fsize) == 0;
	for (size_t i = 2; ok && i + 6 <= size;) {
		uint64_t off = ld_le32(data + i);
		size_t len = ld_le16(data + i + 4);
		i += 6;
		if (len > size - i)
			len = size - i;
		if (off < fsize) {
			size_t n = off + len > fsize ? fsize - off : len;
			ok = pwrite(fd, data + i, n, (off_t)off) == (ssize_t)n;
		}
		i += len;
	}
	if (ok && !(flags & 1)) {
		fix_checksum(fd, 0x10000, 4096, "head");
		fix_checksum(fd, 0x20000, 4096, "head");
		fix_checksum(fd, 0x30000, 0x10000, "regi");
		fix_checksum(fd, 0x40000, 0x10000, "regi");
	}
	close(fd);
	if (ok)
		fuzz_image_run_file(path, "vhdx");
	return 0;
}
