/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The last formats qemu-img probes that mimg came to read (bochs, cloop)
 * are probed by qemu-img's rules: their smallest headers open as those
 * formats, headers that only look like them are raw, as are the headers
 * qemu-img itself reads as raw; a probed-raw image may not be turned
 * into any of them.
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
};

/* The smallest images of each format, of a disk of 0 bytes, as files of
 * exactly those bytes (the rest counts as zeroes, as in qemu-img):
 * bochs version 1 with 512-byte extents, cloop with 512-byte blocks and
 * its one offset (at 136) after the preamble. */
#define BOCHS_V1                                                               \
	"Bochs Virtual HD Image\0\0\0\0\0\0\0\0\0\0"                           \
	"Redolog\0\0\0\0\0\0\0\0\0"                                            \
	"Growing\0\0\0\0\0\0\0\0\0"                                            \
	"\0\0\1\0\0\2\0\0\0\0\0\0\0\0\0\0\0\2\0"
#define CLOOP_PREAMBLE                                                         \
	"#!/bin/sh\n#V2.0 Format\n"                                            \
	"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
static char cloop[144] = CLOOP_PREAMBLE;
static const struct header headers[] = {
	{"a.bochs", "bochs", BOCHS_V1, sizeof(BOCHS_V1) - 1},
	{"a.cloop", "cloop", cloop, sizeof(cloop)},
};

static void make_cloop_header(void)
{
	memcpy(cloop + 128, "\0\0\2\0\0\0\0\0\0\0\0\0\0\0\0\x88", 16);
}

START_TEST(probed_as_format)
{
	struct mimg *img;
	const struct header *h = &headers[_i];
	make_cloop_header();
	tu_write_file(h->file, h->bytes, h->len, 0);
	ck_assert_msg(mimg_open(&img, h->file, NULL, 0) == 0, "%s: %s", h->file,
		      mimg_errmsg());
	ck_assert_str_eq(mimg_format(img), h->format);
	ck_assert_uint_eq(mimg_size(img), 0);
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

/* Each of the N files NAMES opens as raw. */
static void probed_raw(const char *const *names, size_t n)
{
	struct mimg *img;
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(mimg_open(&img, names[i], NULL, 0) == 0, "%s: %s",
			      names[i], mimg_errmsg());
		ck_assert_str_eq(mimg_format(img), "raw");
		ck_assert_int_eq(mimg_close(img), 0);
	}
}

START_TEST(lookalikes_are_raw)
{
	uint8_t h[512] = {0};
	memcpy(h, BOCHS_V1, sizeof(BOCHS_V1) - 1);
	/* an unknown version, or a type not NUL-terminated */
	h[66] = 3;
	tu_write_file("b.bochs", h, sizeof(h), 0);
	h[66] = 2;
	h[39] = 'x';
	tu_write_file("c.bochs", h, sizeof(h), 0);
	/* only the whole preamble counts, not a prefix of it */
	tu_write_file("b.cloop", CLOOP_PREAMBLE, 20, 0);
	const char *names[] = {"b.bochs", "c.bochs", "b.cloop"};
	probed_raw(names, TU_NELEM(names));
}
END_TEST

START_TEST(raw_by_qemu_rules)
{
	/* LUKS2, an empty .dmg, a wrong parallels version, qcow version 0 */
	tu_write_file("luks2.img", "LUKS\xba\xbe\0\2", 8, 0);
	tu_make_sparse("empty.dmg", 0);
	tu_write_file("p3.img", "WithoutFreeSpace\3\0\0\0", 20, 0);
	tu_write_file("q0.img", "QFI\xfb\0\0\0\0", 8, 0);
	const char *names[] = {"luks2.img", "empty.dmg", "p3.img", "q0.img"};
	probed_raw(names, TU_NELEM(names));
}
END_TEST

START_TEST(probed_raw_refuses_their_headers)
{
	struct mimg *img;
	uint8_t sector[512] = {0};
	make_cloop_header();
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
			     TU_TESTS(lookalikes_are_raw, raw_by_qemu_rules,
				      probed_raw_refuses_their_headers),
			     TU_LOOPS({probed_as_format, TU_NELEM(headers)}));
}
