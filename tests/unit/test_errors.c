/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Error reporting: negative errno returns, messages that name the file
 * and value, and the thread-local message behind mimg_errmsg().
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "mimg.h"
#include "testutil.h"

static void assert_msg_has(const char *needle)
{
	ck_assert_msg(strstr(mimg_errmsg(), needle) != NULL,
		      "message '%s' does not contain '%s'", mimg_errmsg(),
		      needle);
}

START_TEST(missing_file_named)
{
	struct mimg *img = (struct mimg *)1;
	ck_assert_int_eq(mimg_open(&img, "no-such-disk.img", NULL, 0), -ENOENT);
	ck_assert_ptr_null(img);
	assert_msg_has("no-such-disk.img");
	assert_msg_has(strerror(ENOENT));
	ck_assert_int_eq(mimg_open(&img, "gone.img", "raw", MIMG_OPEN_RDWR),
			 -ENOENT);
	assert_msg_has("gone.img");
}
END_TEST

START_TEST(directory_refused)
{
	struct mimg *img;
	ck_assert_int_eq(mkdir("adir", 0755), 0);
	ck_assert_int_eq(mimg_open(&img, "adir", NULL, 0), -EISDIR);
	assert_msg_has("adir");
}
END_TEST

START_TEST(unknown_format_named)
{
	struct mimg *img;
	tu_make_sparse("a.img", 4096);
	ck_assert_int_eq(mimg_open(&img, "a.img", "qcow9", 0), -EINVAL);
	assert_msg_has("qcow9");
	ck_assert_int_eq(mimg_create("b.img", "qcow9", 4096, NULL, 0), -EINVAL);
	assert_msg_has("qcow9");
	ck_assert_int_eq(mimg_create("b.img", NULL, 4096, NULL, 0), -EINVAL);
	assert_msg_has("b.img");
}
END_TEST

START_TEST(permission_denied_named)
{
	struct mimg *img;
	if (geteuid() == 0) {
		printf("permission_denied_named: running as root, "
		       "permissions are not enforced; skipped\n");
		return;
	}
	tu_make_sparse("ro.img", 4096);
	ck_assert_int_eq(chmod("ro.img", 0444), 0);
	ck_assert_int_eq(mimg_open(&img, "ro.img", "raw", MIMG_OPEN_RDWR),
			 -EACCES);
	assert_msg_has("ro.img");
}
END_TEST

START_TEST(io_errors_named)
{
	struct mimg *img;
	char buf[512] = {0};
	tu_make_sparse("a.img", 4096);
	ck_assert_int_eq(mimg_open(&img, "a.img", "raw", 0), 0);
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), 0, 0), -EROFS);
	assert_msg_has("a.img");
	ck_assert_int_eq(mimg_truncate(img, 8192, MIMG_PREALLOC_OFF), -EROFS);
	assert_msg_has("a.img");
	ck_assert_int_eq(mimg_close(img), 0);

	ck_assert_int_eq(mimg_open(&img, "a.img", "raw", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, buf, sizeof(buf), 4000, 0), -ENOSPC);
	assert_msg_has("a.img");
	assert_msg_has("4000");
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(successful_open_starts_clean)
{
	struct mimg *img;
	tu_make_sparse("a.img", 4096);
	ck_assert_int_lt(mimg_open(&img, "missing.img", NULL, 0), 0);
	assert_msg_has("missing.img");
	/* a successful open starts from a clean slate */
	ck_assert_int_eq(mimg_open(&img, "a.img", NULL, 0), 0);
	ck_assert_str_eq(mimg_errmsg(), "no error");
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(internal_helpers)
{
	ck_assert_int_eq(mimg_err(-EINVAL, "%s: field %s is %d", "x.img",
				  "l1_size", 7),
			 -EINVAL);
	ck_assert_str_eq(mimg_errmsg(), "x.img: field l1_size is 7");
	ck_assert_int_eq(mimg_err_prefix(-EINVAL, "while opening %s", "y"),
			 -EINVAL);
	ck_assert_str_eq(mimg_errmsg(),
			 "while opening y: x.img: field l1_size is 7");
	mimg_err_clear();
	ck_assert_str_eq(mimg_errmsg(), "no error");
	/* prefix with no message falls back to strerror */
	ck_assert_int_eq(mimg_err_prefix(-ENOSPC, "ctx"), -ENOSPC);
	char want[256];
	snprintf(want, sizeof(want), "ctx: %s", strerror(ENOSPC));
	ck_assert_str_eq(mimg_errmsg(), want);
	ck_assert_int_eq(mimg_err_errno(-EIO, "read %s", "z.img"), -EIO);
	snprintf(want, sizeof(want), "read z.img: %s", strerror(EIO));
	ck_assert_str_eq(mimg_errmsg(), want);
}
END_TEST

START_TEST(long_messages_truncated)
{
	char name[4000];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	ck_assert_int_eq(mimg_err(-EINVAL, "%s", name), -EINVAL);
	ck_assert_uint_gt(strlen(mimg_errmsg()), 100);
	ck_assert_uint_lt(strlen(mimg_errmsg()), sizeof(name) - 1);
	/* prefixing a full message stays bounded too */
	ck_assert_int_eq(mimg_err_prefix(-EINVAL, "%s", name), -EINVAL);
	ck_assert_uint_lt(strlen(mimg_errmsg()), sizeof(name) - 1);
}
END_TEST

/* Two threads fail differently at the same time; each must see its own
 * message afterwards. */
struct tl_arg {
	const char *path;
	pthread_barrier_t *barrier;
	int rc;
	char msg[1024];
	char before[64];
};

static void *tl_thread(void *p)
{
	struct tl_arg *a = p;
	struct mimg *img;
	snprintf(a->before, sizeof(a->before), "%s", mimg_errmsg());
	pthread_barrier_wait(a->barrier);
	for (int i = 0; i < 200; i++) {
		a->rc = mimg_open(&img, a->path, NULL, 0);
		if (a->rc == 0 || !strstr(mimg_errmsg(), a->path))
			break;
	}
	pthread_barrier_wait(a->barrier); /* both have failed */
	snprintf(a->msg, sizeof(a->msg), "%s", mimg_errmsg());
	return NULL;
}

START_TEST(message_is_thread_local)
{
	pthread_barrier_t barrier;
	pthread_t t1, t2;
	struct tl_arg a1 = {.path = "first-missing.img", .barrier = &barrier};
	struct tl_arg a2 = {.path = "second-missing.img", .barrier = &barrier};

	/* the main thread's message must survive the others' failures */
	mimg_err(-EIO, "main thread message");
	pthread_barrier_init(&barrier, NULL, 2);
	ck_assert_int_eq(pthread_create(&t1, NULL, tl_thread, &a1), 0);
	ck_assert_int_eq(pthread_create(&t2, NULL, tl_thread, &a2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	pthread_barrier_destroy(&barrier);

	ck_assert_str_eq(a1.before, "no error");
	ck_assert_str_eq(a2.before, "no error");
	ck_assert_int_eq(a1.rc, -ENOENT);
	ck_assert_int_eq(a2.rc, -ENOENT);
	ck_assert_ptr_nonnull(strstr(a1.msg, "first-missing.img"));
	ck_assert_ptr_null(strstr(a1.msg, "second"));
	ck_assert_ptr_nonnull(strstr(a2.msg, "second-missing.img"));
	ck_assert_ptr_null(strstr(a2.msg, "first"));
	ck_assert_str_eq(mimg_errmsg(), "main thread message");
}
END_TEST

int main(void)
{
	return tu_main("errors", "errors",
		       TU_TESTS(missing_file_named, directory_refused,
				unknown_format_named, permission_denied_named,
				io_errors_named, successful_open_starts_clean,
				internal_helpers, long_messages_truncated,
				message_is_thread_local));
}
