/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * What the public API offers every caller beyond plain I/O: block status
 * through the chain with the defining layer's host offset, the check
 * report as a value tree, and the refusal of targets a source reads.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimg.h"
#include "testutil.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)

/* base.raw (1 MiB, data everywhere) under top.qcow2 (1 MiB) with one
 * cluster written at 64K. */
static struct mimg *open_overlay(void)
{
	uint8_t buf[4096];
	struct mimg *img;
	memset(buf, 0x5a, sizeof(buf));
	tu_create("base.raw", "raw", MIB, NULL, NULL);
	tu_write_file("base.raw", buf, sizeof(buf), 0);
	tu_create("top.qcow2", "qcow2", MIB,
		  "backing_file=base.raw,backing_fmt=raw", NULL);
	ck_assert_int_eq(mimg_open(&img, "top.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), 64 * KIB, 0),
			 (ssize_t)sizeof(buf));
	return img;
}

START_TEST(chain_status_has_depth_and_host_offset)
{
	TU_SKIP_WITHOUT_FORMAT("qcow2");
	struct mimg *img = open_overlay();
	uint64_t pnum, host = 1;
	unsigned st;
	int depth = -1;

	/* from the backing file: a raw file holds byte N at N */
	ck_assert_int_eq(mimg_block_status_chain(img, 4096, 4096, &pnum, &st,
						 &depth, &host, 0),
			 0);
	ck_assert_int_eq(depth, 1);
	ck_assert(st & MIMG_BS_OFFSET_VALID);
	ck_assert(st & MIMG_BS_ALLOCATED);
	ck_assert_uint_eq(host, 4096);

	/* from the overlay: a cluster of its own file, past its header */
	ck_assert_int_eq(mimg_block_status_chain(img, 64 * KIB, 4096, &pnum,
						 &st, &depth, &host, 0),
			 0);
	ck_assert_int_eq(depth, 0);
	ck_assert(st & MIMG_BS_OFFSET_VALID);
	ck_assert_uint_ge(host, mimg_cluster_size(img));
	ck_assert_uint_eq(host % mimg_cluster_size(img), 0);

	/* callers without HOST_OFF get statuses as before */
	ck_assert_int_eq(mimg_block_status_chain(img, 64 * KIB, 4096, &pnum,
						 &st, NULL, NULL, 0),
			 0);
	ck_assert(!(st & MIMG_BS_OFFSET_VALID));
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(check_report_is_qemu_image_check)
{
	struct mimg_check_result res = {.size = sizeof(res)};
	struct mimg_value *v;
	memset(&res, 0, sizeof(res));
	res.corruptions = 2;
	res.total_clusters = 16;
	res.allocated_clusters = 3;
	ck_assert_int_eq(mimg_check_report(&res, "a.qcow2", "qcow2", &v), 0);
	char *json = mimg_value_to_json(v);
	ck_assert_str_eq(json, "{\n"
			       "    \"total-clusters\": 16,\n"
			       "    \"corruptions\": 2,\n"
			       "    \"check-errors\": 0,\n"
			       "    \"allocated-clusters\": 3,\n"
			       "    \"filename\": \"a.qcow2\",\n"
			       "    \"format\": \"qcow2\"\n"
			       "}");
	ck_assert_ptr_null(mimg_value_get(v, "leaks"));
	free(json);
	mimg_value_free(v);
	ck_assert_int_eq(mimg_check_report(&res, NULL, "qcow2", &v), -EINVAL);
	ck_assert_ptr_null(v);
}
END_TEST

START_TEST(reads_file_compares_identity)
{
	struct mimg *img;
	tu_create("src.raw", "raw", MIB, NULL, NULL);
	ck_assert_int_eq(link("src.raw", "alias.raw"), 0);
	ck_assert_int_eq(mimg_open(&img, "src.raw", "raw", 0), 0);
	ck_assert_int_eq(mimg_reads_file(img, "src.raw"), -EBUSY);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "the source image"));
	ck_assert_int_eq(mimg_reads_file(img, "alias.raw"), -EBUSY);
	ck_assert_int_eq(mimg_reads_file(img, "absent.raw"), 0);
	tu_create("other.raw", "raw", MIB, NULL, NULL);
	ck_assert_int_eq(mimg_reads_file(img, "other.raw"), 0);
	ck_assert_int_eq(mimg_reads_file(img, NULL), -EINVAL);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(reads_file_sees_backing_and_extents)
{
	TU_SKIP_WITHOUT_FORMAT("qcow2");
	TU_SKIP_WITHOUT_FORMAT("vmdk");
	struct mimg *img = open_overlay();
	ck_assert_int_eq(mimg_reads_file(img, "base.raw"), -EBUSY);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "backing chain"));
	ck_assert_int_eq(mimg_close(img), 0);

	tu_create("flat.vmdk", "vmdk", MIB, "subformat=monolithicFlat", NULL);
	ck_assert_int_eq(access("flat-flat.vmdk", F_OK), 0);
	ck_assert_int_eq(mimg_open(&img, "flat.vmdk", NULL, 0), 0);
	ck_assert_int_eq(mimg_reads_file(img, "flat-flat.vmdk"), -EBUSY);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "a file that"));
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(convert_refuses_target_the_source_reads)
{
	struct mimg *src, *dst;
	tu_create("src.raw", "raw", MIB, NULL, NULL);
	ck_assert_int_eq(link("src.raw", "alias.raw"), 0);
	ck_assert_int_eq(mimg_open(&src, "src.raw", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&dst, "alias.raw", "raw", MIMG_OPEN_RDWR),
			 0);
	ck_assert_int_eq(mimg_convert(src, dst, NULL), -EBUSY);
	ck_assert_int_eq(mimg_close(dst), 0);
	tu_create("dst.raw", "raw", MIB, NULL, NULL);
	ck_assert_int_eq(mimg_open(&dst, "dst.raw", "raw", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_convert(src, dst, NULL), 0);
	ck_assert_int_eq(mimg_close(dst), 0);
	ck_assert_int_eq(mimg_close(src), 0);
}
END_TEST

START_TEST(caller_structs_carry_their_size)
{
	struct mimg *src, *dst;
	tu_create("src.raw", "raw", MIB, NULL, NULL);
	tu_create("dst.raw", "raw", MIB, NULL, NULL);
	ck_assert_int_eq(mimg_open(&src, "src.raw", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&dst, "dst.raw", "raw", MIMG_OPEN_RDWR), 0);
	struct mimg_convert_opts o = {.size = 0};
	ck_assert_int_eq(mimg_convert(src, dst, &o), -EINVAL);
	o.size = sizeof(o) + 8; /* a newer header's, unknown here */
	ck_assert_int_eq(mimg_convert(src, dst, &o), -EINVAL);
	ck_assert_int_eq(mimg_convert_packed(&src, 1, "x.zst", "zstd", &o),
			 -EINVAL);
	o.size = sizeof(o);
	ck_assert_int_eq(mimg_convert(src, dst, &o), 0);
	/* a caller built before rate_limit was added: taken, no limit */
	o.rate_limit = 1;
	o.size = offsetof(struct mimg_convert_opts, rate_limit);
	ck_assert_int_eq(mimg_convert(src, dst, &o), 0);
	o.size = offsetof(struct mimg_convert_opts, rate_limit) - 8;
	ck_assert_int_eq(mimg_convert(src, dst, &o), -EINVAL);

	struct mimg_check_result res = {.size = 0};
	ck_assert_int_eq(mimg_check(src, 0, &res), -EINVAL);
	res.size = sizeof(res) + 8;
	ck_assert_int_eq(mimg_check(src, 0, &res), -EINVAL);
	res.size = sizeof(res);
	ck_assert_int_eq(mimg_check(src, 1u << 7, &res), -EINVAL);
	ck_assert_int_eq(mimg_check(src, 0, &res), 0);
	ck_assert_uint_eq(res.size, sizeof(res));
	ck_assert(!res.supported); /* raw has no check */
	mimg_check_result_free(&res);

	unsigned char md[MIMG_CHECKSUM_MAX];
	unsigned mdlen;
	struct mimg_checksum_opts co = {.size = sizeof(co) + 8};
	ck_assert_int_eq(mimg_checksum(src, &co, md, &mdlen), -EINVAL);
	co.size = sizeof(co);
	ck_assert_int_eq(mimg_checksum(src, &co, md, &mdlen), 0);
	struct mimg *again;
	struct mimg_secret sec = {.size = sizeof(sec) + 8,
				  .data = "x",
				  .len = 1};
	ck_assert_int_eq(mimg_open_secret(&again, "src.raw", "raw", 0, &sec),
			 -EINVAL);
	ck_assert_int_eq(mimg_close(dst), 0);
	ck_assert_int_eq(mimg_close(src), 0);
}
END_TEST

START_TEST(io_flags_are_checked)
{
	struct mimg *img;
	uint8_t buf[4096];
	memset(buf, 0xa5, sizeof(buf));
	tu_create("f.raw", "raw", MIB, NULL, NULL);
	ck_assert_int_eq(mimg_open(&img, "f.raw", "raw", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pread(img, buf, sizeof(buf), 0, MIMG_IO_FUA),
			 -EINVAL);
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), 0, 1u << 9),
			 -EINVAL);
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), 0,
				     MIMG_ZERO_MAY_UNMAP),
			 -EINVAL);
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 0, 4096, 1u << 9), -EINVAL);
	ck_assert_int_eq(mimg_discard(img, 0, 4096, MIMG_ZERO_MAY_UNMAP),
			 -EINVAL);
	ck_assert_int_eq(mimg_flush(img, MIMG_IO_FUA), -EINVAL);
	uint64_t pnum = 0, host = 0;
	unsigned st = 0;
	int depth = -1;
	ck_assert_int_eq(mimg_block_status(img, 0, 4096, &pnum, &st, &host,
					   MIMG_IO_FUA),
			 -EINVAL);
	ck_assert_int_eq(mimg_block_status_chain(img, 0, 4096, &pnum, &st,
						 &depth, &host, 1u << 9),
			 -EINVAL);
	ck_assert_int_eq(mimg_block_status_chain(img, 0, 4096, &pnum, &st,
						 &depth, &host, 0),
			 0);
	ck_assert_int_eq(depth, 0);
	ck_assert_uint_eq(pnum, 4096);
	/* nothing was written by the refused calls */
	uint8_t back[4096];
	ck_assert_int_eq(mimg_pread(img, back, sizeof(back), 0, 0),
			 (ssize_t)sizeof(back));
	ck_assert_uint_eq(back[0], 0);
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), 0, MIMG_IO_FUA),
			 (ssize_t)sizeof(buf));
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 0, 512,
					    MIMG_IO_FUA | MIMG_ZERO_MAY_UNMAP),
			 0);
	ck_assert_int_eq(mimg_discard(img, 8192, 4096, MIMG_IO_FUA), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	/* The calls that create or change an image name themselves and
	 * only the unknown bits. */
	ck_assert_int_eq(mimg_create_flags("n.qcow2", "qcow2", MIB, NULL, 0,
					   1u << 9),
			 -EINVAL);
	ck_assert_str_eq(mimg_errmsg(), "mimg_create: unknown flags 0x200");
	ck_assert_int_eq(access("n.qcow2", F_OK), -1);
	struct mimg_opt_info oi = {.size = sizeof(oi)};
	ck_assert_int_eq(mimg_format_opt_info("qcow2", 1u << 9, 0, &oi),
			 -EINVAL);
	ck_assert_str_eq(mimg_errmsg(),
			 "mimg_format_opt_info: unknown flags 0x200");
	tu_create("q.qcow2", "qcow2", MIB, NULL, NULL);
	ck_assert_int_eq(mimg_open(&img, "q.qcow2", "qcow2", MIMG_OPEN_RDWR),
			 0);
	ck_assert_int_eq(mimg_amend(img, NULL, 0, 1u << 9, NULL, NULL),
			 -EINVAL);
	ck_assert_str_eq(mimg_errmsg(), "mimg_amend: unknown flags 0x200");
	ck_assert_int_eq(mimg_bitmap_add(img, "b", 65536,
					 MIMG_BITMAP_DISABLED | 1u << 9),
			 -EINVAL);
	ck_assert_str_eq(mimg_errmsg(), "mimg_bitmap_add: unknown flags 0x200");
	ck_assert_int_eq(mimg_close(img), 0);
	size_t len;
	uint8_t *file = tu_read_file("f.raw", &len);
	ck_assert_uint_eq(file[0], 0);
	ck_assert_uint_eq(file[512], 0xa5);
	free(file);
}
END_TEST

int main(void)
{
	return tu_main("public_api", "public_api",
		       TU_TESTS(chain_status_has_depth_and_host_offset,
				check_report_is_qemu_image_check,
				reads_file_compares_identity,
				reads_file_sees_backing_and_extents,
				convert_refuses_target_the_source_reads,
				caller_structs_carry_their_size,
				io_flags_are_checked));
}
