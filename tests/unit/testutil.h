/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Shared helpers for the Check unit tests.
 */
#ifndef MIMG_TESTUTIL_H
#define MIMG_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "mimg.h"

/* Entries of array A, as the int tcase_add_loop_test takes. */
#define TU_NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Create a fresh temporary directory and chdir into it (use as a Check
 * checked fixture); tu_leave_tmpdir removes it recursively. */
void tu_enter_tmpdir(void);
void tu_leave_tmpdir(void);
/* Path of the current temporary directory. */
const char *tu_tmpdir(void);

/* Fill BUF with deterministic pseudo-random bytes from SEED. */
void tu_fill_random(void *buf, size_t len, uint64_t seed);
/* X with its bits mixed (the finalizer of splitmix64): the content or
 * the next random number of a test, different for every X. */
uint64_t tu_mix64(uint64_t x);
/* Write LEN bytes of BUF at OFF to PATH (creating it); abort on error. */
void tu_write_file(const char *path, const void *buf, size_t len, uint64_t off);
/* V written at OFF of PATH as a little- or big-endian 32- or 64-bit
 * number: a header field a malformed-image test breaks. */
void tu_patch_le32(const char *path, uint64_t off, uint32_t v);
void tu_patch_le64(const char *path, uint64_t off, uint64_t v);
void tu_patch_be32(const char *path, uint64_t off, uint32_t v);
void tu_patch_be64(const char *path, uint64_t off, uint64_t v);
/* A header field set to VALUE (a little-endian 32-bit number at OFF) and
 * what opening the image must then fail with: ERR, a message holding
 * WHAT. */
struct tu_field_case {
	uint32_t off, value;
	int err;
	const char *what;
};
/* MAKE writes a good image at PATH; the field of C is broken in it and
 * opening it as FORMAT must fail as C says. */
void tu_expect_field_refused(const char *path, const char *format,
			     void (*make)(void), const struct tu_field_case *c);
/* Opening PATH as FORMAT (NULL: probed), read-only, fails with ERR and a
 * message naming PATH and holding WHAT. */
void tu_expect_open_refused(const char *path, const char *format, int err,
			    const char *what);
/* LEN bytes from tu_fill_random (SEED), written to PATH as well;
 * free() them. */
uint8_t *tu_random_file(const char *path, size_t len, uint64_t seed);
/* LEN bytes at OFF: a range a test writes or reads. */
struct tu_range {
	uint64_t off;
	size_t len;
};
/* Ranges at awkward places for write tests, as the first entries of a
 * struct tu_range table: a whole 4 KiB block, less than a sector,
 * unaligned at both ends across sectors, across the 1 MiB boundary, and
 * two MiB and a bit from 2 MiB on. */
#define TU_AWKWARD_RANGES                                                      \
	{0, 4096}, {1000, 100}, {511, 5000}, {(1u << 20) - 7, 300},            \
	{                                                                      \
		2u << 20, (2u << 20) + 1000                                    \
	}
/* Write each of the N ranges R of IMG, cut at its SIZE bytes, with
 * tu_fill_random bytes (seed SEED + its index), putting the same bytes
 * into SHADOW at its offset. */
void tu_write_ranges(struct mimg *img, uint8_t *shadow, uint64_t size,
		     const struct tu_range *r, int n, uint64_t seed);
/* Read LEN bytes at OFF of PATH into BUF; the test fails on a short
 * read. */
void tu_read_at(const char *path, void *buf, size_t len, uint64_t off);
/* Create PATH as a sparse file of SIZE bytes. */
void tu_make_sparse(const char *path, uint64_t size);
/* True when PROG is found in PATH.  When it is not, the test is expected
 * to return early, and tu_run_suite() reports the run as skipped (77). */
int tu_have_program(const char *prog);
/* nbdkit serving IMAGE (a file) on a Unix socket in the test's
 * directory, in the foreground and dying with this process; URI receives
 * its nbd+unix URI.  Returns once nbdkit accepts connections (it writes
 * its pidfile then), after removing what an earlier server left there. */
pid_t tu_start_nbdkit(const char *image, char *uri, size_t urilen);
/* True when libmimg was built with the driver for format NAME. */
bool tu_have_format(const char *name);
/* Return from the calling test, saying so, when libmimg has no driver
 * for format NAME (a build without it, not a missing oracle). */
#define TU_SKIP_WITHOUT_FORMAT(name)                                           \
	do {                                                                   \
		if (!tu_have_format(name)) {                                   \
			printf("%s: no %s driver; skipped\n", __func__, name); \
			return;                                                \
		}                                                              \
	} while (0)
/* True when both qemu-img and the driver for FORMAT are there; else says
 * on stderr which is missing (the test program then exits 77). */
bool tu_have_qemu_img_and(const char *format);
/* True when qemu-img and qemu-io are both there; else says so on stderr
 * (the run is then reported as skipped). */
bool tu_have_qemu(void);
/* Return from the calling test when qemu-img or qemu-io is missing. */
#define TU_SKIP_WITHOUT_QEMU()                                                 \
	do {                                                                   \
		if (!tu_have_qemu())                                           \
			return;                                                \
	} while (0)
/* Report the run as skipped (77) when no test fails: what the test needs
 * (a file system feature) is missing here.  The test returns early. */
void tu_mark_skipped(void);
/* The whole of PATH, malloc'ed (one byte more, so it is never empty);
 * *LEN receives its length.  The test fails when PATH cannot be read. */
uint8_t *tu_read_file(const char *path, size_t *len);
/* Size of PATH, and the bytes the file system allocates to it; the
 * test fails when PATH cannot be stat'ed. */
uint64_t tu_file_size(const char *path);
uint64_t tu_allocated(const char *path);
/* A secret holding the passphrase PASS. */
struct mimg_secret tu_secret(const char *pass);
/* Open PATH (any format) with FLAGS and the passphrase PASS; the test
 * fails, naming mimg's message, when it cannot. */
struct mimg *tu_open_secret(const char *path, unsigned flags, const char *pass);
/* Create PATH (FORMAT, SIZE bytes) from qemu-img style option text OPTS
 * (NULL: none) with secret S (NULL: none); the test fails, naming OPTS
 * and mimg's message, when it cannot. */
void tu_create(const char *path, const char *format, uint64_t size,
	       const char *opts, const struct mimg_secret *s);
/* qemu-img as the oracle: it finds IMAGE (of FORMAT) clean, and reads it
 * as the SIZE bytes of MODEL (written to model.raw to compare). */
void tu_qemu_reads(const char *image, const char *format, const uint8_t *model,
		   uint64_t size);
/* The dirty runs of bitmap NAME of IMG as text, "off+len," for each, in
 * OUT (CAP bytes); returns 0, or mimg_bitmap_status's error (-EBUSY: the
 * bitmap is in use). */
int tu_dirty_runs(struct mimg *img, const char *name, char *out, size_t cap);
/* mimg_block_status of IMG at OFF, for at most LEN bytes, succeeds with
 * a run of PNUM bytes (0: of any length) whose status has every flag of
 * HAS set and every flag of LACKS clear. */
void tu_assert_status(struct mimg *img, uint64_t off, uint64_t len,
		      uint64_t pnum, unsigned has, unsigned lacks);
/* Counts tu_assert_check accepts beside an exact number. */
#define TU_ANY (-1)  /* any number */
#define TU_SOME (-2) /* at least one */
/* True when the count GOT is WANT (a number, TU_ANY or TU_SOME). */
bool tu_count_is(uint64_t got, long want);
/* mimg_check of IMG with FLAGS succeeds and counts CORRUPTIONS
 * corruptions and LEAKS leaks (a number, TU_ANY or TU_SOME); its first
 * message holds MSG (NULL: not looked at). */
void tu_assert_check(struct mimg *img, unsigned flags, long corruptions,
		     long leaks, const char *msg);
/* Run a shell command; returns its exit status (or -1). */
int tu_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run a shell command (as tu_system); the test fails, naming it, unless
 * it exits 0. */
#define tu_sh(...) tu_sh_done(tu_system(__VA_ARGS__))
/* The test fails unless STATUS, that of the command tu_system ran last
 * in this thread, is 0. */
void tu_sh_done(int status);

/* N scaled by MIMG_TEST_SCALE (a percentage, default 100), at least 1:
 * the iteration count of a long loop, cut down where every iteration is
 * slower (under the sanitizers), never in the plain build. */
int tu_scaled(int n);
/* The step of a loop over cut points under MIMG_TEST_SCALE: 1 by
 * default, 4 at 25 percent. */
int tu_scaled_step(void);

/* Run SUITE with Check and return the process exit status: 1 when a test
 * failed, 77 when none failed but some found an oracle missing. */
int tu_run_suite(Suite *s);

/* Add a TCase named NAME to S with the temporary-directory fixture. */
TCase *tu_tcase(Suite *s, const char *name);

/* The tests one test case runs, as the arguments TESTS, N of
 * tu_tcase_of and tu_main: the names START_TEST defines, in order. */
#define TU_TESTS(...)                                                          \
	(const TTest *const[]){__VA_ARGS__},                                   \
		TU_NELEM(((const TTest *const[]){__VA_ARGS__}))
/* tu_tcase, holding the N TESTS. */
TCase *tu_tcase_of(Suite *s, const char *name, const TTest *const *tests,
		   int n);
/* main() of a program of one test case: suite SUITE whose test case
 * TCASE holds the N TESTS, run by tu_run_suite. */
int tu_main(const char *suite, const char *tcase, const TTest *const *tests,
	    int n);
/* A loop test: run for each _i in [0, N). */
struct tu_loop {
	const TTest *test;
	int n;
};
/* The loop tests of a test case, as the arguments LOOPS, NLOOPS of
 * tu_main_loops: { test, n } each. */
#define TU_LOOPS(...)                                                          \
	(const struct tu_loop[]){__VA_ARGS__},                                 \
		TU_NELEM(((const struct tu_loop[]){__VA_ARGS__}))
/* tu_main whose test case also holds the NLOOPS LOOPS (TESTS may be
 * NULL, N 0). */
int tu_main_loops(const char *suite, const char *tcase,
		  const TTest *const *tests, int n, const struct tu_loop *loops,
		  int nloops);

/* tu_main_loops, when qemu-img and qemu-io are both there (tu_have_qemu):
 * the main() of a program whose every test checks against them; else
 * 77 (skipped). */
int tu_main_qemu(const char *suite, const char *tcase,
		 const TTest *const *tests, int n, const struct tu_loop *loops,
		 int nloops);

/* One test case of a program: NAME holding the N TESTS and the NLOOPS
 * LOOPS, with the checked fixture SETUP, TEARDOWN (NULL: none) beside
 * the temporary directory's. */
struct tu_tcase_def {
	const char *name;
	const TTest *const *tests;
	int n;
	const struct tu_loop *loops;
	int nloops;
	SFun setup, teardown;
};
/* The test cases of a program, as the arguments DEFS, NDEFS of
 * tu_main_cases: { name, TU_TESTS(...), TU_LOOPS(...) } each (or
 * { name, TU_TESTS(...), NULL, 0, setup, teardown }). */
#define TU_TCASES(...)                                                         \
	(const struct tu_tcase_def[]){__VA_ARGS__},                            \
		TU_NELEM(((const struct tu_tcase_def[]){__VA_ARGS__}))
/* main() of a program of several test cases: suite SUITE holding the
 * NDEFS test cases DEFS, run by tu_run_suite. */
int tu_main_cases(const char *suite, const struct tu_tcase_def *defs,
		  int ndefs);

/* A test case NAME holding TEST, run for _i = I only: CK_RUN_CASE=NAME
 * runs it alone, and it has its own TIMEOUT seconds (0: tu_tcase's). */
TCase *tu_case(Suite *s, const char *name, const TTest *test, int i,
	       double timeout);

/* A tu_case for each entry of the array TABLE, named by the entry's
 * member tcase: TEST runs for the entry's index, with TIMEOUT. */
#define TU_TABLE_CASES(s, table, test, timeout)                                \
	for (int tu_i_ = 0; tu_i_ < TU_NELEM(table); tu_i_++)                  \
	tu_case(s, (table)[tu_i_].tcase, test, tu_i_, timeout)

#endif
