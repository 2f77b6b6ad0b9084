/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Value trees and their JSON rendering, which must be byte-identical to
 * qemu-img 7.2's pretty JSON writer: 4-space indent, "key": value, empty
 * containers as "{" newline "}", strings escaped as \uXXXX (uppercase hex)
 * for control characters and everything outside ASCII, invalid UTF-8 as
 * U+FFFD.  The expected strings here were produced by qemu-img 7.2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"
#include "value.h"

/* Render V and compare with WANT; frees nothing. */
static void assert_json(const struct mimg_value *v, const char *want)
{
	char *got = mimg_value_to_json(v);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, want);
	free(got);
}

/* JSON of an object with one string member "filename": S. */
static void assert_escaped(const char *s, const char *want_quoted)
{
	struct mimg_value *o = mimg_value_new_object();
	ck_assert_ptr_nonnull(mimg_value_add_str(o, "filename", s));
	char want[256];
	snprintf(want, sizeof(want), "{\n    \"filename\": %s\n}", want_quoted);
	assert_json(o, want);
	mimg_value_free(o);
}

START_TEST(image_info_layout)
{
	/* qemu-img info --output=json of a 1 MiB raw file */
	struct mimg_value *o = mimg_value_new_object();
	ck_assert_ptr_nonnull(mimg_value_add_uint(o, "virtual-size", 1048576));
	ck_assert_ptr_nonnull(mimg_value_add_str(o, "filename", "a.img"));
	ck_assert_ptr_nonnull(mimg_value_add_str(o, "format", "raw"));
	ck_assert_ptr_nonnull(mimg_value_add_uint(o, "actual-size", 0));
	ck_assert_ptr_nonnull(mimg_value_add_bool(o, "dirty-flag", false));
	assert_json(o, "{\n"
		       "    \"virtual-size\": 1048576,\n"
		       "    \"filename\": \"a.img\",\n"
		       "    \"format\": \"raw\",\n"
		       "    \"actual-size\": 0,\n"
		       "    \"dirty-flag\": false\n"
		       "}");
	mimg_value_free(o);
}
END_TEST

START_TEST(nested_containers)
{
	struct mimg_value *o = mimg_value_new_object();
	struct mimg_value *snaps = mimg_value_add(o, "snapshots",
						  MIMG_VALUE_ARRAY);
	ck_assert_ptr_nonnull(snaps);
	struct mimg_value *s1 = mimg_value_add(snaps, NULL, MIMG_VALUE_OBJECT);
	ck_assert_ptr_nonnull(mimg_value_add_str(s1, "id", "1"));
	ck_assert_ptr_nonnull(mimg_value_add_int(s1, "vm-clock-sec", -5));
	struct mimg_value *s2 = mimg_value_add(snaps, NULL, MIMG_VALUE_ARRAY);
	ck_assert_ptr_nonnull(mimg_value_add_uint(s2, NULL, 1));
	ck_assert_ptr_nonnull(mimg_value_add(s2, NULL, MIMG_VALUE_NULL));
	ck_assert_ptr_nonnull(mimg_value_add_bool(s2, NULL, true));
	struct mimg_value *fs = mimg_value_add(o, "format-specific",
					       MIMG_VALUE_OBJECT);
	ck_assert_ptr_nonnull(mimg_value_add_str(fs, "type", "qcow2"));
	struct mimg_value *d = mimg_value_add(fs, "data", MIMG_VALUE_OBJECT);
	ck_assert_ptr_nonnull(mimg_value_add_str(d, "compat", "1.1"));
	ck_assert_ptr_nonnull(mimg_value_add_uint(d, "refcount-bits", 16));
	assert_json(o, "{\n"
		       "    \"snapshots\": [\n"
		       "        {\n"
		       "            \"id\": \"1\",\n"
		       "            \"vm-clock-sec\": -5\n"
		       "        },\n"
		       "        [\n"
		       "            1,\n"
		       "            null,\n"
		       "            true\n"
		       "        ]\n"
		       "    ],\n"
		       "    \"format-specific\": {\n"
		       "        \"type\": \"qcow2\",\n"
		       "        \"data\": {\n"
		       "            \"compat\": \"1.1\",\n"
		       "            \"refcount-bits\": 16\n"
		       "        }\n"
		       "    }\n"
		       "}");
	mimg_value_free(o);
}
END_TEST

START_TEST(empty_containers)
{
	/* qemu's writer puts a newline (indented to the container's level)
	 * before every closing bracket, even of an empty container. */
	struct mimg_value *o = mimg_value_new_object();
	assert_json(o, "{\n}");
	ck_assert_ptr_nonnull(mimg_value_add(o, "a", MIMG_VALUE_ARRAY));
	ck_assert_ptr_nonnull(mimg_value_add(o, "o", MIMG_VALUE_OBJECT));
	assert_json(o, "{\n"
		       "    \"a\": [\n"
		       "    ],\n"
		       "    \"o\": {\n"
		       "    }\n"
		       "}");
	mimg_value_free(o);
}
END_TEST

START_TEST(numbers)
{
	struct mimg_value *o = mimg_value_new_object();
	mimg_value_add_int(o, "min", INT64_MIN);
	mimg_value_add_int(o, "zero", 0);
	mimg_value_add_uint(o, "max", UINT64_MAX);
	assert_json(o, "{\n"
		       "    \"min\": -9223372036854775808,\n"
		       "    \"zero\": 0,\n"
		       "    \"max\": 18446744073709551615\n"
		       "}");
	mimg_value_free(o);
}
END_TEST

START_TEST(string_escapes_ascii)
{
	assert_escaped("plain.img", "\"plain.img\"");
	assert_escaped("q\"b\\s/", "\"q\\\"b\\\\s/\"");
	assert_escaped("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
	/* other control characters and DEL: \u with uppercase hex */
	assert_escaped("a\001b\037c\177", "\"a\\u0001b\\u001Fc\\u007F\"");
}
END_TEST

START_TEST(string_escapes_utf8)
{
	/* qemu-img prints every non-ASCII code point as \uXXXX */
	assert_escaped("\303\251", "\"\\u00E9\"");
	assert_escaped("x\302\200y", "\"x\\u0080y\"");
	/* beyond the BMP: a surrogate pair */
	assert_escaped("x\360\237\230\200y", "\"x\\uD83D\\uDE00y\"");
	/* modified UTF-8's two-byte NUL */
	assert_escaped("x\300\200y", "\"x\\u0000y\"");
}
END_TEST

START_TEST(string_escapes_invalid_utf8)
{
	/* each bad sequence becomes one U+FFFD, later bytes survive */
	assert_escaped("x\377y", "\"x\\uFFFDy\"");
	assert_escaped("x\200y", "\"x\\uFFFDy\"");
	assert_escaped("x\303y", "\"x\\uFFFDy\"");
	assert_escaped("x\342\202y", "\"x\\uFFFDy\"");
	assert_escaped("x\303\251\303y", "\"x\\u00E9\\uFFFDy\"");
	/* overlong, surrogate, beyond U+10FFFF, noncharacters */
	assert_escaped("x\340\200\200y", "\"x\\uFFFDy\"");
	assert_escaped("x\355\240\200y", "\"x\\uFFFDy\"");
	assert_escaped("x\364\220\200\200y", "\"x\\uFFFDy\"");
	assert_escaped("x\370\210\200\200\200y", "\"x\\uFFFDy\"");
	assert_escaped("x\357\277\276y", "\"x\\uFFFDy\"");
	assert_escaped("x\357\267\220y", "\"x\\uFFFDy\"");
	assert_escaped("x\357\277\275y", "\"x\\uFFFDy\"");
	/* a truncated sequence at the very end */
	assert_escaped("x\342", "\"x\\uFFFD\"");
}
END_TEST

START_TEST(keys_are_escaped)
{
	struct mimg_value *o = mimg_value_new_object();
	mimg_value_add_bool(o, "k\"\n", true);
	assert_json(o, "{\n    \"k\\\"\\n\": true\n}");
	mimg_value_free(o);
}
END_TEST

START_TEST(get_find_remove)
{
	struct mimg_value *o = mimg_value_new_object();
	mimg_value_add_uint(o, "a", 1);
	mimg_value_add_str(o, "b", "two");
	mimg_value_add_uint(o, "c", 3);
	const struct mimg_value *b = mimg_value_get(o, "b");
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(b->type, MIMG_VALUE_STRING);
	ck_assert_str_eq(b->v.s, "two");
	ck_assert_ptr_null(mimg_value_get(o, "nope"));
	mimg_value_remove(o, "b");
	mimg_value_remove(o, "nope");
	ck_assert_ptr_null(mimg_value_get(o, "b"));
	ck_assert_uint_eq(mimg_value_get(o, "c")->v.u, 3);
	struct mimg_value *a = mimg_value_find(o, "a");
	a->v.u = 7;
	assert_json(o, "{\n    \"a\": 7,\n    \"c\": 3\n}");
	/* lookups on non-objects find nothing */
	ck_assert_ptr_null(mimg_value_get(a, "a"));
	ck_assert_ptr_null(mimg_value_get(NULL, "a"));
	mimg_value_free(o);
	mimg_value_free(NULL);
}
END_TEST

START_TEST(null_string_is_empty)
{
	struct mimg_value *o = mimg_value_new_object();
	ck_assert_ptr_nonnull(mimg_value_add_str(o, "s", NULL));
	assert_json(o, "{\n    \"s\": \"\"\n}");
	mimg_value_free(o);
}
END_TEST

int main(void)
{
	return tu_main("value", "value",
		       TU_TESTS(image_info_layout, nested_containers,
				empty_containers, numbers, string_escapes_ascii,
				string_escapes_utf8,
				string_escapes_invalid_utf8, keys_are_escaped,
				get_find_remove, null_string_is_empty));
}
