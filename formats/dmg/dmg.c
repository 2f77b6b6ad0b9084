/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * DMG (Apple UDIF) images, read-only, as qemu-img reads them: the
 * 512-byte "koly" trailer near the end of the file gives the disk's
 * sector count and where its block tables are, either "mish" blocks in
 * the data elements of an XML property list (base64) or in a binary
 * resource fork.  Each mish block lists chunks: runs of sectors stored
 * zlib- or bzip2-compressed, raw, or not at all (zeroes).  bzip2 needs a
 * build with libbz2 (qemu-img reads it only with an optional module);
 * ADC and LZFSE chunks are listed but not read; a sector that no chunk
 * covers cannot be read either.
 *
 * Every chunk is checked at open: its data inside the file, its size
 * within qemu-img's 64 MiB bound, no two covering one sector.  A read
 * inflates the chunks it needs; the last inflated chunk is kept for the
 * next read of it, which is how conversions read a chunk in pieces.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "codec.h"
#include "decoded.h"
#include "endian.h"
#include "error.h"
#include "grow.h"
#include "image.h"
#include "iov-file.h"
#include "iov.h"
#include "runs.h"

#define DMG_SECTOR 512u
#define DMG_TRAILER 512u
/* qemu-img's bounds: a chunk's stored and inflated bytes, the property
 * list's size (the bound on a resource of a resource fork too, which
 * qemu-img reads whatever its size). */
#define DMG_CHUNK_MAX (64u << 20)
#define DMG_TABLES_MAX (16u << 20)
#define MISH_HEADER 204u
#define MISH_ENTRY 40u

enum chunk_type {
	CHUNK_ZERO = 0,
	CHUNK_RAW = 1,
	CHUNK_IGNORE = 2,
	CHUNK_ADC = 0x80000004u,
	CHUNK_ZLIB = 0x80000005u,
	CHUNK_BZIP2 = 0x80000006u,
	CHUNK_LZFSE = 0x80000007u,
	CHUNK_COMMENT = 0x7ffffffeu,
	CHUNK_LAST = 0xffffffffu,
};

struct chunk {
	uint64_t sector, count;	 /* the sectors it covers */
	uint64_t offset, length; /* its bytes in the file */
	uint32_t type;
};

struct dmg {
	struct chunk *chunks; /* sorted by sector, none overlapping */
	size_t n, cap;
	uint64_t file_size;
};

static int dmg_probe(const uint8_t *buf, size_t len, const char *filename)
{
	/* No magic at the start: qemu-img goes by the name (an empty file
	 * is raw whatever its name). */
	(void)buf;
	size_t n = filename ? strlen(filename) : 0;
	return len && n > 4 && strcmp(filename + n - 4, ".dmg") == 0 ? 2 : 0;
}

static const char *type_name(uint32_t t)
{
	switch (t) {
	case CHUNK_ADC: return "ADC-compressed";
	case CHUNK_BZIP2: return "bzip2-compressed";
	case CHUNK_LZFSE: return "LZFSE-compressed";
	default: return "unknown";
	}
}

static bool readable(uint32_t t)
{
#ifdef MIMG_HAVE_BZIP2
	if (t == CHUNK_BZIP2)
		return true;
#endif
	return t == CHUNK_ZERO || t == CHUNK_RAW || t == CHUNK_IGNORE ||
	       t == CHUNK_ZLIB;
}

/* Decode the LENGTH stored bytes IN of a chunk of type T into OUT, all
 * of its OUTLEN bytes. */
static int decode(uint32_t t, const uint8_t *in, size_t length, uint8_t *out,
		  size_t outlen)
{
	size_t got = 0;
	if (t == CHUNK_BZIP2)
		return codec_bunzip2(in, length, out, outlen);
	int r = codec_inflate_zlib(in, length, out, outlen, &got);
	return r < 0 ? r : got == outlen ? 0 : -EIO;
}

static bool zeroes(uint32_t t)
{
	return t == CHUNK_ZERO || t == CHUNK_IGNORE;
}

/* Add the chunks of the mish block BUF (LEN bytes); data offsets count
 * from FORK (the data fork's offset in the file).  Data that is no mish
 * block is skipped, as qemu-img skips it. */
static int add_mish(struct mimg *img, struct dmg *s, const uint8_t *buf,
		    size_t len, uint64_t fork)
{
	const char *fn = img->filename;
	if (len < MISH_HEADER + MISH_ENTRY || memcmp(buf, "mish", 4) != 0)
		return 0;
	uint64_t first = ld_be64(buf + 8), data = ld_be64(buf + 0x18);
	for (size_t at = MISH_HEADER; at + MISH_ENTRY <= len;
	     at += MISH_ENTRY) {
		const uint8_t *e = buf + at;
		struct chunk c = {.type = ld_be32(e)};
		/* Comments and the end marker hold no sectors. */
		if (c.type == CHUNK_COMMENT || c.type == CHUNK_LAST)
			continue;
		c.count = ld_be64(e + 0x10);
		c.length = ld_be64(e + 0x20);
		if (!ck_add_u64(ld_be64(e + 8), first, &c.sector) ||
		    c.sector + c.count < c.sector ||
		    c.sector + c.count > UINT64_MAX / DMG_SECTOR)
			return mimg_err(-EINVAL,
					"%s: dmg: chunk at sector %llu+%llu "
					"of %llu sectors is past any disk",
					fn, (unsigned long long)ld_be64(e + 8),
					(unsigned long long)first,
					(unsigned long long)c.count);
		if (!zeroes(c.type) && c.count > DMG_CHUNK_MAX / DMG_SECTOR)
			return mimg_err(-EINVAL,
					"%s: dmg: sector count %llu of the "
					"chunk at sector %llu is larger than "
					"max (%u)",
					fn, (unsigned long long)c.count,
					(unsigned long long)c.sector,
					DMG_CHUNK_MAX / DMG_SECTOR);
		if (c.length > DMG_CHUNK_MAX)
			return mimg_err(-EINVAL,
					"%s: dmg: length %llu of the chunk at "
					"sector %llu is larger than max (%u)",
					fn, (unsigned long long)c.length,
					(unsigned long long)c.sector,
					DMG_CHUNK_MAX);
		/* A zero chunk stores nothing, whatever its length says. */
		if (zeroes(c.type))
			c.length = 0;
		/* qemu-img reads the rest of a short raw chunk from whatever
		 * its buffer last held: refused. */
		if (c.type == CHUNK_RAW && c.length < c.count * DMG_SECTOR)
			return mimg_err(
				-EINVAL,
				"%s: dmg: the raw chunk at sector %llu "
				"stores %llu bytes for its %llu sectors",
				fn, (unsigned long long)c.sector,
				(unsigned long long)c.length,
				(unsigned long long)c.count);
		if (!ck_add_u64(fork, data, &c.offset) ||
		    !ck_add_u64(c.offset, ld_be64(e + 0x18), &c.offset) ||
		    !ck_range_within(c.offset, c.length, s->file_size))
			return mimg_err(-EINVAL,
					"%s: dmg: the %llu bytes of the chunk "
					"at sector %llu are outside the file",
					fn, (unsigned long long)c.length,
					(unsigned long long)c.sector);
		if (c.count == 0)
			continue;
		struct chunk *p = mimg__grow(s->chunks, &s->cap, s->n + 1,
					     sizeof(*p), 64);
		if (!p)
			return -ENOMEM;
		s->chunks = p;
		s->chunks[s->n++] = c;
	}
	return 0;
}

/* Decode the base64 text [P, END) into OUT (room for its length) as
 * qemu-img's decoder (GLib's) does, so that both read the same tables:
 * characters outside the alphabet are skipped, "=" counts as a zero in
 * its group of four and drops the byte it ends, and a group left short
 * at the end is dropped.  Returns the number of bytes. */
static size_t base64_decode(const char *p, const char *end, uint8_t *out)
{
	uint32_t acc = 0;
	size_t n = 0;
	int in_group = 0;
	bool pad3 = false, pad4 = false; /* the group's last two are "=" */
	for (; p < end; p++) {
		char c = *p;
		uint32_t v;
		if (c >= 'A' && c <= 'Z')
			v = (uint32_t)(c - 'A');
		else if (c >= 'a' && c <= 'z')
			v = (uint32_t)(c - 'a' + 26);
		else if (c >= '0' && c <= '9')
			v = (uint32_t)(c - '0' + 52);
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else if (c == '=')
			v = 0;
		else
			continue;
		pad3 = pad4;
		pad4 = c == '=';
		acc = acc << 6 | v;
		if (++in_group < 4)
			continue;
		out[n++] = (uint8_t)(acc >> 16);
		if (!pad3)
			out[n++] = (uint8_t)(acc >> 8);
		if (!pad4)
			out[n++] = (uint8_t)acc;
		in_group = 0;
		acc = 0;
	}
	return n;
}

/* The mish blocks in the <data> elements of the property list at OFF
 * (LEN bytes), as qemu-img finds them: every such element. */
static int read_plist(struct mimg *img, struct dmg *s, uint64_t off,
		      uint64_t len, uint64_t fork)
{
	if (len == 0 || len > DMG_TABLES_MAX)
		return mimg_err(-EINVAL,
				"%s: dmg: property list of %llu bytes "
				"(at most %u)",
				img->filename, (unsigned long long)len,
				DMG_TABLES_MAX);
	char *xml = malloc(len + 1);
	uint8_t *bin = malloc(len);
	int r = xml && bin ? 0 : mimg_err(-ENOMEM, "out of memory");
	if (r == 0)
		r = mimg_file_pread_exact(img->file, xml, len, off,
					  "dmg property list");
	if (r == 0) {
		xml[len] = '\0';
		const char *p = xml, *b, *e;
		while (r == 0 && (b = strstr(p, "<data>"))) {
			b += 6;
			if (!(e = strstr(b, "</data>"))) {
				r = mimg_err(-EINVAL,
					     "%s: dmg: a <data> element of "
					     "the property list is not closed",
					     img->filename);
				break;
			}
			r = add_mish(img, s, bin, base64_decode(b, e, bin),
				     fork);
			p = e + 7;
		}
	}
	free(xml);
	free(bin);
	return r;
}

/* The mish blocks of a binary resource fork at OFF (LEN bytes): a
 * header giving where its data starts and how long it is, then each
 * resource as its length and bytes. */
static int read_rsrc(struct mimg *img, struct dmg *s, uint64_t off,
		     uint64_t len, uint64_t fork)
{
	uint8_t h[12];
	int r = mimg_file_pread_exact(img->file, h, sizeof(h), off,
				      "dmg resource fork");
	if (r < 0)
		return r;
	uint64_t start = ld_be32(h), count = ld_be32(h + 8);
	if (len < sizeof(h) || start > len || count == 0 || count > len - start)
		return mimg_err(-EINVAL,
				"%s: dmg: resource data at %llu of %llu bytes "
				"is outside the resource fork (%llu bytes)",
				img->filename, (unsigned long long)start,
				(unsigned long long)count,
				(unsigned long long)len);
	uint64_t at = off + start, end = at + count;
	uint8_t *buf = NULL;
	while (r == 0 && at < end) {
		uint8_t l[4];
		if ((r = mimg_file_pread_exact(img->file, l, 4, at,
					       "dmg resource")) < 0)
			break;
		uint64_t n = ld_be32(l);
		at += 4;
		if (n == 0 || n > end - at || n > DMG_TABLES_MAX) {
			r = mimg_err(-EINVAL,
				     "%s: dmg: resource of %llu bytes at %llu "
				     "is past the resource data or larger "
				     "than %u bytes",
				     img->filename, (unsigned long long)n,
				     (unsigned long long)at, DMG_TABLES_MAX);
			break;
		}
		uint8_t *p = realloc(buf, n);
		if (!p) {
			r = mimg_err(-ENOMEM, "out of memory");
			break;
		}
		buf = p;
		if ((r = mimg_file_pread_exact(img->file, buf, n, at,
					       "dmg resource")) == 0)
			r = add_mish(img, s, buf, n, fork);
		at += n;
	}
	free(buf);
	return r;
}

static int by_sector(const void *a, const void *b)
{
	const struct chunk *x = a, *y = b;
	return x->sector < y->sector ? -1 : x->sector > y->sector;
}

/* The trailer: in the last 1023 bytes of the file taken as whole
 * sectors, where qemu-img looks for its magic (an odd-sized file's may
 * start short of the last sector). */
static int find_trailer(struct mimg *img, struct dmg *s, uint8_t *koly,
			uint64_t *at)
{
	uint64_t whole = div_round_up_u64(s->file_size, DMG_SECTOR) *
			 DMG_SECTOR;
	uint64_t from = whole > 1023 ? whole - 1023 : 0;
	uint8_t buf[515];
	int r = mimg_file_pread(img->file, buf, sizeof(buf), from);
	if (r < 0)
		return r;
	for (size_t i = 0; i + 4 <= sizeof(buf); i++)
		if (memcmp(buf + i, "koly", 4) == 0) {
			*at = from + i;
			return mimg_file_pread(img->file, koly, DMG_TRAILER,
					       *at);
		}
	return mimg_err(-EINVAL,
			"%s: dmg: Could not locate UDIF trailer in dmg file",
			img->filename);
}

static int load_chunks(struct mimg *img, struct dmg *s)
{
	const char *fn = img->filename;
	uint8_t koly[DMG_TRAILER];
	uint64_t at = 0;
	int r;

	if (s->file_size < DMG_TRAILER)
		return mimg_err(-EINVAL,
				"%s: dmg file must be at least 512 bytes long",
				fn);
	if ((r = find_trailer(img, s, koly, &at)) < 0)
		return r;
	uint64_t fork = ld_be64(koly + 0x18);
	uint64_t rsrc = ld_be64(koly + 0x28), rsrc_len = ld_be64(koly + 0x30);
	uint64_t xml = ld_be64(koly + 0xd8), xml_len = ld_be64(koly + 0xe0);
	uint64_t sectors = ld_be64(koly + 0x1ec);
	if (fork > at)
		return mimg_err(-EINVAL,
				"%s: dmg: data fork offset %llu is past the "
				"trailer at %llu",
				fn, (unsigned long long)fork,
				(unsigned long long)at);
	if (rsrc >= at || rsrc_len > at - rsrc || xml >= at ||
	    xml_len > at - xml)
		return mimg_err(-EINVAL,
				"%s: dmg: resource fork (%llu, %llu bytes) or "
				"property list (%llu, %llu bytes) is not "
				"before the trailer at %llu",
				fn, (unsigned long long)rsrc,
				(unsigned long long)rsrc_len,
				(unsigned long long)xml,
				(unsigned long long)xml_len,
				(unsigned long long)at);
	if (sectors > (uint64_t)INT64_MAX / DMG_SECTOR)
		return mimg_err(-EINVAL,
				"%s: dmg: sector count %llu is too large", fn,
				(unsigned long long)sectors);
	img->size = sectors * DMG_SECTOR;
	if (rsrc_len)
		r = read_rsrc(img, s, rsrc, rsrc_len, fork);
	else if (xml_len)
		r = read_plist(img, s, xml, xml_len, fork);
	else
		r = mimg_err(-EINVAL,
			     "%s: dmg: neither a resource fork nor a property "
			     "list",
			     fn);
	if (r < 0)
		return r;
	if (s->n)
		qsort(s->chunks, s->n, sizeof(*s->chunks), by_sector);
	for (size_t i = 1; i < s->n; i++)
		if (s->chunks[i].sector <
		    s->chunks[i - 1].sector + s->chunks[i - 1].count)
			return mimg_err(
				-EINVAL,
				"%s: dmg: the chunks at sectors %llu "
				"and %llu overlap",
				fn, (unsigned long long)s->chunks[i - 1].sector,
				(unsigned long long)s->chunks[i].sector);
	return 0;
}

static size_t find_chunk(const struct dmg *s, uint64_t off)
{
	uint64_t sector = off / DMG_SECTOR;
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->chunks[mid].sector + s->chunks[mid].count <= sector)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool covers(const struct chunk *c, uint64_t off)
{
	return c->sector <= off / DMG_SECTOR &&
	       off / DMG_SECTOR < c->sector + c->count;
}

/* A run the chunk table cannot give: RUN->unit is S->n for sectors no
 * chunk covers, else the chunk's index. */
static int unreadable(struct mimg *img, const struct mimg_run *run,
		      uint64_t pos)
{
	struct dmg *s = img->priv;
	if (run->unit == s->n)
		return mimg_err(-EIO, "%s: dmg: sector %llu is in no chunk",
				img->filename,
				(unsigned long long)(pos / DMG_SECTOR));
	return mimg_err(-ENOTSUP,
			"%s: dmg: sector %llu is in a %s chunk, which cannot "
			"be read",
			img->filename, (unsigned long long)(pos / DMG_SECTOR),
			type_name(s->chunks[run->unit].type));
}

static int decode_chunk(void *arg, const struct mimg_decode_unit *u,
			const uint8_t *in, uint8_t *out)
{
	struct mimg *img = arg;
	const struct dmg *s = img->priv;
	const struct chunk *c = &s->chunks[u->key];
	int r = decode(c->type, in, u->stored, out, u->size);
	if (r < 0)
		return mimg_err(r == -ENOMEM ? r : -EIO,
				"%s: dmg: the %s chunk at sector %llu does not "
				"decode to its %llu sectors",
				img->filename,
				c->type == CHUNK_BZIP2 ? "bzip2" : "zlib",
				(unsigned long long)c->sector,
				(unsigned long long)c->count);
	return 0;
}

/* Where chunk RUN->unit is stored, decoded when read. */
static int chunk_unit(struct mimg *img, const struct mimg_run *run,
		      struct mimg_decode_unit *u)
{
	struct dmg *s = img->priv;
	size_t i = (size_t)run->unit;

	if (i == s->n || !readable(s->chunks[i].type))
		return unreadable(img, run,
				  (i == s->n
					   ? run->skip
					   : s->chunks[i].sector * DMG_SECTOR +
						     run->skip));
	const struct chunk *c = &s->chunks[i];
	u->at = c->offset;
	u->stored = (size_t)c->length;
	u->size = (size_t)c->count * DMG_SECTOR;
	return 0;
}

/*
 * The chunk at OFF: zero and ignored chunks read as zeroes, raw ones are
 * data in the file, the rest is decoded.  Sectors no chunk covers, and
 * chunks of a compression mimg does not read, are data for block status
 * and fail the reads that reach them (qemu-img has no block status for
 * DMG: its map shows the whole disk as data).
 */
static int dmg_map(struct mimg *img, uint64_t off, uint64_t len,
		   struct mimg_run *run)
{
	struct dmg *s = img->priv;
	size_t i = find_chunk(s, off);
	if (i == s->n || !covers(&s->chunks[i], off)) {
		uint64_t next = i == s->n ? off + len
					  : s->chunks[i].sector * DMG_SECTOR;
		run->kind = MIMG_RUN_DECODED;
		run->len = min_u64(len, next - off);
		run->unit = s->n;
		run->skip = off; /* where the gap is asked */
		return 0;
	}
	const struct chunk *c = &s->chunks[i];
	uint64_t skip = off - c->sector * DMG_SECTOR;
	run->len = min_u64(len, c->count * DMG_SECTOR - skip);
	if (zeroes(c->type)) {
		run->kind = MIMG_RUN_ZERO;
	} else if (c->type == CHUNK_RAW) {
		run->kind = MIMG_RUN_DATA;
		run->host = c->offset + skip;
	} else {
		run->kind = MIMG_RUN_DECODED;
		run->unit = i;
		run->skip = skip;
	}
	return 0;
}

static const struct mimg_runs dmg_runs = {.map = dmg_map,
					  .unit = chunk_unit,
					  .decode = decode_chunk,
					  .what = "dmg chunk"};

static void dmg_close(struct mimg *img)
{
	struct dmg *s = img->priv;
	free(s->chunks);
}

static int dmg_open(struct mimg *img)
{
	struct dmg *s = img->priv;
	int r;

	if ((r = mimg_file_size(img->file, &s->file_size)) < 0 ||
	    (r = load_chunks(img, s)) < 0)
		return r;
	return 0;
}

const struct mimg_driver mimg_dmg_driver = {
	.name = "dmg",
	.priv_size = sizeof(struct dmg),
	.probe = dmg_probe,
	.open = dmg_open,
	.close = dmg_close,
	.preadv = mimg__runs_preadv,
	.block_status = mimg__runs_block_status,
	.info = mimg__info_without_driver_info,
	.read_only = "Image is read-only", /* qemu-img's words */
	.runs = &dmg_runs,
};
