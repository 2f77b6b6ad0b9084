/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Completed writes survive SIGKILL.  A child process writes patterned
 * slots through the library (MIMG_OPEN_EXIT_SAFE) or through blockif,
 * from several threads, and reports each slot on a pipe once its write
 * completed; the parent kills it with SIGKILL mid-stream and checks, with
 * qemu-img as the reader, that every reported slot holds its pattern and
 * that qemu-img check finds no corruption.  A second run flushes before
 * the kill: then not even a leaked cluster may remain.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mimg.h>

#include "blockif_run.h"
#include "testutil.h"
#include "vmm-blk/block_if.h"

#define IMG_MB 64
#define NSLOTS 512u
#define STRIDE ((uint64_t)IMG_MB * 1048576 / NSLOTS)
#define THREADS 4
#define KILL_AFTER 160 /* completions seen before the kill */

/* Slot K: spread over the disk, 4 KiB at an offset inside a cluster
 * (copy-on-write) or 64 KiB aligned (a whole cluster), alternately. */
static uint64_t slot_off(unsigned k)
{
	uint64_t base = (uint64_t)((k * 7919u) % NSLOTS) * STRIDE;
	return k % 2 ? base + 4096 * (1 + k % 5) : base;
}

static size_t slot_len(unsigned k)
{
	return k % 2 ? 4096 : 65536;
}

enum path { VIA_LIBRARY, VIA_BLOCKIF };

struct child {
	enum path via;
	struct mimg *img;
	struct blockif_ctxt *bc;
	int report_fd;
	atomic_uint next;
};

/* Write slot K and wait for its completion. */
static int write_slot(struct child *c, unsigned k, uint8_t *buf)
{
	size_t len = slot_len(k);
	tu_fill_random(buf, len, k + 1);
	if (c->via == VIA_LIBRARY) {
		ssize_t n = mimg_pwrite(c->img, buf, len, slot_off(k), 0);
		return n < 0 ? (int)n : 0;
	}
	int err;
	int r = blockif_run(blockif_write, c->bc, buf, len, slot_off(k), &err);
	return r ? -r : -err;
}

static void *writer(void *arg)
{
	struct child *c = arg;
	uint8_t *buf = malloc(65536);
	for (;;) {
		unsigned k = atomic_fetch_add(&c->next, 1);
		if (k >= NSLOTS || write_slot(c, k, buf) != 0)
			break;
		/* A pipe write of 4 bytes is atomic: the parent sees whole
		 * slot numbers, each only after its write completed. */
		if (write(c->report_fd, &k, sizeof(k)) != sizeof(k))
			break;
	}
	free(buf);
	return NULL;
}

/* The child: write slots until killed (or, with FLUSH_AT, flush after
 * that many slots, report UINT32_MAX and wait to be killed). */
static void child_main(const char *path, enum path via, int fd,
		       unsigned flush_at)
{
	static struct child c;
	c.via = via;
	c.report_fd = fd;
	atomic_init(&c.next, 0);
	if (via == VIA_LIBRARY) {
		if (mimg_open(&c.img, path, NULL,
			      MIMG_OPEN_RDWR | MIMG_OPEN_EXIT_SAFE) < 0)
			_exit(2);
	} else {
		char opts[512];
		snprintf(opts, sizeof(opts), "%s", path);
		if (!(c.bc = blockif_open_optstr(opts, "kill-test")))
			_exit(2);
	}
	if (flush_at) {
		atomic_store(&c.next, NSLOTS - flush_at);
		writer(&c);
		if (via == VIA_LIBRARY && mimg_flush(c.img, 0) < 0)
			_exit(3);
		int err;
		if (via == VIA_BLOCKIF &&
		    (blockif_run(blockif_flush, c.bc, NULL, 0, 0, &err) != 0 ||
		     err))
			_exit(3);
		unsigned all = UINT32_MAX;
		if (write(fd, &all, sizeof(all)) != sizeof(all))
			_exit(4);
		for (;;)
			pause();
	}
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, writer, &c);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (;;) /* never exit cleanly: only the kill ends us */
		pause();
}

/* Run a child on PATH, kill it, and return the set of completed slots
 * in DONE.  FLUSH_AT as for child_main. */
static void run_and_kill(const char *path, enum path via, bool *done,
			 unsigned flush_at)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child_main(path, via, p[1], flush_at);
	}
	close(p[1]);
	unsigned seen = 0, k;
	bool flushed = false;
	while (!flushed && (flush_at || seen < KILL_AFTER) &&
	       read(p[0], &k, sizeof(k)) == sizeof(k)) {
		if (k == UINT32_MAX) {
			flushed = true;
			break;
		}
		ck_assert_uint_lt(k, NSLOTS);
		done[k] = true;
		seen++;
	}
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFSIGNALED(st),
		      "the writer exited with %d before "
		      "the kill",
		      WEXITSTATUS(st));
	/* Slots reported between our last read and the kill completed too. */
	while (read(p[0], &k, sizeof(k)) == sizeof(k))
		if (k < NSLOTS)
			done[k] = true;
	close(p[0]);
	ck_assert(!flush_at || flushed);
	ck_assert_uint_ge(seen, flush_at ? flush_at : KILL_AFTER);
}

/* qemu-img reads the image back; every completed slot must match. */
static void verify(const char *path, const bool *done)
{
	tu_sh("qemu-img convert -U -O raw %s out.raw", path);
	FILE *f = fopen("out.raw", "rb");
	ck_assert_ptr_nonnull(f);
	uint8_t *want = malloc(65536), *got = malloc(65536);
	unsigned n = 0;
	for (unsigned k = 0; k < NSLOTS; k++) {
		if (!done[k])
			continue;
		size_t len = slot_len(k);
		tu_fill_random(want, len, k + 1);
		ck_assert_int_eq(fseek(f, (long)slot_off(k), SEEK_SET), 0);
		ck_assert_uint_eq(fread(got, 1, len, f), len);
		ck_assert_msg(memcmp(want, got, len) == 0,
			      "%s: completed write of slot %u (%zu bytes at "
			      "%llu) is missing after the kill",
			      path, k, len, (unsigned long long)slot_off(k));
		n++;
	}
	free(want);
	free(got);
	fclose(f);
	ck_assert_uint_gt(n, 0);
}

struct fmt_case {
	const char *name;
	const char *create; /* qemu-img create arguments before the name */
	bool backing;	    /* over a raw backing file full of data */
	bool has_check;	    /* qemu-img check applies */
};

static const struct fmt_case cases[] = {
	{"raw", "-f raw", false, false},
	{"qcow2", "-f qcow2", false, true},
	{"qcow2-backing", "-f qcow2 -F raw -b base.raw", true, true},
	{"qcow2-extl2", "-f qcow2 -o extended_l2=on", false, true},
	{"vmdk", "-f vmdk", false, true},
};
#define NCASES (int)(sizeof(cases) / sizeof(cases[0]))

static void make_image(const struct fmt_case *fc, char *path, size_t n)
{
	snprintf(path, n, "%s/t.img", tu_tmpdir());
	if (fc->backing)
		tu_sh("qemu-img create -q -f raw base.raw %dM && qemu-io -f "
		      "raw -c 'write -P 0x5a 0 %dM' base.raw >/dev/null",
		      IMG_MB, IMG_MB);
	tu_sh("qemu-img create -q %s %s %dM", fc->create, path, IMG_MB);
}

static int check_status(const char *path)
{
	return tu_system("qemu-img check -q %s >/dev/null 2>&1", path);
}

/* Run case I through VIA and kill it (FLUSH_AT as for child_main):
 * nothing completed is lost.  Leaks (qemu-img check exit 3) are allowed
 * after a kill, corruption (2) is not; flushed, nothing leaked either. */
static void kill_case(int i, enum path via, unsigned flush_at)
{
	const struct fmt_case *fc = &cases[i];
	char path[4096];
	bool done[NSLOTS] = {false};
	make_image(fc, path, sizeof(path));
	run_and_kill(path, via, done, flush_at);
	if (fc->has_check) {
		int st = check_status(path);
		ck_assert_msg(st == 0 || (st == 3 && !flush_at),
			      "%s: qemu-img check exit %d after the kill%s",
			      fc->name, st, flush_at ? " (flushed)" : "");
	}
	verify(path, done);
}

START_TEST(kill_library)
{
	kill_case(_i, VIA_LIBRARY, 0);
}
END_TEST

START_TEST(kill_blockif)
{
	kill_case(_i, VIA_BLOCKIF, 0);
}
END_TEST

START_TEST(flush_then_kill_library)
{
	kill_case(_i, VIA_LIBRARY, 40); /* flushed, then killed */
}
END_TEST

START_TEST(flush_then_kill_blockif)
{
	kill_case(_i, VIA_BLOCKIF, 40);
}
END_TEST

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return tu_main_qemu("exit_kill", "kill", NULL, 0,
			    TU_LOOPS({kill_library, NCASES},
				     {kill_blockif, NCASES},
				     {flush_then_kill_library, NCASES},
				     {flush_then_kill_blockif, NCASES}));
}
