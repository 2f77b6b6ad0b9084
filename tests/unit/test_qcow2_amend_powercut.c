/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_amend on qcow2 under the power-cut model of powercut.h: whatever
 * subset of the writes since the last flush is lost, the image checks
 * without corruption (leaks allowed) and reads as before the amend.
 * Also the calling rules of mimg_amend (flags, read-only handles,
 * formats without amend).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimg.h"
#include "powercut.h"
#include "testutil.h"

/* t.qcow2 (and orig.qcow2, a copy) with data, zero, compressed and
 * discarded clusters, a backing file and an internal snapshot.  A test
 * makes it with qemu-img and qemu-io once (most of its CPU time when made
 * for each cut point), with the same CREATE_OPTS, and copies it after. */
static void make_image(const char *create_opts)
{
	if (access("orig.qcow2", F_OK) == 0) {
		tu_sh("cp orig.qcow2 t.qcow2");
		return;
	}
	ck_assert_int_eq(
		tu_system("qemu-img create -q -f qcow2 b.qcow2 4M && "
			  "qemu-io -c 'write -P 0x5a 0 4M' b.qcow2 >/dev/null "
			  "&& qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 "
			  "%s%s t.qcow2 4M && qemu-io -c 'write -P 1 0 200k' "
			  "-c 'write -z 256k 128k' -c 'write -z 1M 64k' "
			  "-c 'write -c -P 3 2M 64k' -c 'write -P 4 3M 100k' "
			  "-c 'discard 3M 64k' t.qcow2 >/dev/null && "
			  "qemu-img snapshot -c s1 t.qcow2 && qemu-io -c "
			  "'write -z 512k 64k' -c 'write -P 6 1536k 64k' "
			  "t.qcow2 >/dev/null && cp t.qcow2 orig.qcow2",
			  *create_opts ? "-o " : "", create_opts),
		0);
}

static void amend_with_cut(const char *create_opts, const char *amend,
			   int at_flush)
{
	struct mimg_opt *o;
	struct mimg *img;
	make_image(create_opts);
	int n = mimg_opts_parse(amend, &o);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	pc_begin("t.qcow2", at_flush);
	int r = mimg_amend(img, o, (size_t)n, 0, NULL, NULL);
	bool cut = pc_crashed();
	mimg_close(img);
	pc_end();
	mimg_opts_free(o, (size_t)n);
	ck_assert_msg(cut || r == 0, "%s: %s", amend, mimg_errmsg());
	int st = pc_qemu_check();
	ck_assert_msg(st == 0 || st == 3,
		      "%s on %s, cut at flush %d: "
		      "qemu-img check exit %d",
		      amend, create_opts, at_flush, st);
	ck_assert_msg(tu_system("qemu-img compare -q orig.qcow2 crash.img") ==
			      0,
		      "%s on %s, cut at flush %d: content changed", amend,
		      create_opts, at_flush);
}

static const struct {
	const char *create, *amend;
} cases[] = {
	{"", "refcount_bits=2"}, /* the snapshot makes refcounts of 2 */
	{"", "refcount_bits=64,lazy_refcounts=on"},
	{"cluster_size=4k", "refcount_bits=8"},
	{"", "compat=0.10"},
	{"lazy_refcounts=on", "lazy_refcounts=off,compat=0.10"},
	{"compat=0.10", "compat=1.1,refcount_bits=8"},
};
#define NCASES (int)(sizeof(cases) / sizeof(cases[0]))

START_TEST(power_cut)
{
	static const int cuts[] = {1, 2, 3, 4, 6, 9};
	for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]);
	     k += (size_t)tu_scaled_step())
		amend_with_cut(cases[_i].create, cases[_i].amend, cuts[k]);
	/* and without a cut: every step done */
	amend_with_cut(cases[_i].create, cases[_i].amend, 1000);
}
END_TEST

START_TEST(calling_rules)
{
	struct mimg_opt size = {"size", "8M"}, bad = {"cluster_size", "4k"};
	struct mimg *img;
	make_image("");
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	ck_assert_int_eq(mimg_amend(img, &size, 1, 0, NULL, NULL), -EROFS);
	mimg_close(img);
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_amend(img, &size, 1, 0x80, NULL, NULL), -EINVAL);
	ck_assert_int_eq(mimg_amend(img, &bad, 1, 0, NULL, NULL), -EINVAL);
	ck_assert_str_eq(mimg_errmsg(), "Invalid parameter 'cluster_size'\n"
					"This option is only supported for "
					"image creation");
	/* narrowing below what the snapshot's shared clusters need */
	struct mimg_opt one = {"refcount_bits", "1"};
	ck_assert_int_eq(mimg_amend(img, &one, 1, 0, NULL, NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "Cannot decrease refcount "
						    "entry width to 1 bits"));
	ck_assert_int_eq(mimg_amend(img, &size, 1, MIMG_AMEND_FORCE, NULL,
				    NULL),
			 0);
	ck_assert_uint_eq(mimg_size(img), 8u << 20);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_create("r.img", "raw", 1 << 20, NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&img, "r.img", "raw", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_amend(img, &size, 1, 0, NULL, NULL), -ENOTSUP);
	ck_assert_str_eq(mimg_errmsg(), "Format driver 'raw' does not support "
					"option amendment");
	mimg_close(img);
}
END_TEST

int main(void)
{
	return tu_main_qemu("qcow2_amend_powercut", "amend",
			    TU_TESTS(calling_rules),
			    TU_LOOPS({power_cut, NCASES}));
}
