/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Option schemas: checking "-o" options against a driver's table (types,
 * ranges, unknown keys, repeated keys, ",," escapes) with qemu-img 7.2's
 * messages, and the listings behind "-o help".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "mimg.h"
#include "testutil.h"

static const char *const colours[] = {"red", "green", NULL};

enum { T_FLAG, T_LEN, T_NAME, T_NUM, T_PAINT, T_COUNT };
static const struct mimg_optdesc schema[] = {
	{"flag", MIMG_OPTK_BOOL, "A flag", "off", NULL, NULL, 0},
	{"len", MIMG_OPTK_SIZE, "A length", "64k", NULL, NULL, 0},
	{"name", MIMG_OPTK_STRING, "A name", NULL, NULL, NULL, 0},
	{"num", MIMG_OPTK_NUMBER, "A number", "16", NULL, NULL, 0},
	{"paint", MIMG_OPTK_ENUM, "A colour", "red", colours, "colour", 0},
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};
static const struct mimg_optdesc create_only[] = {
	{"cluster_size", MIMG_OPTK_SIZE, "x", NULL, NULL, NULL, 0},
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};

/* Parse TEXT and check it against the schema; VALS is filled. */
static int check(const char *text, struct mimg_optval *vals)
{
	struct mimg_opt *o;
	int n = mimg_opts_parse(text, &o);
	ck_assert_msg(n >= 0, "'%s' not parsed: %s", text, mimg_errmsg());
	int r = mimg__opts_validate(schema, create_only, o, (size_t)n, vals);
	/* values point into the option array: copy what the tests read */
	static char keep[T_COUNT][64];
	for (int i = 0; r == 0 && i < T_COUNT; i++)
		if (vals[i].s && vals[i].s != schema[i].def) {
			snprintf(keep[i], sizeof(keep[i]), "%s", vals[i].s);
			vals[i].s = keep[i];
		}
	mimg_opts_free(o, (size_t)n);
	return r;
}

static void refused(const char *text, const char *message)
{
	struct mimg_optval v[T_COUNT];
	ck_assert_int_lt(check(text, v), 0);
	ck_assert_str_eq(mimg_errmsg(), message);
}

START_TEST(defaults_and_types)
{
	struct mimg_optval v[T_COUNT];
	ck_assert_int_eq(check("", v), 0);
	for (int i = 0; i < T_COUNT; i++)
		ck_assert(!v[i].set);
	ck_assert(!v[T_FLAG].b);
	ck_assert_uint_eq(v[T_LEN].u, 65536);
	ck_assert_ptr_null(v[T_NAME].s);
	ck_assert_uint_eq(v[T_NUM].u, 16);
	ck_assert_uint_eq(v[T_PAINT].u, 0);

	ck_assert_int_eq(check("flag=on,len=1.5M,name=x,num=0x20,paint=green",
			       v),
			 0);
	for (int i = 0; i < T_COUNT; i++)
		ck_assert(v[i].set);
	ck_assert(v[T_FLAG].b);
	ck_assert_uint_eq(v[T_LEN].u, 1572864);
	ck_assert_str_eq(v[T_NAME].s, "x");
	ck_assert_uint_eq(v[T_NUM].u, 32);
	ck_assert_uint_eq(v[T_PAINT].u, 1);
	/* a bare key is "on" */
	ck_assert_int_eq(check("flag", v), 0);
	ck_assert(v[T_FLAG].b);
}
END_TEST

START_TEST(booleans_as_qemu)
{
	struct mimg_optval v[T_COUNT];
	const char *yes[] = {"on", "yes", "true", "y"};
	const char *no[] = {"off", "no", "false", "n"};
	char text[32];
	for (int i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "flag=%s", yes[i]);
		ck_assert_int_eq(check(text, v), 0);
		ck_assert(v[T_FLAG].b);
		snprintf(text, sizeof(text), "flag=%s", no[i]);
		ck_assert_int_eq(check(text, v), 0);
		ck_assert(!v[T_FLAG].b);
	}
	/* qemu-img 7.2 refuses these */
	refused("flag=1", "Parameter 'flag' expects 'on' or 'off'");
	refused("flag=ON", "Parameter 'flag' expects 'on' or 'off'");
	refused("flag=maybe", "Parameter 'flag' expects 'on' or 'off'");
}
END_TEST

START_TEST(numbers_and_sizes)
{
	struct mimg_optval v[T_COUNT];
	ck_assert_int_eq(check("num= 16", v), 0); /* leading blanks */
	ck_assert_uint_eq(v[T_NUM].u, 16);
	ck_assert_int_eq(check("num=010", v), 0); /* octal, as strtoull */
	ck_assert_uint_eq(v[T_NUM].u, 8);
	/* "-1" wraps as in qemu; range checks belong to the option */
	ck_assert_int_eq(check("num=-1", v), 0);
	ck_assert_uint_eq(v[T_NUM].u, UINT64_MAX);
	refused("num=x", "Parameter 'num' expects a number");
	refused("num=1k", "Parameter 'num' expects a number");
	refused("num=", "Parameter 'num' expects a number");
	refused("num=99999999999999999999",
		"Value '99999999999999999999' is out of range for parameter "
		"'num'");
	const char *size_msg =
		"Parameter 'len' expects a non-negative number below 2^64\n"
		"Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, "
		"tera-, peta-\nand exabytes, respectively.";
	refused("len=abc", size_msg);
	refused("len=-1", size_msg);
	refused("len=", size_msg);
	refused("len=99999999999999999999",
		"Value '99999999999999999999' is out of range for parameter "
		"'len'");
}
END_TEST

START_TEST(enums_and_strings)
{
	struct mimg_optval v[T_COUNT];
	/* the refusal names the option as qemu's QAPI does */
	refused("paint=blue", "Parameter 'colour' does not accept value "
			      "'blue'");
	refused("paint=", "Parameter 'colour' does not accept value ''");
	refused("paint=Red", "Parameter 'colour' does not accept value "
			     "'Red'");
	ck_assert_int_eq(check("name=", v), 0);
	ck_assert(v[T_NAME].set);
	ck_assert_str_eq(v[T_NAME].s, "");
}
END_TEST

START_TEST(unknown_and_repeated_keys)
{
	struct mimg_optval v[T_COUNT];
	refused("foo=1", "Invalid parameter 'foo'");
	/* an unknown key is named even after a bad value */
	refused("num=x,foo=1", "Invalid parameter 'foo'");
	refused("cluster_size=4k", "Invalid parameter 'cluster_size'\nThis "
				   "option is only supported for image "
				   "creation");
	/* the last of repeated keys wins, as in qemu-img */
	ck_assert_int_eq(check("num=4,num=8", v), 0);
	ck_assert_uint_eq(v[T_NUM].u, 8);
	/* but every occurrence is checked */
	refused("num=x,num=8", "Parameter 'num' expects a number");
	/* names are case-sensitive */
	refused("Flag=on", "Invalid parameter 'Flag'");
}
END_TEST

START_TEST(comma_escapes)
{
	struct mimg_optval v[T_COUNT];
	ck_assert_int_eq(check("name=a,,b,,,,c,num=2", v), 0);
	ck_assert_str_eq(v[T_NAME].s, "a,b,,c");
	ck_assert_uint_eq(v[T_NUM].u, 2);
	/* an escaped comma stays in a value that must be a number */
	refused("num=1,,2", "Parameter 'num' expects a number");
	ck_assert(mimg_opts_has_help("help"));
	ck_assert(mimg_opts_has_help("a=b,?"));
	ck_assert(mimg_opts_has_help("cluster_size=4k,help"));
	ck_assert(!mimg_opts_has_help("help=on"));
	ck_assert(!mimg_opts_has_help("name=help"));
	ck_assert(!mimg_opts_has_help("name=x,,help"));
	ck_assert(!mimg_opts_has_help(""));
}
END_TEST

/* Collect the names of a listing, comma-separated. */
static int listing(const char *fmt, unsigned which, char *out, size_t cap)
{
	struct mimg_opt_info o = {.size = sizeof(o)};
	int r;
	size_t i = 0;
	out[0] = 0;
	while ((r = mimg_format_opt_info(fmt, which, i, &o)) == 0) {
		ck_assert_ptr_nonnull(o.help);
		size_t l = strlen(out);
		snprintf(out + l, cap - l, "%s%s=%s", i ? "," : "", o.name,
			 o.type);
		i++;
	}
	return r == -ENOENT ? (int)i : r;
}

START_TEST(listings)
{
	char buf[2048];
	ck_assert_int_eq(listing("raw", MIMG_OPTS_CREATE, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "size=size");
	ck_assert_int_eq(listing("raw", MIMG_OPTS_FILE, buf, sizeof(buf)), 2);
	ck_assert_str_eq(buf, "preallocation=str,size=size");
	ck_assert_int_eq(listing("vdi", MIMG_OPTS_FILE, buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "preallocation=str,size=size,"
			      "static=bool (on/off)");
	ck_assert_int_eq(listing("qcow2", MIMG_OPTS_CREATE, buf, sizeof(buf)),
			 21);
	ck_assert_int_eq(listing("qcow2", MIMG_OPTS_AMEND, buf, sizeof(buf)),
			 13);
	ck_assert_str_eq(buf, "backing_file=str,backing_fmt=str,compat=str,"
			      "data_file=str,data_file_raw=bool (on/off),"
			      "encrypt.iter-time=num,encrypt.keyslot=num,"
			      "encrypt.new-secret=str,encrypt.old-secret=str,"
			      "encrypt.state=str,lazy_refcounts=bool (on/off),"
			      "refcount_bits=num,size=size");
	ck_assert_int_eq(listing("luks", MIMG_OPTS_AMEND, buf, sizeof(buf)), 5);
	ck_assert_int_eq(listing("vmdk", MIMG_OPTS_AMEND, buf, sizeof(buf)),
			 -ENOTSUP);
	ck_assert_str_eq(mimg_errmsg(), "Format driver 'vmdk' does not "
					"support option amendment");
	ck_assert_int_eq(listing("nosuch", 0, buf, sizeof(buf)), -EINVAL);
	ck_assert_str_eq(mimg_errmsg(), "Unknown file format 'nosuch'");
	ck_assert_int_eq(listing("raw", 0x80, buf, sizeof(buf)), -EINVAL);
	/* a caller built against a smaller struct gets the fields it has */
	struct {
		size_t size;
		const char *name;
	} small = {sizeof(small), NULL};
	ck_assert_int_eq(mimg_format_opt_info("raw", 0, 0,
					      (struct mimg_opt_info *)&small),
			 0);
	ck_assert_str_eq(small.name, "size");
}
END_TEST

/* Every driver's table: sorted by name as qemu-img lists, no repeats,
 * enums with values, defaults that parse. */
START_TEST(driver_tables_sound)
{
	for (const struct mimg_driver *const *d = mimg_drivers; *d; d++) {
		const struct mimg_optdesc *tabs[] = {(*d)->create_opts,
						     (*d)->amend_opts};
		for (int t = 0; t < 2; t++) {
			const struct mimg_optdesc *s = tabs[t];
			size_t n = mimg__opts_count(s);
			for (size_t i = 0; i < n; i++) {
				ck_assert_ptr_nonnull(s[i].help);
				if (i)
					ck_assert_msg(strcmp(s[i - 1].name,
							     s[i].name) < 0,
						      "%s: %s before %s",
						      (*d)->name, s[i - 1].name,
						      s[i].name);
				if (s[i].kind == MIMG_OPTK_ENUM)
					ck_assert_ptr_nonnull(s[i].values);
			}
			if (!n)
				continue;
			struct mimg_optval *v = calloc(n, sizeof(*v));
			ck_assert_int_eq(mimg__opts_validate(s, NULL, NULL, 0,
							     v),
					 0);
			free(v);
		}
		/* amend needs both the schema and the callback */
		ck_assert(((*d)->amend == NULL) == ((*d)->amend_opts == NULL));
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("optschema");
	tu_tcase_of(s, "validate",
		    TU_TESTS(defaults_and_types, booleans_as_qemu,
			     numbers_and_sizes, enums_and_strings,
			     unknown_and_repeated_keys, comma_escapes));
	tu_tcase_of(s, "listing", TU_TESTS(listings, driver_tables_sound));
	return tu_run_suite(s);
}
