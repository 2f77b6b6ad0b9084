/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * JSON-like value trees for info and check reports, and their rendering
 * in qemu-img's JSON layout (4-space indent, "key": value).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "value.h"

struct mimg_value *mimg_value_new_object(void)
{
	struct mimg_value *v = calloc(1, sizeof(*v));
	if (v)
		v->type = MIMG_VALUE_OBJECT;
	return v;
}

static void value_clear(struct mimg_value *v)
{
	free(v->key);
	if (v->type == MIMG_VALUE_STRING)
		free(v->v.s);
	if (v->type == MIMG_VALUE_OBJECT || v->type == MIMG_VALUE_ARRAY) {
		for (size_t i = 0; i < v->v.list.n; i++)
			value_clear(&v->v.list.items[i]);
		free(v->v.list.items);
	}
}

void mimg_value_free(struct mimg_value *v)
{
	if (!v)
		return;
	value_clear(v);
	free(v);
}

struct mimg_value *mimg_value_add(struct mimg_value *c, const char *key,
				  enum mimg_value_type type)
{
	struct mimg_value *items, *nv;
	char *k = NULL;

	if (key && !(k = strdup(key)))
		return NULL;
	items = realloc(c->v.list.items, (c->v.list.n + 1) * sizeof(*items));
	if (!items) {
		free(k);
		return NULL;
	}
	c->v.list.items = items;
	nv = &items[c->v.list.n++];
	memset(nv, 0, sizeof(*nv));
	nv->type = type;
	nv->key = k;
	return nv;
}

/* Add a scalar under KEY: VAL's type and value. */
static struct mimg_value *add_scalar(struct mimg_value *c, const char *key,
				     struct mimg_value val)
{
	struct mimg_value *v = mimg_value_add(c, key, val.type);
	if (v)
		v->v = val.v;
	return v;
}

struct mimg_value *mimg_value_add_bool(struct mimg_value *c, const char *key,
				       bool b)
{
	return add_scalar(c, key,
			  (struct mimg_value){.type = MIMG_VALUE_BOOL,
					      .v.b = b});
}

struct mimg_value *mimg_value_add_int(struct mimg_value *c, const char *key,
				      int64_t i)
{
	return add_scalar(c, key,
			  (struct mimg_value){.type = MIMG_VALUE_INT,
					      .v.i = i});
}

struct mimg_value *mimg_value_add_uint(struct mimg_value *c, const char *key,
				       uint64_t u)
{
	return add_scalar(c, key,
			  (struct mimg_value){.type = MIMG_VALUE_UINT,
					      .v.u = u});
}

struct mimg_value *mimg_value_add_str(struct mimg_value *c, const char *key,
				      const char *s)
{
	char *copy = strdup(s ? s : "");
	if (!copy)
		return NULL;
	struct mimg_value *v =
		add_scalar(c, key,
			   (struct mimg_value){.type = MIMG_VALUE_STRING,
					       .v.s = copy});
	if (!v)
		free(copy);
	return v;
}

struct mimg_value *mimg_value_find(struct mimg_value *obj, const char *key)
{
	if (!obj || obj->type != MIMG_VALUE_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->v.list.n; i++)
		if (obj->v.list.items[i].key &&
		    strcmp(obj->v.list.items[i].key, key) == 0)
			return &obj->v.list.items[i];
	return NULL;
}

const struct mimg_value *mimg_value_get(const struct mimg_value *obj,
					const char *key)
{
	return mimg_value_find((struct mimg_value *)obj, key);
}

void mimg_value_remove(struct mimg_value *c, const char *key)
{
	struct mimg_value *v = mimg_value_find(c, key);
	if (!v)
		return;
	size_t i = (size_t)(v - c->v.list.items);
	value_clear(v);
	memmove(v, v + 1, (c->v.list.n - i - 1) * sizeof(*v));
	c->v.list.n--;
}

static void sb_indent(struct strbuf *b, int level)
{
	for (int i = 0; i < level; i++)
		strbuf_str(b, "    ");
}

static bool is_valid_codepoint(long cp)
{
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return false;
	/* Unicode noncharacters */
	return (cp & 0xFFFE) != 0xFFFE && !(cp >= 0xFDD0 && cp <= 0xFDEF);
}

/*
 * Decode one code point of modified UTF-8 at P (qemu's rules: C0 80 is
 * NUL; overlong forms, surrogates and noncharacters are invalid).  Sets
 * *END past the bytes consumed; returns -1 for an invalid sequence, which
 * consumes the lead byte and the continuation bytes that were present.
 */
static long utf8_decode(const unsigned char *p, const unsigned char **end)
{
	static const long min_cp[] = {0x80, 0x800, 0x10000, 0x200000,
				      0x4000000};
	unsigned char lead = *p++;
	long cp;
	int len = 0;

	if (lead < 0x80) {
		*end = p;
		return lead;
	}
	if (lead >= 0xFE || !(lead & 0x40)) {
		*end = p;
		return -1;
	}
	for (unsigned mask = 0x80; lead & mask; mask >>= 1)
		len++;
	cp = lead & ((0x80 >> len) - 1);
	for (int i = 1; i < len; i++, p++) {
		if ((*p & 0xC0) != 0x80) {
			*end = p;
			return -1;
		}
		cp = cp << 6 | (*p & 0x3F);
	}
	*end = p;
	if (!is_valid_codepoint(cp))
		return -1;
	if (cp < min_cp[len - 2] && !(cp == 0 && len == 2))
		return -1;
	return cp;
}

/* A JSON string as qemu's writer quotes it: control characters, DEL and
 * everything outside ASCII as \uXXXX (uppercase hex, surrogate pairs
 * beyond the BMP), invalid UTF-8 as U+FFFD. */
static void sb_json_string(struct strbuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *next;

	strbuf_str(b, "\"");
	for (; *p; p = next) {
		char esc[16];
		long cp = utf8_decode(p, &next);
		switch (cp) {
		case '"': strbuf_str(b, "\\\""); break;
		case '\\': strbuf_str(b, "\\\\"); break;
		case '\n': strbuf_str(b, "\\n"); break;
		case '\r': strbuf_str(b, "\\r"); break;
		case '\t': strbuf_str(b, "\\t"); break;
		case '\b': strbuf_str(b, "\\b"); break;
		case '\f': strbuf_str(b, "\\f"); break;
		default:
			if (cp < 0)
				cp = 0xFFFD;
			if (cp > 0xFFFF) {
				snprintf(esc, sizeof(esc), "\\u%04lX\\u%04lX",
					 0xD800 + ((cp - 0x10000) >> 10),
					 0xDC00 + ((cp - 0x10000) & 0x3FF));
				strbuf_str(b, esc);
			} else if (cp < 0x20 || cp >= 0x7F) {
				snprintf(esc, sizeof(esc), "\\u%04lX", cp);
				strbuf_str(b, esc);
			} else {
				char c = (char)cp;
				strbuf_add(b, &c, 1);
			}
		}
	}
	strbuf_str(b, "\"");
}

static void sb_value(struct strbuf *b, const struct mimg_value *v, int level)
{
	char num[32];

	switch (v->type) {
	case MIMG_VALUE_NULL: strbuf_str(b, "null"); break;
	case MIMG_VALUE_BOOL: strbuf_str(b, v->v.b ? "true" : "false"); break;
	case MIMG_VALUE_INT:
		snprintf(num, sizeof(num), "%" PRId64, v->v.i);
		strbuf_str(b, num);
		break;
	case MIMG_VALUE_UINT:
		snprintf(num, sizeof(num), "%" PRIu64, v->v.u);
		strbuf_str(b, num);
		break;
	case MIMG_VALUE_STRING: sb_json_string(b, v->v.s); break;
	case MIMG_VALUE_OBJECT:
	case MIMG_VALUE_ARRAY: {
		bool obj = v->type == MIMG_VALUE_OBJECT;
		/* Even an empty container gets the newline before its
		 * closing bracket, as in qemu's writer. */
		strbuf_str(b, obj ? "{\n" : "[\n");
		for (size_t i = 0; i < v->v.list.n; i++) {
			const struct mimg_value *it = &v->v.list.items[i];
			sb_indent(b, level + 1);
			if (obj) {
				sb_json_string(b, it->key ? it->key : "");
				strbuf_str(b, ": ");
			}
			sb_value(b, it, level + 1);
			strbuf_str(b, i + 1 < v->v.list.n ? ",\n" : "\n");
		}
		sb_indent(b, level);
		strbuf_str(b, obj ? "}" : "]");
		break;
	}
	}
}

char *mimg_value_to_json(const struct mimg_value *v)
{
	struct strbuf b = {0};
	sb_value(&b, v, 0);
	return strbuf_finish(&b);
}
