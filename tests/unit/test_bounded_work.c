/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Work bounded by what the file holds: every input of at most 1 MiB must
 * finish info, check, map and convert -O raw within one second of CPU
 * time, measured with rusage, not the wall clock.  Crafted headers that
 * declare huge disks over tiny files run through the `mimg` commands
 * (each command one second); the fuzz corpora run through the library
 * calls those commands make (all four together one second per input).
 * Whether an input is refused does not matter; a crash or a run over
 * budget fails the test.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <mimg.h>

#include "testutil.h"

#define BOUNDED_MAX_INPUT (1u << 20)

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static const char *mimg_path(void)
{
	const char *p = getenv("MIMG");

	ck_assert_msg(p != NULL, "MIMG is not set");
	return p;
}

/* CPU seconds a command may use: one, or five under the sanitizers,
 * which make every instruction several times slower. */
static double budget(void)
{
	return SANITIZED ? 5.0 : 1.0;
}

/* Run mimg with ARGV (NULL-terminated, without the program), stdout and
 * stderr to /dev/null; fail on a crash or on more CPU than the budget. */
static void run_bounded(const char *input, const char *const *argv)
{
	const char *args[12];
	struct rusage ru;
	int status, n = 0;
	double cpu;
	pid_t pid;

	args[n++] = mimg_path();
	while (*argv && n < 11)
		args[n++] = *argv++;
	args[n] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		/* A runaway is stopped at three times the budget. */
		rlim_t cap = (rlim_t)(3 * budget()) + 1;
		struct rlimit rl = {cap, cap};

		dup2(devnull, 1);
		dup2(devnull, 2);
		setrlimit(RLIMIT_CPU, &rl);
		execv(args[0], (char *const *)args);
		_exit(127);
	}
	ck_assert_int_eq(wait4(pid, &status, 0, &ru), pid);
	cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	      (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	ck_assert_msg(!WIFSIGNALED(status) || WTERMSIG(status) == SIGXCPU,
		      "mimg %s on %s died of signal %d", args[1], input,
		      WTERMSIG(status));
	ck_assert_msg(WIFEXITED(status) || WTERMSIG(status) != SIGXCPU,
		      "mimg %s on %s ran out of CPU time", args[1], input);
	ck_assert_msg(cpu <= budget(), "mimg %s on %s used %.2f s of CPU",
		      args[1], input, cpu);
}

/* Every command on the file PATH (in the current directory). */
static void run_all_commands(const char *path)
{
	const char *const info[] = {"info", "--untrusted", path, NULL};
	const char *const check[] = {"check", path, NULL};
	const char *const map[] = {"map", "--output=json", path, NULL};
	const char *const convert[] = {"convert", "--untrusted", "-O", "raw",
				       path,	  "bounded.out", NULL};

	run_bounded(path, info);
	run_bounded(path, check);
	run_bounded(path, map);
	run_bounded(path, convert);
	unlink("bounded.out");
}

static double cpu_seconds(void)
{
	struct rusage ru;

	ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* What info, check, map and convert -O raw do, through the library in this
 * process (the corpora hold hundreds of inputs; a process per command would
 * cost more than the commands). */
static void library_all(const char *path)
{
	double start = cpu_seconds(), used;
	struct mimg_check_result res = {.size = sizeof(res)};
	struct mimg_value *info;
	struct mimg *img, *out;
	uint64_t size, off = 0;

	if (mimg_open(&img, path, NULL, MIMG_OPEN_UNTRUSTED) != 0)
		return;
	size = mimg_size(img);
	if (mimg_info(img, &info) == 0) {
		free(mimg_value_to_json(info));
		mimg_value_free(info);
	}
	if (mimg_check(img, 0, &res) == 0)
		mimg_check_result_free(&res);
	while (off < size) {
		uint64_t pnum;
		unsigned status;
		int depth;

		if (mimg_block_status_chain(img, off, size - off, &pnum,
					    &status, &depth, NULL, 0) != 0 ||
		    pnum == 0)
			break;
		off += pnum;
	}
	if (mimg_create("bounded.out", "raw", size, NULL, 0) == 0) {
		if (mimg_open(&out, "bounded.out", "raw", MIMG_OPEN_RDWR) ==
		    0) {
			mimg_convert(img, out, NULL);
			mimg_close(out);
		}
		unlink("bounded.out");
	}
	mimg_close(img);
	used = cpu_seconds() - start;
	ck_assert_msg(used <= budget(), "%s used %.2f s of CPU", path, used);
}

static void copy_in(const char *src, const char *dst)
{
	static uint8_t buf[BOUNDED_MAX_INPUT];
	ssize_t n;
	int fd = open(src, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_int_ge(n, 0);
	tu_write_file(dst, buf, (size_t)n, 0);
}

/* Each regular file of at most 1 MiB in the corpus directory NAME, copied
 * alone into the test's directory so that names it refers to resolve to
 * nothing.  At a MIMG_TEST_SCALE below 100 (the sanitized run, whose fuzz
 * corpus replay already reads every input) only every Nth input runs. */
static unsigned run_corpus(const char *name)
{
	const char *top = getenv("CORPUS");
	char dir[4096];
	unsigned count = 0, seen = 0, step = (unsigned)tu_scaled_step();
	struct dirent *de;
	DIR *d;

	ck_assert_msg(top != NULL, "CORPUS is not set");
	snprintf(dir, sizeof(dir), "%s/%s", top, name);
	d = opendir(dir);
	ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		char src[8192];
		struct stat st;

		snprintf(src, sizeof(src), "%s/%s", dir, de->d_name);
		if (stat(src, &st) != 0 || !S_ISREG(st.st_mode) ||
		    st.st_size > BOUNDED_MAX_INPUT || seen++ % step)
			continue;
		copy_in(src, de->d_name);
		library_all(de->d_name);
		unlink(de->d_name);
		count++;
	}
	closedir(d);
	return count;
}

#define CORPUS_TEST(fmt)                                                       \
	START_TEST(corpus_##fmt)                                               \
	{                                                                      \
		ck_assert_uint_gt(run_corpus(#fmt), 0);                        \
	}                                                                      \
	END_TEST

CORPUS_TEST(probe)
CORPUS_TEST(qcow2)
CORPUS_TEST(vmdk)
CORPUS_TEST(vpc)
CORPUS_TEST(vdi)
CORPUS_TEST(luks)

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* A 20 KiB ESX sparse (COWD) extent declaring almost 2 TiB and a grain
 * directory of 2^31 entries: the shape that once cost seconds of CPU per
 * convert.  One grain table, four grains. */
START_TEST(cowd_huge_capacity)
{
	static uint8_t f[20480];

	memcpy(f, "COWD", 4);
	put_le32(f + 4, 1);	       /* version */
	put_le32(f + 8, 3);	       /* flags */
	put_le32(f + 12, 0xfffffff0u); /* capacity in sectors */
	put_le32(f + 16, 1);	       /* grain: one sector */
	put_le32(f + 20, 4);	       /* directory at sector 4 */
	put_le32(f + 24, 0x7fffffffu); /* directory entries */
	put_le32(f + 2048, 8);	       /* table 0 at sector 8 */
	for (unsigned i = 0; i < 4; i++)
		put_le32(f + 4096 + 4 * i, 36 + i);
	memset(f + 36 * 512, 0xa5, 4 * 512);
	tu_write_file("cowd.vmdk", f, sizeof(f), 0);
	run_all_commands("cowd.vmdk");
}
END_TEST

/* A hosted sparse VMDK (KDMV) of 64 KiB declaring 2^40 sectors: its grain
 * directory would be 1 GiB, far past the end of the file. */
START_TEST(kdmv_huge_capacity)
{
	static uint8_t f[65536];

	memcpy(f, "KDMV", 4);
	put_le32(f + 4, 1);	      /* version */
	put_le32(f + 8, 3);	      /* flags */
	put_le64(f + 12, 1ull << 40); /* capacity */
	put_le64(f + 20, 8);	      /* grain: 8 sectors */
	put_le32(f + 44, 512);	      /* GT entries */
	put_le64(f + 48, 2);	      /* redundant GD */
	put_le64(f + 56, 2);	      /* GD */
	put_le64(f + 64, 128);	      /* overhead */
	f[73] = '\n';
	f[74] = ' ';
	f[75] = '\r';
	f[76] = '\n';
	put_le32(f + 1024, 8); /* GT 0 at sector 8 */
	for (unsigned i = 0; i < 4; i++)
		put_le32(f + 4096 + 4 * i, 16 + 8 * i);
	memset(f + 16 * 512, 0x5a, 4 * 4096);
	tu_write_file("kdmv.vmdk", f, sizeof(f), 0);
	run_all_commands("kdmv.vmdk");
}
END_TEST

/* A 1 MiB qcow2 declaring 16 TiB: a 256 KiB L1 table, one L2 table, four
 * data clusters. */
START_TEST(qcow2_huge_size)
{
	static uint8_t f[1 << 20];
	const uint64_t l1 = 65536, l2 = 7 * 65536, data = 8 * 65536;
	const uint64_t reft = 5 * 65536, refb = 6 * 65536;

	memcpy(f, "QFI\xfb", 4);
	put_be32(f + 4, 3);	      /* version */
	put_be32(f + 20, 16);	      /* cluster bits */
	put_be64(f + 24, 1ull << 44); /* size */
	put_be32(f + 36, 32768);      /* L1 entries: 256 KiB */
	put_be64(f + 40, l1);
	put_be64(f + 48, reft); /* refcount table */
	put_be32(f + 56, 1);	/* its clusters */
	put_be32(f + 96, 4);	/* refcount order */
	put_be32(f + 100, 104); /* header length */
	put_be64(f + reft, refb);
	for (unsigned i = 0; i < 12; i++)
		f[refb + 2 * i + 1] = 1;
	put_be64(f + l1, l2 | 1ull << 63);
	for (uint64_t i = 0; i < 4; i++)
		put_be64(f + l2 + 8 * i, (data + 65536 * i) | 1ull << 63);
	memset(f + data, 0x3c, 4 * 65536);
	tu_write_file("huge.qcow2", f, sizeof(f), 0);
	run_all_commands("huge.qcow2");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("bounded_work");
	TCase *tc = tu_tcase(s, "crafted");

	tcase_add_test(tc, cowd_huge_capacity);
	tcase_add_test(tc, kdmv_huge_capacity);
	tcase_add_test(tc, qcow2_huge_size);
	tc = tu_tcase(s, "corpus");
	tcase_add_test(tc, corpus_probe);
	tcase_add_test(tc, corpus_qcow2);
	tcase_add_test(tc, corpus_vmdk);
	tcase_add_test(tc, corpus_vpc);
	tcase_add_test(tc, corpus_vdi);
	tcase_add_test(tc, corpus_luks);
	return s;
}

int main(void)
{
	return tu_run_suite(suite());
}
