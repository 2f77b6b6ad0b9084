/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 header validation: every bad field gives a clear error naming it,
 * never a crash; unknown incompatible features are refused by name;
 * encrypted images are recognised and refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"

static void put_be32(const char *path, uint64_t off, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			(uint8_t)(v >> 8), (uint8_t)v};
	tu_write_file(path, b, 4, off);
}

static void put_be64(const char *path, uint64_t off, uint64_t v)
{
	put_be32(path, off, (uint32_t)(v >> 32));
	put_be32(path, off + 4, (uint32_t)v);
}

static void fresh(void)
{
	ck_assert_int_eq(mimg_create("t.qcow2", "qcow2", 8 << 20, NULL, 0), 0);
}

/* Opening must fail with ERR and a message containing WORD. */
static void expect_open_error(unsigned flags, int err, const char *word)
{
	struct mimg *img = NULL;
	int r = mimg_open(&img, "t.qcow2", "qcow2", flags);
	ck_assert_msg(r == err, "got %d (%s), want %d", r, mimg_errmsg(), err);
	ck_assert_msg(strstr(mimg_errmsg(), word) != NULL,
		      "message '%s' lacks '%s'", mimg_errmsg(), word);
	ck_assert(img == NULL);
}

START_TEST(fresh_image_opens)
{
	fresh();
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	ck_assert_str_eq(mimg_format(img), "qcow2");
	ck_assert_uint_eq(mimg_size(img), 8 << 20);
	ck_assert_uint_eq(mimg_cluster_size(img), 65536);
	mimg_close(img);
}
END_TEST

/* One header field set to a bad value: opening names it. */
static const struct bad_field {
	uint64_t off;
	unsigned width; /* 4 or 8 bytes */
	uint64_t value;
	int err;
	const char *word; /* the message names this */
} bad_fields[] = {
	{4, 4, 4, -ENOTSUP, "version 4"},
	{20, 4, 8, -EINVAL, "cluster_bits 8"},
	{20, 4, 22, -EINVAL, "cluster_bits 22"},
	{24, 8, 1ull << 40, -EINVAL, "L1 table"}, /* too small */
	{36, 4, 0x1000000, -EFBIG, "L1 size"},
	{40, 8, 0x30008, -EINVAL, "not aligned"}, /* L1 offset */
	{56, 4, 1000, -EINVAL, "refcount table"},
	{32, 4, 3, -ENOTSUP, "encryption method 3"},
	/* LUKS without its header extension */
	{32, 4, 2, -EINVAL, "encryption header extension"},
	{0x74, 4, 0xfffffff0, -EINVAL, "extension"}, /* length */
	{72, 8, 4, -EINVAL, "data file"},	     /* bit set, no name */
};

START_TEST(bad_header_field)
{
	const struct bad_field *f = &bad_fields[_i];
	fresh();
	if (f->width == 8)
		put_be64("t.qcow2", f->off, f->value);
	else
		put_be32("t.qcow2", f->off, (uint32_t)f->value);
	expect_open_error(0, f->err, f->word);
}
END_TEST

START_TEST(encrypted_refused)
{
	fresh();
	/* AES-CBC: described without a secret, its data locked; it is
	 * never opened for writing */
	put_be32("t.qcow2", 32, 1);
	struct mimg *img;
	char buf[512];
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", "qcow2", 0), 0);
	ck_assert(mimg_needs_secret(img));
	ck_assert_int_eq(mimg_pread(img, buf, sizeof(buf), 0, 0), -EACCES);
	mimg_close(img);
	expect_open_error(MIMG_OPEN_RDWR, -EROFS, "can only be read");
}
END_TEST

START_TEST(unknown_incompatible_named)
{
	fresh();
	/* Rename the table's "bitmaps" entry into an incompatible bit 9. */
	uint8_t ent[48] = {0, 9};
	memcpy(ent + 2, "frobnication", 12);
	/* Entry 6 of the feature table: 0x78 + 6 * 48. */
	tu_write_file("t.qcow2", ent, sizeof(ent), 0x78 + 6 * 48);
	put_be64("t.qcow2", 72, 1ull << 9);
	expect_open_error(0, -ENOTSUP, "frobnication");
}
END_TEST

START_TEST(corrupt_bit_read_only)
{
	fresh();
	put_be64("t.qcow2", 72, 2);
	expect_open_error(MIMG_OPEN_RDWR, -EACCES, "corrupt");
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	mimg_close(img);
}
END_TEST

START_TEST(snapshot_table_bounds)
{
	fresh();
	put_be32("t.qcow2", 60, 1);
	put_be64("t.qcow2", 64, 1ull << 40);
	expect_open_error(0, -EINVAL, "snapshot table");
}
END_TEST

START_TEST(untrusted_refuses_backing)
{
	fresh();
	ck_assert_int_eq(mimg_create("b.qcow2", "qcow2", 1 << 20, NULL, 0), 0);
	struct mimg_opt o[] = {{"backing_file", "b.qcow2"},
			       {"backing_fmt", "qcow2"}};
	ck_assert_int_eq(mimg_create("o.qcow2", "qcow2", 0, o, 2), 0);
	struct mimg *img = NULL;
	ck_assert_int_eq(mimg_open(&img, "o.qcow2", NULL, MIMG_OPEN_UNTRUSTED),
			 -EPERM);
	ck_assert_int_eq(mimg_open(&img, "o.qcow2", NULL, 0), 0);
	ck_assert_uint_eq(mimg_size(img), 1 << 20);
	ck_assert(mimg_backing(img) != NULL);
	mimg_close(img);
}
END_TEST

/* Option sets qcow2 create refuses, with the error each gives. */
static const struct bad_create {
	struct mimg_opt o[2];
	size_t n;
	int err;
} bad_creates[] = {
	{{{"cluster_size", "1000"}}, 1, -EINVAL},
	{{{"compat", "0.10"}, {"lazy_refcounts", "on"}}, 2, -EINVAL},
	{{{"extended_l2", "on"}, {"cluster_size", "4k"}}, 2, -EINVAL},
	{{{"refcount_bits", "3"}}, 1, -EINVAL},
	{{{"no_such_option", "1"}}, 1, -EINVAL},
	{{{"encryption", "on"}}, 1, -ENOTSUP},
};

START_TEST(create_rejects_bad_options)
{
	const struct bad_create *c = &bad_creates[_i];
	ck_assert_int_eq(mimg_create("t.qcow2", "qcow2", 1 << 20, c->o, c->n),
			 c->err);
}
END_TEST

int main(void)
{
	return tu_main_loops("qcow2_header", "header",
			     TU_TESTS(fresh_image_opens, encrypted_refused,
				      unknown_incompatible_named,
				      corrupt_bit_read_only,
				      snapshot_table_bounds,
				      untrusted_refuses_backing),
			     TU_LOOPS({bad_header_field, TU_NELEM(bad_fields)},
				      {create_rejects_bad_options,
				       TU_NELEM(bad_creates)}));
}
