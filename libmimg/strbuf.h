/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A growing string buffer for text the library builds (JSON, VMDK
 * descriptors).  An allocation failure sticks: later appends do nothing
 * and strbuf_finish returns NULL, so builders check once at the end.
 */
#ifndef MIMG_STRBUF_H
#define MIMG_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *s;
	size_t len, cap;
	bool failed;
};

/* Append N bytes of S. */
void strbuf_add(struct strbuf *b, const char *s, size_t n);
/* Append the string S. */
void strbuf_str(struct strbuf *b, const char *s);
/* Append formatted text. */
void strbuf_printf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The text built, NUL-terminated, for the caller to free; NULL after an
 * allocation failure (the buffer is released). */
char *strbuf_finish(struct strbuf *b);

#endif
