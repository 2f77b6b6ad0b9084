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
#include <sys/stat.h>

#include <mimg.h>

#include "blockif_impl.h"

#define BLOCKIF_MAX_SECTSZ 65536

static void __attribute__((format(printf, 2, 3)))
warnx_ident(const char *ident, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "blockif %s: ", ident ? ident : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool is_pow2(long v)
{
	return v > 0 && (v & (v - 1)) == 0;
}

/* Parse a decimal sector size; -1 when malformed. */
static long parse_sectsz(const char *s, const char **endp)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || v > BLOCKIF_MAX_SECTSZ)
		return -1;
	*endp = end;
	return v;
}

static int parse_sectorsize(const char *val, struct blockif_opts *o)
{
	const char *end;
	long l, p;

	l = parse_sectsz(val, &end);
	if (l < 0)
		return -1;
	p = l;
	if (*end == '/') {
		p = parse_sectsz(end + 1, &end);
		if (p < 0)
			return -1;
	}
	if (*end || !is_pow2(l) || !is_pow2(p) || l < 512 || l > p)
		return -1;
	o->sectsz = (int)l;
	o->psectsz = (int)p;
	return 0;
}

/* Split OPTSTR (modified in place) into O.  Returns 0 or -1 after a
 * message. */
static int parse_opts(char *optstr, struct blockif_opts *o, const char *ident)
{
	char *cp, *rest = optstr;

	o->path = strsep(&rest, ",");
	if (!o->path || !*o->path) {
		warnx_ident(ident, "no image path in \"%s\"", optstr);
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
			if (parse_sectorsize(cp + 11, o) < 0) {
				warnx_ident(ident,
					    "invalid sector size \"%s\" (powers "
					    "of two, 512..%d, logical <= "
					    "physical)",
					    cp + 11, BLOCKIF_MAX_SECTSZ);
				return -1;
			}
		} else if (!strncmp(cp, "format=", 7) && cp[7])
			o->format = cp + 7;
		else if (*cp) {
			warnx_ident(ident, "invalid device option \"%s\"", cp);
			return -1;
		}
	}
	return 0;
}

/* The physical sector size to report when none was given: 4 KiB when the
 * host file system works in blocks at least that large. */
static int default_psectsz(const char *path, int sectsz)
{
	struct stat st;

	if (sectsz < 4096 && stat(path, &st) == 0 && st.st_blksize >= 4096)
		return 4096;
	return sectsz;
}

static struct mimg *open_image(struct blockif_opts *o, const char *ident)
{
	/* bhyve never closes its disks at power-off and its NVMe model never
	 * flushes: a completed write must already be in the host file. */
	unsigned flags = MIMG_OPEN_EXIT_SAFE;
	struct mimg *img = NULL;
	int r;

	if (o->nocache)
		flags |= MIMG_OPEN_DIRECT;
	if (o->sync)
		flags |= MIMG_OPEN_SYNC;
	if (o->untrusted)
		flags |= MIMG_OPEN_UNTRUSTED;
	r = mimg_open(&img, o->path, o->format,
		      flags | (o->ro ? 0 : MIMG_OPEN_RDWR));
	if (r == -EACCES || r == -EROFS || r == -EPERM) {
		/* As bhyve does: serve a file we may not write read-only. */
		if (!o->ro &&
		    mimg_open(&img, o->path, o->format, flags) == 0) {
			o->ro = true;
			return img;
		}
	}
	if (r < 0) {
		/* libmimg's message names the file and the reason. */
		warnx_ident(ident, "%s", mimg_errmsg());
		errno = -r;
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
	if (o->sectsz) {
		bc->sectsz = o->sectsz;
		bc->psectsz = o->psectsz;
	} else {
		bc->sectsz = 512;
		bc->psectsz = default_psectsz(o->path, 512);
	}
	bc->psectoff = 0;
	err = 0;
	if (bc->size > (uint64_t)INT64_MAX) {
		warnx_ident(ident, "image size %llu is too large",
			    (unsigned long long)bc->size);
		err = EFBIG;
	} else {
		err = blockif_start(bc);
		if (err)
			warnx_ident(ident, "cannot start worker threads: %s",
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

struct blockif_ctxt *blockif_open(const char *optstr, const char *ident)
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
 * CHS geometry for emulations that still need one, from the size, with the
 * algorithm of the VHD specification (also used by ATA emulations): up to
 * 65535 cylinders, 16 heads, 255 sectors per track.
 */
void blockif_chs(struct blockif_ctxt *bc, uint16_t *c, uint8_t *h, uint8_t *s)
{
	uint64_t sectors = bc->size / (uint64_t)bc->sectsz;
	uint64_t cyl_heads;
	unsigned spt, heads;

	if (sectors > 65535ull * 16 * 255)
		sectors = 65535ull * 16 * 255;
	if (sectors >= 65535ull * 16 * 63) {
		spt = 255;
		heads = 16;
		cyl_heads = sectors / spt;
	} else {
		spt = 17;
		cyl_heads = sectors / spt;
		heads = (unsigned)((cyl_heads + 1023) / 1024);
		if (heads < 4)
			heads = 4;
		if (cyl_heads >= heads * 1024ull || heads > 16) {
			spt = 31;
			heads = 16;
			cyl_heads = sectors / spt;
		}
		if (cyl_heads >= heads * 1024ull) {
			spt = 63;
			heads = 16;
			cyl_heads = sectors / spt;
		}
	}
	*c = (uint16_t)(cyl_heads / heads);
	*h = (uint8_t)heads;
	*s = (uint8_t)spt;
}
