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
/* Report the run as skipped (77) when no test fails: what the test needs
 * (a file system feature) is missing here.  The test returns early. */
void tu_mark_skipped(void);
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

#endif
