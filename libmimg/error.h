/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Thread-local error messages.  Every failure path that originates an
 * error sets a message naming the file, field and value:
 *     return mimg_err(-EINVAL, "%s: qcow2: L1 size %u too large", path, n);
 */
#ifndef MIMG_ERROR_H
#define MIMG_ERROR_H

#if defined(__GNUC__)
#define MIMG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MIMG_PRINTF(a, b)
#endif

/* Set the message and return ERR (a negative errno) unchanged. */
int mimg_err(int err, const char *fmt, ...) MIMG_PRINTF(2, 3);
/* Prefix the current message with "<prefix>: " and return ERR. */
int mimg_err_prefix(int err, const char *fmt, ...) MIMG_PRINTF(2, 3);
/* Append the formatted text to the current message and return ERR. */
int mimg_err_suffix(int err, const char *fmt, ...) MIMG_PRINTF(2, 3);
/* Set the message from ERR's strerror, prefixed by a formatted context
 * ("open disk.img: No such file or directory"), return ERR. */
int mimg_err_errno(int err, const char *fmt, ...) MIMG_PRINTF(2, 3);
void mimg_err_clear(void);
/* -EINVAL naming CALL (a public function) when FLAGS has bits outside
 * ALLOWED, so that flags can be added later. */
int mimg__check_flags(const char *call, unsigned flags, unsigned allowed);

#endif
