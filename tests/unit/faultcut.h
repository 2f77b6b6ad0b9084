/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A crash at every point of a workload, for the crash tests that replay
 * it once per cut: after a given number of host-file operations (writes,
 * truncations, flushes: whatever the fault hook sees) every further one
 * fails with -EIO, as if the machine had stopped there.
 */
#ifndef MIMG_TEST_FAULTCUT_H
#define MIMG_TEST_FAULTCUT_H

/* Install the hook; ALLOWED operations succeed, the rest fail (ALLOWED
 * < 0: none fails).  The count of operations seen starts again at 0. */
void fc_begin(long allowed);
/* Change how many more operations succeed, as fc_begin does. */
void fc_allow(long allowed);
/* Operations the hook has seen since fc_begin. */
long fc_seen(void);
/* Remove the hook. */
void fc_end(void);

#endif
