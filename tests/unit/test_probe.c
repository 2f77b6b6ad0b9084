/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Format probing: raw is the weakest guess, an explicit format always
 * wins, and an image only guessed as raw refuses writes that would make
 * its first sector probe as another format (qemu's guard against a guest
 * turning its disk into a qcow2 with a backing file of its choosing).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"

/* A minimal qcow2 v3 header start: magic "QFI\xfb" and version 3. */
static const uint8_t qcow2_magic_v3[8] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};

START_TEST(formats_list)
{
	const char *const *f = mimg_formats();
	ck_assert_ptr_nonnull(f);
	ck_assert(tu_have_format("raw"));
	size_t n = 0;
	for (; f[n]; n++)
		ck_assert_str_ne(f[n], "");
	ck_assert_uint_ge(n, 1);
	/* The string and the number name the same version. */
	unsigned maj, min, pat;
	ck_assert_int_eq(sscanf(mimg_version(), "%u.%u.%u", &maj, &min, &pat),
			 3);
	ck_assert_int_eq(mimg_version_number(),
			 (int)(maj * 10000 + min * 100 + pat));
}
END_TEST

START_TEST(anything_else_is_raw)
{
	struct mimg *img;
	uint8_t buf[8192];
	/* text, zeroes, random bytes, an empty file, a tiny file */
	memset(buf, 0, sizeof(buf));
	snprintf((char *)buf, sizeof(buf), "hello, this is a boot sector\n");
	tu_write_file("text.img", buf, sizeof(buf), 0);
	tu_make_sparse("zero.img", 1 << 20);
	tu_fill_random(buf, sizeof(buf), 1);
	tu_write_file("random.img", buf, sizeof(buf), 0);
	tu_make_sparse("empty.img", 0);
	tu_write_file("tiny.img", "QFI", 3, 0);
	const char *names[] = {"text.img", "zero.img", "random.img",
			       "empty.img", "tiny.img"};
	/* raw sizes are whole sectors, as qemu reports them */
	const uint64_t sizes[] = {8192, 1 << 20, 8192, 0, 512};
	for (int i = 0; i < 5; i++) {
		ck_assert_msg(mimg_open(&img, names[i], NULL, 0) == 0, "%s: %s",
			      names[i], mimg_errmsg());
		ck_assert_str_eq(mimg_format(img), "raw");
		ck_assert_uint_eq(mimg_size(img), sizes[i]);
		ck_assert_str_eq(mimg_filename(img), names[i]);
		ck_assert(mimg_is_read_only(img));
		ck_assert_ptr_null(mimg_backing(img));
		ck_assert_int_eq(mimg_close(img), 0);
	}
}
END_TEST

START_TEST(explicit_format_wins)
{
	struct mimg *img;
	uint8_t buf[4096] = {0};
	memcpy(buf, qcow2_magic_v3, sizeof(qcow2_magic_v3));
	tu_write_file("looks-like-qcow2.img", buf, sizeof(buf), 0);
	ck_assert_int_eq(mimg_open(&img, "looks-like-qcow2.img", "raw", 0), 0);
	ck_assert_str_eq(mimg_format(img), "raw");
	ck_assert_uint_eq(mimg_size(img), 4096);
	uint8_t got[8];
	ck_assert_int_eq(mimg_pread(img, got, 8, 0, 0), 8);
	ck_assert_mem_eq(got, qcow2_magic_v3, 8);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, "looks-like-qcow2.img", "nope", 0),
			 -EINVAL);
}
END_TEST

START_TEST(qcow2_made_by_qemu_probes_as_qcow2)
{
	struct mimg *img;
	if (!tu_have_format("qcow2") || !tu_have_program("qemu-img")) {
		printf("qcow2 probing: no qcow2 driver or qemu-img; skipped\n");
		return;
	}
	tu_sh("qemu-img create -q -f qcow2 q.qcow2 1M");
	ck_assert_int_eq(mimg_open(&img, "q.qcow2", NULL, 0), 0);
	ck_assert_str_eq(mimg_format(img), "qcow2");
	ck_assert_uint_eq(mimg_size(img), 1 << 20);
	ck_assert_int_eq(mimg_close(img), 0);
	/* and explicitly as raw it is the container file itself */
	ck_assert_int_eq(mimg_open(&img, "q.qcow2", "raw", 0), 0);
	ck_assert_str_eq(mimg_format(img), "raw");
	ck_assert_uint_lt(mimg_size(img), 1 << 20);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(probed_raw_refuses_format_header)
{
	struct mimg *img;
	uint8_t sector[512];
	TU_SKIP_WITHOUT_FORMAT("qcow2");
	tu_make_sparse("guest.img", 1 << 20);
	ck_assert_int_eq(mimg_open(&img, "guest.img", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_str_eq(mimg_format(img), "raw");

	/* a whole-sector write carrying a qcow2 header */
	memset(sector, 0, sizeof(sector));
	memcpy(sector, qcow2_magic_v3, sizeof(qcow2_magic_v3));
	ck_assert_int_eq(mimg_pwrite(img, sector, sizeof(sector), 0, 0),
			 -EPERM);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "guest.img"));
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "qcow2"));

	/* the header assembled from two writes: the version first (harmless
	 * alone), then the magic through a multi-iovec write */
	ck_assert_int_eq(mimg_pwrite(img, qcow2_magic_v3 + 4, 4, 4, 0), 4);
	struct iovec iov[2] = {
		{.iov_base = (void *)qcow2_magic_v3, .iov_len = 2},
		{.iov_base = (void *)(qcow2_magic_v3 + 2), .iov_len = 2},
	};
	ck_assert_int_eq(mimg_pwritev(img, iov, 2, 0, 0), -EPERM);

	/* nothing of the refused writes reached the file */
	uint8_t got[8];
	ck_assert_int_eq(mimg_pread(img, got, 8, 0, 0), 8);
	const uint8_t want[8] = {0, 0, 0, 0, 0, 0, 0, 3};
	ck_assert_mem_eq(got, want, 8);

	/* the same bytes beyond sector 0 are just data */
	ck_assert_int_eq(mimg_pwrite(img, sector, sizeof(sector), 512, 0), 512);
	ck_assert_int_eq(mimg_pwrite(img, sector, sizeof(sector), 4096, 0),
			 512);
	/* and ordinary data in sector 0 is fine */
	memset(sector, 0xAB, sizeof(sector));
	ck_assert_int_eq(mimg_pwrite(img, sector, sizeof(sector), 0, 0), 512);
	/* zeroing sector 0 cannot create a header */
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 0, 512, 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);

	/* with the format given explicitly the write is the caller's call */
	ck_assert_int_eq(mimg_open(&img, "guest.img", "raw", MIMG_OPEN_RDWR),
			 0);
	memset(sector, 0, sizeof(sector));
	memcpy(sector, qcow2_magic_v3, sizeof(qcow2_magic_v3));
	ck_assert_int_eq(mimg_pwrite(img, sector, sizeof(sector), 0, 0), 512);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(probed_raw_refuses_header_by_discard)
{
	struct mimg *img;
	TU_SKIP_WITHOUT_FORMAT("qcow2");
	/* Any qcow2 version from 2 up probes as qcow2 (so that a future
	 * version is refused by name, as qemu does): such a header is
	 * refused outright, and since zeroing only lowers the version,
	 * a discard over a version-0 header stays harmless and allowed. */
	const uint8_t future[8] = {'Q', 'F', 'I', 0xfb, 1, 0, 0, 3};
	const uint8_t v0[8] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 0};
	tu_make_sparse("guest.img", 1 << 20);
	ck_assert_int_eq(mimg_open(&img, "guest.img", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, future, 8, 0, 0), -EPERM);
	ck_assert_int_eq(mimg_pwrite(img, v0, 8, 0, 0), 8);
	ck_assert_int_eq(mimg_discard(img, 4, 1, 0), 0);
	ck_assert_int_eq(mimg_pwrite_zeroes(img, 4, 4, MIMG_ZERO_MAY_UNMAP), 0);
	uint8_t got[8];
	ck_assert_int_eq(mimg_pread(img, got, 8, 0, 0), 8);
	ck_assert_mem_eq(got, v0, 8);
	/* discarding all of it is fine */
	ck_assert_int_eq(mimg_discard(img, 0, 4096, 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);

	/* and a file with that future header is refused, naming it */
	tu_make_sparse("future.img", 1 << 20);
	tu_write_file("future.img", future, 8, 0);
	ck_assert_int_lt(mimg_open(&img, "future.img", NULL, 0), 0);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "version 16777219"));
}
END_TEST

/* Two threads write the two halves of a qcow2 header into sector 0 at
 * the same moment: each half is harmless alone, so at most one may
 * succeed. */
struct half {
	struct mimg *img;
	pthread_barrier_t *go;
	const uint8_t *bytes;
	uint64_t off;
	ssize_t r;
};

static void *write_half(void *p)
{
	struct half *h = p;
	pthread_barrier_wait(h->go);
	h->r = mimg_pwrite(h->img, h->bytes, 4, h->off, 0);
	return NULL;
}

START_TEST(probed_raw_concurrent_halves)
{
	struct mimg *img;
	TU_SKIP_WITHOUT_FORMAT("qcow2");
	tu_make_sparse("guest.img", 1 << 20);
	ck_assert_int_eq(mimg_open(&img, "guest.img", NULL, MIMG_OPEN_RDWR), 0);
	for (int round = 0; round < 2000; round++) {
		pthread_barrier_t go;
		pthread_t t1, t2;
		struct half a = {img, &go, qcow2_magic_v3, 0, 0};
		struct half b = {img, &go, qcow2_magic_v3 + 4, 4, 0};
		ck_assert_int_eq(mimg_pwrite_zeroes(img, 0, 512, 0), 0);
		pthread_barrier_init(&go, NULL, 2);
		pthread_create(&t1, NULL, write_half, &a);
		pthread_create(&t2, NULL, write_half, &b);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		pthread_barrier_destroy(&go);
		ck_assert_msg(a.r < 0 || b.r < 0,
			      "round %d: both halves of a "
			      "qcow2 header were written",
			      round);
		ck_assert(a.r == 4 || b.r == 4);
	}
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(probed_raw_refuses_vmdk_magic)
{
	struct mimg *img;
	TU_SKIP_WITHOUT_FORMAT("vmdk");
	tu_make_sparse("guest.img", 65536);
	ck_assert_int_eq(mimg_open(&img, "guest.img", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, "KDMV", 4, 0, 0), -EPERM);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

int main(void)
{
	return tu_main("probe", "probe",
		       TU_TESTS(formats_list, anything_else_is_raw,
				explicit_format_wins,
				qcow2_made_by_qemu_probes_as_qcow2,
				probed_raw_refuses_format_header,
				probed_raw_refuses_header_by_discard,
				probed_raw_concurrent_halves,
				probed_raw_refuses_vmdk_magic));
}
