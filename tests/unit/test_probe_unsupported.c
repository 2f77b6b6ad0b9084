/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Formats qemu-img probes but mimg has no driver for are refused by name,
 * never read as raw, and a probed-raw image may not be turned into one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"

struct header {
	const char *file, *format;
	const char *bytes;
	size_t len;
	size_t off;
};

/* The smallest headers that probe as each format, as files of exactly
 * those bytes (the rest counts as zeroes, as in qemu-img). */
#define CLOOP_PREAMBLE                                                         \
	"#!/bin/sh\n#V2.0 Format\n"                                            \
	"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
static const struct header headers[] = {
	{"a.cloop", "cloop", CLOOP_PREAMBLE, sizeof(CLOOP_PREAMBLE) - 1, 0},
};

START_TEST(refused_by_name)
{
	struct mimg *img;
	const struct header *h = &headers[_i];
	tu_write_file(h->file, h->bytes, h->len, h->off);
	ck_assert_int_eq(mimg_open(&img, h->file, NULL, 0), -ENOTSUP);
	char want[128];
	snprintf(want, sizeof(want),
		 "image is in %s format, which is not "
		 "supported",
		 h->format);
	ck_assert_msg(strstr(mimg_errmsg(), want), "%s: %s", h->file,
		      mimg_errmsg());
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), h->file));
	/* the caller may still ask for the bytes themselves */
	ck_assert_int_eq(mimg_open(&img, h->file, "raw", 0), 0);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(bochs_and_cloop)
{
	struct mimg *img;
	uint8_t h[512] = {0};
	memcpy(h, "Bochs Virtual HD Image", 22);
	memcpy(h + 32, "Redolog", 7);
	memcpy(h + 48, "Growing", 7);
	h[66] = 1; /* version 0x00010000 */
	tu_write_file("a.bochs", h, sizeof(h), 0);
	ck_assert_int_eq(mimg_open(&img, "a.bochs", NULL, 0), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "bochs format"));
	/* an unknown version, or a type not NUL-terminated, is raw */
	h[66] = 3;
	tu_write_file("b.bochs", h, sizeof(h), 0);
	ck_assert_int_eq(mimg_open(&img, "b.bochs", NULL, 0), 0);
	ck_assert_str_eq(mimg_format(img), "raw");
	ck_assert_int_eq(mimg_close(img), 0);
	h[66] = 2;
	h[39] = 'x';
	tu_write_file("c.bochs", h, sizeof(h), 0);
	ck_assert_int_eq(mimg_open(&img, "c.bochs", NULL, 0), 0);
	ck_assert_str_eq(mimg_format(img), "raw");
	ck_assert_int_eq(mimg_close(img), 0);

	static const char pre[] = CLOOP_PREAMBLE;
	tu_write_file("a.cloop", pre, sizeof(pre) - 1, 0);
	ck_assert_int_eq(mimg_open(&img, "a.cloop", NULL, 0), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "cloop format"));
	/* only the whole preamble counts, not a prefix of it */
	tu_write_file("b.cloop", pre, 20, 0);
	ck_assert_int_eq(mimg_open(&img, "b.cloop", NULL, 0), 0);
	ck_assert_str_eq(mimg_format(img), "raw");
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(raw_by_qemu_rules)
{
	struct mimg *img;
	/* LUKS2, an empty .dmg, a wrong parallels version, qcow version 0 */
	tu_write_file("luks2.img", "LUKS\xba\xbe\0\2", 8, 0);
	tu_make_sparse("empty.dmg", 0);
	tu_write_file("p3.img", "WithoutFreeSpace\3\0\0\0", 20, 0);
	tu_write_file("q0.img", "QFI\xfb\0\0\0\0", 8, 0);
	const char *names[] = {"luks2.img", "empty.dmg", "p3.img", "q0.img"};
	for (int i = 0; i < 4; i++) {
		ck_assert_msg(mimg_open(&img, names[i], NULL, 0) == 0, "%s: %s",
			      names[i], mimg_errmsg());
		ck_assert_str_eq(mimg_format(img), "raw");
		ck_assert_int_eq(mimg_close(img), 0);
	}
}
END_TEST

START_TEST(probed_raw_refuses_unsupported_header)
{
	struct mimg *img;
	uint8_t sector[512] = {0};
	tu_make_sparse("guest.img", 1 << 20);
	ck_assert_int_eq(mimg_open(&img, "guest.img", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_str_eq(mimg_format(img), "raw");
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		memcpy(sector, headers[i].bytes, headers[i].len);
		ck_assert_int_eq(mimg_pwrite(img, sector, 512, 0, 0), -EPERM);
		ck_assert_ptr_nonnull(strstr(mimg_errmsg(), headers[i].format));
		memset(sector, 0, sizeof(sector));
	}
	uint8_t got[512];
	ck_assert_int_eq(mimg_pread(img, got, 512, 0, 0), 512);
	ck_assert_mem_eq(got, sector, 512);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

int main(void)
{
	return tu_main_loops("probe_unsupported", "probe_unsupported",
			     TU_TESTS(bochs_and_cloop, raw_by_qemu_rules,
				      probed_raw_refuses_unsupported_header),
			     TU_LOOPS({refused_by_name, TU_NELEM(headers)}));
}
