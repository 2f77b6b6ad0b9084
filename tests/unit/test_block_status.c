/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Block status: on a sparse raw file the runs must be exactly the file's
 * SEEK_DATA/SEEK_HOLE layout; through a backing chain the defining layer
 * and what a read returns must be reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimg.h"
#include "testutil.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* An 8 MiB file with data at 1M+64K, 3M..4M and the last 4K. */
static void make_layout(const char *path)
{
	uint8_t *buf = malloc(MIB);
	tu_fill_random(buf, MIB, 11);
	tu_make_sparse(path, 8 * MIB);
	tu_write_file(path, buf, 64 * KIB, 1 * MIB);
	tu_write_file(path, buf, MIB, 3 * MIB);
	tu_write_file(path, buf, 4 * KIB, 8 * MIB - 4 * KIB);
	free(buf);
}

/* The file's own data/hole layout at OFF: is it data, and how far. */
static void seek_layout(int fd, uint64_t off, uint64_t end, bool *data,
			uint64_t *n)
{
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);
	if (d < 0 || (uint64_t)d >= end) {
		*data = false;
		*n = end - off;
		return;
	}
	if ((uint64_t)d > off) {
		*data = false;
		*n = (uint64_t)d - off;
		return;
	}
	off_t h = lseek(fd, (off_t)off, SEEK_HOLE);
	ck_assert_int_gt(h, (off_t)off);
	*data = true;
	*n = ((uint64_t)h < end ? (uint64_t)h : end) - off;
}

START_TEST(raw_runs_match_seek_data)
{
	make_layout("a.img");
	int fd = open("a.img", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.img", NULL, 0), 0);

	uint64_t off = 0, data_bytes = 0;
	int runs = 0;
	while (off < 8 * MIB) {
		uint64_t pnum, host, want_n;
		unsigned st;
		bool want_data;
		ck_assert_int_eq(mimg_block_status(img, off, 8 * MIB - off,
						   &pnum, &st, &host, 0),
				 0);
		seek_layout(fd, off, 8 * MIB, &want_data, &want_n);
		ck_assert_msg(pnum == want_n,
			      "run at %llu: %llu bytes, file "
			      "says %llu",
			      (unsigned long long)off, (unsigned long long)pnum,
			      (unsigned long long)want_n);
		ck_assert(st & MIMG_BS_ALLOCATED);
		if (want_data) {
			ck_assert(st & MIMG_BS_DATA);
			ck_assert(!(st & MIMG_BS_ZERO));
			data_bytes += pnum;
		} else {
			ck_assert(st & MIMG_BS_ZERO);
			ck_assert(!(st & MIMG_BS_DATA));
		}
		ck_assert(st & MIMG_BS_OFFSET_VALID);
		ck_assert_uint_eq(host, off);
		off += pnum;
		runs++;
	}
	/* the three data extents (file systems may round them to blocks) */
	ck_assert_uint_ge(data_bytes, 64 * KIB + MIB + 4 * KIB);
	ck_assert_uint_le(data_bytes, 64 * KIB + MIB + 4 * KIB + 3 * 64 * KIB);
	ck_assert_int_ge(runs, 6);
	close(fd);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(raw_runs_capped_and_ranges)
{
	make_layout("a.img");
	struct mimg *img;
	uint64_t pnum;
	unsigned st;
	ck_assert_int_eq(mimg_open(&img, "a.img", NULL, 0), 0);
	/* a run is capped at the requested length */
	tu_assert_status(img, 0, 4096, 4096, MIMG_BS_ZERO, 0);
	tu_assert_status(img, 3 * MIB + 512, 1000, 1000, MIMG_BS_DATA, 0);
	/* and clamped at the end of the image */
	tu_assert_status(img, 8 * MIB - 4096, UINT64_MAX, 4096, MIMG_BS_DATA,
			 0);
	/* nothing at or past the end, nor empty ranges */
	ck_assert_int_eq(mimg_block_status(img, 8 * MIB, 1, &pnum, &st, NULL,
					   0),
			 -EINVAL);
	ck_assert_int_eq(mimg_block_status(img, UINT64_MAX, 1, &pnum, &st, NULL,
					   0),
			 -EINVAL);
	ck_assert_int_eq(mimg_block_status(img, 0, 0, &pnum, &st, NULL, 0),
			 -EINVAL);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(raw_discard_and_write_change_status)
{
	free(tu_random_file("a.img", 2 * MIB, 2));
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.img", "raw", MIMG_OPEN_RDWR), 0);
	tu_assert_status(img, 0, 2 * MIB, 2 * MIB, MIMG_BS_DATA, 0);
	ck_assert_int_eq(mimg_discard(img, MIB, 512 * KIB, 0), 0);
	tu_assert_status(img, 0, 2 * MIB, MIB, 0, 0);
	tu_assert_status(img, MIB, MIB, 512 * KIB, MIMG_BS_ZERO, 0);
	/* The data run found last is remembered; what makes holes in it
	 * (zeroing that may unmap, a truncation) must be seen. */
	uint64_t tail = MIB + 512 * KIB;
	tu_assert_status(img, tail, 512 * KIB, 512 * KIB, MIMG_BS_DATA, 0);
	ck_assert_int_eq(mimg_pwrite_zeroes(img, tail + 64 * KIB, 64 * KIB,
					    MIMG_ZERO_MAY_UNMAP),
			 0);
	tu_assert_status(img, tail, 512 * KIB, 64 * KIB, MIMG_BS_DATA, 0);
	tu_assert_status(img, tail + 64 * KIB, 448 * KIB, 64 * KIB,
			 MIMG_BS_ZERO, 0);
	ck_assert_int_eq(mimg_truncate(img, tail + 32 * KIB, MIMG_PREALLOC_OFF),
			 0);
	ck_assert_int_eq(mimg_truncate(img, 2 * MIB, MIMG_PREALLOC_OFF), 0);
	tu_assert_status(img, tail, 512 * KIB, 32 * KIB, MIMG_BS_DATA, 0);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(chain_on_single_raw)
{
	make_layout("a.img");
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "a.img", NULL, 0), 0);
	uint64_t off = 0;
	while (off < 8 * MIB) {
		uint64_t p1, p2;
		unsigned s1, s2;
		int depth = -1;
		ck_assert_int_eq(mimg_block_status(img, off, 8 * MIB - off, &p1,
						   &s1, NULL, 0),
				 0);
		ck_assert_int_eq(mimg_block_status_chain(img, off,
							 8 * MIB - off, &p2,
							 &s2, &depth, NULL, 0),
				 0);
		ck_assert_uint_eq(p1, p2);
		ck_assert_int_eq(depth, 0);
		ck_assert_uint_eq(s1 & (MIMG_BS_DATA | MIMG_BS_ZERO |
					MIMG_BS_ALLOCATED),
				  s2);
		off += p1;
	}
	uint64_t p;
	unsigned s;
	ck_assert_int_eq(mimg_block_status_chain(img, 0, 4096, &p, &s, NULL,
						 NULL, 0),
			 0);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(chain_through_qcow2_overlay)
{
	if (!tu_have_format("qcow2") || !tu_have_program("qemu-img") ||
	    !tu_have_program("qemu-io")) {
		printf("chain block status: needs the qcow2 driver and "
		       "qemu-img/qemu-io; skipped\n");
		return;
	}
	/* base: 4 MiB raw, data in its first 2 MiB; overlay: 6 MiB qcow2
	 * with one 64K cluster written at 512K and one at 5M */
	uint8_t *buf = malloc(2 * MIB);
	tu_fill_random(buf, 2 * MIB, 4);
	tu_make_sparse("base.raw", 4 * MIB);
	tu_write_file("base.raw", buf, 2 * MIB, 0);
	free(buf);
	tu_sh("qemu-img create -q -f qcow2 -b base.raw -F raw top.qcow2 6M");
	tu_sh("qemu-io -f qcow2 -c 'write -P 0x11 512k 64k' -c "
	      "'write -P 0x22 5M 64k' top.qcow2 >/dev/null");
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "top.qcow2", NULL, 0), 0);
	ck_assert_ptr_nonnull(mimg_backing(img));

	struct {
		uint64_t off, len;
		unsigned status;
		int depth;
	} want[] = {
		{0, 512 * KIB, MIMG_BS_DATA | MIMG_BS_ALLOCATED, 1},
		{512 * KIB, 64 * KIB, MIMG_BS_DATA | MIMG_BS_ALLOCATED, 0},
		{576 * KIB, 2 * MIB - 576 * KIB,
		 MIMG_BS_DATA | MIMG_BS_ALLOCATED, 1},
		{2 * MIB, 2 * MIB, MIMG_BS_ZERO | MIMG_BS_ALLOCATED, 1},
		/* past the backing file's end the overlay answers, as
		 * qemu-img's map shows it (depth 0) */
		{4 * MIB, MIB, MIMG_BS_ZERO, 0},
		{5 * MIB, 64 * KIB, MIMG_BS_DATA | MIMG_BS_ALLOCATED, 0},
		{5 * MIB + 64 * KIB, MIB - 64 * KIB, MIMG_BS_ZERO, 0},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t off = want[i].off, end = off + want[i].len;
		while (off < end) {
			uint64_t p;
			unsigned s;
			int d = -1;
			ck_assert_int_eq(mimg_block_status_chain(img, off,
								 end - off, &p,
								 &s, &d, NULL,
								 0),
					 0);
			ck_assert_msg(s == want[i].status && d == want[i].depth,
				      "at %llu: status %#x depth %d, want %#x "
				      "depth %d",
				      (unsigned long long)off, s, d,
				      want[i].status, want[i].depth);
			off += p;
		}
	}
	/* the overlay alone: only its two clusters are allocated */
	tu_assert_status(img, 0, 6 * MIB, 512 * KIB, 0, MIMG_BS_ALLOCATED);
	tu_assert_status(img, 512 * KIB, 6 * MIB, 64 * KIB,
			 MIMG_BS_ALLOCATED | MIMG_BS_DATA, 0);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

/* mimg_host_filename: the file a host offset is in. */
START_TEST(host_filename_names_the_data_file)
{
	struct mimg *img;
	make_layout("plain.raw");
	ck_assert_int_eq(mimg_open(&img, "plain.raw", "raw", 0), 0);
	ck_assert_str_eq(mimg_host_filename(img, MIB), mimg_filename(img));
	ck_assert_int_eq(mimg_close(img), 0);
	if (!tu_have_format("qcow2"))
		return;
	const struct mimg_opt opts[] = {{"data_file", "ext.data"}};
	ck_assert_int_eq(mimg_create("ext.qcow2", "qcow2", MIB, opts, 1), 0);
	ck_assert_int_eq(mimg_open(&img, "ext.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	uint8_t b[512] = {1};
	ck_assert_int_eq(mimg_pwrite(img, b, sizeof(b), 0, 0), 512);
	uint64_t p, host;
	unsigned st;
	ck_assert_int_eq(mimg_block_status(img, 0, MIB, &p, &st, &host, 0), 0);
	ck_assert(st & MIMG_BS_OFFSET_VALID);
	const char *name = mimg_host_filename(img, 0);
	ck_assert_msg(strlen(name) >= 8 &&
			      !strcmp(name + strlen(name) - 8, "ext.data"),
		      "host file %s", name);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

int main(void)
{
	return tu_main("block_status", "block_status",
		       TU_TESTS(raw_runs_match_seek_data,
				raw_runs_capped_and_ranges,
				raw_discard_and_write_change_status,
				chain_on_single_raw,
				chain_through_qcow2_overlay,
				host_filename_names_the_data_file));
}
