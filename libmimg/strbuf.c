/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The growing string buffer (strbuf.h).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "strbuf.h"

/* Room for N more bytes and the terminating NUL. */
static bool reserve(struct strbuf *b, size_t n)
{
	if (b->failed)
		return false;
	char *s = NULL;
	if (n < SIZE_MAX - b->len)
		s = mimg__grow(b->s, &b->cap, b->len + n + 1, 1, 256);
	if (!s) {
		b->failed = true;
		return false;
	}
	b->s = s;
	return true;
}

void strbuf_add(struct strbuf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

void strbuf_str(struct strbuf *b, const char *s)
{
	strbuf_add(b, s, strlen(s));
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *strbuf_finish(struct strbuf *b)
{
	if (!b->s && reserve(b, 0))
		b->s[0] = 0;
	if (b->failed) {
		free(b->s);
		b->s = NULL;
	}
	return b->s;
}
