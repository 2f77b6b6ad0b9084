/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Discard on sparse VMDK: whole grains become unallocated (or zeroed
 * grains over a parent) and their host space is punched, so the file's
 * allocation drops; partial grains keep their data.  qemu-img is the
 * reader: check, map and the content after conversion to raw.  blockif
 * offers delete on such images.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mimg.h>

#include "testutil.h"
#include "vmm-blk/block_if.h"

#define GRAIN 65536u
#define NGRAINS 16u

/* Fill grains [0, NGRAINS) with pattern bytes (grain I holds I+1). */
static void fill(const char *path)
{
	struct mimg *img;
	uint8_t *b = malloc(GRAIN);
	ck_assert_int_eq(mimg_open(&img, path, "vmdk", MIMG_OPEN_RDWR), 0);
	for (unsigned i = 0; i < NGRAINS; i++) {
		memset(b, (int)(i + 1), GRAIN);
		ck_assert_int_eq(mimg_pwrite(img, b, GRAIN, (uint64_t)i * GRAIN,
					     0),
				 GRAIN);
	}
	ck_assert_int_eq(mimg_close(img), 0);
	free(b);
}

/* Discard [2.5 grains, 10 grains): grains 3..9 go, grain 2 keeps its
 * data (only half of it was named). */
static void discard(const char *path)
{
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, path, "vmdk", MIMG_OPEN_RDWR), 0);
	ck_assert(mimg_can_discard(img));
	ck_assert_int_eq(mimg_discard(img, 5 * GRAIN / 2, 15 * GRAIN / 2, 0),
			 0);
	ck_assert_int_eq(mimg_close(img), 0);
}

/* qemu-img reads the result: grains 3..9 read as zeroes, others as
 * written; EXPECT_BELOW is what an untouched grain below would show. */
static void verify_content(const char *path)
{
	tu_sh("qemu-img convert -O raw %s out.raw", path);
	FILE *f = fopen("out.raw", "rb");
	uint8_t *b = malloc(GRAIN);
	ck_assert_ptr_nonnull(f);
	for (unsigned i = 0; i < NGRAINS; i++) {
		ck_assert_uint_eq(fread(b, 1, GRAIN, f), GRAIN);
		uint8_t want = (i >= 3 && i < 10) ? 0 : (uint8_t)(i + 1);
		for (unsigned j = 0; j < GRAIN; j++)
			if (b[j] != want) /* a passing check costs a write(2) */
				ck_abort_msg("grain %u byte %u: %u, want %u", i,
					     j, b[j], want);
	}
	free(b);
	fclose(f);
	tu_sh("qemu-img check -q %s", path);
}

START_TEST(discard_frees_grains)
{
	tu_sh("qemu-img create -q -f vmdk t.vmdk 4M");
	fill("t.vmdk");
	uint64_t before = tu_allocated("t.vmdk");
	discard("t.vmdk");
	/* Seven grains go; a grain need not start on a file-system block. */
	uint64_t after = tu_allocated("t.vmdk");
	ck_assert_msg(before - after >= 6 * GRAIN,
		      "allocation %llu -> %llu: "
		      "the discarded grains were not punched",
		      (unsigned long long)before, (unsigned long long)after);
	verify_content("t.vmdk");
	/* qemu-img map: the discarded grains hold no data any more. */
	tu_sh("qemu-img map --output=json t.vmdk | grep -q "
	      "'\"start\": 196608, \"length\": 458752, \"depth\": 0, "
	      "\"present\": false, \"zero\": true, \"data\": false'");
	/* A conversion skips them. */
	tu_sh("qemu-img convert -O qcow2 t.vmdk c.qcow2 && qemu-img map "
	      "--output=json c.qcow2 | grep -q "
	      "'\"start\": 196608, \"length\": 458752, \"depth\": 0, "
	      "\"present\": false'");
}
END_TEST

START_TEST(discard_over_parent_reads_zeroes)
{
	tu_sh("qemu-img create -q -f vmdk base.vmdk 1M && qemu-io -f vmdk -c "
	      "'write -P 0x5a 0 1M' base.vmdk >/dev/null && qemu-img create -q "
	      "-f vmdk -o zeroed_grain=on -b base.vmdk -F vmdk t.vmdk 1M");
	fill("t.vmdk");
	discard("t.vmdk");
	/* Zeroes, not the parent's 0x5a, where the grains were. */
	verify_content("t.vmdk");
}
END_TEST

START_TEST(split_extents)
{
	tu_sh("qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse "
	      "t.vmdk 1M");
	fill("t.vmdk");
	discard("t.vmdk");
	verify_content("t.vmdk");
}
END_TEST

START_TEST(blockif_offers_delete)
{
	tu_sh("qemu-img create -q -f vmdk t.vmdk 1M");
	char opts[4200];
	snprintf(opts, sizeof(opts), "%s/t.vmdk", tu_tmpdir());
	struct blockif_ctxt *bc = blockif_open_optstr(opts, "discard-test");
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(blockif_candelete(bc), 1);
	ck_assert_int_eq(blockif_close(bc), 0);
}
END_TEST

int main(void)
{
	return tu_main_qemu("vmdk_discard", "discard",
			    TU_TESTS(discard_frees_grains,
				     discard_over_parent_reads_zeroes,
				     split_extents, blockif_offers_delete),
			    NULL, 0);
}
