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
/* Write LEN bytes of BUF at OFF to PATH (creating it); abort on error. */
void tu_write_file(const char *path, const void *buf, size_t len,
		   uint64_t off);
/* Create PATH as a sparse file of SIZE bytes. */
void tu_make_sparse(const char *path, uint64_t size);
/* True when PROG is found in PATH.  When it is not, the test is expected
 * to return early, and tu_run_suite() reports the run as skipped (77). */
int tu_have_program(const char *prog);
/* True when libmimg was built with the driver for format NAME. */
bool tu_have_format(const char *name);
/* True when both qemu-img and the driver for FORMAT are there; else says
 * on stderr which is missing (the test program then exits 77). */
bool tu_have_qemu_img_and(const char *format);
/* True when qemu-img and qemu-io are both there; else says so on stderr
 * (the run is then reported as skipped). */
bool tu_have_qemu(void);
/* Return from the calling test when qemu-img or qemu-io is missing. */
#define TU_SKIP_WITHOUT_QEMU()                                             \
	do {                                                               \
		if (!tu_have_qemu())                                       \
			return;                                            \
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
/* Create PATH (FORMAT, SIZE bytes) from qemu-img style option text OPTS
 * (NULL: none) with secret S (NULL: none); the test fails, naming OPTS
 * and mimg's message, when it cannot. */
void tu_create(const char *path, const char *format, uint64_t size,
	       const char *opts, const struct mimg_secret *s);
/* qemu-img as the oracle: it finds IMAGE (of FORMAT) clean, and reads it
 * as the SIZE bytes of MODEL (written to model.raw to compare). */
void tu_qemu_reads(const char *image, const char *format,
		   const uint8_t *model, uint64_t size);
/* Run a shell command; returns its exit status (or -1). */
int tu_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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

/* A test in a test case of its own, so that CK_RUN_CASE=<name> runs it
 * alone and it gets its own timeout. */
struct tu_case {
	const char *name;
	const TTest *test;
};
/* Add the N CASES to S, each with TIMEOUT seconds (0: Check's default). */
void tu_add_cases(Suite *s, const struct tu_case *cases, int n,
		  double timeout);

#endif
