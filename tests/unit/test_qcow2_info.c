/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_info on qcow2 images equals qemu-img info --output=json for every
 * key qemu prints (actual-size aside), snapshots included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"

static const char *const compare_py =
	"import json,sys\n"
	"a=json.load(open('m.json'));b=json.load(open('q.json'))\n"
	"bad=[k for k in b if k!='actual-size' and a.get(k)!=b[k]]\n"
	"[print('differs:',k,a.get(k),b[k]) for k in bad]\n"
	"sys.exit(1 if bad else 0)\n";

static void compare_info(const char *path)
{
	struct mimg *img;
	struct mimg_value *info;
	int r = mimg_open(&img, path, NULL, MIMG_OPEN_NO_BACKING);
	ck_assert_msg(r == 0, "%s", mimg_errmsg());
	ck_assert_int_eq(mimg_info(img, &info), 0);
	char *json = mimg_value_to_json(info);
	ck_assert(json != NULL);
	tu_write_file("m.json", json, strlen(json), 0);
	free(json);
	mimg_value_free(info);
	mimg_close(img);
	tu_sh("qemu-img info --output=json %s > q.json", path);
	tu_write_file("cmp.py", compare_py, strlen(compare_py), 0);
	ck_assert_msg(tu_system("python3 cmp.py") == 0, "info of %s differs",
		      path);
}

static const char *const variants[] = {
	"compat=0.10",
	"compat=1.1",
	"lazy_refcounts=on,refcount_bits=4",
	"compression_type=zstd,extended_l2=on",
	"data_file=t.data",
	"data_file=t.data,data_file_raw=on",
	"cluster_size=2M,refcount_bits=64",
};

START_TEST(info_matches_qemu)
{
	if (!tu_have_program("qemu-img") || !tu_have_program("python3"))
		return;
	tu_sh("qemu-img create -q -f qcow2 -o %s t.qcow2 3M", variants[_i]);
	compare_info("t.qcow2");
}
END_TEST

START_TEST(info_snapshots_and_backing)
{
	if (!tu_have_qemu() || !tu_have_program("python3"))
		return;
	tu_sh("qemu-img create -q -f qcow2 b.qcow2 2M && qemu-img create -q -f "
	      "qcow2 -b b.qcow2 -F qcow2 t.qcow2 && qemu-io -c 'write 0 1M' "
	      "t.qcow2 >/dev/null && qemu-img snapshot -c first t.qcow2 && "
	      "qemu-img snapshot -c second t.qcow2");
	compare_info("t.qcow2");
}
END_TEST

int main(void)
{
	return tu_main_loops("qcow2_info", "info",
			     TU_TESTS(info_snapshots_and_backing),
			     TU_LOOPS({info_matches_qemu, TU_NELEM(variants)}));
}
