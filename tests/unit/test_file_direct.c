/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * O_DIRECT host files: transfers at any offset, length and memory address
 * are bounced through aligned buffers, partial blocks are read, modified
 * and written without losing concurrent writes to other bytes of the same
 * block, files keep their exact size, and every format serves I/O opened
 * with MIMG_OPEN_DIRECT.  Runs where the temporary directory's file system
 * accepts O_DIRECT (meson points TMPDIR at the build tree, a disk).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "mimg.h"
#include "testutil.h"

#define FILE_SIZE (3u << 20)

/* True when O_DIRECT works here; else the run is reported as skipped. */
static bool direct_supported(void)
{
	int fd = open("probe", O_RDWR | O_CREAT | O_DIRECT, 0644);
	if (fd >= 0) {
		close(fd);
		unlink("probe");
		return true;
	}
	tu_mark_skipped();
	return false;
}

/* PATH created and opened with MIMG_FILE_DIRECT, or NULL (the run then
 * reported as skipped) where O_DIRECT does not work here. */
static struct mimg_file *open_direct(const char *path)
{
	struct mimg_file *f;

	if (!direct_supported())
		return NULL;
	ck_assert_int_eq(mimg_file_open(&f, path,
					MIMG_FILE_RDWR | MIMG_FILE_CREATE |
						MIMG_FILE_DIRECT),
			 0);
	return f;
}

/* Unaligned writes and reads through unaligned memory match a model. */
START_TEST(unaligned_transfers_match_model)
{
	struct mimg_file *f;
	uint8_t *model = calloc(1, FILE_SIZE + 2048), *mem = malloc(70000 + 7);
	uint64_t seed = 1;

	ck_assert(model && mem);
	if (!(f = open_direct("d.img")))
		return;
	for (int i = 0; i < 150; i++) {
		uint8_t pat[4];
		tu_fill_random(pat, sizeof(pat), seed++);
		uint32_t len = 1 + ((uint32_t)pat[0] << 8 | pat[1]) % 70000;
		uint64_t off = (((uint64_t)pat[2] << 16 |
				 (uint64_t)pat[3] << 8 | (uint64_t)i) %
				(FILE_SIZE - len));
		uint8_t *p = mem + (i % 7);
		tu_fill_random(p, len, seed++);
		ck_assert_int_eq(mimg_file_pwrite(f, p, len, off), 0);
		memcpy(model + off, p, len);
		if (i % 3 == 0) {
			ck_assert_int_eq(mimg_file_pread(f, p, len, off), 0);
			ck_assert(memcmp(p, model + off, len) == 0);
		}
	}
	/* an odd-sized tail: the file ends where the data ends */
	uint64_t end;
	ck_assert_int_eq(mimg_file_size(f, &end), 0);
	tu_fill_random(mem + 3, 1000, seed++);
	ck_assert_int_eq(mimg_file_pwrite(f, mem + 3, 1000, end + 11), 0);
	memcpy(model + end + 11, mem + 3, 1000);
	ck_assert_int_eq(mimg_file_size(f, &end), 0);
	ck_assert_uint_eq(end, tu_file_size("d.img"));
	for (uint64_t off = 0; off < FILE_SIZE; off += 65536 + 13) {
		uint32_t len = off + 65536 + 13 > FILE_SIZE
				       ? (uint32_t)(FILE_SIZE - off)
				       : 65536 + 13;
		ck_assert_int_eq(mimg_file_pread(f, mem + 5, len, off), 0);
		ck_assert(memcmp(mem + 5, model + off, len) == 0);
	}
	ck_assert_int_eq(mimg_file_close(f), 0);
	free(model);
	free(mem);
}
END_TEST

START_TEST(odd_sizes_are_kept)
{
	struct mimg_file *f;
	uint8_t buf[700], back[800];

	if (!(f = open_direct("s.img")))
		return;
	tu_fill_random(buf, sizeof(buf), 3);
	ck_assert_int_eq(mimg_file_pwrite(f, buf, 343, 0), 0);
	ck_assert_uint_eq(tu_file_size("s.img"), 343);
	ck_assert_int_eq(mimg_file_pwrite(f, buf, 700, 5000), 0);
	ck_assert_uint_eq(tu_file_size("s.img"), 5700);
	/* a write inside the file leaves its size alone */
	ck_assert_int_eq(mimg_file_pwrite(f, buf, 10, 100), 0);
	ck_assert_uint_eq(tu_file_size("s.img"), 5700);
	/* reads past the end are zeroes */
	memset(back, 0xaa, sizeof(back));
	ck_assert_int_eq(mimg_file_pread(f, back, 800, 5000), 0);
	ck_assert(memcmp(back, buf, 700) == 0);
	for (int i = 700; i < 800; i++)
		ck_assert_uint_eq(back[i], 0);
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

/* Threads each write their own bytes of the same few blocks: no write
 * may undo another (the read-modify-write is serialised). */
struct rmw_arg {
	struct mimg_file *f;
	int id;
};

#define RMW_THREADS 8
#define RMW_ROUNDS 400

static void *rmw_worker(void *opaque)
{
	struct rmw_arg *a = opaque;
	for (int i = 0; i < RMW_ROUNDS; i++) {
		uint8_t v = (uint8_t)(a->id * 31 + 1);
		uint64_t off = (uint64_t)(i % 16) * 512 + (uint64_t)a->id * 64;
		if (mimg_file_pwrite(a->f, &v, 1, off) != 0)
			return (void *)1;
	}
	return NULL;
}

START_TEST(partial_block_writes_are_serialised)
{
	struct mimg_file *f;
	pthread_t th[RMW_THREADS];
	struct rmw_arg args[RMW_THREADS];
	uint8_t buf[8192];

	if (!(f = open_direct("c.img")))
		return;
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(mimg_file_pwrite(f, buf, sizeof(buf), 0), 0);
	for (int i = 0; i < RMW_THREADS; i++) {
		args[i] = (struct rmw_arg){.f = f, .id = i};
		ck_assert_int_eq(pthread_create(&th[i], NULL, rmw_worker,
						&args[i]),
				 0);
	}
	for (int i = 0; i < RMW_THREADS; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		ck_assert_ptr_null(ret);
	}
	ck_assert_int_eq(mimg_file_pread(f, buf, sizeof(buf), 0), 0);
	for (int s = 0; s < 16; s++)
		for (int i = 0; i < RMW_THREADS; i++)
			ck_assert_uint_eq(buf[s * 512 + i * 64],
					  (uint8_t)(i * 31 + 1));
	ck_assert_int_eq(mimg_file_close(f), 0);
}
END_TEST

/* Every format written and read back through the public API with
 * MIMG_OPEN_DIRECT, at unaligned offsets, then read without it. */
START_TEST(every_format_direct)
{
	static const char *const formats[] = {"raw", "qcow2", "vmdk", "vpc",
					      "vdi"};
	uint8_t *pat = malloc(200000), *back = malloc(200000 + 1);
	const char *fmt = formats[_i];
	char path[32];
	struct mimg *img;

	if (!direct_supported())
		return;
	ck_assert(pat && back);
	tu_fill_random(pat, 200000, 7 + (uint64_t)_i);
	snprintf(path, sizeof(path), "e.%s", fmt);
	ck_assert_int_eq(mimg_create(path, fmt, 8 << 20, NULL, 0), 0);
	ck_assert_msg(mimg_open(&img, path, fmt,
				MIMG_OPEN_RDWR | MIMG_OPEN_DIRECT) == 0,
		      "%s", mimg_errmsg());
	ck_assert_int_eq(mimg_pwrite(img, pat, 200000, 4096 * 3 + 17, 0),
			 200000);
	ck_assert_int_eq(mimg_pwrite(img, pat + 5, 512, 1 << 20, 0), 512);
	ck_assert_int_eq(mimg_flush(img, 0), 0);
	ck_assert_int_eq(mimg_pread(img, back + 1, 200000, 4096 * 3 + 17, 0),
			 200000);
	ck_assert(memcmp(back + 1, pat, 200000) == 0);
	ck_assert_int_eq(mimg_close(img), 0);
	ck_assert_int_eq(mimg_open(&img, path, fmt, 0), 0);
	ck_assert_int_eq(mimg_pread(img, back, 200000, 4096 * 3 + 17, 0),
			 200000);
	ck_assert(memcmp(back, pat, 200000) == 0);
	ck_assert_int_eq(mimg_pread(img, back, 512, 1 << 20, 0), 512);
	ck_assert(memcmp(back, pat + 5, 512) == 0);
	ck_assert_int_eq(mimg_close(img), 0);
	free(pat);
	free(back);
}
END_TEST

int main(void)
{
	return tu_main_loops("file_direct", "direct",
			     TU_TESTS(unaligned_transfers_match_model,
				      odd_sizes_are_kept,
				      partial_block_writes_are_serialised),
			     TU_LOOPS({every_format_direct, 5}));
}
