/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Power-cut model shared by the qcow2 and VMDK power-cut tests: after a
 * flush everything written before it is durable; writes since the last
 * flush may each be lost or kept, in any combination (disks reorder);
 * an O_DSYNC write (mimg_file_pwrite_dsync) is kept, with the file size.
 * The host-file fault hook copies the image at every flush and records
 * the later writes; at the chosen flush (or at the end) crash.img is made
 * from the image with a random subset of those writes reverted to the
 * last flushed content.
 */
#ifndef MIMG_TEST_POWERCUT_H
#define MIMG_TEST_POWERCUT_H

#include <stdbool.h>

/* Start recording writes to IMAGE (a file in the current directory); the
 * cut happens just before flush number CRASH_AT_FLUSH completes. */
void pc_begin(const char *image, int crash_at_flush);
/* True once the cut happened: the workload may stop. */
bool pc_crashed(void);
/* Stop recording; without a cut so far, cut now.  crash.img holds the
 * image as the disk would after the power cut. */
void pc_end(void);

struct mimg;
/* The whole run: open PATH read-write (and FLAGS), run WORK(img, ARG)
 * with the cut just before flush number AT_FLUSH, close the image and
 * make crash.img.  Returns whether the cut came before the close. */
bool pc_run(const char *path, unsigned flags, int at_flush,
	    void (*work)(struct mimg *img, void *arg), void *arg);
/* qemu-img check's exit status on crash.img: 0 clean, 3 leaks only. */
int pc_qemu_check(void);

#endif
