/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Output written behind the caller: the caller fills a buffer and hands
 * it over with the file offset it goes to; a thread of the output's own
 * writes it while the caller fills the next.  For writers whose output
 * is produced in order under a lock (a streamOptimized VMDK is appended
 * grain after grain in the conversion's order): the write to the host
 * file leaves that ordered part, which every worker waits for, and runs
 * beside the compression.  At most NBUFS buffers exist, so memory stays
 * bounded and a caller that outruns the file waits for a free buffer.
 *
 * One caller at a time (the owner holds its own lock).  The first write
 * error is kept and returned by every later call, with its message.
 */
#ifndef MIMG_SEQOUT_H
#define MIMG_SEQOUT_H

#include <stddef.h>
#include <stdint.h>

struct mimg_file;
struct mimg_seqout;

/* An output to F with NBUFS (at least 2) buffers of BUFSIZE bytes; *BUFP
 * is the first to fill.  0 or -ENOMEM (with the error set). */
int mimg__seqout_new(struct mimg_file *f, size_t bufsize, unsigned nbufs,
		     struct mimg_seqout **outp, uint8_t **bufp);
/* Hand over *BUFP, whose first LEN bytes go to file offset OFF, and get
 * in *BUFP a free buffer to fill next (waiting for one).  0, or the
 * first write error. */
int mimg__seqout_submit(struct mimg_seqout *o, uint8_t **bufp, size_t len,
			uint64_t off);
/* Wait until everything handed over is in the file.  0, or the first
 * write error. */
int mimg__seqout_drain(struct mimg_seqout *o);
/* Drain, stop the thread and free every buffer (the one being filled
 * too).  NULL is fine. */
void mimg__seqout_free(struct mimg_seqout *o);

#endif
