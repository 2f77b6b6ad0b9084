/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qemu-img's LUKS creation options (cipher-alg, cipher-mode, ivgen-alg,
 * ivgen-hash-alg, hash-alg, iter-time), for the luks format as they are
 * and for qcow2 with the "encrypt." prefix.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "error.h"
#include "luks1.h"

static int parse_cipher_alg(const char *path, const char *v, unsigned *bits)
{
	static const char *const others[] = {"serpent", "twofish", "cast5",
					     NULL};
	if (strcmp(v, "aes-128") == 0)
		*bits = 128;
	else if (strcmp(v, "aes-192") == 0)
		*bits = 192;
	else if (strcmp(v, "aes-256") == 0)
		*bits = 256;
	else {
		for (const char *const *o = others; *o; o++)
			if (strncmp(v, *o, strlen(*o)) == 0)
				return mimg_err(-ENOTSUP,
						"%s: cipher '%s' is "
						"not supported (only aes-128, "
						"aes-192, aes-256)",
						path, v);
		return mimg_err(-EINVAL,
				"%s: Invalid parameter '%s' for "
				"cipher-alg",
				path, v);
	}
	return 0;
}

static int parse_hash(const char *path, const char *key, const char *v,
		      enum mimg_hash_alg *out)
{
	if (!(*out = mimg_hash_lookup(v)))
		return mimg_err(-ENOTSUP,
				"%s: Hash algorithm %s not supported "
				"for %s (sha1, sha256, sha512)",
				path, v, key);
	return 0;
}

/* The option PREFIX KEY ("encrypt.cipher-alg"), or NULL. */
static const char *opt(const struct mimg_opt *opts, size_t nopts,
		       const char *prefix, const char *key)
{
	char name[64];
	snprintf(name, sizeof(name), "%s%s", prefix, key);
	return mimg__opt(opts, nopts, name);
}

int luks1_create_opts(const char *path, const struct mimg_opt *opts,
		      size_t nopts, const char *prefix,
		      struct luks1_create_params *p)
{
	const char *v;
	int r;

	memset(p, 0, sizeof(*p));
	p->aes_bits = 256;
	p->mode = MIMG_CIPHER_XTS;
	p->ivgen = MIMG_IVGEN_PLAIN64;
	p->hash = MIMG_HASH_SHA256;
	p->iter_time_ms = 2000;
	if ((v = opt(opts, nopts, prefix, "cipher-alg")) &&
	    (r = parse_cipher_alg(path, v, &p->aes_bits)) < 0)
		return r;
	if ((v = opt(opts, nopts, prefix, "cipher-mode")) &&
	    !(p->mode = mimg_cipher_mode_lookup(v)))
		return mimg_err(-ENOTSUP,
				"%s: Cipher mode %s not supported "
				"(xts, cbc)",
				path, v);
	if ((v = opt(opts, nopts, prefix, "ivgen-alg")) &&
	    !(p->ivgen = mimg_ivgen_lookup(v)))
		return mimg_err(-ENOTSUP,
				"%s: IV generator %s not supported "
				"(plain, plain64, essiv)",
				path, v);
	if ((v = opt(opts, nopts, prefix, "hash-alg")) &&
	    (r = parse_hash(path, "hash-alg", v, &p->hash)) < 0)
		return r;
	/* Like qemu: essiv defaults its hash to sha256; a hash given to
	 * another generator is written and ignored, as dm-crypt does. */
	if ((v = opt(opts, nopts, prefix, "ivgen-hash-alg"))) {
		if ((r = parse_hash(path, "ivgen-hash-alg", v, &p->ivhash)) < 0)
			return r;
	} else if (p->ivgen == MIMG_IVGEN_ESSIV) {
		p->ivhash = MIMG_HASH_SHA256;
	}
	if ((v = opt(opts, nopts, prefix, "iter-time"))) {
		char *end;
		errno = 0;
		unsigned long long ms = strtoull(v, &end, 10);
		if (errno || end == v || *end || ms == 0 || ms > 3600000)
			return mimg_err(-EINVAL,
					"%s: iter-time '%s' must be "
					"1 to 3600000 milliseconds",
					path, v);
		p->iter_time_ms = ms;
	}
	return 0;
}
