/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * nbdkit-mimg-plugin: serve any image libmimg opens (raw, qcow2, VMDK,
 * ... with its backing chain) over NBD:
 *     nbdkit mimg file=disk.qcow2 [format=FMT] [readonly=true]
 *                 [untrusted=true] [password=SECRET]
 *
 * All connections share one image handle, whose I/O calls are
 * thread-safe: the thread model is parallel, and multi-conn is safe
 * because a flush on any connection flushes the one image all of them
 * write.  The image is opened on the first connection (not before nbdkit
 * forks into the background), read-only when that connection is
 * (nbdkit -r, or a filter such as cow); get_ready opens it once
 * read-only to report a bad file before the server starts.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <mimg.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#define MAX_EXTENTS 1024 /* extents added per block-status reply */

static char *filename;
static const char *format;
static bool cfg_readonly, cfg_untrusted;
static char *password;

static pthread_mutex_t img_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mimg *img; /* opened by the first connection */

/* What one connection may do with the shared image. */
struct conn {
	bool writable;
};

static void mimg_plugin_unload(void)
{
	if (img && mimg_close(img) < 0)
		nbdkit_error("%s: %s", filename, mimg_errmsg());
	img = NULL;
	free(filename);
	if (password) {
		memset(password, 0, strlen(password));
		free(password);
	}
}

static int parse_bool(const char *key, const char *value, bool *out)
{
	int b = nbdkit_parse_bool(value);
	if (b == -1)
		return -1;
	(void)key;
	*out = b;
	return 0;
}

static int mimg_plugin_config(const char *key, const char *value)
{
	if (strcmp(key, "file") == 0) {
		free(filename);
		/* nbdkit changes directory when it daemonizes */
		if (!(filename = nbdkit_realpath(value)))
			return -1;
		return 0;
	}
	if (strcmp(key, "format") == 0) {
		format = value;
		return 0;
	}
	if (strcmp(key, "readonly") == 0)
		return parse_bool(key, value, &cfg_readonly);
	if (strcmp(key, "untrusted") == 0)
		return parse_bool(key, value, &cfg_untrusted);
	if (strcmp(key, "password") == 0) {
		free(password);
		password = NULL;
		return nbdkit_read_password(value, &password);
	}
	nbdkit_error("unknown parameter '%s'", key);
	return -1;
}

static int mimg_plugin_config_complete(void)
{
	if (!filename) {
		nbdkit_error("the image must be given: file=PATH");
		return -1;
	}
	if (format) {
		bool known = false;
		for (const char *const *f = mimg_formats(); *f; f++)
			known = known || strcmp(*f, format) == 0;
		if (!known) {
			nbdkit_error("unknown image format '%s'", format);
			return -1;
		}
	}
	return 0;
}

#define mimg_plugin_config_help                                                \
	"file=<PATH>        (required) The image to serve.\n"                  \
	"format=<FMT>       Its format (default: probe).\n"                    \
	"readonly=true      Open the image read-only.\n"                       \
	"untrusted=true     Refuse images that refer to other files.\n"        \
	"password=<SECRET>  Passphrase of an encrypted image (-, +FILE, -FD)."

static int open_image(struct mimg **out, bool rdwr)
{
	struct mimg_secret sec = {.size = sizeof(sec)};
	unsigned flags = (rdwr ? MIMG_OPEN_RDWR : 0) |
			 (cfg_untrusted ? MIMG_OPEN_UNTRUSTED : 0);
	int r;

	if (password) {
		sec.data = password;
		sec.len = strlen(password);
	}
	r = mimg_open_secret(out, filename, format, flags,
			     password ? &sec : NULL);
	if (r < 0) {
		nbdkit_error("%s", mimg_errmsg());
		nbdkit_set_error(-r);
		return -1;
	}
	if (mimg_needs_secret(*out)) {
		nbdkit_error("%s: the image is encrypted: give password=",
			     filename);
		mimg_close(*out);
		*out = NULL;
		nbdkit_set_error(EACCES);
		return -1;
	}
	return 0;
}

static int mimg_plugin_get_ready(void)
{
	struct mimg *probe;
	if (open_image(&probe, false) < 0)
		return -1;
	mimg_close(probe);
	return 0;
}

static void *mimg_plugin_open(int readonly)
{
	struct conn *c = calloc(1, sizeof(*c));
	bool rdwr = !readonly && !cfg_readonly;

	if (!c) {
		nbdkit_error("out of memory");
		return NULL;
	}
	pthread_mutex_lock(&img_lock);
	if (!img && open_image(&img, rdwr) < 0) {
		pthread_mutex_unlock(&img_lock);
		free(c);
		return NULL;
	}
	c->writable = rdwr && !mimg_is_read_only(img);
	pthread_mutex_unlock(&img_lock);
	return c;
}

static void mimg_plugin_close(void *handle)
{
	free(handle);
}

static int64_t mimg_plugin_get_size(void *handle)
{
	(void)handle;
	return (int64_t)mimg_size(img);
}

static int mimg_plugin_can_write(void *handle)
{
	return ((struct conn *)handle)->writable;
}

static int mimg_plugin_can_flush(void *handle)
{
	return ((struct conn *)handle)->writable;
}

static int mimg_plugin_can_trim(void *handle)
{
	return ((struct conn *)handle)->writable && mimg_can_discard(img);
}

static int mimg_plugin_can_zero(void *handle)
{
	return ((struct conn *)handle)->writable;
}

/* mimg_pwrite_zeroes may fall back to writing zeroes: never "fast". */
static int mimg_plugin_can_fast_zero(void *handle)
{
	(void)handle;
	return 0;
}

/* Writes are in the image when they complete; FUA is a flush after. */
static int mimg_plugin_can_fua(void *handle)
{
	return ((struct conn *)handle)->writable ? NBDKIT_FUA_EMULATE
						 : NBDKIT_FUA_NONE;
}

static int mimg_plugin_can_multi_conn(void *handle)
{
	(void)handle;
	return 1;
}

static int mimg_plugin_can_extents(void *handle)
{
	(void)handle;
	return 1;
}

/* Report a failed libmimg call R to nbdkit. */
static int fail(int r)
{
	nbdkit_error("%s", mimg_errmsg());
	nbdkit_set_error(-r);
	return -1;
}

static int mimg_plugin_pread(void *handle, void *buf, uint32_t count,
			     uint64_t offset, uint32_t flags)
{
	(void)handle;
	(void)flags;
	ssize_t r = mimg_pread(img, buf, count, offset, 0);
	if (r < 0)
		return fail((int)r);
	if ((size_t)r != count) {
		nbdkit_error("%s: short read at offset %llu", filename,
			     (unsigned long long)offset);
		nbdkit_set_error(EIO);
		return -1;
	}
	return 0;
}

static int mimg_plugin_pwrite(void *handle, const void *buf, uint32_t count,
			      uint64_t offset, uint32_t flags)
{
	(void)handle;
	(void)flags;
	ssize_t r = mimg_pwrite(img, buf, count, offset, 0);
	return r < 0 ? fail((int)r) : 0;
}

static int mimg_plugin_flush(void *handle, uint32_t flags)
{
	(void)handle;
	(void)flags;
	int r = mimg_flush(img, 0);
	return r < 0 ? fail(r) : 0;
}

static int mimg_plugin_trim(void *handle, uint32_t count, uint64_t offset,
			    uint32_t flags)
{
	(void)handle;
	(void)flags;
	int r = mimg_discard(img, offset, count, 0);
	return r < 0 ? fail(r) : 0;
}

static int mimg_plugin_zero(void *handle, uint32_t count, uint64_t offset,
			    uint32_t flags)
{
	(void)handle;
	if (flags & NBDKIT_FLAG_FAST_ZERO) {
		nbdkit_set_error(ENOTSUP);
		return -1;
	}
	int r = mimg_pwrite_zeroes(img, offset, count,
				   (flags & NBDKIT_FLAG_MAY_TRIM)
					   ? MIMG_ZERO_MAY_UNMAP
					   : 0);
	return r < 0 ? fail(r) : 0;
}

/* The guest-visible state of the whole chain, as qemu-nbd reports it:
 * a hole where no layer stores data, zero where reads return zeroes. */
static uint32_t extent_type(unsigned status)
{
	return (status & MIMG_BS_DATA ? 0 : NBDKIT_EXTENT_HOLE) |
	       (status & MIMG_BS_ZERO ? NBDKIT_EXTENT_ZERO : 0);
}

static int mimg_plugin_extents(void *handle, uint32_t count, uint64_t offset,
			       uint32_t flags, struct nbdkit_extents *extents)
{
	uint64_t end = offset + count, size = mimg_size(img);
	(void)handle;

	if (end > size)
		end = size;
	for (int n = 0; offset < end && n < MAX_EXTENTS; n++) {
		uint64_t pnum;
		unsigned status;
		int r = mimg_block_status_chain(img, offset, end - offset,
						&pnum, &status, NULL, NULL, 0);
		if (r < 0)
			return fail(r);
		if (pnum == 0 || pnum > end - offset) {
			nbdkit_error("%s: block status at offset %llu gave a "
				     "run of %llu bytes",
				     filename, (unsigned long long)offset,
				     (unsigned long long)pnum);
			nbdkit_set_error(EIO);
			return -1;
		}
		if (nbdkit_add_extent(extents, offset, pnum,
				      extent_type(status)) == -1)
			return -1;
		offset += pnum;
		if (flags & NBDKIT_FLAG_REQ_ONE)
			break;
	}
	return 0;
}

static void mimg_plugin_dump_plugin(void)
{
	printf("mimg_version=%s\n", mimg_version());
	printf("mimg_formats=");
	for (const char *const *f = mimg_formats(); *f; f++)
		printf("%s%s", *f, f[1] ? "," : "\n");
}

static struct nbdkit_plugin plugin = {
	.name = "mimg",
	.longname = "nbdkit mimg plugin (raw, qcow2, VMDK, ... images)",
	.version = MIMG_VERSION_STRING,
	.description = "Serve disk images with their backing chains through "
		       "libmimg",
	.unload = mimg_plugin_unload,
	.config = mimg_plugin_config,
	.config_complete = mimg_plugin_config_complete,
	.config_help = mimg_plugin_config_help,
	.magic_config_key = "file",
	.get_ready = mimg_plugin_get_ready,
	.open = mimg_plugin_open,
	.close = mimg_plugin_close,
	.get_size = mimg_plugin_get_size,
	.can_write = mimg_plugin_can_write,
	.can_flush = mimg_plugin_can_flush,
	.can_trim = mimg_plugin_can_trim,
	.can_zero = mimg_plugin_can_zero,
	.can_fast_zero = mimg_plugin_can_fast_zero,
	.can_fua = mimg_plugin_can_fua,
	.can_multi_conn = mimg_plugin_can_multi_conn,
	.can_extents = mimg_plugin_can_extents,
	.pread = mimg_plugin_pread,
	.pwrite = mimg_plugin_pwrite,
	.flush = mimg_plugin_flush,
	.trim = mimg_plugin_trim,
	.zero = mimg_plugin_zero,
	.extents = mimg_plugin_extents,
	.dump_plugin = mimg_plugin_dump_plugin,
	.errno_is_preserved = 0,
};

/* The entry point nbdkit looks up, which the macro below defines without
 * a prototype (an error with clang's -Wmissing-prototypes). */
struct nbdkit_plugin *plugin_init(void);
NBDKIT_REGISTER_PLUGIN(plugin)
