/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Images inside compressed files and tar archives.  libarchive recognises
 * the compression by content (its filter bidding) and reads tar; the disk
 * image is unpacked into an anonymous sparse file (zero blocks stay holes)
 * that the drivers then read with random access, as any host file.
 *
 * The archive is hostile input: member names are only shown, never used
 * as paths; links and special files are refused; a tar with several files
 * must hold a single disk image; the unpacked data must fit in the free
 * space of the temporary directory, and what a few bytes may expand to is
 * capped (decompression bombs).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "checked.h"
#include "dynlib.h"
#include "file-archive.h"
#include "probe.h"
#include "driver.h"
#include "error.h"

#define SOURCE_CHUNK (64u << 10)
#define SPOOL_CHUNK (1u << 20)
#define ZERO_BLOCK 4096u
#define PROBE_LEN 4096u
#define TAR_BLOCK 512u
#define NAME_MAX_SHOWN 200
#define MEMBERS_LISTED 8
#define STREAM_TAR_MIN (1u << 20)

/* The archive file, read in order through the host-file layer.  Its
 * outermost compression, when gzip or xz, is decoded here and libarchive
 * sees the decoded data: libarchive's gzip reader checks no CRC, its xz
 * reader uses one thread. */
struct source {
	struct mimg_file *f;
	struct mimg_gzip *gz;
#ifdef MIMG_HAVE_LIBLZMA
	struct mimg_xz *xz;
#endif
	uint64_t size, pos;
	uint8_t buf[SOURCE_CHUNK];
};

static bool source_decodes(const struct source *s)
{
#ifdef MIMG_HAVE_LIBLZMA
	if (s->xz)
		return true;
#endif
	return s->gz != NULL;
}

/* Bytes of the archive file decoded so far. */
static uint64_t source_consumed(const struct source *s)
{
#ifdef MIMG_HAVE_LIBLZMA
	if (s->xz)
		return mimg__xz_consumed(s->xz);
#endif
	return s->gz ? mimg__gzip_consumed(s->gz) : s->pos;
}

/* N decoded bytes into BUF, fewer only at the end (the spool finds zero
 * blocks at offsets aligned as the chunks are): a count, or a negative
 * errno with a message. */
static ssize_t source_decode(struct source *s, uint8_t *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k;
#ifdef MIMG_HAVE_LIBLZMA
		if (s->xz)
			k = mimg__xz_read(s->xz, buf + got, n - got);
		else
#endif
			k = mimg__gzip_read(s->gz, buf + got, n - got);
		if (k <= 0) {
			if (k < 0)
				return k;
			break;
		}
		got += (size_t)k;
	}
	return (ssize_t)got;
}

static la_ssize_t source_read(struct archive *a, void *opaque,
			      const void **bufp)
{
	struct source *s = opaque;
	uint64_t left = s->size - s->pos;
	size_t n = left < SOURCE_CHUNK ? (size_t)left : SOURCE_CHUNK;
	int r;

	*bufp = s->buf;
	if (source_decodes(s)) {
		ssize_t k = source_decode(s, s->buf, SOURCE_CHUNK);
		if (k < 0)
			mimg__libarchive.archive_set_error(a, (int)-k, "%s",
							   mimg_errmsg());
		return k < 0 ? ARCHIVE_FATAL : (la_ssize_t)k;
	}
	if (n == 0)
		return 0;
	if ((r = mimg_file_pread(s->f, s->buf, n, s->pos)) < 0) {
		mimg__libarchive.archive_set_error(a, -r, "%s", mimg_errmsg());
		return ARCHIVE_FATAL;
	}
	s->pos += n;
	return (la_ssize_t)n;
}

/* Decoded data is read to be passed over (0: none skipped). */
static la_int64_t source_skip(struct archive *a, void *opaque,
			      la_int64_t request)
{
	struct source *s = opaque;
	uint64_t n = request > 0 && !source_decodes(s) ? (uint64_t)request : 0;
	(void)a;
	if (n > s->size - s->pos)
		n = s->size - s->pos;
	s->pos += n;
	return (la_int64_t)n;
}

/* Decode the outermost of FILTERS here, when it is gzip or xz. */
static int source_decoder(struct source *s, const char *filters,
			  const char *name)
{
	size_t len = strcspn(filters, ",");
	if (len == 4 && strncmp(filters, "gzip", 4) == 0)
		return mimg__gzip_open(&s->gz, s->f, name);
#ifdef MIMG_HAVE_LIBLZMA
	if (len == 2 && strncmp(filters, "xz", 2) == 0)
		return mimg__xz_open(&s->xz, s->f, name);
#endif
	return 0;
}

static void source_decoder_close(struct source *s)
{
#ifdef MIMG_HAVE_LIBLZMA
	mimg__xz_close(s->xz);
	s->xz = NULL;
#endif
	mimg__gzip_close(s->gz);
	s->gz = NULL;
}

static void source_free(struct source *s)
{
	if (s)
		source_decoder_close(s);
	free(s);
}

/* Only decompressors built into libarchive: asked for one it lacks, it
 * would run an external program on the input instead (ARCHIVE_WARN).
 * The functions are found when libarchive is loaded: the table holds
 * where their pointers are. */
typedef int (*filter_support_fn)(struct archive *);
static filter_support_fn *const filter_support[] = {
	&mimg__libarchive.archive_read_support_filter_gzip,
	&mimg__libarchive.archive_read_support_filter_bzip2,
	&mimg__libarchive.archive_read_support_filter_xz,
	&mimg__libarchive.archive_read_support_filter_zstd,
	&mimg__libarchive.archive_read_support_filter_lz4,
};
#define NFILTERS (sizeof(filter_support) / sizeof(filter_support[0]))
static unsigned builtin_filters;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static void find_builtin_filters(void)
{
	for (unsigned i = 0; i < NFILTERS; i++) {
		struct archive *a = mimg__libarchive.archive_read_new();
		if (a && (*filter_support[i])(a) == ARCHIVE_OK)
			builtin_filters |= 1u << i;
		mimg__libarchive.archive_read_free(a);
	}
}

/* A reader of S from its start: decompressors, then tar or one raw
 * stream. */
static struct archive *reader_open(struct source *s, bool tar)
{
	struct archive *a;

	pthread_once(&builtin_once, find_builtin_filters);
	if (!(a = mimg__libarchive.archive_read_new()))
		return NULL;
	for (unsigned i = 0; i < NFILTERS; i++)
		if (builtin_filters & (1u << i))
			(*filter_support[i])(a);
	if (tar)
		mimg__libarchive.archive_read_support_format_tar(a);
	else
		mimg__libarchive.archive_read_support_format_raw(a);
	s->pos = 0;
	mimg__libarchive.archive_read_set_read_callback(a, source_read);
	mimg__libarchive.archive_read_set_skip_callback(a, source_skip);
	mimg__libarchive.archive_read_set_callback_data(a, s);
	return a;
}

/* "xz", "gzip" or "xz,gzip" (outermost first); "" for none. */
static void describe_filters(struct archive *a, char *out, size_t len)
{
	size_t used = 0;
	out[0] = 0;
	for (int i = mimg__libarchive.archive_filter_count(a) - 1; i >= 0;
	     i--) {
		const char *n = mimg__libarchive.archive_filter_name(a, i);
		if (mimg__libarchive.archive_filter_code(a, i) ==
			    ARCHIVE_FILTER_NONE ||
		    !n)
			continue;
		int w = snprintf(out + used, len - used, "%s%s",
				 used ? "," : "", n);
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
}

/* The error of A as a negative errno with a message naming NAME. */
static int archive_fail(struct archive *a, const char *name, const char *what)
{
	const char *msg = mimg__libarchive.archive_error_string(a);
	int e = mimg__libarchive.archive_errno(a);
	char filters[64];
	if (e != EIO && e != ENOMEM && e != ENOSPC && e != EFBIG)
		e = EINVAL;
	size_t nlen = strlen(name);
	/* from our own layers (host file, decoders): it names the file */
	if (msg && strncmp(msg, name, nlen) == 0 && msg[nlen] == ':')
		return mimg_err(-e, "%s", msg);
	describe_filters(a, filters, sizeof(filters));
	return mimg_err(-e, "%s: %s%s%s%s: %s", name, what,
			filters[0] ? " (" : "", filters,
			filters[0] ? " data, truncated or corrupt?)" : "",
			msg ? msg : "unknown error");
}

/* A POSIX or GNU tar header: "ustar" magic and a matching checksum.  (Old
 * v7 archives without the magic are not recognised.) */
static bool is_tar_header(const uint8_t *h, size_t n)
{
	unsigned long sum = 0, stored = 0;
	bool digits = false;
	if (n < TAR_BLOCK || memcmp(h + 257, "ustar", 5) != 0)
		return false;
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += i >= 148 && i < 156 ? ' ' : h[i];
	for (size_t i = 148; i < 156; i++) {
		if (h[i] >= '0' && h[i] <= '7') {
			stored = stored * 8 + (unsigned long)(h[i] - '0');
			digits = true;
		} else if (h[i] != ' ' || digits) {
			break;
		}
	}
	return digits && sum == stored;
}

/* Whether HEAD, the first N bytes of a file, may be what the readers of
 * reader_open() claim: a magic number of one of the decompressors, or a
 * tar header.  Anything else is neither, found so without libarchive
 * (loaded only for what may be packed). */
static bool maybe_packed(const uint8_t *head, size_t n)
{
	static const struct {
		size_t len;
		uint8_t magic[6];
	} magics[] = {
		{2, {0x1f, 0x8b}},		    /* gzip */
		{3, {'B', 'Z', 'h'}},		    /* bzip2 */
		{6, {0xfd, '7', 'z', 'X', 'Z', 0}}, /* xz */
		{4, {0x28, 0xb5, 0x2f, 0xfd}},	    /* zstd */
		{4, {0x04, 0x22, 0x4d, 0x18}},	    /* lz4 */
		{4, {0x02, 0x21, 0x4c, 0x18}},	    /* lz4, legacy */
	};
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (n >= magics[i].len &&
		    memcmp(head, magics[i].magic, magics[i].len) == 0)
			return true;
	/* A skippable frame (zstd and lz4): 0x184D2A5? little-endian. */
	if (n >= 4 && (head[0] & 0xf0) == 0x50 && head[1] == 0x2a &&
	    head[2] == 0x4d && head[3] == 0x18)
		return true;
	return is_tar_header(head, n);
}

/* 1 when S is compressed or a tar (FILTERS and *TAR say which), 0 when it
 * is neither. */
static int detect(struct source *s, const char *name, char *filters,
		  size_t flen, bool *tar)
{
	struct archive_entry *e;
	uint8_t head[TAR_BLOCK];
	struct archive *a;
	la_ssize_t n = s->size < TAR_BLOCK ? (la_ssize_t)s->size : TAR_BLOCK;
	int r;

	filters[0] = 0;
	*tar = false;
	if ((r = mimg_file_pread(s->f, head, (size_t)n, 0)) < 0)
		return r;
	if (!maybe_packed(head, (size_t)n))
		return 0;
	n = 0;
	if ((r = mimg__archive_lib_load(name)) < 0)
		return r;
	if (!(a = reader_open(s, false)))
		return mimg_err(-ENOMEM, "%s: out of memory", name);
	r = mimg__libarchive.archive_read_open1(a);
	/* A decompressor that fails while being set up takes every filter
	 * down with it; data no decompressor claims keeps the plain one. */
	if (r != ARCHIVE_OK && mimg__libarchive.archive_filter_count(a) == 0) {
		r = archive_fail(a, name, "unpacking compressed data");
		mimg__libarchive.archive_read_free(a);
		return r;
	}
	if (r == ARCHIVE_OK)
		r = mimg__libarchive.archive_read_next_header(a, &e);
	describe_filters(a, filters, flen);
	if (r == ARCHIVE_OK)
		n = mimg__libarchive.archive_read_data(a, head, sizeof(head));
	if (r != ARCHIVE_OK || n < 0) {
		/* Data no decompressor claims always reads as one raw
		 * stream: a failure is in compressed data. */
		r = filters[0] ? archive_fail(a, name, "unpacking") : 0;
		mimg__libarchive.archive_read_free(a);
		return r;
	}
	*tar = is_tar_header(head, (size_t)n);
	mimg__libarchive.archive_read_free(a);
	return filters[0] || *tar;
}

/* The names of a tar's file members so far. */
struct member_names {
	char **v;
	int n;
};

static void names_free(struct member_names *m)
{
	for (int i = 0; i < m->n; i++)
		free(m->v[i]);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* The temporary file being filled, or the stream handed the image. */
struct spool {
	int fd;			   /* -1 until the image is known to need it */
	bool sequential;	   /* a raw image may be streamed */
	bool streamed;		   /* the reader and source now belong to it */
	bool filtered;		   /* the archive is compressed */
	const char *filters;	   /* "xz", "gzip", "xz,gzip"... */
	struct mimg_file *archive; /* the archive file */
	struct mimg_file *stream;  /* the image's file when streamed */
	const char *name;	   /* the archive, for messages */
	const char *dir;
	struct source *src;
	uint64_t budget;       /* data bytes that may be written */
	uint64_t written, end; /* data bytes written, logical size */
	uint64_t expanded;     /* bytes unpacked, all members */
	uint8_t *buf;	       /* SPOOL_CHUNK */
	/* An OVA: the disk asked for, digests of the members read, their
	 * names as stored, and the manifest. */
	const char *ova_disk;
	struct mimg_digests ovf_md, disk_md;
	char *ovf_raw, *disk_raw;
	struct mimg_manifest *mf;
	struct member_names names;
};

static const char *spool_dir(void)
{
	const char *d = getenv("TMPDIR");
	return d && *d ? d : "/tmp";
}

int mimg__anonymous_file(const char *dir)
{
	int fd;
#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 ||
	    (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd >= 0 ? fd : -errno;
#endif
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/mimg-unpack-XXXXXX", dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
		return -errno;
	unlink(path);
	return fd;
}

/* The temporary file, created with the first data that needs it. */
static int spool_create(struct spool *sp)
{
	struct statvfs vfs;
	uint64_t avail;

	if (sp->fd >= 0)
		return 0;
	if ((sp->fd = mimg__anonymous_file(sp->dir)) < 0)
		return mimg_err_errno(sp->fd,
				      "%s: cannot create a temporary "
				      "file in %s to unpack into",
				      sp->name, sp->dir);
	if (fstatvfs(sp->fd, &vfs) != 0)
		return mimg_err_errno(-errno, "%s: statvfs", sp->dir);
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail <= MIMG_ARCHIVE_SPOOL_RESERVE)
		return mimg_err(-ENOSPC,
				"%s: only %llu bytes free in %s to "
				"unpack into",
				sp->name, (unsigned long long)avail, sp->dir);
	sp->budget = avail - MIMG_ARCHIVE_SPOOL_RESERVE;
	return 0;
}

static int spool_open(struct spool *sp)
{
	sp->dir = spool_dir();
	if (!(sp->buf = malloc(SPOOL_CHUNK)))
		return mimg_err(-ENOMEM, "%s: out of memory", sp->name);
	return 0;
}

static int spool_reset(struct spool *sp)
{
	int r = spool_create(sp);
	if (r < 0)
		return r;
	if (ftruncate(sp->fd, 0) != 0)
		return mimg_err_errno(-errno, "%s: truncate", sp->dir);
	sp->written = sp->end = 0;
	return 0;
}

static bool is_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int write_all(struct spool *sp, const uint8_t *p, size_t n, uint64_t off)
{
	if (n > sp->budget - sp->written)
		return mimg_err(-ENOSPC,
				"%s: the unpacked image needs more "
				"than the %llu bytes free in %s",
				sp->name, (unsigned long long)sp->budget,
				sp->dir);
	sp->written += n;
	while (n) {
		ssize_t w = pwrite(sp->fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return mimg_err_errno(w < 0 ? -errno : -EIO,
					      "%s: writing the unpacked image "
					      "to %s",
					      sp->name, sp->dir);
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Write BUF at OFF, leaving its zero blocks as holes. */
static int spool_write(struct spool *sp, const uint8_t *buf, size_t len,
		       uint64_t off)
{
	size_t i = 0;
	while (i < len) {
		size_t n = len - i < ZERO_BLOCK ? len - i : ZERO_BLOCK;
		if (is_zero(buf + i, n)) {
			i += n;
			continue;
		}
		size_t start = i;
		while (i < len) {
			n = len - i < ZERO_BLOCK ? len - i : ZERO_BLOCK;
			if (is_zero(buf + i, n))
				break;
			i += n;
		}
		int r = write_all(sp, buf + start, i - start, off + start);
		if (r < 0)
			return r;
	}
	if (off + len > sp->end)
		sp->end = off + len;
	return 0;
}

/* EXPANDED bytes unpacked from the first CONSUMED of the archive. */
static int ratio_check(const char *name, uint64_t expanded, uint64_t consumed)
{
	if (expanded > MIMG_ARCHIVE_RATIO_FREE &&
	    expanded / MIMG_ARCHIVE_MAX_RATIO > consumed)
		return mimg_err(-EFBIG,
				"%s: %llu bytes unpack to more than "
				"%llu; more than %d times their size is "
				"refused as a decompression bomb",
				name, (unsigned long long)consumed,
				(unsigned long long)expanded,
				MIMG_ARCHIVE_MAX_RATIO);
	return 0;
}

/* The next bytes of the current entry into sp->buf: a count, 0 at its
 * end, or a negative errno. */
static la_ssize_t next_chunk(struct spool *sp, struct archive *a)
{
	la_ssize_t n = a ? mimg__libarchive.archive_read_data(a, sp->buf,
							      SPOOL_CHUNK)
			 : source_decode(sp->src, sp->buf, SPOOL_CHUNK);
	if (n < 0)
		return a ? archive_fail(a, sp->name, "unpacking") : (int)n;
	sp->expanded += (uint64_t)n;
	int r = ratio_check(sp->name, sp->expanded, source_consumed(sp->src));
	return r < 0 ? r : n;
}

/* Unpack the rest of the current entry, whose first N bytes are in
 * sp->buf, into the spool from offset 0. */
static int spool_entry(struct spool *sp, struct archive *a, la_ssize_t n)
{
	uint64_t off = 0;
	int r = spool_reset(sp);
	while (r == 0 && n > 0) {
		mimg__digests_update(&sp->disk_md, sp->buf, (size_t)n);
		if ((r = spool_write(sp, sp->buf, (size_t)n, off)) < 0)
			break;
		off += (uint64_t)n;
		n = next_chunk(sp, a);
		if (n < 0)
			r = (int)n;
	}
	return r;
}

/* Read and drop the rest of the current entry.  Decompressed data goes
 * through next_chunk so that what it expands to stays bounded. */
static int drop_entry(struct spool *sp, struct archive *a, bool filtered)
{
	la_ssize_t n;
	if (!filtered)
		return mimg__libarchive.archive_read_data_skip(a) == ARCHIVE_OK
			       ? 0
			       : archive_fail(a, sp->name, "reading");
	while ((n = next_chunk(sp, a)) > 0)
		;
	return (int)n;
}

/* NAME with control bytes replaced, cut to a sensible length. */
static char *shown_name(const char *name)
{
	size_t n = strnlen(name, NAME_MAX_SHOWN);
	char *c = malloc(n + 1);
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		c[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	c[n] = 0;
	return c;
}

static bool unsafe_name(const char *name)
{
	if (name[0] == '/')
		return true;
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += n;
		if (*p)
			p++;
	}
	return false;
}

/* Members are refused for being links, special files or named to escape
 * (a tar that would write outside its directory is hostile, even though
 * the names are never used here). */
static int check_member(const char *aname, struct archive_entry *e,
			const char *shown, const char *name)
{
	mode_t t = mimg__libarchive.archive_entry_filetype(e);
	if (mimg__libarchive.archive_entry_hardlink(e) || t == AE_IFLNK)
		return mimg_err(-EPERM,
				"%s: archive member '%s' is a link; "
				"archives with links are refused",
				aname, shown);
	if (unsafe_name(name))
		return mimg_err(-EPERM,
				"%s: archive member name '%s' is "
				"absolute or has a '..' component; refused",
				aname, shown);
	if (t != AE_IFREG && t != AE_IFDIR)
		return mimg_err(-EPERM,
				"%s: archive member '%s' is not a "
				"regular file; refused",
				aname, shown);
	return 0;
}

/* A tar holding two files of one name is refused: extracted, the last
 * wins; read in order, the first would, and a manifest or the OVF could
 * vouch for a member that is not the one used. */
static int note_name(struct member_names *m, const char *aname,
		     const char *name, const char *shown)
{
	for (int i = 0; i < m->n; i++)
		if (strcmp(m->v[i], name) == 0)
			return mimg_err(-EPERM,
					"%s: the archive holds two "
					"members named '%s'; refused",
					aname, shown);
	if (!m->v && !(m->v = calloc(MIMG_ARCHIVE_MAX_MEMBERS, sizeof(*m->v))))
		return mimg_err(-ENOMEM, "out of memory");
	if (m->n >= MIMG_ARCHIVE_MAX_MEMBERS)
		return mimg_err(-E2BIG,
				"%s: archive has more than %d "
				"members",
				aname, MIMG_ARCHIVE_MAX_MEMBERS);
	if (!(m->v[m->n] = strdup(name)))
		return mimg_err(-ENOMEM, "out of memory");
	m->n++;
	return 0;
}

/* Members seen, for the message when none or several are disk images. */
struct member_list {
	char text[MEMBERS_LISTED * (NAME_MAX_SHOWN + 16)];
	size_t used;
	int n;
};

static void list_member(struct member_list *l, const char *shown,
			const char *kind)
{
	if (l->n++ >= MEMBERS_LISTED)
		return;
	int w = snprintf(l->text + l->used, sizeof(l->text) - l->used,
			 "%s'%s' (%s)", l->used ? ", " : "", shown, kind);
	if (w > 0 && (size_t)w < sizeof(l->text) - l->used)
		l->used += (size_t)w;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcasecmp(s + n - m, suffix) == 0;
}

/* Read the current member whole, up to MAX bytes, into *TEXTP. */
static int read_small(struct spool *sp, struct archive *a, size_t max,
		      const char *what, uint8_t **textp, size_t *lenp)
{
	uint8_t *xml = NULL;
	size_t len = 0;
	la_ssize_t n;
	int r = 0;

	while ((n = next_chunk(sp, a)) > 0) {
		if ((size_t)n > max - len) {
			r = mimg_err(-EFBIG, "%s: %s is larger than %zu bytes",
				     sp->name, what, max);
			break;
		}
		uint8_t *x = realloc(xml, len + (size_t)n);
		if (!x) {
			r = mimg_err(-ENOMEM, "out of memory");
			break;
		}
		xml = x;
		memcpy(xml + len, sp->buf, (size_t)n);
		len += (size_t)n;
	}
	if (n < 0)
		r = (int)n;
	if (r < 0)
		free(xml);
	*textp = r < 0 ? NULL : xml;
	*lenp = len;
	return r;
}

/* The disk asked for: an index into the DiskSection ("0", "1", ...), or
 * a disk's file name or id. */
static int select_disk(struct spool *sp, struct mimg_archive_origin *o)
{
	const char *want = sp->ova_disk;
	char *end;
	if (!want)
		return 0;
	errno = 0;
	unsigned long i = strtoul(want, &end, 10);
	if (*want >= '0' && *want <= '9' && !*end && !errno) {
		if (i < (unsigned long)o->ovf->ndisks) {
			o->ovf_disk = (int)i;
			return 0;
		}
		return mimg_err(-ENOENT,
				"%s: OVA disk %lu asked for, the OVF "
				"lists %d (counted from 0)",
				sp->name, i, o->ovf->ndisks);
	}
	for (int k = 0; k < o->ovf->ndisks; k++)
		if (strcmp(o->ovf->disks[k].href, want) == 0 ||
		    strcmp(o->ovf->disks[k].id, want) == 0) {
			o->ovf_disk = k;
			return 0;
		}
	return mimg_err(-ENOENT,
			"%s: the OVF lists no disk with file name "
			"or id '%.200s'",
			sp->name, want);
}

/* An href names a member of the archive: a relative name without '..'
 * and without a URL scheme ("http:", "file:"), never fetched or opened;
 * anything else is refused rather than looked for. */
static int check_href(struct spool *sp, const char *href)
{
	const char *colon = strchr(href, ':');
	const char *why = NULL;
	if (!*href)
		why = "is empty";
	else if (unsafe_name(href))
		why = "is absolute or has a '..' component";
	else if (colon &&
		 strspn(href, "abcdefghijklmnopqrstuvwxyz"
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") ==
			 (size_t)(colon - href))
		why = "is a URL";
	if (!why)
		return 0;
	char *shown = shown_name(href);
	int r = mimg_err(-EPERM,
			 "%s: the OVF's disk file '%s' %s; an OVA's "
			 "disks must be members of the archive",
			 sp->name, shown ? shown : "", why);
	free(shown);
	return r;
}

/* Read the OVF descriptor member of an OVA (whole, bounded), parse it
 * into o->ovf and pick the disk.  -ENOTSUP without an XML parser. */
static int read_ovf(struct spool *sp, struct archive *a,
		    struct mimg_archive_origin *o)
{
	uint8_t *xml;
	size_t len;
	int r = read_small(sp, a, MIMG_OVF_MAX_SIZE, "OVF descriptor", &xml,
			   &len);
	if (r < 0)
		return r;
	if ((r = mimg__digests_init(&sp->ovf_md)) == 0) {
		mimg__digests_update(&sp->ovf_md, xml, len);
		mimg__digests_final(&sp->ovf_md);
		r = mimg__ovf_parse(xml, len, sp->name, &o->ovf);
	}
	free(xml);
	if (r == 0)
		r = select_disk(sp, o);
	return r < 0 ? r : check_href(sp, o->ovf->disks[o->ovf_disk].href);
}

/* An OVA's manifest, checked once the archive has been read. */
static int read_manifest(struct spool *sp, struct archive *a)
{
	uint8_t *text;
	size_t len;
	int r;
	if (sp->mf)
		return mimg_err(-EINVAL, "%s: the OVA has two manifests",
				sp->name);
	r = read_small(sp, a, MIMG_MANIFEST_MAX_SIZE, "manifest", &text, &len);
	if (r == 0)
		r = mimg__manifest_parse(text, len, sp->name, &sp->mf);
	free(text);
	return r;
}

/* The OVF and the disk read must match the manifest, when there is
 * one. */
static int check_manifest(struct spool *sp, struct mimg_archive_origin *o)
{
	int r1, r2;
	if (!sp->mf)
		return 0;
	mimg__digests_final(&sp->disk_md);
	if ((r1 = mimg__manifest_check(sp->mf, sp->ovf_raw, o->ovf_name,
				       &sp->ovf_md, sp->name)) < 0)
		return r1;
	if ((r2 = mimg__manifest_check(sp->mf, sp->disk_raw, o->member,
				       &sp->disk_md, sp->name)) < 0)
		return r2;
	o->manifest_checked = r1 + r2;
	return 0;
}

/* What a streamed image's reader needs: libarchive's reader, or none
 * when the source decodes a plain compressed file itself. */
struct stream_state {
	struct source *src;
	struct archive *a;
	char *name;
	uint64_t expanded;
	bool tar;
	bool filtered;	 /* compressed: skipped data is decoded and counted */
	bool disk;	 /* in a format other than raw */
	bool open_ended; /* of no declared size */
	/* Its size was counted by decoding the whole file (count_decoded),
	 * which checked every byte and trailer: a reader that only
	 * describes the image need not decode it again (SKIPPED). */
	bool counted, skipped;
	struct member_names names; /* the members before and after */
};

/* Bytes of the archive file decoded so far. */
static uint64_t stream_consumed(const struct stream_state *st)
{
	return source_consumed(st->src);
}

static ssize_t stream_read(void *opaque, uint8_t *buf, size_t n)
{
	struct stream_state *st = opaque;
	if (!st->a)
		return source_decode(st->src, buf, n);
	la_ssize_t k = mimg__libarchive.archive_read_data(st->a, buf, n);
	if (k < 0)
		return archive_fail(st->a, st->name, "unpacking");
	return (ssize_t)k;
}

static int stream_data(void *opaque, const uint8_t *buf, size_t n)
{
	struct stream_state *st = opaque;
	(void)buf;
	st->expanded += n;
	return ratio_check(st->name, st->expanded, stream_consumed(st));
}

/* Whether the tar member being read is a disk image in a format other
 * than raw (its first bytes probed). */
static int member_is_disk(struct stream_state *st)
{
	uint8_t head[PROBE_LEN];
	la_ssize_t n = mimg__libarchive.archive_read_data(st->a, head,
							  sizeof(head));
	if (n < 0)
		return archive_fail(st->a, st->name, "unpacking");
	st->expanded += (uint64_t)n;
	int r = ratio_check(st->name, st->expanded, source_consumed(st->src));
	if (r < 0)
		return r;
	const struct mimg_driver *drv = mimg__probe(head, (size_t)n, NULL);
	return drv && strcmp(drv->name, "raw") != 0;
}

/* The rest of the current tar member, unread.  Decompressed data is
 * counted as it is decoded, so that what it expands to stays bounded. */
static int stream_drop(struct stream_state *st)
{
	const void *buf;
	size_t n;
	la_int64_t off;
	int r;

	if (!st->filtered)
		return mimg__libarchive.archive_read_data_skip(st->a) ==
				       ARCHIVE_OK
			       ? 0
			       : archive_fail(st->a, st->name, "reading");
	while ((r = mimg__libarchive.archive_read_data_block(st->a, &buf, &n,
							     &off)) ==
	       ARCHIVE_OK) {
		int e = stream_data(st, buf, n);
		if (e < 0)
			return e;
	}
	return r == ARCHIVE_EOF ? 0
				: archive_fail(st->a, st->name, "unpacking");
}

/* The next member of the tar A (the COUNTth, from 0), checked as every
 * member is (a known header, not too many members, no link, a safe
 * name): *EP, its *NAMEP ("" when it has none) and *SHOWNP, its name
 * made printable (malloc'ed).  Returns 1, 0 at the end of the archive,
 * or a negative errno naming ANAME. */
static int next_member(struct archive *a, const char *aname, int count,
		       struct archive_entry **ep, const char **namep,
		       char **shownp)
{
	int r = mimg__libarchive.archive_read_next_header(a, ep);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
		return archive_fail(a, aname, "reading the tar archive");
	if (count >= MIMG_ARCHIVE_MAX_MEMBERS)
		return mimg_err(-E2BIG, "%s: archive has more than %d members",
				aname, MIMG_ARCHIVE_MAX_MEMBERS);
	const char *name = mimg__libarchive.archive_entry_pathname(*ep);
	*namep = name ? name : "";
	if (!(*shownp = shown_name(*namep)))
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = check_member(aname, *ep, *shownp, *namep)) < 0) {
		free(*shownp);
		*shownp = NULL;
		return r;
	}
	return 1;
}

/* The rest of a compressed tar after its end, decoded and counted, so
 * that its trailer (CRC-32 and size, xz check and index) is checked. */
static int stream_source_drain(struct stream_state *st)
{
	struct source *s = st->src;
	ssize_t n;
	if (!source_decodes(s))
		return 0;
	while ((n = source_decode(s, s->buf, SOURCE_CHUNK)) > 0) {
		int r = stream_data(st, s->buf, (size_t)n);
		if (r < 0)
			return r;
	}
	return (int)n;
}

/* After a tar member: the rest of the archive must be harmless, as the
 * spooled reading checks it (links, names, two members of one name),
 * and hold no file the spooled reading would have had to choose
 * instead: no other file after a raw image, no other disk image after
 * one in another format. */
static int stream_tar_rest(struct stream_state *st)
{
	struct archive_entry *e;
	for (int count = 0;; count++) {
		const char *name;
		char *shown;
		int r = next_member(st->a, st->name, count, &e, &name, &shown);
		if (r == 0)
			return stream_source_drain(st);
		if (r < 0)
			return r;
		r = 0;
		if (mimg__libarchive.archive_entry_filetype(e) == AE_IFREG &&
		    (r = note_name(&st->names, st->name, name, shown)) == 0 &&
		    (!st->disk || (r = member_is_disk(st)) == 1))
			r = mimg_err(-EINVAL,
				     "%s: the archive holds another "
				     "%s, '%s', after the image read; "
				     "extract the one to use",
				     st->name, st->disk ? "disk image" : "file",
				     shown);
		if (r == 0 &&
		    mimg__libarchive.archive_entry_filetype(e) == AE_IFREG)
			r = stream_drop(st);
		free(shown);
		if (r < 0)
			return r;
	}
}

static int stream_end(void *opaque)
{
	struct stream_state *st = opaque;
	uint8_t byte;
	if (st->skipped)
		return 0;
	if (st->tar)
		return stream_tar_rest(st);
	ssize_t n = stream_read(st, &byte, 1);
	if (n < 0)
		return (int)n;
	if (n > 0 && st->open_ended)
		return mimg_err(-EFBIG,
				"%s: unpacks to more than %llu bytes; "
				"refused as a decompression bomb",
				st->name, (unsigned long long)st->expanded);
	if (n > 0)
		return mimg_err(-EINVAL,
				"%s: holds more data than the %llu "
				"bytes its header declares",
				st->name, (unsigned long long)st->expanded);
	return 0;
}

/* In a tar that is not compressed, the rest of the member is passed
 * over; its size is checked against the archive's as it is.  Data whose
 * size was counted has been checked whole already. */
static int stream_skip(void *opaque)
{
	struct stream_state *st = opaque;
	if (st->counted)
		return st->skipped = true;
	if (!st->tar || st->filtered)
		return 0;
	if (mimg__libarchive.archive_read_data_skip(st->a) != ARCHIVE_OK)
		return archive_fail(st->a, st->name, "reading");
	return 1;
}

static void stream_release(void *opaque)
{
	struct stream_state *st = opaque;
	if (st->a)
		mimg__libarchive.archive_read_free(st->a);
	names_free(&st->names);
	free(st->name);
	source_free(st->src);
	free(st);
}

/* A stream not handed over: the reader stays the caller's. */
static void stream_release_early(struct stream_state *st)
{
	free(st->name);
	free(st);
}

/* The most a compressed file of SIZE bytes may unpack to before the
 * decompression bomb check refuses it. */
static uint64_t ratio_bound(uint64_t size)
{
	uint64_t bound;
	if (!ck_mul_u64(size + 1, MIMG_ARCHIVE_MAX_RATIO, &bound) ||
	    bound > INT64_MAX)
		return INT64_MAX;
	return bound > MIMG_ARCHIVE_RATIO_FREE ? bound
					       : MIMG_ARCHIVE_RATIO_FREE;
}

/* The length of the data of the compressed file (no tar) that sp->src
 * reads, found by decoding it all once with a reader of its own: a raw
 * image's size is its data's, which every consumer needs before reading
 * (convert sizes its target first), and which gzip declares only modulo
 * 2^32, bzip2 and lz4 not at all.  Decoding twice costs CPU where a
 * spool costs as much disk as the image holds.  1 with *SIZEP set; 0
 * when the data outgrows what a file of its size may unpack to (the
 * spool then refuses it as a bomb); or a negative errno with a message
 * (corrupt data). */
static int count_decoded(struct spool *sp, uint64_t *sizep)
{
	const uint64_t limit = ratio_bound(sp->src->size);
	struct source *c = calloc(1, sizeof(*c));
	struct archive *a = NULL;
	uint64_t total = 0;
	int r;

	if (!c)
		return mimg_err(-ENOMEM, "%s: out of memory", sp->name);
	c->f = sp->src->f;
	c->size = sp->src->size;
	if ((r = source_decoder(c, sp->filters, sp->name)) < 0)
		goto out;
	if (source_decodes(c) && !strchr(sp->filters, ',')) {
		ssize_t k = 0;
		while (total <= limit &&
		       (k = source_decode(c, c->buf, SOURCE_CHUNK)) > 0)
			total += (uint64_t)k;
		r = total > limit ? 0 : (int)k;
	} else {
		struct archive_entry *e;
		const void *block;
		size_t len;
		la_int64_t off;
		if (!(a = reader_open(c, false))) {
			r = mimg_err(-ENOMEM, "%s: out of memory", sp->name);
			goto out;
		}
		if (mimg__libarchive.archive_read_open1(a) != ARCHIVE_OK ||
		    mimg__libarchive.archive_read_next_header(a, &e) !=
			    ARCHIVE_OK) {
			r = archive_fail(a, sp->name, "unpacking");
			goto out;
		}
		while (total <= limit &&
		       (r = mimg__libarchive.archive_read_data_block(a, &block,
								     &len,
								     &off)) ==
			       ARCHIVE_OK)
			if (off >= 0 && (uint64_t)off + len > total)
				total = (uint64_t)off + len;
		if (total > limit)
			r = 0;
		else if (r != ARCHIVE_EOF)
			r = archive_fail(a, sp->name, "unpacking");
		else
			r = 0;
	}
	if (r == 0 && total <= limit) {
		*sizep = total;
		r = 1;
	}
out:
	if (a)
		mimg__libarchive.archive_read_free(a);
	source_free(c);
	return r;
}

/* Hand the current entry, whose first N bytes are in sp->buf, to a
 * stream when the consumer reads in order, the image's format can be
 * read in one pass (raw, streamOptimized VMDK) and its SIZE is declared
 * (KNOWN).  A compressed file that declares no size (gzip) is streamed
 * to the end of its data when the image is in a format other than raw,
 * whose header gives the image's size; a raw image's size is the
 * data's, counted first by decoding it once (count_decoded).
 * Returns 1 when it did, 0 when the entry is to be spooled. */
static int maybe_stream(struct spool *sp, struct archive *a, la_ssize_t n,
			bool known, uint64_t size, bool tar, bool ova)
{
	struct stream_state *st;
	int r;

	/* An OVA's member is checked against its manifest, which may come
	 * after it: only a spooled member can be refused before use. */
	if (ova || !sp->sequential || (size_t)n > MIMG_STREAM_RING)
		return 0;
	size_t plen = (size_t)n < PROBE_LEN ? (size_t)n : PROBE_LEN;
	const struct mimg_driver *drv = mimg__probe(sp->buf, plen, NULL);
	bool disk = drv && strcmp(drv->name, "raw") != 0;
	if (drv && (!drv->one_pass || !drv->one_pass(sp->buf, plen)))
		return 0;
	bool open_ended = !known && !tar && disk;
	if (open_ended)
		size = ratio_bound(sp->src->size);
	bool counted = false;
	if (!known && !tar && !disk) {
		if ((r = count_decoded(sp, &size)) < 0)
			return r;
		known = counted = r > 0;
	}
	if ((!known && !open_ended) || (uint64_t)n > size)
		return 0;
	/* In a plain tar, a small raw first file is more likely a README
	 * than the disk: spooled, the rules for choosing among members
	 * apply. */
	if (tar && !disk && size < STREAM_TAR_MIN)
		return 0;
	if (!(st = calloc(1, sizeof(*st))) || !(st->name = strdup(sp->name))) {
		free(st);
		return mimg_err(-ENOMEM, "%s: out of memory", sp->name);
	}
	st->src = sp->src;
	st->a = a;
	st->expanded = sp->expanded;
	st->tar = tar;
	st->filtered = sp->filtered;
	st->disk = disk;
	st->open_ended = open_ended;
	st->counted = counted;
	struct mimg_stream_in in = {
		.archive = sp->archive,
		.opaque = st,
		.read = stream_read,
		.data = stream_data,
		.end = stream_end,
		.release = stream_release,
		.skip = stream_skip,
		.size = size,
		.open_ended = open_ended,
	};
	if ((r = mimg__stream_open(&sp->stream, sp->name, &in, sp->buf,
				   (size_t)n)) < 0) {
		stream_release_early(st);
		return r;
	}
	sp->streamed = true;
	st->names = sp->names;
	sp->names = (struct member_names){.n = 0};
	return 1;
}

/* Unpack the current entry E, whose first N bytes are in sp->buf, as the
 * image: its size is the entry's (a sparse tail reads as zeroes). */
static int take_entry(struct spool *sp, struct archive *a,
		      struct archive_entry *e, la_ssize_t n, bool ova)
{
	int r = maybe_stream(sp, a, n,
			     mimg__libarchive.archive_entry_size_is_set(e),
			     (uint64_t)mimg__libarchive.archive_entry_size(e),
			     true, ova);
	if (r != 0)
		return r < 0 ? r : 0;
	r = spool_entry(sp, a, n);
	if (r == 0 && mimg__libarchive.archive_entry_size_is_set(e) &&
	    (uint64_t)mimg__libarchive.archive_entry_size(e) > sp->end)
		sp->end = (uint64_t)mimg__libarchive.archive_entry_size(e);
	return r;
}

/* In an OVA, the member holding the OVF's first disk (compared by name,
 * never opened by it). */
static int take_ovf_member(struct spool *sp, struct archive *a,
			   struct archive_entry *e, bool filtered,
			   struct mimg_archive_origin *o, const char *name,
			   char **shownp)
{
	int r;
	if (!o->manifest && has_suffix(name, ".mf")) {
		if ((r = read_manifest(sp, a)) == 0) {
			o->manifest = *shownp;
			*shownp = NULL;
		}
		return r;
	}
	if (o->member || strcmp(name, o->ovf->disks[o->ovf_disk].href) != 0)
		return drop_entry(sp, a, filtered);
	if (!(sp->disk_raw = strdup(name)))
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = mimg__digests_init(&sp->disk_md)) < 0)
		return r;
	o->member = *shownp;
	*shownp = NULL;
	la_ssize_t n = next_chunk(sp, a);
	return n < 0 ? (int)n : take_entry(sp, a, e, n, true);
}

/* Pick the tar's disk image: the first disk of an OVA's descriptor, its
 * only file, or else its only file in a format other than raw; unpack it
 * into the spool. */
static int unpack_tar(struct spool *sp, struct archive *a, bool filtered,
		      struct mimg_archive_origin *o)
{
	struct member_list list = {.used = 0};
	struct archive_entry *e;
	int files = 0, disks = 0, r = 0;

	for (int count = 0;; count++) {
		const char *name;
		char *shown;
		r = next_member(a, sp->name, count, &e, &name, &shown);
		if (r == 0)
			break;
		if (r < 0)
			return r;
		r = 0;
		if (mimg__libarchive.archive_entry_filetype(e) == AE_IFDIR ||
		    (r = note_name(&sp->names, sp->name, name, shown)) < 0) {
			free(shown);
			if (r < 0)
				return r;
			continue;
		}
		/* An OVA starts with its descriptor.  Built without an XML
		 * parser, the descriptor is skipped and the rules for any
		 * tar apply. */
		if (count == 0 && has_suffix(shown, ".ovf")) {
			r = read_ovf(sp, a, o);
			if (r == 0) {
				o->ovf_name = shown;
				sp->ovf_raw = strdup(name);
				if (!sp->ovf_raw)
					return mimg_err(-ENOMEM, "out of "
								 "memory");
			} else {
				free(shown);
			}
			if (r < 0 && r != -ENOTSUP)
				return r;
			continue;
		}
		if (o->ovf) {
			r = take_ovf_member(sp, a, e, filtered, o, name,
					    &shown);
			free(shown);
			if (r < 0 || sp->streamed)
				return r;
			continue;
		}
		la_ssize_t n = next_chunk(sp, a);
		if (n < 0) {
			free(shown);
			return (int)n;
		}
		size_t plen = (size_t)n < PROBE_LEN ? (size_t)n : PROBE_LEN;
		const struct mimg_driver *drv = mimg__probe(sp->buf, plen,
							    NULL);
		bool disk = drv && strcmp(drv->name, "raw") != 0;
		list_member(&list, shown, disk ? drv->name : "raw");
		files++;
		if (disk ? ++disks == 1 : files == 1 && disks == 0) {
			free(o->member);
			o->member = shown;
			shown = NULL;
			r = take_entry(sp, a, e, n, false);
		} else {
			r = n > 0 ? drop_entry(sp, a, filtered) : 0;
		}
		free(shown);
		if (r < 0 || sp->streamed)
			return r;
	}
	if (o->ovf && !o->member) {
		char *shown = shown_name(o->ovf->disks[o->ovf_disk].href);
		r = mimg_err(-EINVAL,
			     "%s: the OVF's disk is in '%s', "
			     "which the archive does not hold",
			     sp->name, shown ? shown : "");
		free(shown);
		return r;
	}
	if (o->ovf)
		return check_manifest(sp, o);
	if (disks == 1 || (disks == 0 && files == 1))
		return 0;
	if (files == 0)
		return mimg_err(-EINVAL, "%s: the archive holds no file",
				sp->name);
	return mimg_err(-EINVAL,
			"%s: the archive holds %d files and %s: "
			"%s%s; extract the one to use",
			sp->name, files,
			disks ? "several disk images"
			      : "none in a format "
				"other than raw",
			list.text, list.n > MEMBERS_LISTED ? ", ..." : "");
}

static int unpack_stream(struct spool *sp, struct archive *a,
			 const struct mimg_archive_origin *o)
{
	struct archive_entry *e;
	uint64_t size = 0;
	if (a && mimg__libarchive.archive_read_next_header(a, &e) != ARCHIVE_OK)
		return archive_fail(a, sp->name, "unpacking");
	la_ssize_t n = next_chunk(sp, a);
	if (n < 0)
		return (int)n;
	bool known = mimg__declared_size(sp->src->f, o->filters, &size);
	int r = maybe_stream(sp, a, n, known, size, false, false);
	if (r != 0)
		return r < 0 ? r : 0;
	return spool_entry(sp, a, n);
}

/* Unpack S into a new spool (its descriptor in *FDP) or hand its image
 * to a stream (*STREAMP). */
static int unpack(struct source *s, const char *name,
		  struct mimg_archive_origin *o, bool sequential,
		  const char *ova_disk, int *fdp, struct mimg_file **streamp)
{
	struct spool sp = {.fd = -1,
			   .name = name,
			   .src = s,
			   .archive = s->f,
			   .sequential = sequential,
			   .ova_disk = ova_disk,
			   .filtered = o->filters[0] != 0,
			   .filters = o->filters};
	struct archive *a = NULL;
	int r;

	if ((r = spool_open(&sp)) < 0)
		goto out;
	if ((r = source_decoder(s, o->filters, name)) < 0)
		goto out;
	/* A plain gzip or xz file, one layer, needs no libarchive: the
	 * source decodes it. */
	if (o->tar || !source_decodes(s) || strchr(o->filters, ',')) {
		if (!(a = reader_open(s, o->tar))) {
			r = mimg_err(-ENOMEM, "%s: out of memory", name);
			goto out;
		}
		if (mimg__libarchive.archive_read_open1(a) != ARCHIVE_OK) {
			r = archive_fail(a, name, "unpacking");
			goto out;
		}
	}
	r = o->tar ? unpack_tar(&sp, a, o->filters[0] != 0, o)
		   : unpack_stream(&sp, a, o);
	/* libarchive stops at the tar's end: the rest of the compressed
	 * data is decoded, so that its trailer (CRC-32, ISIZE, xz index)
	 * is checked. */
	if (r == 0 && o->tar && !sp.streamed && source_decodes(s)) {
		la_ssize_t k;
		while ((k = next_chunk(&sp, NULL)) > 0)
			;
		r = (int)k;
	}
	if (r == 0 && !sp.streamed && (r = spool_create(&sp)) == 0 &&
	    ftruncate(sp.fd, (off_t)sp.end) != 0)
		r = mimg_err_errno(-errno, "%s: truncate", sp.dir);
	o->unpacked_size = sp.end;
	o->streamed = sp.streamed;
	if (sp.streamed)
		mimg_file_size(sp.stream, &o->unpacked_size);
out:
	if (!sp.streamed && a)
		mimg__libarchive.archive_read_free(a);
	free(sp.buf);
	free(sp.ovf_raw);
	free(sp.disk_raw);
	mimg__digests_free(&sp.ovf_md);
	mimg__digests_free(&sp.disk_md);
	mimg__manifest_free(sp.mf);
	names_free(&sp.names);
	if ((r < 0 || sp.streamed) && sp.fd >= 0)
		close(sp.fd);
	*fdp = r < 0 || sp.streamed ? -1 : sp.fd;
	*streamp = r < 0 ? NULL : sp.stream;
	return r;
}

void mimg__archive_origin_free(struct mimg_archive_origin *o)
{
	if (o) {
		free(o->member);
		free(o->ovf_name);
		free(o->manifest);
		mimg__ovf_free(o->ovf);
	}
	free(o);
}

int mimg__archive_unpack(struct mimg_file **fp,
			 struct mimg_archive_origin **originp, bool sequential,
			 const char *ova_disk)
{
	const char *name = mimg_file_path(*fp);
	struct mimg_archive_origin *o = NULL;
	struct mimg_file *unpacked = NULL;
	struct source *s;
	int fd = -1, r;

	*originp = NULL;
	if (!(s = calloc(1, sizeof(*s))) || !(o = calloc(1, sizeof(*o)))) {
		free(s);
		return mimg_err(-ENOMEM, "%s: out of memory", name);
	}
	s->f = *fp;
	if ((r = mimg_file_size(*fp, &s->size)) < 0 ||
	    (r = detect(s, name, o->filters, sizeof(o->filters), &o->tar)) <=
		    0 ||
	    (r = unpack(s, name, o, sequential, ova_disk, &fd, &unpacked)) < 0)
		goto out;
	o->archive_size = s->size;
	if (mimg_file_allocated(*fp, &o->archive_allocated) < 0)
		o->archive_allocated = 0;
	if (unpacked) {
		s = NULL; /* the stream's reader reads it */
	} else {
		if ((r = mimg_file_open_fd(&unpacked, fd, name, 0)) < 0)
			goto out;
		mimg_file_close(*fp);
	}
	*fp = unpacked;
	*originp = o;
	o = NULL;
	r = 1;
out:
	mimg__archive_origin_free(o);
	source_free(s);
	return r;
}
