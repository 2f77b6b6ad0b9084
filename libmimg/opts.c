/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Sizes with suffixes and qemu-img style "-o key=value,..." options.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "driver.h"
#include "error.h"

static int suffix_shift(char c)
{
	switch (tolower((unsigned char)c)) {
	case 'b': return 0;
	case 'k': return 10;
	case 'm': return 20;
	case 'g': return 30;
	case 't': return 40;
	case 'p': return 50;
	case 'e': return 60;
	default: return -1;
	}
}

int mimg_parse_size(const char *text, uint64_t *sizep)
{
	const char *p = text;
	char *end;
	uint64_t whole;
	double frac = 0;
	int shift = 0;

	if (!text)
		return mimg_err(-EINVAL, "Invalid size ''");
	while (isspace((unsigned char)*p)) /* as qemu-img (strtoull) */
		p++;
	if (!isdigit((unsigned char)*p))
		return mimg_err(-EINVAL, "Invalid size '%s'", text);
	errno = 0;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		whole = strtoull(p, &end, 16);
	} else {
		whole = strtoull(p, &end, 10);
		if (*end == '.') {
			/* The fraction by hand: strtod would follow the
			 * caller's locale (a ',' decimal point).  "1.k" has
			 * no digits and is 1k, as in qemu-img. */
			const char *q = end + 1;
			double num = 0, den = 1;
			for (; isdigit((unsigned char)*q); q++) {
				if (den < 1e17) {
					num = num * 10 + (*q - '0');
					den *= 10;
				}
			}
			frac = num / den;
			end = (char *)q;
		}
	}
	if (errno == ERANGE)
		return mimg_err(-ERANGE, "Size '%s' is too large", text);
	if (*end) {
		shift = suffix_shift(*end);
		if (shift < 0 || end[1])
			return mimg_err(-EINVAL,
					"Invalid size '%s': use a number with "
					"an optional suffix k, M, G, T, P or E",
					text);
	}
	if (shift == 0 && frac != 0)
		return mimg_err(-EINVAL, "Invalid size '%s': fractional bytes",
				text);
	if (shift && whole > (UINT64_MAX >> shift))
		return mimg_err(-ERANGE, "Size '%s' is too large", text);
	uint64_t v = whole << shift;
	if (frac != 0) {
		double extra = frac * (double)(1ull << shift);
		if ((double)(UINT64_MAX - v) < extra)
			return mimg_err(-ERANGE, "Size '%s' is too large",
					text);
		/* rounded to the nearest byte, as qemu-img does */
		v += (uint64_t)(extra + 0.5);
	}
	if (v > (uint64_t)INT64_MAX)
		return mimg_err(-ERANGE,
				"Size '%s' is too large (limit is "
				"8 EiB)",
				text);
	*sizep = v;
	return 0;
}

void mimg_opts_free(struct mimg_opt *opts, size_t nopts)
{
	if (!opts)
		return;
	for (size_t i = 0; i < nopts; i++) {
		free((char *)opts[i].key);
		free((char *)opts[i].value);
	}
	free(opts);
}

/* Copy one ",,"-escaped token ending at an unescaped ',' or '=' (when
 * STOP_AT_EQ) from *PP; advance *PP past it. */
static char *opt_token(const char **pp, bool stop_at_eq)
{
	const char *p = *pp;
	size_t n = strlen(p);
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	while (*p) {
		if (*p == ',') {
			if (p[1] == ',') {
				*o++ = ',';
				p += 2;
				continue;
			}
			break;
		}
		if (stop_at_eq && *p == '=')
			break;
		*o++ = *p++;
	}
	*o = 0;
	*pp = p;
	return out;
}

int mimg_opts_parse(const char *text, struct mimg_opt **optsp)
{
	struct mimg_opt *opts = NULL;
	size_t n = 0;
	const char *p = text;

	*optsp = NULL;
	while (p && *p) {
		struct mimg_opt *grown = realloc(opts, (n + 1) * sizeof(*opts));
		if (!grown)
			goto nomem;
		opts = grown;
		opts[n].key = opt_token(&p, true);
		opts[n].value = NULL;
		if (!opts[n].key)
			goto nomem;
		n++;
		if (*p == '=') {
			p++;
			if (!(opts[n - 1].value = opt_token(&p, false)))
				goto nomem;
		} else if (!(opts[n - 1].value = strdup("on"))) {
			/* a bare "key" means key=on, as in qemu */
			goto nomem;
		}
		if (!*opts[n - 1].key) {
			mimg_opts_free(opts, n);
			return mimg_err(-EINVAL, "Invalid option list: %s",
					text); /* qemu-img's words */
		}
		if (*p == ',' && !*++p) {
			/* a trailing separator, refused as qemu-img does */
			mimg_opts_free(opts, n);
			return mimg_err(-EINVAL, "Invalid option list: %s",
					text);
		}
	}
	*optsp = opts;
	return (int)n;
nomem:
	mimg_opts_free(opts, n);
	return mimg_err(-ENOMEM, "out of memory");
}

const char *mimg__opt(const struct mimg_opt *opts, size_t nopts,
		      const char *key)
{
	/* The last occurrence wins, as in qemu. */
	for (size_t i = nopts; i-- > 0;)
		if (strcmp(opts[i].key, key) == 0)
			return opts[i].value;
	return NULL;
}

bool mimg__bool_word(const char *v, const char *const yes[4],
		     const char *const no[4],
		     int (*cmp)(const char *, const char *), bool *out)
{
	for (size_t i = 0; i < 4; i++) {
		if (cmp(v, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (cmp(v, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

int mimg__opt_bool(const char *key, const char *value, bool *out)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};
	if (mimg__bool_word(value, yes, no, strcasecmp, out))
		return 0;
	return mimg_err(-EINVAL,
			"Parameter '%s' expects 'on' or 'off', got "
			"'%s'",
			key, value);
}

int mimg__opt_size(const char *key, const char *value, uint64_t *out)
{
	int r = mimg_parse_size(value, out);
	if (r < 0)
		return mimg_err_prefix(r, "Parameter '%s'", key);
	return 0;
}

int mimg__opt_prealloc(const char *value, enum mimg_prealloc *out)
{
	static const char *const names[] = {"off", "metadata", "falloc",
					    "full"};
	for (int i = 0; i < 4; i++)
		if (strcmp(value, names[i]) == 0) {
			*out = (enum mimg_prealloc)i;
			return 0;
		}
	/* qemu-img's words (the caller adds the file name) */
	return mimg_err(-EINVAL, "invalid parameter value: %s", value);
}

int mimg__opt_prealloc_of(const char *path, const char *v,
			  enum mimg_prealloc *out)
{
	*out = MIMG_PREALLOC_OFF;
	int r = v ? mimg__opt_prealloc(v, out) : 0;
	return r < 0 ? mimg_err_prefix(r, "%s", path) : 0;
}

int mimg__opt_prealloc_falloc(const char *path, const char *fmt, const char *v,
			      enum mimg_prealloc *out)
{
	int r = mimg__opt_prealloc_of(path, v, out);
	if (r == 0 &&
	    (*out == MIMG_PREALLOC_METADATA || *out == MIMG_PREALLOC_FULL))
		return mimg_err(-ENOTSUP,
				"%s: %s: preallocation mode '%s' "
				"is not supported (use off or falloc)",
				path, fmt, v);
	return r;
}

bool mimg_opts_has_help(const char *text)
{
	const char *p = text;
	while (p && *p) {
		char *tok = opt_token(&p, false);
		bool help = tok && (!strcmp(tok, "help") || !strcmp(tok, "?"));
		free(tok);
		if (help)
			return true;
		if (*p == ',')
			p++;
	}
	return false;
}
