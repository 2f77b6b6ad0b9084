/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Many threads reading one handle of an image whose data is decoded
 * unit by unit (a cloop image, its blocks compressed with zlib's own
 * compress2): the kept unit is shared, units are decoded outside its
 * lock, and every reader must still get its own bytes, also the readers
 * of a unit that fails to decode.  In the "threads" suite, so it runs
 * under ThreadSanitizer too.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mimg.h"
#include "testutil.h"

#define BLOCK (16u << 10)
#define BLOCKS 48u
#define DISK ((size_t)BLOCK * BLOCKS)
#define READERS 6
#define READS 400
/* The block whose stored bytes are damaged in the broken image. */
#define BAD_BLOCK 17u

#define PREAMBLE                                                               \
	"#!/bin/sh\n#V2.0 Format\n"                                            \
	"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"

static uint8_t *disk;

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* A disk whose blocks differ (random, text and zero pieces) and the
 * cloop image of it at PATH; with BRK, block BAD_BLOCK's stream is
 * damaged. */
static void make_image(const char *path, bool brk)
{
	uint8_t head[128 + 8] = PREAMBLE;
	uint8_t offsets[(BLOCKS + 1) * 8];
	uLong cap = compressBound(BLOCK);
	uint8_t *z = malloc(cap);
	ck_assert_ptr_nonnull(z);
	free(disk);
	disk = malloc(DISK);
	ck_assert_ptr_nonnull(disk);
	for (uint32_t b = 0; b < BLOCKS; b++) {
		uint8_t *p = disk + (size_t)b * BLOCK;
		switch (b % 3) {
		case 0: tu_fill_random(p, BLOCK, b); break;
		case 1:
			for (size_t i = 0; i < BLOCK; i++)
				p[i] = (uint8_t)('a' + (i * 7 + b) % 26);
			break;
		default: memset(p, 0, BLOCK);
		}
	}
	put_be32(head + 128, BLOCK);
	put_be32(head + 132, BLOCKS);
	tu_write_file(path, head, sizeof(head), 0);
	uint64_t at = sizeof(head) + sizeof(offsets);
	for (uint32_t b = 0; b < BLOCKS; b++) {
		uLongf n = cap;
		ck_assert_int_eq(compress2(z, &n, disk + (size_t)b * BLOCK,
					   BLOCK, Z_DEFAULT_COMPRESSION),
				 Z_OK);
		if (brk && b == BAD_BLOCK)
			memset(z + 2, 0xff, 8); /* not a deflate stream */
		put_be64(offsets + 8 * b, at);
		tu_write_file(path, z, n, at);
		at += n;
	}
	put_be64(offsets + 8 * BLOCKS, at);
	tu_write_file(path, offsets, sizeof(offsets), sizeof(head));
	free(z);
}

struct reader {
	pthread_t thread;
	struct mimg *img;
	uint64_t seed;
	bool broken;
	int wrong, failed_bad, failed_good;
};

/* Reads of up to three blocks from random offsets, most within a block
 * or two so that readers meet on the kept one. */
static void *read_loop(void *arg)
{
	struct reader *rd = arg;
	uint8_t *buf = malloc(3 * BLOCK);
	if (!buf)
		return NULL;
	for (int i = 0; i < READS; i++) {
		uint64_t x = tu_mix64(rd->seed + (uint64_t)i);
		size_t off = (size_t)(x % DISK);
		size_t len = 1 +
			     (size_t)((x >> 32) % (i % 4 ? BLOCK : 3 * BLOCK));
		if (len > DISK - off)
			len = DISK - off;
		ssize_t got = mimg_pread(rd->img, buf, len, off, 0);
		bool bad = rd->broken && off < (BAD_BLOCK + 1) * BLOCK &&
			   off + len > BAD_BLOCK * BLOCK;
		if (got < 0) {
			if (bad && got == -EIO)
				rd->failed_bad++;
			else
				rd->failed_good++;
		} else if (bad || (size_t)got != len ||
			   memcmp(buf, disk + off, len) != 0) {
			rd->wrong++;
		}
	}
	free(buf);
	return NULL;
}

static void read_together(const char *path, bool broken)
{
	struct mimg *img;
	struct reader rd[READERS];
	ck_assert_msg(mimg_open(&img, path, "cloop", 0) == 0, "%s",
		      mimg_errmsg());
	for (int t = 0; t < READERS; t++) {
		rd[t] = (struct reader){.img = img,
					.seed = 1000u * (unsigned)t,
					.broken = broken};
		ck_assert_int_eq(pthread_create(&rd[t].thread, NULL, read_loop,
						&rd[t]),
				 0);
	}
	int failed_bad = 0;
	for (int t = 0; t < READERS; t++) {
		ck_assert_int_eq(pthread_join(rd[t].thread, NULL), 0);
		ck_assert_int_eq(rd[t].wrong, 0);
		ck_assert_int_eq(rd[t].failed_good, 0);
		failed_bad += rd[t].failed_bad;
	}
	/* The broken block is read by some readers: each of those failed. */
	if (broken)
		ck_assert_int_gt(failed_bad, 0);
	ck_assert_int_eq(mimg_close(img), 0);
}

START_TEST(readers_share_the_kept_block)
{
	make_image("a.cloop", false);
	read_together("a.cloop", false);
}
END_TEST

START_TEST(a_block_that_fails_fails_only_its_readers)
{
	make_image("b.cloop", true);
	read_together("b.cloop", true);
}
END_TEST

int main(void)
{
	int r = tu_main("decoded_readers", "decoded_readers",
			TU_TESTS(readers_share_the_kept_block,
				 a_block_that_fails_fails_only_its_readers));
	free(disk);
	return r;
}
