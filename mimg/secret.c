/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Secrets on the command line, as qemu-img takes them:
 *   --object secret,id=ID,data=TEXT | file=PATH [,format=raw|base64]
 * then "-o key-secret=ID" (create) or --image-opts "key-secret=ID" name
 * one.  Opening an encrypted image uses the secret --image-opts named, or
 * the only secret given.  "max-pbkdf2-iters=N" (not in qemu) changes the
 * cap on PBKDF2 iterations accepted from an image's header.  Secret bytes
 * are never printed and are wiped at exit.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define MAX_SECRETS 16
#define MAX_SECRET_FILE (1u << 20)

struct cli_secret {
	char *id;
	unsigned char *data;
	size_t len;
	uint64_t max_iters; /* 0: the library's default */
};

static struct cli_secret secrets[MAX_SECRETS];
static int nsecrets;
static char *chosen_id; /* key-secret from --image-opts */

static void wipe_secrets(void)
{
	for (int i = 0; i < nsecrets; i++) {
		if (secrets[i].data)
			explicit_bzero(secrets[i].data, secrets[i].len);
		free(secrets[i].data);
		free(secrets[i].id);
	}
	nsecrets = 0;
	free(chosen_id);
	chosen_id = NULL;
}

static int b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode base64 TEXT of LEN bytes in place; returns the decoded length or
 * -1 when TEXT is not base64. */
static long b64_decode(unsigned char *text, size_t len)
{
	size_t out = 0, nbits = 0, pad = 0;
	unsigned long acc = 0;
	for (size_t i = 0; i < len; i++) {
		int c = text[i], v;
		if (c == '\n' || c == '\r' || c == ' ')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad || (v = b64_value(c)) < 0)
			return -1;
		acc = (acc << 6) | (unsigned long)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			text[out++] = (unsigned char)(acc >> nbits);
		}
	}
	if (pad > 2 || nbits >= 6)
		return -1;
	return (long)out;
}

static int read_secret_file(const char *path, unsigned char **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	size_t n;
	if (!f)
		return cli_error("Unable to read %s: %s", path,
				 strerror(errno)),
		       -1;
	if (!(buf = malloc(MAX_SECRET_FILE + 1))) {
		fclose(f);
		return cli_error("out of memory"), -1;
	}
	n = fread(buf, 1, MAX_SECRET_FILE + 1, f);
	fclose(f);
	if (n > MAX_SECRET_FILE) {
		explicit_bzero(buf, n);
		free(buf);
		return cli_error("Secret file %s is larger than %u bytes", path,
				 MAX_SECRET_FILE),
		       -1;
	}
	*data = buf;
	*len = n;
	return 0;
}

static int set_value(char **slot, const char *key, const char *value)
{
	if (*slot)
		return cli_error("--object: '%s' given twice", key), -1;
	if (!(*slot = strdup(value)))
		return cli_error("out of memory"), -1;
	return 0;
}

int cli_object_add(const char *spec)
{
	struct mimg_opt *opts = NULL;
	char *id = NULL, *data = NULL, *file = NULL, *format = NULL;
	char *iters = NULL;
	struct cli_secret s = {0};
	int n, r = -1;

	static bool registered;
	if (!registered) {
		atexit(wipe_secrets);
		registered = true;
	}
	if (strncmp(spec, "secret,", 7) != 0)
		return cli_error("--object: only 'secret' objects are "
				 "supported"),
		       -1;
	if ((n = mimg_opts_parse(spec + 7, &opts)) < 0)
		return cli_error("--object: %s", mimg_errmsg()), -1;
	for (int i = 0; i < n; i++) {
		const char *k = opts[i].key, *v = opts[i].value;
		char **slot = strcmp(k, "id") == 0		   ? &id
			      : strcmp(k, "data") == 0		   ? &data
			      : strcmp(k, "file") == 0		   ? &file
			      : strcmp(k, "format") == 0	   ? &format
			      : strcmp(k, "max-pbkdf2-iters") == 0 ? &iters
								   : NULL;
		if (!slot) {
			cli_error("--object secret: unknown property '%s'", k);
			goto out;
		}
		if (set_value(slot, k, v) < 0)
			goto out;
	}
	if (!id) {
		cli_error("--object secret: Parameter 'id' is missing");
		goto out;
	}
	if (!data == !file) {
		cli_error("--object secret: exactly one of 'data' and 'file' "
			  "is needed");
		goto out;
	}
	if (format && strcmp(format, "raw") != 0 &&
	    strcmp(format, "base64") != 0) {
		cli_error("--object secret: Invalid parameter '%s' for "
			  "format",
			  format);
		goto out;
	}
	if (iters) {
		char *end;
		errno = 0;
		s.max_iters = strtoull(iters, &end, 10);
		if (errno || end == iters || *end || s.max_iters == 0) {
			cli_error("--object secret: Invalid parameter '%s' "
				  "for max-pbkdf2-iters",
				  iters);
			goto out;
		}
	}
	for (int i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i].id, id) == 0) {
			cli_error("attempt to add duplicate property '%s' to "
				  "object",
				  id);
			goto out;
		}
	if (nsecrets == MAX_SECRETS) {
		cli_error("--object: too many secrets");
		goto out;
	}
	if (data) {
		s.len = strlen(data);
		s.data = (unsigned char *)data;
		data = NULL;
	} else if (read_secret_file(file, &s.data, &s.len) < 0) {
		goto out;
	}
	if (format && strcmp(format, "base64") == 0) {
		long dn = b64_decode(s.data, s.len);
		if (dn < 0) {
			cli_error("--object secret '%s': the data is not "
				  "valid base64",
				  id);
			goto out;
		}
		s.len = (size_t)dn;
	}
	s.id = id;
	id = NULL;
	secrets[nsecrets++] = s;
	s.data = NULL;
	r = 0;
out:
	if (s.data) {
		explicit_bzero(s.data, s.len);
		free(s.data);
	}
	if (data)
		explicit_bzero(data, strlen(data));
	for (int i = 0; i < n; i++)
		if (strcmp(opts[i].key, "data") == 0)
			explicit_bzero((char *)opts[i].value,
				       strlen(opts[i].value));
	mimg_opts_free(opts, n > 0 ? (size_t)n : 0);
	free(id);
	free(data);
	free(file);
	free(format);
	free(iters);
	return r;
}

/* A failure of cli_open/cli_create found here rather than in libmimg
 * (room for an option string and a path in it). */
static char own_error[8192];

const char *cli_errmsg(void)
{
	return own_error[0] ? own_error : mimg_errmsg();
}

void cli_set_errmsg(const char *fmt, ...)
{
	va_list ap;
	own_error[0] = 0;
	if (!fmt)
		return;
	va_start(ap, fmt);
	vsnprintf(own_error, sizeof(own_error), fmt, ap);
	va_end(ap);
}

int cli_choose_secret(const char *id)
{
	free(chosen_id);
	chosen_id = NULL;
	if (id && !(chosen_id = strdup(id))) {
		cli_set_errmsg("out of memory");
		return -1;
	}
	return 0;
}

static int no_secret(const char *id)
{
	snprintf(own_error, sizeof(own_error), "No secret with id '%s' found",
		 id);
	return -ENOENT;
}

static const struct cli_secret *find_secret(const char *id)
{
	for (int i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i].id, id) == 0)
			return &secrets[i];
	return NULL;
}

/* The secret for opening images: the one --image-opts named, else the
 * only one given, else none. */
static int open_secret(const char *id, struct mimg_secret *out, bool *have)
{
	const struct cli_secret *s = NULL;
	*have = false;
	if (!id)
		id = chosen_id;
	if (id) {
		if (!(s = find_secret(id)))
			return no_secret(id);
	} else if (nsecrets == 1) {
		s = &secrets[0];
	}
	if (!s)
		return 0;
	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	out->data = s->data;
	out->len = s->len;
	out->max_pbkdf2_iters = s->max_iters;
	*have = true;
	return 0;
}

/* qemu-img's form of a failure to open PATH, named DISPLAY on the
 * command line: "Could not open 'DISPLAY': " and the reason, without
 * the "PATH: " the library starts most of its messages with (its own
 * "Could not open 'PATH': ..." for a file that cannot be opened stays,
 * as qemu-img repeats it too). */
static int open_failed(int r, const char *path, const char *display)
{
	static const char backing[] = "Could not open backing file of ";
	char inner[sizeof(own_error)];
	const char *why = own_error[0] ? own_error : mimg_errmsg();
	size_t n = strlen(path), b = sizeof(backing) - 1;
	if (strncmp(why, path, n) == 0 && strncmp(why + n, ": ", 2) == 0)
		why += n + 2;
	/* The library names the image whose backing file failed; this
	 * message names it already, in qemu-img's words. */
	if (strncmp(why, backing, b) == 0 && strncmp(why + b, path, n) == 0 &&
	    strncmp(why + b + n, ": ", 2) == 0)
		snprintf(inner, sizeof(inner),
			 "Could not open backing file: %s", why + b + n + 2);
	else
		snprintf(inner, sizeof(inner), "%s", why);
	snprintf(own_error, sizeof(own_error), "Could not open '%s': %s",
		 display, inner);
	return r;
}

void cli_warn_probed_raw(const char *path)
{
	fprintf(stderr,
		"WARNING: Image format was not specified for '%s' and "
		"probing guessed raw.\n"
		"         Automatically detecting the format is dangerous for "
		"raw images, write operations on block 0 will be "
		"restricted.\n"
		"         Specify the 'raw' format explicitly to remove the "
		"restrictions.\n",
		path);
}

static int open_image(struct mimg **imgp, const char *path, const char *format,
		      unsigned flags, const char *id, bool header_only,
		      const char *display)
{
	struct mimg_secret sec;
	const struct mimg_opt *opts;
	size_t nopts;
	const char *spec = cli_image_spec(path, &opts, &nopts);
	bool have;
	int r;
	*imgp = NULL;
	own_error[0] = 0;
	if (spec)
		display = spec;
	if ((r = open_secret(id, &sec, &have)) < 0)
		return open_failed(r, path, display);
	r = mimg_open_opts(imgp, path, format, flags, have ? &sec : NULL, opts,
			   nopts);
	if (r < 0)
		return open_failed(r, path, display);
	if (!format && (flags & MIMG_OPEN_RDWR) &&
	    strcmp(mimg_format(*imgp), "raw") == 0)
		cli_warn_probed_raw(path);
	if (header_only || !mimg_needs_secret(*imgp))
		return r;
	/* Fail before any work (a convert would create its target first),
	 * as qemu-img does, naming the option as the format calls it. */
	snprintf(own_error, sizeof(own_error),
		 "Parameter '%s' is required for cipher",
		 strcmp(mimg_format(*imgp), "qcow2") == 0 ? "encrypt.key-secret"
							  : "key-secret");
	mimg_close(*imgp);
	*imgp = NULL;
	return open_failed(-EACCES, path, display);
}

int cli_open(struct mimg **imgp, const char *path, const char *format,
	     unsigned flags)
{
	return open_image(imgp, path, format, flags, NULL, false, path);
}

int cli_open_id(struct mimg **imgp, const char *path, const char *format,
		unsigned flags, const char *id)
{
	return open_image(imgp, path, format, flags, id, false, path);
}

int cli_open_named(struct mimg **imgp, const char *path, const char *format,
		   unsigned flags, const char *id, const char *display)
{
	return open_image(imgp, path, format, flags, id, false, display);
}

int cli_open_header(struct mimg **imgp, const char *path, const char *format,
		    unsigned flags)
{
	return open_image(imgp, path, format, flags, NULL, true, path);
}

bool cli_is_key_secret(const char *key)
{
	return strcmp(key, "key-secret") == 0 ||
	       strcmp(key, "encrypt.key-secret") == 0;
}

int cli_create(const char *path, const char *format, uint64_t size,
	       const struct mimg_opt *opts, size_t nopts, unsigned flags)
{
	const char *id = NULL;
	own_error[0] = 0;
	for (size_t i = 0; i < nopts; i++)
		if (cli_is_key_secret(opts[i].key))
			id = opts[i].value;
	if (!id)
		return mimg_create_flags(path, format, size, opts, nopts,
					 flags);
	const struct cli_secret *s = find_secret(id);
	if (!s)
		return no_secret(id);
	struct mimg_secret sec = {.size = sizeof(sec),
				  .data = s->data,
				  .len = s->len,
				  .max_pbkdf2_iters = s->max_iters};
	return mimg_create_secret(path, format, size, opts, nopts, &sec);
}

size_t cli_named_secrets(struct mimg_named_secret *out, size_t max)
{
	size_t n = 0;
	for (int i = 0; i < nsecrets && n < max; i++, n++) {
		memset(&out[n], 0, sizeof(out[n]));
		out[n].id = secrets[i].id;
		out[n].secret.size = sizeof(out[n].secret);
		out[n].secret.data = secrets[i].data;
		out[n].secret.len = secrets[i].len;
		out[n].secret.max_pbkdf2_iters = secrets[i].max_iters;
	}
	return n;
}
