/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The host-file interface: zeroing a range reports real failures as they
 * are and asks a file system that cannot once per file; memory files read,
 * write, grow up to their limit and refuse writes when read-only; images
 * open from memory; a tar is unpacked only when opened read-only.  (The
 * compressors and hostile archives are in tests/interop/archive.sh.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/falloc.h>
#endif

#include "error.h"
#include "file-patched.h"
#include "file.h"
#include "mimg.h"
#include "testutil.h"

/* A file system played by the test: counts calls per mode and answers
 * each with ERR (0 = do it for real). */
static struct {
	int calls_punch, calls_zero, calls_other;
	int err_punch, err_zero;
} fs;

static int fake_fallocate(int fd, int mode, off_t off, off_t len)
{
	int err = 0;
#ifdef __linux__
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		fs.calls_punch++;
		err = fs.err_punch;
	} else if (mode & FALLOC_FL_ZERO_RANGE) {
		fs.calls_zero++;
		err = fs.err_zero;
	} else {
		fs.calls_other++;
	}
	if (err) {
		errno = err;
		return -1;
	}
	return fallocate(fd, mode, off, len);
#else
	(void)fd;
	(void)mode;
	(void)off;
	(void)len;
	errno = EOPNOTSUPP;
	return -1;
#endif
}

static void setup_fs(void)
{
	memset(&fs, 0, sizeof(fs));
	mimg_file_set_fallocate(fake_fallocate);
}

static void teardown_fs(void)
{
	mimg_file_set_fallocate(NULL);
}

static struct mimg_file *open_filled(const char *path)
{
	uint8_t buf[65536];
	memset(buf, 0xee, sizeof(buf));
	tu_write_file(path, buf, sizeof(buf), 0);
	struct mimg_file *f;
	ck_assert_int_eq(mimg_file_open(&f, path, MIMG_FILE_RDWR), 0);
	return f;
}

static void assert_zero(struct mimg_file *f, uint64_t off, size_t len)
{
	uint8_t buf[65536];
	ck_assert_uint_le(len, sizeof(buf));
	ck_assert_int_eq(mimg_file_pread(f, buf, len, off), 0);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != 0) /* a passing check costs a write(2) */
			ck_abort_msg("byte %zu is %u", i, buf[i]);
}

START_TEST(zero_range_works)
{
#ifndef __linux__
	return;
#endif
	struct mimg_file *f = open_filled("a.img");
	int r = mimg_file_zero_range(f, 4096, 8192, false);
	if (r == -ENOTSUP) { /* this file system cannot: nothing to see */
		mimg_file_close(f);
		return;
	}
	ck_assert_int_eq(r, 0);
	assert_zero(f, 4096, 8192);
	ck_assert_int_eq(mimg_file_zero_range(f, 32768, 4096, true), 0);
	assert_zero(f, 32768, 4096);
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 0, true), 0);
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

START_TEST(zero_range_reports_real_errors)
{
#ifndef __linux__
	return;
#endif
	struct mimg_file *f = open_filled("a.img");
	fs.err_zero = EIO;
	mimg_err_clear();
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 4096, false), -EIO);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "a.img"));
	fs.err_zero = ENOSPC;
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 4096, false), -ENOSPC);
	fs.err_punch = EIO;
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 4096, true), -EIO);
	ck_assert_int_eq(mimg_file_punch_hole(f, 0, 4096), -EIO);
	/* failures are not remembered: the next call asks again */
	fs.err_zero = fs.err_punch = 0;
	int zero_before = fs.calls_zero;
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 4096, false), 0);
	ck_assert_int_eq(fs.calls_zero, zero_before + 1);
	assert_zero(f, 0, 4096);
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

START_TEST(zero_range_unsupported_is_remembered)
{
#ifndef __linux__
	return;
#endif
	struct mimg_file *f = open_filled("a.img");
	struct mimg_file *g = open_filled("b.img");
	fs.err_zero = EOPNOTSUPP;
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 4096, false), -ENOTSUP);
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 4096, false), -ENOTSUP);
	ck_assert_int_eq(fs.calls_zero, 1);
	ck_assert(!(mimg_file_caps(f) & MIMG_FILE_CAN_ZERO));
	/* punching still works and is still tried first */
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 4096, true), 0);
	ck_assert_int_eq(fs.calls_punch, 1);
	assert_zero(f, 0, 4096);
	/* the punch refusal is remembered too, for both entry points */
	fs.err_punch = ENOSYS;
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 4096, true), -ENOTSUP);
	ck_assert_int_eq(mimg_file_punch_hole(f, 0, 4096), -ENOTSUP);
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 4096, true), -ENOTSUP);
	ck_assert_int_eq(fs.calls_punch, 2);
	ck_assert_int_eq(fs.calls_zero, 1);
	/* per file: another file asks for itself */
	ck_assert_int_eq(mimg_file_zero_range(g, 0, 4096, false), -ENOTSUP);
	ck_assert_int_eq(fs.calls_zero, 2);
	ck_assert_int_eq(mimg_file_close(g), 0);
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

/* The patched view: later patches win, zero patches clear, the size
 * grows to the minimum, the base is never written and closes with it. */
START_TEST(patched_view_reads_patches_in_order)
{
	uint8_t base[64], buf[80], want[80];
	struct mimg_file *mem, *f;
	uint64_t size;
	memset(base, 'b', sizeof(base));
	ck_assert_int_eq(mimg_file_open_memory(&mem, base, sizeof(base), 64,
					       "base", 0),
			 0);
	ck_assert_int_eq(mimg__patched_open(mem, &f), 0);
	ck_assert_int_eq(mimg__patched_add(f, 10, 8, "11111111"), 0);
	ck_assert_int_eq(mimg__patched_add(f, 14, 8, "22222222"), 0);
	ck_assert_int_eq(mimg__patched_add(f, 30, 40, NULL), 0);
	ck_assert_int_eq(mimg__patched_add(f, 32, 2, "33"), 0);
	ck_assert_int_eq(mimg__patched_add(f, 0, 0, NULL), 0);
	ck_assert_int_eq(mimg__patched_add(f, UINT64_MAX, 2, NULL), -EINVAL);
	ck_assert_int_eq(mimg_file_size(f, &size), 0);
	ck_assert_uint_eq(size, 64);
	mimg__patched_min_size(f, 80);
	ck_assert_int_eq(mimg_file_size(f, &size), 0);
	ck_assert_uint_eq(size, 80);
	memset(want, 'b', 64);
	memset(want + 64, 0, 16);
	memcpy(want + 10, "1111", 4);
	memcpy(want + 14, "22222222", 8);
	memset(want + 30, 0, 40);
	memcpy(want + 32, "33", 2);
	ck_assert_int_eq(mimg_file_pread(f, buf, 80, 0), 0);
	ck_assert_int_eq(memcmp(buf, want, 80), 0);
	/* a read in the middle of a patch, and one outside them all */
	ck_assert_int_eq(mimg_file_pread(f, buf, 3, 15), 0);
	ck_assert_int_eq(memcmp(buf, "222", 3), 0);
	ck_assert_int_eq(mimg_file_pread(f, buf, 5, 2), 0);
	ck_assert_int_eq(memcmp(buf, "bbbbb", 5), 0);
	ck_assert_int_eq(mimg_file_pwrite(f, "x", 1, 0), -EBADF);
	ck_assert_int_eq(mimg_file_pread(mem, buf, 64, 0), 0);
	ck_assert_int_eq(memcmp(buf, base, 64), 0);
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

/* Committing writes the patches into the base in order, grows it to
 * the minimum size but not for zeroes past its end, and hands it back. */
START_TEST(patched_view_commits_into_its_base)
{
	uint8_t base[64], buf[100];
	struct mimg_file *mem, *f, *back;
	uint64_t size;
	memset(base, 'b', sizeof(base));
	ck_assert_int_eq(mimg_file_open_memory(&mem, base, sizeof(base), 4096,
					       "base", MIMG_FILE_RDWR),
			 0);
	ck_assert_int_eq(mimg__patched_open(mem, &f), 0);
	ck_assert_int_eq(mimg__patched_add(f, 4, 4, "1111"), 0);
	ck_assert_int_eq(mimg__patched_add(f, 6, 4, NULL), 0);
	ck_assert_int_eq(mimg__patched_add(f, 60, 1000, NULL), 0);
	mimg__patched_min_size(f, 100);
	ck_assert_int_eq(mimg__patched_commit(f, &back), 0);
	ck_assert_ptr_eq(back, mem);
	ck_assert_int_eq(mimg_file_size(mem, &size), 0);
	ck_assert_uint_eq(size, 100);
	ck_assert_int_eq(mimg_file_pread(mem, buf, 100, 0), 0);
	ck_assert_int_eq(memcmp(buf, "bbbb11\0\0\0\0bb", 12), 0);
	for (int i = 60; i < 100; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_int_eq(mimg_file_close(mem), 0);
}
END_TEST

START_TEST(memory_file_io)
{
	static const char text[] = "hello, memory";
	struct mimg_file *f;
	uint8_t buf[64];
	uint64_t size;
	ck_assert_int_eq(mimg_file_open_memory(&f, text, sizeof(text), 64,
					       "mem", MIMG_FILE_RDWR),
			 0);
	ck_assert_int_eq(mimg_file_size(f, &size), 0);
	ck_assert_uint_eq(size, sizeof(text));
	/* reads past the end zero-fill; exact reads fail */
	memset(buf, 0xff, sizeof(buf));
	ck_assert_int_eq(mimg_file_pread(f, buf, 32, 0), 0);
	ck_assert_str_eq((char *)buf, text);
	ck_assert_uint_eq(buf[31], 0);
	ck_assert_int_eq(mimg_file_pread_exact(f, buf, 32, 0, "x"), -EIO);
	/* writes grow the file up to the limit */
	ck_assert_int_eq(mimg_file_pwrite(f, "XY", 2, 40), 0);
	ck_assert_int_eq(mimg_file_size(f, &size), 0);
	ck_assert_uint_eq(size, 42);
	ck_assert_int_eq(mimg_file_pread(f, buf, 4, 38), 0);
	ck_assert_int_eq(memcmp(buf, "\0\0XY", 4), 0);
	ck_assert_int_eq(mimg_file_pwrite(f, "Z", 1, 64), -ENOSPC);
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 5, true), 0);
	assert_zero(f, 0, 5);
	ck_assert_int_eq(mimg_file_truncate(f, 3), 0);
	ck_assert_int_eq(mimg_file_size(f, &size), 0);
	ck_assert_uint_eq(size, 3);
	ck_assert_int_eq(mimg_file_truncate(f, 100), -ENOSPC);
	ck_assert_int_eq(mimg_file_flush(f), 0);
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

START_TEST(memory_file_read_only)
{
	uint8_t data[512], buf[512];
	struct mimg_file *f;
	tu_fill_random(data, sizeof(data), 7);
	ck_assert_int_eq(mimg_file_open_memory(&f, data, sizeof(data), 1024,
					       "mem", 0),
			 0);
	memset(data, 0, sizeof(data)); /* the file holds a copy */
	ck_assert_int_eq(mimg_file_pread(f, buf, sizeof(buf), 0), 0);
	tu_fill_random(data, sizeof(data), 7);
	ck_assert_int_eq(memcmp(buf, data, sizeof(buf)), 0);
	ck_assert_int_eq(mimg_file_pwrite(f, "x", 1, 0), -EBADF);
	ck_assert_int_eq(mimg_file_truncate(f, 0), -EBADF);
	ck_assert_int_eq(mimg_file_zero_range(f, 0, 1, false), -EBADF);
	ck_assert(!(mimg_file_caps(f) & MIMG_FILE_CAN_WRITE));
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

static uint8_t *slurp(const char *path, size_t *lenp)
{
	static uint8_t buf[4 << 20];
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ssize_t n = read(fd, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_lt(n, (ssize_t)sizeof(buf));
	close(fd);
	*lenp = (size_t)n;
	return buf;
}

START_TEST(image_from_memory)
{
	uint8_t data[65536], back[65536];
	struct mimg *img;
	size_t len;
	tu_fill_random(data, sizeof(data), 3);
	ck_assert_int_eq(mimg_create("a.qcow2", "qcow2", 1 << 20, NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&img, "a.qcow2", NULL, MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_pwrite(img, data, sizeof(data), 4096, 0),
			 (ssize_t)sizeof(data));
	ck_assert_int_eq(mimg_close(img), 0);

	uint8_t *file = slurp("a.qcow2", &len);
	ck_assert_int_eq(mimg_open_memory(&img, file, len, NULL, 0), 0);
	ck_assert_str_eq(mimg_format(img), "qcow2");
	ck_assert_str_eq(mimg_filename(img), "(memory)");
	ck_assert_int_eq(mimg_pread(img, back, sizeof(back), 4096, 0),
			 (ssize_t)sizeof(back));
	ck_assert_int_eq(memcmp(back, data, sizeof(data)), 0);
	ck_assert_int_eq(mimg_pwrite(img, data, 512, 0, 0), -EROFS);
	ck_assert_int_eq(mimg_close(img), 0);

	/* writable: allocating writes grow the copy, never the caller's */
	uint8_t *copy = malloc(len);
	memcpy(copy, file, len);
	ck_assert_int_eq(mimg_open_memory(&img, copy, len, "qcow2",
					  MIMG_OPEN_RDWR),
			 0);
	ck_assert_int_eq(mimg_pwrite(img, data, sizeof(data), 512 << 10, 0),
			 (ssize_t)sizeof(data));
	ck_assert_int_eq(mimg_pread(img, back, sizeof(back), 512 << 10, 0),
			 (ssize_t)sizeof(back));
	ck_assert_int_eq(memcmp(back, data, sizeof(data)), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(memcmp(copy, file, len), 0);
	free(copy);
}
END_TEST

START_TEST(memory_image_names_no_files)
{
	struct mimg *img;
	size_t len;
	struct mimg_opt o[] = {{"backing_file", "base.qcow2"},
			       {"backing_fmt", "qcow2"}};
	ck_assert_int_eq(mimg_create("base.qcow2", "qcow2", 1 << 20, NULL, 0),
			 0);
	ck_assert_int_eq(mimg_create("top.qcow2", "qcow2", 1 << 20, o, 2), 0);
	uint8_t *file = slurp("top.qcow2", &len);
	/* the base exists next to the test's working directory: it must
	 * still not be opened */
	ck_assert_int_eq(mimg_open_memory(&img, file, len, NULL, 0), -EPERM);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "in memory"));
	ck_assert_int_eq(mimg_open_memory(&img, file, len, NULL,
					  MIMG_OPEN_NO_BACKING),
			 0);
	ck_assert_ptr_null(mimg_backing(img));
	ck_assert_int_eq(mimg_close(img), 0);

	static const char desc[] =
		"# Disk DescriptorFile\nversion=1\nCID=1\n"
		"parentCID=ffffffff\ncreateType=\"monolithicFlat\"\n"
		"RW 2048 FLAT \"base.qcow2\" 0\n";
	ck_assert_int_eq(mimg_open_memory(&img, desc, sizeof(desc) - 1, NULL,
					  MIMG_OPEN_NO_BACKING),
			 -EPERM);
	ck_assert_int_eq(mimg_open_memory(&img, NULL, 1, NULL, 0), -EINVAL);
}
END_TEST

/* A one-member ustar archive of LEN bytes of DATA named NAME at PATH. */
static size_t write_tar(const char *path, const char *name, const uint8_t *data,
			size_t len)
{
	static uint8_t tar[65536];
	size_t padded = (len + 511) / 512 * 512;
	unsigned sum = 0;
	ck_assert_uint_le(512 + padded + 1024, sizeof(tar));
	memset(tar, 0, sizeof(tar));
	snprintf((char *)tar, 100, "%s", name);
	snprintf((char *)tar + 100, 8, "%07o", 0644);
	snprintf((char *)tar + 108, 8, "%07o", 0);
	snprintf((char *)tar + 116, 8, "%07o", 0);
	snprintf((char *)tar + 124, 12, "%011zo", len);
	snprintf((char *)tar + 136, 12, "%011o", 0);
	tar[156] = '0';
	memcpy(tar + 257, "ustar", 6);
	memcpy(tar + 263, "00", 2);
	memset(tar + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += tar[i];
	snprintf((char *)tar + 148, 8, "%06o", sum);
	memcpy(tar + 512, data, len);
	size_t total = 512 + padded + 1024;
	tu_write_file(path, tar, total, 0);
	return total;
}

START_TEST(tar_is_unpacked_read_only)
{
	uint8_t data[8192], back[8192];
	struct mimg *img;
	struct mimg_value *info;
	tu_fill_random(data, sizeof(data), 11);
	memset(data + 4096, 0, 2048);
	size_t total = write_tar("a.tar", "disk.raw", data, sizeof(data));

	ck_assert_int_eq(mimg_open(&img, "a.tar", NULL, 0), 0);
	ck_assert_str_eq(mimg_format(img), "raw");
	ck_assert_uint_eq(mimg_size(img), sizeof(data));
	ck_assert_int_eq(mimg_pread(img, back, sizeof(back), 0, 0),
			 (ssize_t)sizeof(back));
	ck_assert_int_eq(memcmp(back, data, sizeof(data)), 0);
	ck_assert_int_eq(mimg_info(img, &info), 0);
	const struct mimg_value *a = mimg_value_get(info, "archive");
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(mimg_value_get(a, "tar-member")->v.s, "disk.raw");
	ck_assert_ptr_null(mimg_value_get(a, "compression"));
	ck_assert_uint_eq(mimg_value_get(a, "size")->v.u, total);
	mimg_value_free(info);
	ck_assert_int_eq(mimg_close(img), 0);

	/* as bytes: with the flag, and whenever opened for writing */
	ck_assert_int_eq(mimg_open(&img, "a.tar", "raw", MIMG_OPEN_NO_ARCHIVE),
			 0);
	ck_assert_uint_eq(mimg_size(img), total);
	ck_assert_int_eq(mimg_info(img, &info), 0);
	ck_assert_ptr_null(mimg_value_get(info, "archive"));
	mimg_value_free(info);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, "a.tar", "raw", MIMG_OPEN_RDWR), 0);
	ck_assert_uint_eq(mimg_size(img), total);
	ck_assert_int_eq(mimg_close(img), 0);

	/* from memory too */
	size_t len;
	uint8_t *file = slurp("a.tar", &len);
	ck_assert_int_eq(mimg_open_memory(&img, file, len, NULL, 0), 0);
	ck_assert_uint_eq(mimg_size(img), sizeof(data));
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

START_TEST(plain_files_are_not_archives)
{
	/* an all-zero first block is an empty tar to libarchive, and a raw
	 * disk to everyone else */
	uint8_t data[4096];
	struct mimg *img;
	memset(data, 0, sizeof(data));
	data[2000] = 1;
	tu_write_file("z.img", data, sizeof(data), 0);
	ck_assert_int_eq(mimg_open(&img, "z.img", NULL, 0), 0);
	ck_assert_uint_eq(mimg_size(img), sizeof(data));
	ck_assert_int_eq(mimg_close(img), 0);
	tu_write_file("e.img", data, 0, 0);
	ck_assert_int_eq(mimg_open(&img, "e.img", NULL, 0), 0);
	ck_assert_uint_eq(mimg_size(img), 0);
	ck_assert_int_eq(mimg_close(img), 0);
	/* a tar header with a bad checksum is data */
	write_tar("bad.tar", "disk.raw", data, sizeof(data));
	int fd = open("bad.tar", O_WRONLY);
	ck_assert_int_eq(pwrite(fd, "x", 1, 0), 1);
	close(fd);
	ck_assert_int_eq(mimg_open(&img, "bad.tar", NULL, 0), 0);
	ck_assert_uint_gt(mimg_size(img), sizeof(data));
	ck_assert_int_eq(mimg_close(img), 0);
}
END_TEST

int main(void)
{
	return tu_main_cases(
		"file_source",
		TU_TCASES({"posix",
			   TU_TESTS(zero_range_works,
				    zero_range_reports_real_errors,
				    zero_range_unsupported_is_remembered),
			   NULL, 0, setup_fs, teardown_fs},
			  {"memory",
			   TU_TESTS(memory_file_io, memory_file_read_only,
				    patched_view_reads_patches_in_order,
				    patched_view_commits_into_its_base,
				    image_from_memory,
				    memory_image_names_no_files)},
			  {"archive", TU_TESTS(tar_is_unpacked_read_only,
					       plain_files_are_not_archives)}));
}
