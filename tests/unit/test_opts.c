/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Size parsing (mimg_parse_size) and qemu-img style option lists
 * (mimg_opts_parse and the driver option helpers).  Expected values are
 * what qemu-img 7.2 accepts and computes for the same text.
 */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "driver.h"
#include "mimg.h"
#include "testutil.h"

static uint64_t size_ok(const char *text)
{
	uint64_t v = 0xdeadbeef;
	int r = mimg_parse_size(text, &v);
	ck_assert_msg(r == 0, "'%s' refused: %s", text, mimg_errmsg());
	return v;
}

static int size_err(const char *text)
{
	uint64_t v = 0xdeadbeef;
	int r = mimg_parse_size(text, &v);
	ck_assert_msg(r < 0, "'%s' accepted as %llu", text,
		      (unsigned long long)v);
	ck_assert_uint_eq(v, 0xdeadbeef); /* untouched on error */
	return r;
}

/* Sizes qemu-img accepts, with what it makes of them. */
static const struct {
	const char *text;
	uint64_t value;
} good_sizes[] = {
	{"0", 0},
	{"100", 100},
	{"5b", 5},
	{"5B", 5},
	{"1k", 1024},
	{"1K", 1024},
	{"3M", 3ull << 20},
	{"3m", 3ull << 20},
	{"20G", 20ull << 30},
	{"2T", 2ull << 40},
	{"1P", 1ull << 50},
	{"7E", 7ull << 60},
	{"9223372036854775807", 9223372036854775807ull},
	{"1.5G", 1610612736ull},
	{"1.5k", 1536},
	{"0.5k", 512},
	/* rounded to the nearest byte like qemu-img: 1433.6 -> 1434 */
	{"1.4k", 1434},
	{"1.6k", 1638},
	{"3.3M", 3460301},
	{"1.9999k", 2048},
	{"1.0001k", 1024},
	{"1.k", 1024},
	{"0x1000", 4096},
	{"0X10", 16},
	/* leading blanks are skipped, as qemu-img does */
	{" 5", 5},
	{"\t5k", 5120},
	{" 0x10", 16},
};

START_TEST(size_accepted)
{
	ck_assert_uint_eq(size_ok(good_sizes[_i].text), good_sizes[_i].value);
}
END_TEST

START_TEST(size_fraction_ignores_locale)
{
	/* a library caller may run with a ',' decimal point */
	const char *const locales[] = {"de_DE.UTF-8", "de_DE.utf8",
				       "fr_FR.UTF-8", "fr_FR.utf8",
				       "de_DE",	      NULL};
	const char *const *l = locales;
	for (; *l; l++)
		if (setlocale(LC_NUMERIC, *l))
			break;
	if (!*l) {
		printf("size_fraction_ignores_locale: no locale with a comma "
		       "decimal point installed; skipped\n");
		return;
	}
	ck_assert_uint_eq(size_ok("1.5G"), 1610612736ull);
	ck_assert_uint_eq(size_ok("1.4k"), 1434);
	setlocale(LC_NUMERIC, "C");
}
END_TEST

/* Sizes qemu-img refuses, with the error mimg gives. */
static const struct {
	const char *text;
	int err;
} bad_sizes[] = {
	{"1x", -EINVAL},
	{"", -EINVAL},
	{"-5", -EINVAL},
	{"k", -EINVAL},
	{"5kB", -EINVAL},
	{"1e3", -EINVAL},
	{"1.5e3k", -EINVAL},
	{"1.5", -EINVAL}, /* fractional bytes */
	{"1.5b", -EINVAL},
	{".5G", -EINVAL},
	{"1..5G", -EINVAL},
	{"0x1.5", -EINVAL},
	{"00x10", -EINVAL},
	{"1 G", -EINVAL},
	{"5 ", -EINVAL},
	{" -5", -EINVAL},
	{" ", -EINVAL},
	/* qemu-img's limit is INT64_MAX */
	{"8E", -ERANGE},
	{"16E", -ERANGE},
	{"9223372036854775808", -ERANGE},
	{"18446744073709551615", -ERANGE},
	{"18446744073709551616", -ERANGE},
	{"99999999999999999999999k", -ERANGE},
	{"8192P", -ERANGE},
	{"0xffffffffffffffff", -ERANGE},
};

START_TEST(size_refused)
{
	ck_assert_int_eq(size_err(bad_sizes[_i].text), bad_sizes[_i].err);
}
END_TEST

START_TEST(size_errors)
{
	ck_assert(mimg_parse_size(NULL, &(uint64_t){0}) == -EINVAL);
	/* the message quotes the text */
	size_err("12q");
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "12q"));
}
END_TEST

START_TEST(create_rounds_to_sectors)
{
	static const struct {
		const char *name;
		uint64_t size, file_size;
	} c[] = {
		{"a.img", 1, 512},
		{"b.img", 513, 1024},
		{"c.img", 1536, 1536},
		{"z.img", 0, 0},
	};
	for (int i = 0; i < TU_NELEM(c); i++) {
		ck_assert_int_eq(mimg_create(c[i].name, "raw", c[i].size, NULL,
					     0),
				 0);
		ck_assert_uint_eq(tu_file_size(c[i].name), c[i].file_size);
	}
	ck_assert_int_eq(mimg_create("big.img", "raw", 1ull << 63, NULL, 0),
			 -EFBIG);
}
END_TEST

/* Parse TEXT, expect N options. */
static struct mimg_opt *parse(const char *text, int n)
{
	struct mimg_opt *o = NULL;
	int r = mimg_opts_parse(text, &o);
	ck_assert_msg(r == n, "'%s': %d options, expected %d (%s)", text, r, n,
		      mimg_errmsg());
	return o;
}

/* Option texts and the options they parse into: N of them, each key and
 * value as KV lists them (NULL: not checked). */
static const struct {
	const char *text;
	int n;
	const char *kv[6];
} parses[] = {
	{"a=b,c=d", 2, {"a", "b", "c", "d"}},
	{"cluster_size=64k,compat=1.1,preallocation=off",
	 3,
	 {NULL, "64k", NULL, "1.1"}},
	{"", 0, {NULL}},
	/* an escaped comma may end a value */
	{"a=1,,", 1, {NULL, "1,"}},
	/* the value may contain '=' */
	{"backing_file=x=y.img", 1, {"backing_file", "x=y.img"}},
	{"k=", 1, {NULL, ""}},
	{"backing_file=a,,b.img,backing_fmt=raw",
	 2,
	 {"backing_file", "a,b.img", "backing_fmt", "raw"}},
	{"x=,,,,,y=1", 2, {NULL, ",,", "y"}},
	/* a bare key is "on" */
	{"lazy_refcounts,a=b", 2, {"lazy_refcounts", "on", "a"}},
	{"a=b,flag", 2, {NULL, NULL, "flag", "on"}},
};

START_TEST(opts_parsed)
{
	struct mimg_opt *o = parse(parses[_i].text, parses[_i].n);
	for (int k = 0; k < 2 * parses[_i].n && k < 6; k++) {
		const char *want = parses[_i].kv[k];
		if (want)
			ck_assert_str_eq(k % 2 ? o[k / 2].value : o[k / 2].key,
					 want);
	}
	mimg_opts_free(o, (size_t)parses[_i].n);
	mimg_opts_free(NULL, 0);
}
END_TEST

START_TEST(escaped_comma_reaches_create)
{
	struct mimg_opt *o = parse("preallocation=off,,x", 1);
	ck_assert_str_eq(o[0].value, "off,x");
	/* refused like qemu-img: "invalid parameter value: off,x" */
	ck_assert_int_eq(mimg_create("a.img", "raw", 4096, o, 1), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "off,x"));
	mimg_opts_free(o, 1);
}
END_TEST

START_TEST(opts_empty_name_refused)
{
	struct mimg_opt *o = (struct mimg_opt *)1;
	ck_assert_int_eq(mimg_opts_parse("=x", &o), -EINVAL);
	ck_assert_ptr_null(o);
	ck_assert_int_eq(mimg_opts_parse("a=1,,,=2", &o), -EINVAL);
	ck_assert_int_eq(mimg_opts_parse(",", &o), -EINVAL);
	/* a trailing separator, as qemu-img ("Invalid option list") */
	ck_assert_int_eq(mimg_opts_parse("preallocation=off,", &o), -EINVAL);
	ck_assert_ptr_null(o);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "preallocation=off,"));
}
END_TEST

START_TEST(opts_last_wins)
{
	struct mimg_opt *o = parse("preallocation=full,preallocation=off", 2);
	ck_assert_str_eq(mimg__opt(o, 2, "preallocation"), "off");
	ck_assert_ptr_null(mimg__opt(o, 2, "size"));
	/* through create: the file stays sparse */
	ck_assert_int_eq(mimg_create("a.img", "raw", 1 << 20, o, 2), 0);
	struct stat st;
	ck_assert_int_eq(stat("a.img", &st), 0);
	ck_assert_int_eq(st.st_size, 1 << 20);
	ck_assert_int_lt(st.st_blocks * 512, 1 << 20);
	mimg_opts_free(o, 2);
}
END_TEST

START_TEST(opts_unknown_refused)
{
	struct mimg_opt *o = parse("preallocation=off,foo=bar", 2);
	ck_assert_int_eq(mimg_create("a.img", "raw", 4096, o, 2), -EINVAL);
	/* qemu-img's words, after the file name */
	ck_assert_str_eq(mimg_errmsg(), "a.img: Invalid parameter 'foo'");
	struct stat st;
	ck_assert_int_ne(stat("a.img", &st), 0); /* nothing created */
	mimg_opts_free(o, 2);

	ck_assert_int_eq(mimg_create("a.img", "nosuchformat", 4096, NULL, 0),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "nosuchformat"));
}
END_TEST

START_TEST(opt_helpers)
{
	bool b = false;
	const char *yes[] = {"on", "true", "yes", "1", "ON", "True"};
	const char *no[] = {"off", "false", "no", "0", "OFF"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		b = false;
		ck_assert_int_eq(mimg__opt_bool("k", yes[i], &b), 0);
		ck_assert(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++) {
		b = true;
		ck_assert_int_eq(mimg__opt_bool("k", no[i], &b), 0);
		ck_assert(!b);
	}
	ck_assert_int_eq(mimg__opt_bool("lazy_refcounts", "maybe", &b),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "lazy_refcounts"));
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "maybe"));

	uint64_t v = 0;
	ck_assert_int_eq(mimg__opt_size("cluster_size", "64k", &v), 0);
	ck_assert_uint_eq(v, 65536);
	ck_assert_int_eq(mimg__opt_size("cluster_size", "64q", &v), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "cluster_size"));

	enum mimg_prealloc p;
	ck_assert_int_eq(mimg__opt_prealloc("off", &p), 0);
	ck_assert_int_eq(p, MIMG_PREALLOC_OFF);
	ck_assert_int_eq(mimg__opt_prealloc("metadata", &p), 0);
	ck_assert_int_eq(p, MIMG_PREALLOC_METADATA);
	ck_assert_int_eq(mimg__opt_prealloc("falloc", &p), 0);
	ck_assert_int_eq(p, MIMG_PREALLOC_FALLOC);
	ck_assert_int_eq(mimg__opt_prealloc("full", &p), 0);
	ck_assert_int_eq(p, MIMG_PREALLOC_FULL);
	ck_assert_int_eq(mimg__opt_prealloc("on", &p), -EINVAL);
	ck_assert_str_eq(mimg_errmsg(), "invalid parameter value: on");
}
END_TEST

/* Each driver's create order names every create option it takes once
 * and nothing else, so that no option given is left out of the line. */
START_TEST(create_order_covers_options)
{
	for (const struct mimg_driver *const *d = mimg_drivers; *d; d++) {
		const struct mimg_optdesc *o = (*d)->create_opts;
		const char *order = mimg__create_order((*d)->name);
		if (!o)
			continue;
		ck_assert_msg(order, "%s: no create order", (*d)->name);
		size_t words = 0;
		for (const char *w = order; *w; words++) {
			size_t len = strcspn(w, " "), n = strcspn(w, " =");
			size_t found = 0;
			for (size_t i = 0; o[i].name; i++)
				found += strlen(o[i].name) == n &&
					 memcmp(o[i].name, w, n) == 0;
			ck_assert_msg(found == 1,
				      "%s: '%.*s' in its create order",
				      (*d)->name, (int)n, w);
			w += len + strspn(w + len, " ");
		}
		ck_assert_uint_eq(words, mimg__opts_count(o));
	}
}
END_TEST

/* The line for options given twice, sizes, numbers and defaults; the
 * expected texts are qemu-img 7.2's. */
START_TEST(create_summary_as_qemu)
{
	struct mimg_opt qo[] = {{"cluster_size", "64k"},
				{"lazy_refcounts", "yes"},
				{"cluster_size", "0x20000"},
				{"backing_fmt", "raw"},
				{"encrypt.iter-time", "0x20"}};
	char *t = NULL;
	ck_assert_int_eq(mimg_create_summary("qcow2", 1048576, qo, 5, &t), 0);
	ck_assert_str_eq(t, "encrypt.iter-time=32 cluster_size=131072 "
			    "extended_l2=off compression_type=zlib "
			    "size=1048576 backing_fmt=raw lazy_refcounts=yes "
			    "refcount_bits=16");
	free(t);
	ck_assert_int_eq(mimg_create_summary("vpc", 512, NULL, 0, &t), 0);
	ck_assert_str_eq(t, "size=512");
	free(t);
	/* a choice qemu-img refuses after the line: listed */
	struct mimg_opt choice[] = {{"compression_type", "foo"}};
	ck_assert_int_eq(mimg_create_summary("qcow2", 512, choice, 1, &t), 0);
	ck_assert_ptr_nonnull(strstr(t, " compression_type=foo "));
	free(t);
	struct mimg_opt bad[] = {{"cluster_size", "64q"}};
	ck_assert_int_eq(mimg_create_summary("qcow2", 512, bad, 1, &t),
			 -EINVAL);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(mimg_create_summary("nosuch", 512, NULL, 0, &t),
			 -EINVAL);
	ck_assert_int_eq(mimg_create_summary("raw", 512, NULL, 0, NULL),
			 -EINVAL);
}
END_TEST

int main(void)
{
	return tu_main_cases(
		"opts",
		TU_TCASES({"sizes",
			   TU_TESTS(size_fraction_ignores_locale, size_errors,
				    create_rounds_to_sectors),
			   TU_LOOPS({size_accepted, TU_NELEM(good_sizes)},
				    {size_refused, TU_NELEM(bad_sizes)})},
			  {"options",
			   TU_TESTS(escaped_comma_reaches_create,
				    opts_empty_name_refused, opts_last_wins,
				    opts_unknown_refused, opt_helpers,
				    create_order_covers_options,
				    create_summary_as_qemu),
			   TU_LOOPS({opts_parsed, TU_NELEM(parses)})}));
}
