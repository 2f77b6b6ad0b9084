/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Guest writes and discards never land on VMDK metadata.  A sparse VMDK
 * made by qemu-img gets grain table entries pointing at its grain
 * directory and at the grain table itself; writing those grains must
 * fail with EIO and discarding them must not punch the metadata, which
 * stays byte for byte as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mimg.h>

#include "testutil.h"

static uint64_t le_at(int fd, uint64_t off, int bytes)
{
	uint8_t b[8];
	ck_assert_int_eq(pread(fd, b, (size_t)bytes, (off_t)off), bytes);
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static void put_le32(int fd, uint64_t off, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)(v >> 24)};
	ck_assert_int_eq(pwrite(fd, b, 4, (off_t)off), 4);
}

/* First MB of the file (header, directories, tables). */
static uint8_t *snapshot_head(void)
{
	uint8_t *b = calloc(1, 1 << 20);
	int fd = open("t.vmdk", O_RDONLY);
	ck_assert(pread(fd, b, 1 << 20, 0) > 0);
	close(fd);
	return b;
}

START_TEST(entries_into_metadata)
{
	tu_sh("qemu-img create -q -f vmdk t.vmdk 4M && qemu-io -f vmdk -c "
	      "'write -P 0x5a 0 64k' t.vmdk >/dev/null");
	int fd = open("t.vmdk", O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint64_t gd = le_at(fd, 56, 8);		  /* gdOffset, sectors */
	uint64_t gt = le_at(fd, gd * 512, 4);	  /* GD[0] */
	put_le32(fd, gt * 512 + 4, (uint32_t)gd); /* grain 1 -> the GD */
	put_le32(fd, gt * 512 + 8, (uint32_t)gt); /* grain 2 -> the GT */
	close(fd);
	uint8_t *before = snapshot_head();

	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.vmdk", "vmdk", MIMG_OPEN_RDWR), 0);
	uint8_t *b = malloc(65536);
	memset(b, 0xcc, 65536);
	for (int g = 1; g <= 2; g++) {
		ck_assert_int_eq(mimg_pwrite(img, b, 4096, (uint64_t)g * 65536,
					     0),
				 -EIO);
		ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "metadata"));
	}
	/* Discarding them drops the entries but punches nothing. */
	ck_assert_int_eq(mimg_discard(img, 65536, 2 * 65536, 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);

	uint8_t *after = snapshot_head();
	/* The directory and the table, but for the two entries the discard
	 * cleared (the descriptor's CID changes with the first write). */
	memset(before + gt * 512 + 4, 0, 8);
	ck_assert_int_eq(memcmp(before + gd * 512, after + gd * 512, 512), 0);
	ck_assert_int_eq(memcmp(before + gt * 512, after + gt * 512, 2048), 0);
	tu_sh("qemu-img check -q t.vmdk");
	free(b);
	free(before);
	free(after);
}
END_TEST

int main(void)
{
	return tu_main_qemu("vmdk_overlap", "overlap",
			    TU_TESTS(entries_into_metadata), NULL, 0);
}
