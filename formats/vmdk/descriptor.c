/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The VMDK text descriptor: "key = value" lines (CID, parentCID,
 * createType, parentFileNameHint, ddb.*) and extent lines
 *     ACCESS SECTORS TYPE ["FILE NAME" [OFFSET]]
 * The descriptor is untrusted input: every number is range-checked and
 * the number of extents is bounded.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "checked.h"
#include "error.h"
#include "grow.h"
#include "strbuf.h"
#include "vmdk.h"

const char *vmdk_ext_type_name(enum vmdk_ext_type t)
{
	switch (t) {
	case VMDK_EXT_SPARSE: return "SPARSE";
	case VMDK_EXT_FLAT: return "FLAT";
	case VMDK_EXT_ZERO: return "ZERO";
	case VMDK_EXT_VMFS: return "VMFS";
	case VMDK_EXT_VMFSSPARSE: return "VMFSSPARSE";
	}
	return "?";
}

void vmdk_desc_free(struct vmdk_desc *d)
{
	for (size_t i = 0; i < d->n_ext; i++)
		free(d->ext[i].filename);
	free(d->ext);
	free(d->create_type);
	free(d->parent_hint);
	memset(d, 0, sizeof(*d));
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Parse an unsigned decimal or hexadecimal number occupying exactly
 * [P, END). */
static bool parse_u64(const char *p, const char *end, int base, uint64_t *out)
{
	uint64_t v = 0;
	if (p == end)
		return false;
	for (; p < end; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			return false;
		if (!ck_mul_u64(v, (uint64_t)base, &v) || !ck_add_u64(v, d, &v))
			return false;
	}
	*out = v;
	return true;
}

static char *dup_range(const char *p, const char *end)
{
	size_t n = (size_t)(end - p);
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

/* Next whitespace-delimited token of [*P, END). */
static bool next_token(const char **p, const char *end, const char **ts,
		       const char **te)
{
	const char *q = skip_ws(*p, end);
	if (q == end)
		return false;
	*ts = q;
	while (q < end && *q != ' ' && *q != '\t')
		q++;
	*te = q;
	*p = q;
	return true;
}

static bool token_is(const char *ts, const char *te, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(te - ts) == n && memcmp(ts, word, n) == 0;
}

static int parse_extent_line(const char *p, const char *end, const char *where,
			     unsigned lineno, struct vmdk_desc *d)
{
	struct vmdk_desc_extent e = {0};
	const char *ts, *te;

	next_token(&p, end, &ts, &te);
	if (token_is(ts, te, "RW"))
		e.access = VMDK_RW;
	else if (token_is(ts, te, "RDONLY"))
		e.access = VMDK_RDONLY;
	else
		e.access = VMDK_NOACCESS;

	if (!next_token(&p, end, &ts, &te) ||
	    !parse_u64(ts, te, 10, &e.sectors) || e.sectors == 0 ||
	    e.sectors > VMDK_MAX_SECTORS)
		return mimg_err(-EINVAL,
				"%s: vmdk: descriptor line %u: invalid extent "
				"size '%.*s'",
				where, lineno,
				(int)(te - ts > 40 ? 40 : te - ts), ts);
	if (!next_token(&p, end, &ts, &te))
		return mimg_err(-EINVAL,
				"%s: vmdk: descriptor line %u: extent type "
				"missing",
				where, lineno);
	if (token_is(ts, te, "SPARSE"))
		e.type = VMDK_EXT_SPARSE;
	else if (token_is(ts, te, "FLAT"))
		e.type = VMDK_EXT_FLAT;
	else if (token_is(ts, te, "ZERO"))
		e.type = VMDK_EXT_ZERO;
	else if (token_is(ts, te, "VMFS"))
		e.type = VMDK_EXT_VMFS;
	else if (token_is(ts, te, "VMFSSPARSE"))
		e.type = VMDK_EXT_VMFSSPARSE;
	else
		return mimg_err(-ENOTSUP,
				"%s: vmdk: descriptor line %u: extent type "
				"'%.*s' is not supported",
				where, lineno,
				(int)(te - ts > 40 ? 40 : te - ts), ts);

	if (e.type != VMDK_EXT_ZERO) {
		p = skip_ws(p, end);
		if (p == end || *p != '"')
			return mimg_err(-EINVAL,
					"%s: vmdk: descriptor line %u: extent "
					"file name must be quoted",
					where, lineno);
		const char *ns = ++p;
		while (p < end && *p != '"')
			p++;
		if (p == end || p == ns)
			return mimg_err(-EINVAL,
					"%s: vmdk: descriptor line %u: bad "
					"extent file name",
					where, lineno);
		e.filename = dup_range(ns, p);
		if (!e.filename)
			return mimg_err(-ENOMEM, "out of memory");
		p++;
		if (next_token(&p, end, &ts, &te)) {
			if (e.type == VMDK_EXT_SPARSE ||
			    e.type == VMDK_EXT_VMFSSPARSE ||
			    !parse_u64(ts, te, 10, &e.offset) ||
			    e.offset > VMDK_MAX_SECTORS) {
				free(e.filename);
				return mimg_err(-EINVAL,
						"%s: vmdk: descriptor line %u: "
						"invalid extent offset '%.*s'",
						where, lineno,
						(int)(te - ts > 40 ? 40
								   : te - ts),
						ts);
			}
		}
	}
	if (d->n_ext >= VMDK_MAX_EXTENTS) {
		free(e.filename);
		return mimg_err(-EINVAL,
				"%s: vmdk: descriptor has more than %d extents",
				where, VMDK_MAX_EXTENTS);
	}
	struct vmdk_desc_extent *n = mimg__grow(d->ext, &d->cap_ext,
						d->n_ext + 1, sizeof(*n), 1);
	if (!n) {
		free(e.filename);
		return -ENOMEM;
	}
	d->ext = n;
	d->ext[d->n_ext++] = e;
	return 0;
}

static int set_string(char **dst, const char *vs, const char *ve)
{
	free(*dst);
	*dst = dup_range(vs, ve);
	return *dst ? 0 : mimg_err(-ENOMEM, "out of memory");
}

static int parse_cid(const char *vs, const char *ve, const char *where,
		     const char *key, uint32_t *out)
{
	uint64_t v;
	if (!parse_u64(vs, ve, 16, &v) || v > 0xffffffffu)
		return mimg_err(-EINVAL,
				"%s: vmdk: descriptor %s '%.*s' is not a "
				"32-bit hexadecimal number",
				where, key, (int)(ve - vs > 40 ? 40 : ve - vs),
				vs);
	*out = (uint32_t)v;
	return 0;
}

static int parse_keyval(const char *p, const char *end, const char *eq,
			const char *where, struct vmdk_desc *d)
{
	const char *ks = p, *ke = eq, *vs, *ve = end;
	while (ke > ks && (ke[-1] == ' ' || ke[-1] == '\t'))
		ke--;
	vs = skip_ws(eq + 1, end);
	while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
		vs++;
		ve--;
	}
	if (token_is(ks, ke, "CID"))
		return parse_cid(vs, ve, where, "CID", &d->cid);
	if (token_is(ks, ke, "parentCID"))
		return parse_cid(vs, ve, where, "parentCID", &d->parent_cid);
	if (token_is(ks, ke, "createType"))
		return set_string(&d->create_type, vs, ve);
	if (token_is(ks, ke, "parentFileNameHint"))
		return set_string(&d->parent_hint, vs, ve);
	return 0;
}

int vmdk_desc_parse(const char *text, size_t len, const char *where,
		    struct vmdk_desc *d, bool need_extents)
{
	const char *nul = memchr(text, 0, len);
	const char *p = text, *end = nul ? nul : text + len;
	unsigned lineno = 0;
	int r = 0;

	memset(d, 0, sizeof(*d));
	d->parent_cid = 0xffffffffu;
	if (len > VMDK_MAX_DESC_SIZE)
		return mimg_err(-EINVAL,
				"%s: vmdk: descriptor of %zu bytes is "
				"too large",
				where, len);
	while (p < end && r == 0) {
		const char *le = memchr(p, '\n', (size_t)(end - p));
		const char *next = le ? le + 1 : end;
		if (!le)
			le = end;
		if (le > p && le[-1] == '\r')
			le--;
		lineno++;
		const char *s = skip_ws(p, le);
		const char *ts, *te, *q = s;
		if (s < le && *s != '#' && next_token(&q, le, &ts, &te)) {
			if (token_is(ts, te, "RW") ||
			    token_is(ts, te, "RDONLY") ||
			    token_is(ts, te, "NOACCESS")) {
				r = parse_extent_line(s, le, where, lineno, d);
			} else {
				const char *eq = memchr(s, '=',
							(size_t)(le - s));
				if (eq)
					r = parse_keyval(s, le, eq, where, d);
			}
		}
		p = next;
	}
	/* Neither a type nor an extent: no descriptor at all, in
	 * qemu-img's words (it refuses any descriptor without a type). */
	if (r == 0 && need_extents && !d->create_type && d->n_ext == 0)
		r = mimg_err(-EINVAL, "invalid VMDK image descriptor");
	if (r == 0 && need_extents && d->n_ext == 0)
		r = mimg_err(-EINVAL, "%s: vmdk: descriptor has no extents",
			     where);
	if (r < 0)
		vmdk_desc_free(d);
	return r;
}

char *vmdk_desc_set_cid(const char *text, size_t len, uint32_t new_cid,
			size_t *newlen)
{
	const char *nul = memchr(text, 0, len);
	const char *end = nul ? nul : text + len;
	const char *p = text;
	char cid[16];
	int cl = snprintf(cid, sizeof(cid), "CID=%08" PRIx32, new_cid);

	while (p < end) {
		const char *le = memchr(p, '\n', (size_t)(end - p));
		if (!le)
			le = end;
		const char *s = skip_ws(p, le);
		if (le - s >= 4 && memcmp(s, "CID", 3) == 0) {
			const char *q = skip_ws(s + 3, le);
			if (q < le && *q == '=') {
				const char *ve = le;
				if (ve > s && ve[-1] == '\r')
					ve--;
				size_t pre = (size_t)(s - text);
				size_t post = (size_t)(end - ve);
				char *out = malloc(pre + (size_t)cl + post + 1);
				if (!out)
					return NULL;
				memcpy(out, text, pre);
				memcpy(out + pre, cid, (size_t)cl);
				memcpy(out + pre + (size_t)cl, ve, post);
				*newlen = pre + (size_t)cl + post;
				out[*newlen] = 0;
				return out;
			}
		}
		p = le + 1;
	}
	/* No CID line: keep the text unchanged. */
	char *out = malloc((size_t)(end - text) + 1);
	if (!out)
		return NULL;
	memcpy(out, text, (size_t)(end - text));
	*newlen = (size_t)(end - text);
	out[*newlen] = 0;
	return out;
}

uint32_t vmdk_random_cid(void)
{
	uint32_t v;
	do {
		if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
			/* No entropy source: still unique enough per call. */
			static _Thread_local uint32_t ctr;
			v = (uint32_t)(uintptr_t)&v ^ ++ctr * 0x9e3779b9u;
		}
	} while (v >= 0xfffffffeu);
	return v;
}

char *vmdk_desc_format(const struct vmdk_desc_params *p)
{
	struct strbuf b = {0};
	uint32_t heads = strcmp(p->adapter_type, "ide") == 0 ? 16 : 255;
	uint64_t cyl = p->total_sectors / (heads * 63u);

	/* qemu-img writes the exact quotient; VMware's own stream converter
	 * caps it at 65535, which is what VMware-facing output gets. */
	if (p->vmware_fields && cyl > 65535)
		cyl = 65535;

	strbuf_printf(&b, "# Disk DescriptorFile\nversion=1\n");
	if (p->vmware_fields)
		strbuf_printf(&b, "encoding=\"UTF-8\"\n");
	strbuf_printf(&b, "CID=%08" PRIx32 "\nparentCID=%08" PRIx32 "\n",
		      p->cid, p->parent_cid);
	strbuf_printf(&b, "createType=\"%s\"\n", p->create_type);
	if (p->parent_hint)
		strbuf_printf(&b, "parentFileNameHint=\"%s\"\n",
			      p->parent_hint);
	strbuf_printf(&b, "\n# Extent description\n");
	for (size_t i = 0; i < p->n_ext; i++) {
		const struct vmdk_desc_extent *e = &p->ext[i];
		strbuf_printf(&b, "%s %" PRIu64 " %s",
			      e->access == VMDK_RW	 ? "RW"
			      : e->access == VMDK_RDONLY ? "RDONLY"
							 : "NOACCESS",
			      e->sectors, vmdk_ext_type_name(e->type));
		if (e->type != VMDK_EXT_ZERO)
			strbuf_printf(&b, " \"%s\"", e->filename);
		if (e->type == VMDK_EXT_FLAT)
			strbuf_printf(&b, " %" PRIu64, e->offset);
		strbuf_printf(&b, "\n");
	}
	strbuf_printf(&b, "\n# The Disk Data Base\n#DDB\n\n");
	strbuf_printf(&b, "ddb.virtualHWVersion = \"%s\"\n", p->hwversion);
	strbuf_printf(&b, "ddb.geometry.cylinders = \"%" PRIu64 "\"\n", cyl);
	strbuf_printf(&b, "ddb.geometry.heads = \"%" PRIu32 "\"\n", heads);
	strbuf_printf(&b, "ddb.geometry.sectors = \"63\"\n");
	strbuf_printf(&b, "ddb.adapterType = \"%s\"\n", p->adapter_type);
	if (p->vmware_fields) {
		uint32_t l[4];
		for (int i = 0; i < 3; i++)
			l[i] = vmdk_random_cid();
		/* VMware ends the long content ID with the CID. */
		l[3] = p->cid;
		strbuf_printf(&b,
			      "ddb.longContentID = \"%08" PRIx32 "%08" PRIx32
			      "%08" PRIx32 "%08" PRIx32 "\"\n",
			      l[0], l[1], l[2], l[3]);
		/* 4: tools not installed by VMware (open-vm-tools or none),
		 * the value VMware's own stream exports carry. */
		strbuf_printf(&b, "ddb.toolsInstallType = \"4\"\n");
	}
	strbuf_printf(&b, "ddb.toolsVersion = \"%s\"\n", p->toolsversion);
	return strbuf_finish(&b);
}
