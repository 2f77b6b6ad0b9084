/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Option schemas: every driver declares its create and amend options in
 * a static table (struct mimg_optdesc); this file checks "-o" options
 * against such a table with qemu-img's wording, lists the tables for
 * "-o help" (mimg_format_opt_info) and says what a created image got as
 * qemu-img's "Formatting" line does (mimg_create_summary).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "error.h"
#include "strbuf.h"

size_t mimg__opts_count(const struct mimg_optdesc *schema)
{
	size_t n = 0;
	while (schema && schema[n].name)
		n++;
	return n;
}

static const struct mimg_optdesc *find_desc(const struct mimg_optdesc *schema,
					    const char *name, size_t *idx)
{
	for (size_t i = 0; schema && schema[i].name; i++)
		if (strcmp(schema[i].name, name) == 0) {
			if (idx)
				*idx = i;
			return &schema[i];
		}
	return NULL;
}

/* qemu's boolean words (case-sensitive, as qemu-img takes them). */
static int parse_bool(const char *key, const char *v, bool *out)
{
	static const char *const yes[] = {"on", "yes", "true", "y"};
	static const char *const no[] = {"off", "no", "false", "n"};
	if (mimg__bool_word(v, yes, no, strcmp, out))
		return 0;
	return mimg_err(-EINVAL, "Parameter '%s' expects 'on' or 'off'", key);
}

/* A number as qemu reads one: base 0, leading blanks, and a '-' that
 * wraps (later range checks refuse it with the option's own message). */
static int parse_number(const char *key, const char *v, uint64_t *out)
{
	char *end;
	const char *p = v;
	while (isspace((unsigned char)*p))
		p++;
	if (!*p)
		return mimg_err(-EINVAL, "Parameter '%s' expects a number",
				key);
	errno = 0;
	unsigned long long n = strtoull(p, &end, 0);
	if (*end || end == p)
		return mimg_err(-EINVAL, "Parameter '%s' expects a number",
				key);
	if (errno == ERANGE)
		return mimg_err(-ERANGE,
				"Value '%s' is out of range for "
				"parameter '%s'",
				v, key);
	*out = n;
	return 0;
}

static int parse_size(const char *key, const char *v, uint64_t *out)
{
	int r = mimg_parse_size(v, out);
	if (r == -ERANGE)
		return mimg_err(-ERANGE,
				"Value '%s' is out of range for "
				"parameter '%s'",
				v, key);
	if (r < 0)
		return mimg_err(-EINVAL,
				"Parameter '%s' expects a non-negative "
				"number below 2^64\nOptional suffix k, M, G, "
				"T, P or E means kilo-, mega-, giga-, tera-, "
				"peta-\nand exabytes, respectively.",
				key);
	return 0;
}

static int parse_enum(const struct mimg_optdesc *d, const char *v,
		      uint64_t *out)
{
	for (uint64_t i = 0; d->values && d->values[i]; i++)
		if (strcmp(d->values[i], v) == 0) {
			*out = i;
			return 0;
		}
	return mimg_err(-EINVAL, "Parameter '%s' does not accept value '%s'",
			d->enum_name ? d->enum_name : d->name, v);
}

static int parse_value(const struct mimg_optdesc *d, const char *v,
		       struct mimg_optval *out)
{
	out->s = v;
	switch (d->kind) {
	case MIMG_OPTK_BOOL: return parse_bool(d->name, v, &out->b);
	case MIMG_OPTK_SIZE: return parse_size(d->name, v, &out->u);
	case MIMG_OPTK_NUMBER: return parse_number(d->name, v, &out->u);
	case MIMG_OPTK_ENUM: return parse_enum(d, v, &out->u);
	case MIMG_OPTK_STRING: return 0;
	}
	return mimg_err(-EINVAL, "Parameter '%s': unknown type", d->name);
}

int mimg__opts_validate(const struct mimg_optdesc *schema,
			const struct mimg_optdesc *create_only,
			const struct mimg_opt *opts, size_t nopts,
			struct mimg_optval *vals)
{
	size_t n = mimg__opts_count(schema);
	int r;
	for (size_t i = 0; i < n; i++) {
		memset(&vals[i], 0, sizeof(vals[i]));
		if (schema[i].def &&
		    (r = parse_value(&schema[i], schema[i].def, &vals[i])) < 0)
			return r;
	}
	/* Every key first, so an unknown one is named whatever follows. */
	for (size_t i = 0; i < nopts; i++) {
		if (find_desc(schema, opts[i].key, NULL))
			continue;
		if (find_desc(create_only, opts[i].key, NULL))
			return mimg_err(-EINVAL,
					"Invalid parameter '%s'\nThis "
					"option is only supported for image "
					"creation",
					opts[i].key);
		return mimg_err(-EINVAL, "Invalid parameter '%s'", opts[i].key);
	}
	/* The last of repeated keys wins, as in qemu; earlier ones are
	 * still checked, as qemu parses each. */
	for (size_t i = 0; i < nopts; i++) {
		size_t k = 0;
		find_desc(schema, opts[i].key, &k);
		struct mimg_optval v = {.set = true};
		if ((r = parse_value(&schema[k], opts[i].value, &v)) < 0)
			return r;
		vals[k] = v;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Listing (-o help)                                                       */

static const char *kind_text(enum mimg_optkind k)
{
	switch (k) {
	case MIMG_OPTK_BOOL: return "bool (on/off)";
	case MIMG_OPTK_SIZE: return "size";
	case MIMG_OPTK_NUMBER: return "num";
	case MIMG_OPTK_ENUM:
	case MIMG_OPTK_STRING: return "str";
	}
	return "str";
}

/* The host file's options that every format passes down, listed with
 * the format's own when the file is named (as qemu-img's "file"
 * protocol lists them). */
static const struct mimg_optdesc file_opts[] = {
	MIMG_OPT_FILE_PREALLOC,
	MIMG_OPT_SIZE,
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};

static int schema_for(const char *format, unsigned which,
		      const struct mimg_optdesc **sp)
{
	const struct mimg_driver *drv;
	if (!format)
		return mimg_err(-EINVAL, "No format given");
	/* an appliance is written (mimg_ova_write), never opened */
	if (strcmp(format, "ova") == 0 && !(which & MIMG_OPTS_AMEND)) {
		*sp = mimg__ova_create_opts;
		return 0;
	}
	if (!(drv = mimg__find_driver(format)))
		return mimg_err(-EINVAL, "Unknown file format '%s'", format);
	if (which & MIMG_OPTS_AMEND) {
		if (!drv->amend_opts)
			return mimg_err(-ENOTSUP,
					"Format driver '%s' does not "
					"support option amendment",
					format);
		*sp = drv->amend_opts;
	} else {
		if (!drv->create)
			return mimg_err(-ENOTSUP,
					"Format driver '%s' does not "
					"support image creation",
					format);
		*sp = drv->create_opts;
	}
	return 0;
}

/* Is entry D of the listing (format table or file table) shown? */
static bool listed(const struct mimg_optdesc *d, unsigned which)
{
	return !(d->flags & MIMG_OPTF_FILE) || (which & MIMG_OPTS_FILE);
}

/* Collect the listed entries of SCHEMA (and the file's, with
 * MIMG_OPTS_FILE, unless the format has its own of that name) into OUT
 * (room for CAP), sorted by name as qemu-img lists them. */
static size_t collect(const struct mimg_optdesc *schema, unsigned which,
		      const struct mimg_optdesc **out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; schema && schema[i].name && n < cap; i++)
		if (listed(&schema[i], which))
			out[n++] = &schema[i];
	if ((which & MIMG_OPTS_FILE) && !(which & MIMG_OPTS_AMEND))
		for (size_t i = 0; file_opts[i].name && n < cap; i++)
			if (!find_desc(schema, file_opts[i].name, NULL))
				out[n++] = &file_opts[i];
	/* insertion sort: the tables are short */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i;
		     j > 0 && strcmp(out[j - 1]->name, out[j]->name) > 0; j--) {
			const struct mimg_optdesc *t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

int mimg_format_opt_info(const char *format, unsigned which, size_t index,
			 struct mimg_opt_info *info)
{
	const struct mimg_optdesc *schema = NULL, *list[128];
	int r;
	mimg_err_clear();
	if ((r = mimg__check_flags("mimg_format_opt_info", which,
				   MIMG_OPTS_ALL_FLAGS)) < 0)
		return r;
	if (!info || info->size < sizeof(size_t))
		return mimg_err(-EINVAL, "mimg_format_opt_info: bad info "
					 "size");
	if ((r = schema_for(format, which, &schema)) < 0)
		return r;
	if (schema == mimg__ova_create_opts)
		which &= ~(unsigned)MIMG_OPTS_FILE;
	size_t n = collect(schema, which, list, sizeof(list) / sizeof(*list));
	if (index >= n)
		return -ENOENT;
	struct mimg_opt_info full = {
		.size = sizeof(full),
		.name = list[index]->name,
		.type = kind_text(list[index]->kind),
		.help = list[index]->help,
		.def = list[index]->def,
	};
	size_t len = info->size < sizeof(full) ? info->size : sizeof(full);
	memcpy((char *)info + sizeof(size_t), (char *)&full + sizeof(size_t),
	       len - sizeof(size_t));
	return 0;
}

/* ---------------------------------------------------------------------- */
/* What a created image got (the "Formatting" line)                        */

/* qemu-img 7.2's order, read off its output with every option given,
 * and the defaults it lists. */
static const struct {
	const char *format, *order;
} create_orders[] = {
	{"raw", "size preallocation"},
	{"qcow2", "encryption encrypt.format encrypt.key-secret "
		  "encrypt.cipher-alg encrypt.cipher-mode encrypt.ivgen-alg "
		  "encrypt.ivgen-hash-alg encrypt.hash-alg encrypt.iter-time "
		  "cluster_size=65536 extended_l2=off preallocation "
		  "compression_type=zlib size compat backing_file backing_fmt "
		  "data_file data_file_raw lazy_refcounts=off "
		  "refcount_bits=16"},
	{"vmdk", "size adapter_type backing_file backing_fmt compat6=off "
		 "hwversion=undefined toolsversion subformat zeroed_grain "
		 "preallocation"},
	{"luks", "size key-secret cipher-alg cipher-mode ivgen-alg "
		 "ivgen-hash-alg hash-alg iter-time"},
	{"vpc", "size subformat force_size preallocation"},
	{"vdi", "size static=off preallocation"},
	{"vhdx", "size log_size=1048576 block_size=0 subformat "
		 "block_state_zero preallocation"},
	{"parallels", "size cluster_size=1048576"},
};

const char *mimg__create_order(const char *format)
{
	for (size_t i = 0; i < sizeof(create_orders) / sizeof(*create_orders);
	     i++)
		if (strcmp(create_orders[i].format, format) == 0)
			return create_orders[i].order;
	return NULL;
}

/* The value of KEY as the last of OPTS to give it, NULL when none does. */
static const char *given(const struct mimg_opt *opts, size_t nopts,
			 const char *key, size_t keylen)
{
	for (size_t i = nopts; i-- > 0;)
		if (strlen(opts[i].key) == keylen &&
		    memcmp(opts[i].key, key, keylen) == 0)
			return opts[i].value;
	return NULL;
}

/* Append " name=value" for option NAME (NAMELEN bytes) of SCHEMA, given
 * or defaulting to DEF (NULL: not listed when not given): sizes and
 * numbers in decimal, the rest as given. */
static void summarise_one(struct strbuf *b, const struct mimg_optdesc *schema,
			  const char *name, size_t namelen, const char *def,
			  const struct mimg_opt *opts, size_t nopts)
{
	const char *v = given(opts, nopts, name, namelen);
	struct mimg_optval val = {0};
	if (!v && !def)
		return;
	strbuf_printf(b, "%s%.*s=", b->len ? " " : "", (int)namelen, name);
	if (!v) {
		strbuf_str(b, def);
		return;
	}
	for (size_t i = 0; schema[i].name; i++)
		if (strlen(schema[i].name) == namelen &&
		    memcmp(schema[i].name, name, namelen) == 0 &&
		    (schema[i].kind == MIMG_OPTK_SIZE ||
		     schema[i].kind == MIMG_OPTK_NUMBER) &&
		    parse_value(&schema[i], v, &val) == 0) {
			strbuf_printf(b, "%" PRIu64, val.u);
			return;
		}
	strbuf_str(b, v);
}

/* What qemu-img checks before it prints the line: every key is an
 * option of SCHEMA and sizes, numbers and booleans parse.  Other values
 * (enumerations too) are the driver's to refuse, after the line. */
static int check_syntax(const struct mimg_optdesc *schema,
			const struct mimg_opt *opts, size_t nopts)
{
	int r;
	for (size_t i = 0; i < nopts; i++)
		if (!find_desc(schema, opts[i].key, NULL))
			return mimg_err(-EINVAL, "Invalid parameter '%s'",
					opts[i].key);
	for (size_t i = 0; i < nopts; i++) {
		const struct mimg_optdesc *d = find_desc(schema, opts[i].key,
							 NULL);
		struct mimg_optval v = {0};
		if (d->kind != MIMG_OPTK_STRING && d->kind != MIMG_OPTK_ENUM &&
		    (r = parse_value(d, opts[i].value, &v)) < 0)
			return r;
	}
	return 0;
}

int mimg_create_summary(const char *format, uint64_t size,
			const struct mimg_opt *opts, size_t nopts, char **textp)
{
	const struct mimg_optdesc *schema = NULL;
	struct strbuf b = {0};
	int r;

	mimg_err_clear();
	if (!textp || (nopts && !opts))
		return mimg_err(-EINVAL, "mimg_create_summary: no %s",
				textp ? "options" : "result pointer");
	*textp = NULL;
	if ((r = schema_for(format, MIMG_OPTS_CREATE, &schema)) < 0)
		return r;
	/* qemu-img prints no line for what it cannot create */
	const struct mimg_driver *drv = mimg__find_driver(format);
	if (drv && !drv->create)
		return mimg_err(-ENOTSUP,
				"Format driver '%s' does not support image "
				"creation",
				format);
	if ((r = check_syntax(schema, opts, nopts)) < 0)
		return r;
	const char *order = mimg__create_order(format);
	char sizebuf[24];
	snprintf(sizebuf, sizeof(sizebuf), "%" PRIu64, size);
	if (!order) { /* the size, then the options as given */
		strbuf_printf(&b, "size=%s", sizebuf);
		for (size_t i = 0; i < nopts; i++)
			if (strcmp(opts[i].key, "size") != 0)
				summarise_one(&b, schema, opts[i].key,
					      strlen(opts[i].key), NULL, opts,
					      i + 1);
	}
	/* ORDER's words: "name" or "name=default". */
	for (const char *w = order; w && *w;) {
		size_t len = strcspn(w, " ");
		const char *eq = memchr(w, '=', len);
		size_t namelen = eq ? (size_t)(eq - w) : len;
		char def[64] = "";
		if (eq && len - namelen - 1 < sizeof(def))
			memcpy(def, eq + 1, len - namelen - 1);
		if (namelen == 4 && memcmp(w, "size", 4) == 0)
			strbuf_printf(&b, "%ssize=%s", b.len ? " " : "",
				      sizebuf);
		else
			summarise_one(&b, schema, w, namelen, eq ? def : NULL,
				      opts, nopts);
		w += len;
		w += strspn(w, " ");
	}
	if (!(*textp = strbuf_finish(&b)))
		return mimg_err(-ENOMEM, "out of memory");
	return 0;
}
