/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The manifest (.mf) of an OVA: "SHA256(disk.vmdk)= hex" lines, checked
 * against digests (libcrypto EVP) of the members as they are read.  The
 * manifest is hostile input: its size is bounded by the caller, lines
 * that are not digest lines are refused, names are compared, never used.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynlib.h"
#include "error.h"
#include "file-archive.h"

static const char *const alg_names[MIMG_DIGEST_ALGS] = {
	"SHA1",
	"SHA256",
	"SHA512",
};

static const EVP_MD *alg_md(int i)
{
	return i == 0	? mimg__libcrypto.EVP_sha1()
	       : i == 1 ? mimg__libcrypto.EVP_sha256()
			: mimg__libcrypto.EVP_sha512();
}

int mimg__digests_init(struct mimg_digests *d)
{
	memset(d, 0, sizeof(*d));
	int r = mimg__crypto_lib_load("digest");
	if (r < 0)
		return r;
	for (int i = 0; i < MIMG_DIGEST_ALGS; i++)
		if (!(d->ctx[i] = mimg__libcrypto.EVP_MD_CTX_new()) ||
		    !mimg__libcrypto.EVP_DigestInit_ex(d->ctx[i], alg_md(i),
						       NULL))
			return mimg_err(-ENOMEM, "digest: out of memory");
	d->active = true;
	return 0;
}

void mimg__digests_update(struct mimg_digests *d, const void *buf, size_t n)
{
	if (!d->active)
		return;
	for (int i = 0; i < MIMG_DIGEST_ALGS; i++)
		mimg__libcrypto.EVP_DigestUpdate(d->ctx[i], buf, n);
}

void mimg__digests_final(struct mimg_digests *d)
{
	if (!d->active || d->done)
		return;
	for (int i = 0; i < MIMG_DIGEST_ALGS; i++)
		mimg__libcrypto.EVP_DigestFinal_ex(d->ctx[i], d->md[i],
						   &d->len[i]);
	d->done = true;
}

void mimg__digests_free(struct mimg_digests *d)
{
	/* Contexts exist only once libcrypto is loaded. */
	for (int i = 0; i < MIMG_DIGEST_ALGS; i++)
		if (d->ctx[i])
			mimg__libcrypto.EVP_MD_CTX_free(d->ctx[i]);
	memset(d, 0, sizeof(*d));
}

void mimg__manifest_free(struct mimg_manifest *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->n; i++)
		free(m->entries[i].name);
	free(m->entries);
	free(m);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One "ALG(NAME)= HEX" line of LEN bytes into E. */
static bool parse_line(const char *line, size_t len,
		       struct mimg_manifest_entry *e)
{
	const char *open = memchr(line, '(', len);
	const char *close = NULL;
	for (size_t i = len; i > 0; i--)
		if (line[i - 1] == ')') {
			close = line + i - 1;
			break;
		}
	if (!open || !close || close < open || close + 2 > line + len ||
	    close[1] != '=')
		return false;
	e->alg = -1;
	for (int i = 0; i < MIMG_DIGEST_ALGS; i++)
		if ((size_t)(open - line) == strlen(alg_names[i]) &&
		    strncmp(line, alg_names[i], strlen(alg_names[i])) == 0)
			e->alg = i;
	const char *h = close + 2, *end = line + len;
	while (h < end && *h == ' ')
		h++;
	while (end > h && (end[-1] == ' ' || end[-1] == '\r'))
		end--;
	size_t want = e->alg == 0 ? 20 : e->alg == 1 ? 32 : 64;
	if (e->alg < 0 || (size_t)(end - h) != 2 * want)
		return false;
	for (size_t i = 0; i < want; i++) {
		int hi = hex_value(h[2 * i]), lo = hex_value(h[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		e->md[i] = (uint8_t)(hi << 4 | lo);
	}
	e->len = (unsigned)want;
	e->name = strndup(open + 1, (size_t)(close - open - 1));
	return e->name != NULL;
}

int mimg__manifest_parse(const uint8_t *text, size_t len, const char *aname,
			 struct mimg_manifest **mp)
{
	struct mimg_manifest *m = calloc(1, sizeof(*m));
	const char *p = (const char *)text, *end = p + len;
	int lineno = 0;

	*mp = NULL;
	if (!m ||
	    !(m->entries = calloc(MIMG_MANIFEST_MAX, sizeof(*m->entries)))) {
		free(m);
		return mimg_err(-ENOMEM, "out of memory");
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		if (n && !(n == 1 && *p == '\r')) {
			if (m->n >= MIMG_MANIFEST_MAX || memchr(p, 0, n) ||
			    !parse_line(p, n, &m->entries[m->n])) {
				mimg__manifest_free(m);
				return mimg_err(-EINVAL,
						"%s: manifest line %d "
						"is not 'SHA1|SHA256|SHA512"
						"(file)= digest'",
						aname, lineno);
			}
			m->n++;
		}
		p += n + (nl != NULL);
	}
	*mp = m;
	return 0;
}

int mimg__manifest_check(const struct mimg_manifest *m, const char *member,
			 const char *shown, const struct mimg_digests *d,
			 const char *aname)
{
	int listed = 0;
	for (int i = 0; m && i < m->n; i++) {
		const struct mimg_manifest_entry *e = &m->entries[i];
		if (strcmp(e->name, member) != 0)
			continue;
		if (!d->done || d->len[e->alg] != e->len ||
		    memcmp(d->md[e->alg], e->md, e->len) != 0)
			return mimg_err(-EINVAL,
					"%s: the %s digest of '%s' "
					"does not match the manifest's",
					aname, alg_names[e->alg], shown);
		listed = 1;
	}
	return listed;
}
