/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The power-cut model (see powercut.h).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "powercut.h"
#include "testutil.h"

#define MAX_REC 4096

struct rec {
	uint64_t off, len;
};

static struct rec recs[MAX_REC];
static int nrec;
static int flushes;
static int crash_at_flush;
static bool crashed;
static char image[256];

/* Copy FROM to TO in this process (not a cp at every flush); zero blocks
 * stay holes, as with cp --sparse=always. */
static void copy_file(const char *from, const char *to)
{
	static uint8_t buf[1 << 16];
	static const uint8_t zero[4096];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(in >= 0 && out >= 0, "copy %s to %s", from, to);
	off_t off = 0;
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i += sizeof(zero)) {
			size_t len = (size_t)(n - i) < sizeof(zero)
					     ? (size_t)(n - i)
					     : sizeof(zero);
			if (memcmp(buf + i, zero, len) != 0)
				ck_assert_int_eq(pwrite(out, buf + i, len,
							off + i),
						 (ssize_t)len);
		}
		off += n;
	}
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(ftruncate(out, off), 0);
	close(in);
	close(out);
}

/* Build crash.img from the current image: a random subset of the writes
 * since the last flush is reverted to durable.img's content. */
static void make_crash_image(uint64_t seed)
{
	copy_file(image, "crash.img");
	FILE *cur = fopen("crash.img", "r+b");
	FILE *dur = fopen("durable.img", "rb");
	ck_assert(cur && dur);
	fseek(dur, 0, SEEK_END);
	uint64_t dsize = (uint64_t)ftell(dur);
	uint8_t *buf = malloc(1 << 21);
	for (int i = 0; i < nrec; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		if ((seed >> 33) % 2)
			continue; /* this write reached the disk */
		uint64_t off = recs[i].off, len = recs[i].len;
		while (len) {
			size_t n = len > (1u << 21) ? 1u << 21 : (size_t)len;
			memset(buf, 0, n);
			if (off < dsize) {
				fseek(dur, (long)off, SEEK_SET);
				size_t got = fread(buf, 1, n, dur);
				(void)got;
			}
			fseek(cur, (long)off, SEEK_SET);
			ck_assert_int_eq(fwrite(buf, 1, n, cur), n);
			off += n;
			len -= n;
		}
	}
	free(buf);
	fclose(cur);
	fclose(dur);
}

/* An O_DSYNC write is durable once done: its bytes, taken from the image
 * at the next operation (single-threaded workloads: it is done by then),
 * go to durable.img, so reverting other writes never undoes it. */
static struct rec dsync_pending;
static bool have_dsync;

static void settle_dsync(void)
{
	if (!have_dsync)
		return;
	have_dsync = false;
	tu_sh("dd if=%s of=durable.img bs=64K skip=%llu seek=%llu count=%llu "
	      "conv=notrunc iflag=skip_bytes,count_bytes oflag=seek_bytes "
	      "status=none",
	      image, (unsigned long long)dsync_pending.off,
	      (unsigned long long)dsync_pending.off,
	      (unsigned long long)dsync_pending.len);
}

static int hook(void *opaque, enum mimg_file_op op, const char *path,
		uint64_t off, uint64_t len)
{
	(void)opaque;
	if (crashed || !strstr(path, image))
		return 0;
	settle_dsync();
	if (op == MIMG_FILE_OP_WRITE_DSYNC) {
		dsync_pending = (struct rec){off, len};
		have_dsync = true;
		return 0;
	}
	if (op == MIMG_FILE_OP_FLUSH) {
		if (flushes++ == crash_at_flush) {
			/* Crash just before this flush completes. */
			make_crash_image((uint64_t)flushes * 7919);
			crashed = true;
			return 0;
		}
		copy_file(image, "durable.img");
		nrec = 0;
		return 0;
	}
	if (op == MIMG_FILE_OP_WRITE && nrec < MAX_REC)
		recs[nrec++] = (struct rec){off, len};
	return 0;
}

void pc_begin(const char *img, int at_flush)
{
	snprintf(image, sizeof(image), "%s", img);
	copy_file(image, "durable.img");
	nrec = 0;
	flushes = 0;
	crash_at_flush = at_flush;
	crashed = false;
	have_dsync = false;
	mimg_file_set_fault_hook(hook, NULL);
}

bool pc_crashed(void)
{
	return crashed;
}

void pc_end(void)
{
	if (!crashed) {
		settle_dsync();
		make_crash_image(99);
	}
	crashed = true;
	mimg_file_set_fault_hook(NULL, NULL);
}

bool pc_run(const char *path, unsigned flags, int at_flush,
	    void (*work)(struct mimg *img, void *arg), void *arg)
{
	struct mimg *img;
	ck_assert_int_eq(mimg_open(&img, path, NULL, MIMG_OPEN_RDWR | flags),
			 0);
	pc_begin(path, at_flush);
	work(img, arg);
	mimg_close(img);
	bool cut = pc_crashed();
	pc_end();
	return cut;
}

int pc_qemu_check(void)
{
	return tu_system("qemu-img check -q crash.img >/dev/null 2>&1");
}
