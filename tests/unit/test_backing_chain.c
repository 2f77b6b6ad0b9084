/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Backing-chain resolution: names relative to the overlay's directory,
 * loop detection, the depth cap, the untrusted mode and json: names; and
 * the path policy of mimg__resolve_ref for references that must stay in
 * the image's directory.  Overlays are qcow2 files made by qemu-img (the
 * core alone has no overlay format), so those cases skip without the
 * qcow2 driver.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "mimg.h"
#include "testutil.h"

#define MIB (1024u * 1024u)

static bool have_qcow2(void)
{
	return tu_have_format("qcow2") && tu_have_program("qemu-img");
}

#define NEED_QCOW2()                                                           \
	do {                                                                   \
		if (!have_qcow2()) {                                           \
			printf("%s: needs the qcow2 driver and qemu-img; "     \
			       "skipped\n",                                    \
			       __func__);                                      \
			return;                                                \
		}                                                              \
	} while (0)

static void assert_msg_has(const char *needle)
{
	ck_assert_msg(strstr(mimg_errmsg(), needle) != NULL,
		      "message '%s' lacks '%s'", mimg_errmsg(), needle);
}

/* ---- mimg__resolve_ref on a hand-made handle ---- */

static struct mimg fake(const char *filename, unsigned flags)
{
	struct mimg m;
	memset(&m, 0, sizeof(m));
	m.filename = (char *)filename;
	m.flags = flags;
	m.top = NULL;
	return m;
}

static char *resolve_ok(const struct mimg *m, const char *name, bool contained)
{
	char *out = NULL;
	int r = mimg__resolve_ref(m, name, contained, "extent", &out);
	ck_assert_msg(r == 0, "'%s' refused: %s", name, mimg_errmsg());
	ck_assert_ptr_nonnull(out);
	return out;
}

/* NAME, referred to by M (CONTAINED as for resolve_ok), is WANT. */
static void expect_resolved(const struct mimg *m, const char *name,
			    bool contained, const char *want)
{
	char *p = resolve_ok(m, name, contained);
	ck_assert_str_eq(p, want);
	free(p);
}

static int resolve_err(const struct mimg *m, const char *name, bool contained)
{
	char *out = (char *)1;
	int r = mimg__resolve_ref(m, name, contained, "extent", &out);
	ck_assert_msg(r < 0, "'%s' accepted", name);
	ck_assert_ptr_null(out);
	return r;
}

/* PATH opens with FLAGS (and closes cleanly). */
static void expect_opens(const char *path, unsigned flags)
{
	struct mimg *img;
	int r = mimg_open(&img, path, NULL, flags);
	ck_assert_msg(r == 0, "open %s: %s", path, mimg_errmsg());
	ck_assert_int_eq(mimg_close(img), 0);
}

START_TEST(resolve_relative_to_image_dir)
{
	struct mimg m = fake("dir/sub/top.img", 0);
	expect_resolved(&m, "base.img", false, "dir/sub/base.img");
	expect_resolved(&m, "x/y.img", true, "dir/sub/x/y.img");
	/* backing files may leave the directory, as in qemu-img */
	expect_resolved(&m, "../base.img", false, "dir/sub/../base.img");
	expect_resolved(&m, "/abs/base.img", false, "/abs/base.img");
	struct mimg bare = fake("top.img", 0);
	expect_resolved(&bare, "base.img", true, "base.img");
	struct mimg abs = fake("/images/top.img", 0);
	expect_resolved(&abs, "base.img", false, "/images/base.img");
	/* a name that merely starts with dots is not an escape */
	expect_resolved(&m, "..data", true, "dir/sub/..data");
}
END_TEST

START_TEST(resolve_contained_refuses_escapes)
{
	struct mimg m = fake("dir/top.vmdk", 0);
	ck_assert_int_eq(resolve_err(&m, "/etc/passwd", true), -EPERM);
	assert_msg_has("/etc/passwd");
	assert_msg_has("dir/top.vmdk");
	assert_msg_has("extent");
	ck_assert_int_eq(resolve_err(&m, "../secret", true), -EPERM);
	ck_assert_int_eq(resolve_err(&m, "a/../../secret", true), -EPERM);
	ck_assert_int_eq(resolve_err(&m, "a/..", true), -EPERM);
	ck_assert_int_eq(resolve_err(&m, "", true), -EINVAL);
	ck_assert_int_eq(resolve_err(&m, NULL, false), -EINVAL);

	/* allowed explicitly */
	struct mimg ext = fake("dir/top.vmdk", MIMG_OPEN_ALLOW_EXTERNAL);
	expect_resolved(&ext, "/etc/passwd", true, "/etc/passwd");
	expect_resolved(&ext, "../secret", true, "dir/../secret");
}
END_TEST

START_TEST(resolve_contained_refuses_symlink_escape)
{
	ck_assert_int_eq(mkdir("img", 0755), 0);
	ck_assert_int_eq(mkdir("outside", 0755), 0);
	tu_make_sparse("outside/secret", 4096);
	tu_make_sparse("img/inside.raw", 4096);
	ck_assert_int_eq(symlink("../outside", "img/out"), 0);
	ck_assert_int_eq(symlink("inside.raw", "img/alias.raw"), 0);

	struct mimg m = fake("img/disk.vmdk", 0);
	ck_assert_int_eq(resolve_err(&m, "out/secret", true), -EPERM);
	assert_msg_has("symbolic link");
	/* a link that stays inside is fine */
	expect_resolved(&m, "alias.raw", true, "img/alias.raw");
	/* a name that does not exist yet cannot be checked: it is the
	 * open that fails later */
	free(resolve_ok(&m, "new.raw", true));
	struct mimg ext = fake("img/disk.vmdk", MIMG_OPEN_ALLOW_EXTERNAL);
	expect_resolved(&ext, "out/secret", true, "img/out/secret");
	/* backing files (not contained) follow links as qemu-img does */
	free(resolve_ok(&m, "out/secret", false));
}
END_TEST

START_TEST(resolve_untrusted_refuses_everything)
{
	struct mimg m = fake("dir/top.img", MIMG_OPEN_UNTRUSTED);
	ck_assert_int_eq(resolve_err(&m, "base.img", false), -EPERM);
	assert_msg_has("untrusted");
	assert_msg_has("base.img");
	ck_assert_int_eq(resolve_err(&m, "base.img", true), -EPERM);
	ck_assert_int_eq(resolve_err(&m, "/abs", false), -EPERM);
	struct mimg both = fake("dir/top.img",
				MIMG_OPEN_UNTRUSTED | MIMG_OPEN_ALLOW_EXTERNAL);
	ck_assert_int_eq(resolve_err(&both, "base.img", true), -EPERM);

	/* the policy is the chain top's, not the node's own flags */
	struct mimg top = fake("dir/top.img", MIMG_OPEN_UNTRUSTED);
	struct mimg below = fake("dir/mid.img", 0);
	below.top = &top;
	ck_assert_int_eq(resolve_err(&below, "base.img", false), -EPERM);
	struct mimg trusting = fake("dir/top.img", MIMG_OPEN_ALLOW_EXTERNAL);
	below.top = &trusting;
	free(resolve_ok(&below, "/abs/base.img", true));
}
END_TEST

START_TEST(resolve_json_never_interpreted)
{
	struct mimg m = fake("top.img", 0);
	ck_assert_int_eq(resolve_err(&m,
				     "json:{\"file.filename\":\"/etc/"
				     "passwd\"}",
				     false),
			 -EPERM);
	assert_msg_has("json:");
	struct mimg ext = fake("top.img", MIMG_OPEN_ALLOW_EXTERNAL);
	ck_assert_int_eq(resolve_err(&ext, "json:{}", true), -EPERM);
}
END_TEST

/* ---- whole chains through qcow2 overlays made by qemu-img ---- */

static void make_base(const char *path, uint64_t size, uint8_t fill)
{
	uint8_t *buf = malloc(size);
	memset(buf, fill, size);
	tu_write_file(path, buf, size, 0);
	free(buf);
}

START_TEST(chain_relative_to_overlay_dir)
{
	NEED_QCOW2();
	ck_assert_int_eq(mkdir("sub", 0755), 0);
	make_base("sub/base.raw", 1 * MIB, 0x5B);
	tu_sh("cd sub && qemu-img create -q -f qcow2 -b base.raw -F raw "
	      "top.qcow2 2M");
	/* opened from another directory: the name is relative to sub/ */
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "sub/top.qcow2", NULL, MIMG_OPEN_RDWR),
			 0);
	struct mimg *b = mimg_backing(img);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(mimg_filename(b), "sub/base.raw");
	ck_assert_str_eq(mimg_format(b), "raw");
	ck_assert(mimg_is_read_only(b));
	ck_assert(!mimg_is_read_only(img));
	ck_assert(!mimg_has_zero_init(img));
	ck_assert_ptr_null(mimg_backing(b));

	uint8_t buf[4096];
	ck_assert_int_eq(mimg_pread(img, buf, 4096, 4096, 0), 4096);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(buf[i], 0x5B);
	/* past the backing file's end the overlay reads zeroes */
	ck_assert_int_eq(mimg_pread(img, buf, 4096, MIB + 8192, 0), 4096);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(buf[i], 0);
	/* a write goes to the overlay only */
	memset(buf, 0xC3, sizeof(buf));
	ck_assert_int_eq(mimg_pwrite(img, buf, 512, 0, 0), 512);
	ck_assert_int_eq(mimg_pread(img, buf, 4096, 0, 0), 4096);
	ck_assert_uint_eq(buf[0], 0xC3);
	ck_assert_uint_eq(buf[511], 0xC3);
	ck_assert_uint_eq(buf[512], 0x5B);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(tu_system("cmp -n 1048576 sub/base.raw /dev/zero "
				   ">/dev/null 2>&1"),
			 1); /* untouched */

	/* without following the backing file, unallocated reads zeroes */
	ck_assert_int_eq(mimg_open(&img, "sub/top.qcow2", NULL,
				   MIMG_OPEN_NO_BACKING),
			 0);
	ck_assert_ptr_null(mimg_backing(img));
	ck_assert_int_eq(mimg_pread(img, buf, 4096, 512 * 1024, 0), 4096);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(buf[i], 0);
	/* the cluster the write allocated holds the copied-up base data */
	ck_assert_int_eq(mimg_pread(img, buf, 4096, 8192, 0), 4096);
	ck_assert_uint_eq(buf[0], 0x5B);
	ck_assert_int_eq(mimg_close(img), 0);

	/* an absolute cwd changes nothing */
	char cwd[4096], path[4200];
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	snprintf(path, sizeof(path), "%s/sub/top.qcow2", cwd);
	ck_assert_int_eq(mimg_open(&img, path, NULL, 0), 0);
	snprintf(path, sizeof(path), "%s/sub/base.raw", cwd);
	ck_assert_str_eq(mimg_filename(mimg_backing(img)), path);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(chain_missing_backing_named)
{
	NEED_QCOW2();
	tu_sh("qemu-img create -q -f qcow2 -u -b gone.raw -F raw top.qcow2 1M");
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "top.qcow2", NULL, 0), -ENOENT);
	assert_msg_has("top.qcow2");
	assert_msg_has("gone.raw");
	expect_opens("top.qcow2", MIMG_OPEN_NO_BACKING);
}
END_TEST

START_TEST(chain_loops_detected)
{
	NEED_QCOW2();
	struct mimg *img;
	/* a.qcow2 -> a.qcow2 */
	tu_sh("qemu-img create -q -f qcow2 a.qcow2 1M && qemu-img rebase -u -b "
	      "a.qcow2 -F qcow2 a.qcow2");
	ck_assert_int_eq(mimg_open(&img, "a.qcow2", NULL, 0), -ELOOP);
	assert_msg_has("a.qcow2");
	/* b -> c -> d -> b, with d naming b through another spelling */
	ck_assert_int_eq(mkdir("x", 0755), 0);
	tu_sh("qemu-img create -q -f qcow2 -u -b c.qcow2 -F qcow2 b.qcow2 1M "
	      "&& qemu-img create -q -f qcow2 -u -b x/d.qcow2 -F qcow2 c.qcow2 "
	      "1M && qemu-img create -q -f qcow2 -u -b ../b.qcow2 -F qcow2 "
	      "x/d.qcow2 1M");
	ck_assert_int_eq(mimg_open(&img, "b.qcow2", NULL, 0), -ELOOP);
	ck_assert_int_eq(mimg_open(&img, "c.qcow2", NULL, 0), -ELOOP);
	expect_opens("b.qcow2", MIMG_OPEN_NO_BACKING);
	/* through a hard link the same file is still the same file */
	tu_sh("qemu-img create -q -f qcow2 -u -b e-link.qcow2 -F qcow2 e.qcow2 "
	      "1M && ln e.qcow2 e-link.qcow2");
	ck_assert_int_eq(mimg_open(&img, "e.qcow2", NULL, 0), -ELOOP);
}
END_TEST

START_TEST(chain_depth_capped)
{
	NEED_QCOW2();
	/* l0.raw <- l1 <- ... <- l65: 66 images, 65 backing links */
	make_base("l0.raw", 65536, 0x42);
	tu_sh("set -e; qemu-img create -q -f qcow2 -u -b l0.raw -F raw "
	      "l1.qcow2 64k; i=2; while [ $i -le 65 ]; do qemu-img create -q "
	      "-f qcow2 -u -b l$((i-1)).qcow2 -F qcow2 l$i.qcow2 64k; "
	      "i=$((i+1)); done");
	struct mimg *img;
	char name[32];
	/* 64 backing links: the deepest allowed */
	snprintf(name, sizeof(name), "l%d.qcow2", MIMG_MAX_CHAIN_DEPTH);
	ck_assert_msg(mimg_open(&img, name, NULL, 0) == 0, "%s", mimg_errmsg());
	int depth = 0;
	for (struct mimg *b = img; mimg_backing(b); b = mimg_backing(b))
		depth++;
	ck_assert_int_eq(depth, MIMG_MAX_CHAIN_DEPTH);
	uint8_t buf[512];
	ck_assert_int_eq(mimg_pread(img, buf, 512, 1024, 0), 512);
	ck_assert_uint_eq(buf[0], 0x42);
	ck_assert_uint_eq(buf[511], 0x42);
	ck_assert_int_eq(mimg_close(img), 0);
	/* one more is too deep */
	snprintf(name, sizeof(name), "l%d.qcow2", MIMG_MAX_CHAIN_DEPTH + 1);
	ck_assert_int_eq(mimg_open(&img, name, NULL, 0), -ELOOP);
	assert_msg_has(name);
	/* the reason survives however long the chain */
	assert_msg_has("deeper than 64");
}
END_TEST

START_TEST(chain_untrusted_refused)
{
	NEED_QCOW2();
	make_base("base.raw", 65536, 1);
	tu_sh("qemu-img create -q -f qcow2 -b base.raw -F raw top.qcow2 1M");
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "top.qcow2", NULL,
				   MIMG_OPEN_UNTRUSTED),
			 -EPERM);
	assert_msg_has("base.raw");
	ck_assert_int_eq(mimg_open(&img, "top.qcow2", NULL,
				   MIMG_OPEN_UNTRUSTED | MIMG_OPEN_RDWR),
			 -EPERM);
	/* even when the backing file would not be opened (info, check) */
	ck_assert_int_eq(mimg_open(&img, "top.qcow2", NULL,
				   MIMG_OPEN_UNTRUSTED | MIMG_OPEN_NO_BACKING),
			 -EPERM);
	assert_msg_has("untrusted");
	/* self-contained images are fine in untrusted mode */
	tu_sh("qemu-img create -q -f qcow2 plain.qcow2 1M");
	expect_opens("plain.qcow2", MIMG_OPEN_UNTRUSTED);
	expect_opens("base.raw", MIMG_OPEN_UNTRUSTED);
}
END_TEST

START_TEST(chain_json_backing_refused)
{
	NEED_QCOW2();
	make_base("base.raw", 65536, 1);
	tu_sh("qemu-img create -q -f qcow2 -u -b 'json:{\"driver\":\"raw\","
	      "\"file\":{\"driver\":\"file\",\"filename\":\"base.raw\"}}' "
	      "-F raw top.qcow2 1M");
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "top.qcow2", NULL, 0), -EPERM);
	assert_msg_has("json:");
}
END_TEST

START_TEST(create_with_backing)
{
	NEED_QCOW2();
	ck_assert_int_eq(mkdir("d", 0755), 0);
	make_base("d/base.raw", 3 * MIB, 0x11);
	struct mimg_opt o[2] = {{"backing_file", "base.raw"},
				{"backing_fmt", "raw"}};
	/* relative to the new image's directory; size 0 takes the base's */
	ck_assert_msg(mimg_create("d/new.qcow2", "qcow2", 0, o, 2) == 0, "%s",
		      mimg_errmsg());
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, "d/new.qcow2", NULL, 0), 0);
	ck_assert_uint_eq(mimg_size(img), 3 * MIB);
	ck_assert_str_eq(mimg_filename(mimg_backing(img)), "d/base.raw");
	ck_assert_int_eq(mimg_close(img), 0);
	/* the backing format must be given, as in qemu-img 7.2 */
	ck_assert_int_eq(mimg_create("d/new2.qcow2", "qcow2", 0, o, 1),
			 -EINVAL);
	assert_msg_has("backing format");
	/* never over the backing file itself, or anything below it: that
	 * would truncate the data the new image is based on */
	struct mimg_opt self[2] = {{"backing_file", "base.raw"},
				   {"backing_fmt", "raw"}};
	ck_assert_int_eq(mimg_create("d/base.raw", "qcow2", 0, self, 2),
			 -EINVAL);
	assert_msg_has("same filename as the backing file");
	struct mimg_opt deep[2] = {{"backing_file", "new.qcow2"},
				   {"backing_fmt", "qcow2"}};
	ck_assert_int_eq(mimg_create("d/base.raw", "qcow2", 0, deep, 2),
			 -EINVAL);
	struct stat st;
	ck_assert_int_eq(stat("d/base.raw", &st), 0);
	ck_assert_int_eq(st.st_size, 3 * MIB);
	ck_assert_int_eq(mimg_open(&img, "d/base.raw", "raw", 0), 0);
	uint8_t b;
	ck_assert_int_eq(mimg_pread(img, &b, 1, 2 * MIB, 0), 1);
	ck_assert_uint_eq(b, 0x11);
	ck_assert_int_eq(mimg_close(img), 0);
	/* and the backing file must exist */
	struct mimg_opt gone[2] = {{"backing_file", "gone.raw"},
				   {"backing_fmt", "raw"}};
	ck_assert_int_eq(mimg_create("d/new3.qcow2", "qcow2", 0, gone, 2),
			 -ENOENT);
	assert_msg_has("gone.raw");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("backing_chain");
	tu_tcase_of(s, "resolve_ref",
		    TU_TESTS(resolve_relative_to_image_dir,
			     resolve_contained_refuses_escapes,
			     resolve_contained_refuses_symlink_escape,
			     resolve_untrusted_refuses_everything,
			     resolve_json_never_interpreted));
	tu_tcase_of(s, "chains",
		    TU_TESTS(chain_relative_to_overlay_dir,
			     chain_missing_backing_named, chain_loops_detected,
			     chain_depth_capped, chain_untrusted_refused,
			     chain_json_backing_refused, create_with_backing));
	return tu_run_suite(s);
}
