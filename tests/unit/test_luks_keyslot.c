/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Key slot changes (what amend's encrypt.* options do) on raw LUKS and
 * LUKS qcow2 images: adding a slot with the open key or an old
 * passphrase, erasing by slot or by passphrase, the refusals (last slot,
 * active slot, all slots used, wrong old passphrase, read-only), and the
 * data staying readable with every passphrase that should open it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/luks1.h"
#include "mimg.h"
#include "testutil.h"

#define SIZE (1u << 20)

static const char *const fmts[] = {"luks", "qcow2"};

static const char *make(int which)
{
	const char *path = which ? "k.qcow2" : "k.luks";
	struct mimg_opt lo[] = {{"key-secret", "s"}, {"iter-time", "5"}};
	struct mimg_opt qo[] = {{"encrypt.format", "luks"},
				{"encrypt.key-secret", "s"},
				{"encrypt.iter-time", "5"}};
	struct mimg_secret s = tu_secret("first");
	struct mimg *img;
	uint8_t buf[4096];
	ck_assert_int_eq(mimg_create_secret(path, fmts[which], SIZE,
					    which ? qo : lo, which ? 3 : 2, &s),
			 0);
	ck_assert_int_eq(mimg_open_secret(&img, path, NULL, MIMG_OPEN_RDWR, &s),
			 0);
	memset(buf, 0xa5, sizeof(buf));
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), 8192, 0), 4096);
	ck_assert_int_eq(mimg_close(img), 0);
	return path;
}

static bool all_a5(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0xa5)
			return false;
	return true;
}

/* Whether PASS opens PATH, and then reads the data written by make(). */
static bool opens(const char *path, const char *pass)
{
	struct mimg_secret s = tu_secret(pass);
	struct mimg *img;
	uint8_t buf[4096];
	int r = mimg_open_secret(&img, path, NULL, 0, &s);
	if (r < 0) {
		ck_assert_int_eq(r, -EACCES);
		return false;
	}
	ck_assert_int_eq(mimg_pread(img, buf, sizeof(buf), 8192, 0), 4096);
	ck_assert(all_a5(buf, sizeof(buf)));
	mimg_close(img);
	return true;
}

static int change(struct mimg *img, int which,
		  const struct luks1_keyslot_change *c, int *slot)
{
	return which ? qcow2_keyslot_change(img, c, slot)
		     : luks_keyslot_change(img, c, slot);
}

static struct mimg *open_rw(const char *path, const char *pass)
{
	struct mimg_secret s = tu_secret(pass);
	struct mimg *img;
	ck_assert_int_eq(mimg_open_secret(&img, path, NULL, MIMG_OPEN_RDWR, &s),
			 0);
	return img;
}

START_TEST(add_and_erase)
{
	int which = _i, slot = -1;
	const char *path = make(which);
	struct mimg *img = open_rw(path, "first");
	struct luks1_keyslot_change add = {.activate = true,
					   .slot = -1,
					   .new_pass = "second",
					   .new_len = 6,
					   .iter_time_ms = 5};

	/* with the key the image is open with: the first free slot */
	ck_assert_int_eq(change(img, which, &add, &slot), 0);
	ck_assert_int_eq(slot, 1);
	/* with an old passphrase, into a named slot */
	add.old_pass = "second";
	add.old_len = 6;
	add.new_pass = "third";
	add.new_len = 5;
	add.slot = 5;
	ck_assert_int_eq(change(img, which, &add, &slot), 0);
	ck_assert_int_eq(slot, 5);
	/* refusals: an active slot, a wrong old passphrase */
	ck_assert_int_eq(change(img, which, &add, NULL), -EBUSY);
	add.slot = -1;
	add.old_pass = "wrong";
	ck_assert_int_eq(change(img, which, &add, NULL), -EACCES);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert(opens(path, "first"));
	ck_assert(opens(path, "second"));
	ck_assert(opens(path, "third"));

	/* erase by passphrase, then by slot */
	img = open_rw(path, "third");
	struct luks1_keyslot_change del = {.activate = false,
					   .slot = -1,
					   .old_pass = "first",
					   .old_len = 5};
	ck_assert_int_eq(change(img, which, &del, NULL), 0);
	ck_assert_int_eq(change(img, which, &del, NULL), -EACCES);
	del.old_pass = NULL;
	del.slot = 1;
	ck_assert_int_eq(change(img, which, &del, NULL), 0);
	ck_assert_int_eq(change(img, which, &del, NULL), -EINVAL);
	/* the last active slot only with force */
	del.slot = 5;
	ck_assert_int_eq(change(img, which, &del, NULL), -EBUSY);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert(!opens(path, "first"));
	ck_assert(!opens(path, "second"));
	ck_assert(opens(path, "third"));

	/* every slot used */
	img = open_rw(path, "third");
	add.old_pass = NULL;
	add.new_pass = "more";
	add.new_len = 4;
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(change(img, which, &add, NULL), 0);
	ck_assert_int_eq(change(img, which, &add, NULL), -ENOSPC);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert(opens(path, "more"));

	/* read-only images are not changed */
	struct mimg_secret s = tu_secret("third");
	ck_assert_int_eq(mimg_open_secret(&img, path, NULL, 0, &s), 0);
	ck_assert_int_eq(change(img, which, &add, NULL), -EROFS);
	mimg_close(img);
	/* qcow2's check still finds the header's clusters referenced */
	if (which) {
		ck_assert_int_eq(mimg_open_secret(&img, path, NULL, 0, &s), 0);
		tu_assert_check(img, 0, 0, 0, NULL);
		mimg_close(img);
	}
}
END_TEST

/* The other side reads the changed headers: cryptsetup the raw LUKS
 * image's slots, qemu-img the LUKS qcow2 image's. */
START_TEST(oracles)
{
	struct luks1_keyslot_change add = {.activate = true,
					   .slot = -1,
					   .new_pass = "second",
					   .new_len = 6,
					   .iter_time_ms = 5};
	struct luks1_keyslot_change del = {.activate = false, .slot = 0};
	if (!tu_have_program("cryptsetup") || !tu_have_program("qemu-img"))
		return;
	for (int which = 0; which < 2; which++) {
		const char *path = make(which);
		struct mimg *img = open_rw(path, "first");
		ck_assert_int_eq(change(img, which, &add, NULL), 0);
		ck_assert_int_eq(change(img, which, &del, NULL), 0);
		ck_assert_int_eq(mimg_close(img), 0);
	}
	tu_sh("cryptsetup luksDump k.luks | grep -q '^Key Slot 1: ENABLED'");
	tu_sh("printf second | cryptsetup luksOpen --test-passphrase "
	      "--key-file=- k.luks");
	ck_assert_int_ne(tu_system("printf first | cryptsetup luksOpen "
				   "--test-passphrase --key-file=- k.luks "
				   "2>/dev/null"),
			 0);
	tu_sh("qemu-img convert --object secret,id=s,data=second --image-opts "
	      "driver=qcow2,file.filename=k.qcow2,encrypt.key-secret=s -O raw "
	      "out.raw && qemu-img check -q --object secret,id=s,data=second "
	      "--image-opts "
	      "driver=qcow2,file.filename=k.qcow2,encrypt.key-secret=s");
	ck_assert_int_ne(tu_system(
				 "qemu-img info --object secret,id=s,"
				 "data=first --image-opts driver=qcow2,"
				 "file.filename=k.qcow2,encrypt.key-secret=s "
				 "-U >/dev/null 2>&1 && qemu-img convert "
				 "--object secret,id=s,data=first --image-opts "
				 "driver=qcow2,file.filename=k.qcow2,"
				 "encrypt.key-secret=s -O raw o2.raw "
				 "2>/dev/null"),
			 0);
	uint8_t buf[4096];
	int fd = open("out.raw", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 8192), 4096);
	close(fd);
	ck_assert(all_a5(buf, sizeof(buf)));
}
END_TEST

int main(void)
{
	return tu_main_loops("luks_keyslot", "keyslot", TU_TESTS(oracles),
			     TU_LOOPS({add_and_erase, 2}));
}
