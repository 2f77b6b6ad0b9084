/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif_open: bhyve's option string, opening the image with libmimg, and
 * the geometry the emulations derive from it.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mimg.h>

#include "blockif_impl.h"

void blockif_warn(const char *ident, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "blockif %s: ", ident ? ident : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool is_pow2(int v)
{
	return v > 0 && (v & (v - 1)) == 0;
}

/* strtol into an int the way bhyve's "int = strtol()" stores it: the low
 * 32 bits, two's complement. */
static int strtol_int(const char *s, char **end)
{
	unsigned long v = (unsigned long)strtol(s, end, 10);

	return (int)(unsigned)v;
}

/*
 * bhyve's sectorsize grammar: a decimal L, or L/P, nothing after; strtol
 * rules (leading blanks and a sign are allowed).  L = 0 keeps the defaults
 * whatever P says.  Otherwise both are powers of two, L >= 512 and L <= P;
 * there is no upper bound (ZFS reports 128 KiB physical blocks).
 */
int blockif_parse_sectorsize(const char *val, struct blockif_opts *o,
			     const char *ident)
{
	char *end;
	int l, p;

	l = strtol_int(val, &end);
	if (end == val)
		goto bad;
	if (*end == '\0') {
		p = l;
	} else if (*end == '/') {
		const char *pv = end + 1;

		p = strtol_int(pv, &end);
		if (end == pv || *end != '\0')
			goto bad;
	} else {
		goto bad;
	}
	if (l == 0) {
		o->sectsz = o->psectsz = 0;
		return 0;
	}
	if (!is_pow2(l) || !is_pow2(p) || l < 512 || l > p) {
		blockif_warn(ident,
			     "invalid sector size %d/%d (powers of two, "
			     "512 <= logical <= physical)",
			     l, p);
		return -1;
	}
	o->sectsz = l;
	o->psectsz = p;
	return 0;
bad:
	blockif_warn(ident, "invalid sector size \"%s\"", val);
	return -1;
}

void blockif_parse_bootindex(const char *val, struct blockif_opts *o)
{
	o->has_bootindex = true;
	o->bootindex = strtol_int(val, NULL);
}

/* Split OPTSTR (modified in place) into O.  Returns 0 or -1 after a
 * message. */
static int parse_opts(char *optstr, struct blockif_opts *o, const char *ident)
{
	char *cp, *rest = optstr;

	o->path = strsep(&rest, ",");
	if (!o->path || !*o->path) {
		blockif_warn(ident, "no image path in \"%s\"", optstr);
		return -1;
	}
	while ((cp = strsep(&rest, ",")) != NULL) {
		if (!strcmp(cp, "nocache"))
			o->nocache = true;
		else if (!strcmp(cp, "sync") || !strcmp(cp, "direct"))
			o->sync = true;
		else if (!strcmp(cp, "ro"))
			o->ro = true;
		else if (!strcmp(cp, "nodelete"))
			o->nodelete = true;
		else if (!strcmp(cp, "untrusted"))
			o->untrusted = true;
		else if (!strncmp(cp, "sectorsize=", 11)) {
			if (blockif_parse_sectorsize(cp + 11, o, ident) < 0)
				return -1;
		} else if (!strncmp(cp, "bootindex=", 10))
			blockif_parse_bootindex(cp + 10, o);
		else if (!strncmp(cp, "format=", 7) && cp[7])
			o->format = cp + 7;
		else if (!strncmp(cp, "keyfile=", 8) && cp[8])
			o->keyfile = cp + 8;
		else if (*cp) {
			blockif_warn(ident, "invalid device option \"%s\"", cp);
			return -1;
		}
	}
	return 0;
}

/* The physical sector size to report when none was given: the host
 * file's st_blksize, as bhyve reports for a file (a power of two from the
 * logical size up; anything else reports the logical size). */
static int default_psectsz(const char *path, int sectsz)
{
	struct stat st;

	if (stat(path, &st) == 0 && st.st_blksize >= sectsz &&
	    st.st_blksize <= INT_MAX && is_pow2((int)st.st_blksize))
		return (int)st.st_blksize;
	return sectsz;
}

static unsigned open_flags(const struct blockif_opts *o, bool direct)
{
	/* bhyve never closes its disks at power-off and its NVMe model never
	 * flushes: a completed write must already be in the host file. */
	unsigned flags = MIMG_OPEN_EXIT_SAFE | (o->ro ? 0 : MIMG_OPEN_RDWR);

	if (direct)
		flags |= MIMG_OPEN_DIRECT;
	if (o->sync)
		flags |= MIMG_OPEN_SYNC;
	if (o->untrusted)
		flags |= MIMG_OPEN_UNTRUSTED;
	return flags;
}

#define MAX_KEYFILE (64u * 1024)

/* The passphrase in O->keyfile into KEY (MAX_KEYFILE bytes).  Returns its
 * length or a negative errno (a message naming the file is printed). */
static ssize_t read_keyfile(const struct blockif_opts *o, uint8_t *key,
			    const char *ident)
{
	int fd = open(o->keyfile, O_RDONLY | O_CLOEXEC);
	ssize_t n = 0, got;
	int err;

	if (fd < 0)
		goto fail;
	while ((got = read(fd, key + n, MAX_KEYFILE - (size_t)n)) > 0 &&
	       (size_t)(n += got) < MAX_KEYFILE)
		;
	if (got < 0)
		goto fail;
	close(fd);
	if ((size_t)n == MAX_KEYFILE || n == 0) {
		blockif_warn(ident, "%s: %s", o->keyfile,
			     n ? "larger than 64 KiB" : "empty");
		return -EINVAL;
	}
	return n;
fail:
	err = errno;
	if (fd >= 0)
		close(fd);
	blockif_warn(ident, "%s: %s", o->keyfile, strerror(err));
	return -err;
}

static int open_with_key(struct mimg **imgp, const struct blockif_opts *o,
			 unsigned flags, const uint8_t *key, size_t keylen)
{
	struct mimg_secret sec = {.size = sizeof(sec),
				  .data = key,
				  .len = keylen};
	return mimg_open_secret(imgp, o->path, o->format, flags,
				key ? &sec : NULL);
}

/* mimg_open, falling back to read-only as bhyve does when the image may
 * not be written (then O->ro is set).  Returns 0 or a negative errno. */
static int open_rw_or_ro(struct mimg **imgp, struct blockif_opts *o,
			 bool direct)
{
	uint8_t *key = NULL;
	ssize_t keylen = 0;
	int r;

	if (o->keyfile) {
		if (!(key = malloc(MAX_KEYFILE)))
			return -ENOMEM;
		if ((keylen = read_keyfile(o, key, "keyfile")) < 0) {
			free(key);
			return (int)keylen;
		}
	}
	r = open_with_key(imgp, o, open_flags(o, direct), key, (size_t)keylen);
	if ((r == -EROFS || r == -EPERM ||
	     (r == -EACCES && !strstr(mimg_errmsg(), "password"))) &&
	    !o->ro) {
		o->ro = true;
		if (open_with_key(imgp, o, open_flags(o, direct), key,
				  (size_t)keylen) == 0)
			r = 0;
		else
			o->ro = false;
	}
	if (key) {
		explicit_bzero(key, MAX_KEYFILE);
		free(key);
	}
	return r;
}

/*
 * nocache: every format is served with O_DIRECT (the host-file layer
 * bounces unaligned metadata and compressed-data transfers).  The image is
 * opened cached first, so a failure says what is wrong with the image, and
 * is reopened with O_DIRECT; where the file system refuses O_DIRECT it
 * stays cached with a warning.
 */
static struct mimg *reopen_direct(struct mimg *img, struct blockif_opts *o,
				  const char *ident)
{
	struct mimg *direct = NULL;
	bool ro = o->ro;

	/* Close first: the image may be locked against a second writer. */
	mimg_close(img);
	if (open_rw_or_ro(&direct, o, true) == 0)
		return direct;
	blockif_warn(ident, "nocache: %s; served through the host page cache",
		     mimg_errmsg());
	o->ro = ro;
	return open_rw_or_ro(&img, o, false) == 0 ? img : NULL;
}

static struct mimg *open_image(struct blockif_opts *o, const char *ident)
{
	struct mimg *img = NULL;
	int r = open_rw_or_ro(&img, o, false);

	if (r == 0 && mimg_needs_secret(img)) {
		/* It could be described but not served. */
		blockif_warn(ident,
			     "%s is encrypted: give keyfile=PATH with "
			     "its passphrase",
			     o->path);
		mimg_close(img);
		errno = EACCES;
		return NULL;
	}
	if (r == 0 && o->nocache)
		img = reopen_direct(img, o, ident);
	if (!img) {
		/* libmimg's message names the file and the reason. */
		blockif_warn(ident, "%s", mimg_errmsg());
		errno = r < 0 ? -r : EIO;
		return NULL;
	}
	return img;
}

struct blockif_ctxt *blockif_open_opts(struct blockif_opts *o,
				       const char *ident)
{
	struct blockif_ctxt *bc;
	struct mimg *img;
	int err;

	img = open_image(o, ident);
	if (!img)
		return NULL;
	bc = calloc(1, sizeof(*bc));
	if (!bc) {
		mimg_close(img);
		errno = ENOMEM;
		return NULL;
	}
	bc->img = img;
	snprintf(bc->ident, sizeof(bc->ident), "%s", ident ? ident : "");
	bc->size = mimg_size(img);
	bc->ro = o->ro || mimg_is_read_only(img);
	bc->candelete = !bc->ro && !o->nodelete && mimg_can_discard(img);
	bc->bootindex = o->has_bootindex ? o->bootindex : -1;
	if (o->sectsz) {
		bc->sectsz = o->sectsz;
		bc->psectsz = o->psectsz;
	} else {
		bc->sectsz = 512;
		bc->psectsz = default_psectsz(o->path, 512);
	}
	bc->psectoff = 0;
	/* Cached reads are memory copies, which more threads speed up only
	 * on idle CPUs; with O_DIRECT they wait for the device. */
	bc->split_reads = o->nocache;
	err = 0;
	if (bc->size > (uint64_t)INT64_MAX) {
		blockif_warn(ident, "image size %llu is too large",
			     (unsigned long long)bc->size);
		err = EFBIG;
	} else {
		err = blockif_start(bc);
		if (err)
			blockif_warn(ident, "cannot start worker threads: %s",
				     strerror(err));
	}
	if (err) {
		mimg_close(img);
		free(bc);
		errno = err;
		return NULL;
	}
	return bc;
}

struct blockif_ctxt *blockif_open_optstr(const char *optstr, const char *ident)
{
	struct blockif_opts o = {.sectsz = 0};
	struct blockif_ctxt *bc;
	char *copy;
	int err;

	if (!optstr) {
		errno = EINVAL;
		return NULL;
	}
	copy = strdup(optstr);
	if (!copy)
		return NULL;
	if (parse_opts(copy, &o, ident) < 0) {
		free(copy);
		errno = EINVAL;
		return NULL;
	}
	bc = blockif_open_opts(&o, ident);
	err = errno;
	free(copy);
	errno = err;
	return bc;
}

/*
 * CHS geometry as bhyve computes it: the VHD specification's algorithm
 * (at most 65535 cylinders, 16 heads, 255 sectors per track), except that
 * bhyve switches to 255 sectors per track only from 65536 (not 65535) *
 * 16 * 63 sectors and keeps the head count in 8 bits, so disks just
 * under 31.5 GiB get 65535/16/63.  Guests see these numbers; they must be
 * bhyve's exactly.
 */
void blockif_chs(struct blockif_ctxt *bc, uint16_t *c, uint8_t *h, uint8_t *s)
{
	int64_t sectors = (int64_t)blockif_size(bc) / bc->sectsz;
	int64_t hcyl; /* cylinders times heads */
	uint16_t spt;
	uint8_t heads;

	if (sectors > 65535LL * 16 * 255)
		sectors = 65535LL * 16 * 255;
	if (sectors >= 65536LL * 16 * 63) {
		spt = 255;
		heads = 16;
		hcyl = sectors / spt;
	} else {
		spt = 17;
		hcyl = sectors / spt;
		heads = (uint8_t)((hcyl + 1023) / 1024);
		if (heads < 4)
			heads = 4;
		if (hcyl >= heads * 1024 || heads > 16) {
			spt = 31;
			heads = 16;
			hcyl = sectors / spt;
		}
		if (hcyl >= heads * 1024) {
			spt = 63;
			heads = 16;
			hcyl = sectors / spt;
		}
	}
	*c = (uint16_t)(hcyl / heads);
	*h = heads;
	*s = (uint8_t)spt;
}
