/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The interface between the libmimg core and one format driver.
 *
 * A driver is a `const struct mimg_driver` listed in formats/drivers.c.
 * The core allocates `priv_size` bytes of driver state (img->priv, zeroed),
 * opens the image's host file (img->file) and then calls open().  Backing
 * chains are opened by the core after open() from img->backing_name /
 * img->backing_fmt, which the driver sets.
 *
 * Thread safety: preadv, pwritev, pwrite_zeroes, discard, block_status and
 * flush may be called concurrently on one image.  Drivers lock their
 * metadata and never hold a lock across data I/O that does not need it.
 *
 * Optional callbacks may be NULL or return -ENOTSUP; the core then emulates:
 * pwrite_zeroes becomes writes of zeroes, discard does nothing, no
 * block_status means "all data, allocated", truncate fails with -ENOTSUP.
 */
#ifndef MIMG_DRIVER_H
#define MIMG_DRIVER_H

#include <stdarg.h>

#include "mimg.h"

struct mimg_file;

/* One option of a driver's create or amend schema (see optschema.c).
 * Tables end with an entry whose name is NULL. */
enum mimg_optkind {
	MIMG_OPTK_BOOL,	  /* on/off */
	MIMG_OPTK_SIZE,	  /* a size with suffixes */
	MIMG_OPTK_NUMBER, /* an unsigned number (decimal, 0x hex, octal) */
	MIMG_OPTK_STRING,
	MIMG_OPTK_ENUM, /* a string out of .values */
};

/* Listed only when the host file's options are asked for (qemu-img
 * lists them when it is given the file name): they act on the file. */
#define MIMG_OPTF_FILE 0x1u

struct mimg_optdesc {
	const char *name;
	enum mimg_optkind kind;
	const char *help;
	const char *def;	   /* default as text, NULL: none */
	const char *const *values; /* ENUM: NULL-terminated */
	const char *enum_name;	   /* ENUM: the name qemu-img's refusal uses */
	unsigned flags;		   /* MIMG_OPTF_* */
};

/* A parsed option value, indexed like the schema it was checked
 * against.  SET says whether the caller gave the option; unset options
 * hold their default.  ENUM values are the index into .values. */
struct mimg_optval {
	bool set;
	bool b;
	uint64_t u;
	const char *s; /* STRING and ENUM: the text (owned by the opts) */
};

/* The host file's own create option, for drivers that honour it. */
#define MIMG_OPT_FILE_PREALLOC                                                    \
	{                                                                         \
		"preallocation", MIMG_OPTK_STRING,                                \
			"Preallocation mode (allowed values: off, falloc, full)", \
			NULL, NULL, NULL, MIMG_OPTF_FILE                          \
	}
#define MIMG_OPT_SIZE                                                          \
	{                                                                      \
		"size", MIMG_OPTK_SIZE, "Virtual disk size", NULL, NULL, NULL, \
			0                                                      \
	}
/* A build-time check that the NULL-terminated option table TAB has as
 * many entries as the enum that names its indexes counts (N). */
#define MIMG_OPTS_INDEXED(tab, n)                                              \
	_Static_assert(sizeof(tab) / sizeof((tab)[0]) == (n) + 1,              \
		       #tab " and its index names agree")

/* The LUKS key-slot options of amend (qemu-img's texts), named NAME
 * ("keyslot" for luks, "encrypt.keyslot" inside qcow2). */
extern const char *const mimg__keyslot_states[];
#define MIMG_OPT_LUKS_ITER_TIME(name)                                          \
	{                                                                      \
		name, MIMG_OPTK_NUMBER,                                        \
			"Time to spend in PBKDF in milliseconds", NULL, NULL,  \
			NULL, 0                                                \
	}
#define MIMG_OPT_LUKS_KEYSLOT(name)                                            \
	{                                                                      \
		name, MIMG_OPTK_NUMBER,                                        \
			"Select a single keyslot to modify "                   \
			"explicitly",                                          \
			NULL, NULL, NULL, 0                                    \
	}
#define MIMG_OPT_LUKS_NEW_SECRET(name)                                         \
	{                                                                      \
		name, MIMG_OPTK_STRING,                                        \
			"New secret to set in the matching "                   \
			"keyslots. Empty string to erase",                     \
			NULL, NULL, NULL, 0                                    \
	}
#define MIMG_OPT_LUKS_OLD_SECRET(name)                                         \
	{                                                                      \
		name, MIMG_OPTK_STRING,                                        \
			"Select all keyslots that match this "                 \
			"password",                                            \
			NULL, NULL, NULL, 0                                    \
	}
#define MIMG_OPT_LUKS_STATE(name)                                              \
	{                                                                      \
		name, MIMG_OPTK_ENUM,                                          \
			"Select new state of affected keyslots "               \
			"(active/inactive)",                                   \
			NULL, mimg__keyslot_states, "state", 0                 \
	}

/* A key-slot change asked through amend (the five options above, in
 * that order, as parsed). */
struct mimg_keyslot_change {
	const struct mimg_optval *iter_time, *keyslot, *new_secret, *old_secret,
		*state;
	bool force; /* MIMG_AMEND_FORCE: the last slot may go */
};
/* Apply C (secrets named by id, resolved among the secrets of the
 * mimg_amend_secrets call) to IMG's LUKS header through APPLY: the raw
 * luks driver's or qcow2's key-slot change (libmimg/crypto/luks1.h). */
struct luks1_keyslot_change;
int mimg__keyslot_amend(struct mimg *img, const struct mimg_keyslot_change *c,
			int (*apply)(struct mimg *img,
				     const struct luks1_keyslot_change *lc,
				     int *slotp));

/* Check OPTS against SCHEMA and fill VALS (one per schema entry, the
 * count of SCHEMA's entries).  The last of repeated keys wins.  Errors
 * (-EINVAL) are worded as qemu-img's; an unknown key's message names
 * the key; with CREATE_ONLY (a create schema, for amend) a key that is
 * only a create option says so. */
int mimg__opts_validate(const struct mimg_optdesc *schema,
			const struct mimg_optdesc *create_only,
			const struct mimg_opt *opts, size_t nopts,
			struct mimg_optval *vals);
/* The options of mimg_ova_write (formats/ova.c). */
extern const struct mimg_optdesc mimg__ova_create_opts[];

/* Number of entries of SCHEMA. */
size_t mimg__opts_count(const struct mimg_optdesc *schema);
/* FORMAT's create options in the order qemu-img's "Formatting" line
 * lists them, separated by spaces, "name=value" for one it lists with
 * that value when not given (mimg_create_summary); NULL for a format
 * without such a line. */
const char *mimg__create_order(const char *format);

struct mimg_runs;

struct mimg_driver {
	const char *name;
	size_t priv_size;
	/* Non-NULL for a format mimg only reads: opening one of its images
	 * for writing is refused, before open(), with "FILE: NAME: " and
	 * this text. */
	const char *read_only;

	/* Score 0-100 of how likely BUF (the first LEN bytes of the file,
	 * LEN may be short for small files) is in this format.  raw is 1. */
	int (*probe)(const uint8_t *buf, size_t len, const char *filename);
	/* Optional: true when an image starting with BUF (its first LEN
	 * bytes, up to 4096) can be opened over a file read once, forward only
	 * (mimg_file_is_stream), and read in order. */
	bool (*one_pass)(const uint8_t *buf, size_t len);

	/* Parse the image.  img->file is open (read-write when
	 * img->read_only is false); set img->size, and where applicable
	 * img->cluster_size, img->backing_name, img->backing_fmt.  The
	 * MIMG_OPEN_* flags are in img->flags. */
	int (*open)(struct mimg *img);
	/* Optional: release driver state; the core closes img->file and
	 * frees what mimg__img_calloc gave afterwards.  Also called when
	 * open() failed, on whatever it had set up: open() itself only
	 * returns the error. */
	void (*close)(struct mimg *img);

	/* Create a new image file at PATH.  BACKING, when the caller asked
	 * for a backing file, is that file opened read-only (for its size and
	 * format); SIZE has already been taken from it when 0 was given.
	 * The core refuses a backing file, with qemu-img's message, to a
	 * format whose create_opts lack backing_file: BACKING is then NULL. */
	int (*create)(const char *path, uint64_t size,
		      const struct mimg_opt *opts, size_t nopts,
		      struct mimg *backing);

	/* Optional: create with key material (mimg_create_secret);
	 * SECRET is checked and has its defaults filled in. */
	int (*create_secret)(const char *path, uint64_t size,
			     const struct mimg_opt *opts, size_t nopts,
			     struct mimg *backing,
			     const struct mimg_secret *secret);

	/* Data I/O.  [off, off+len) lies within img->size and IOV holds
	 * exactly LEN bytes (drivers pass it on to the host file as it
	 * is).  Ranges that are unallocated in this layer are filled with
	 * mimg__read_below(). */
	int (*preadv)(struct mimg *img, const struct iovec *iov, int iovcnt,
		      uint64_t off, size_t len);
	int (*pwritev)(struct mimg *img, const struct iovec *iov, int iovcnt,
		       uint64_t off, size_t len);
	/* NULL: the image's data and metadata are all in img->file, and
	 * flushing it is enough. */
	int (*flush)(struct mimg *img);

	/* Optional. */
	int (*pwrite_zeroes)(struct mimg *img, uint64_t off, uint64_t len,
			     unsigned flags);
	int (*discard)(struct mimg *img, uint64_t off, uint64_t len);
	/* This layer only: see mimg_block_status(). */
	int (*block_status)(struct mimg *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, unsigned *status,
			    uint64_t *host_off);
	/* The file block_status's host offset at OFF is in, where that is
	 * not img->file (an extent, a data file); NULL: img->file. */
	struct mimg_file *(*host_file)(struct mimg *img, uint64_t off);
	int (*truncate)(struct mimg *img, uint64_t size,
			enum mimg_prealloc prealloc);
	int (*check)(struct mimg *img, unsigned flags,
		     struct mimg_check_result *res);
	/* Add driver members to the ImageInfo object INFO that the core has
	 * filled ("format-specific", "snapshots", "dirty-flag" override...).
	 * Use the builders in value.h. */
	int (*info)(struct mimg *img, struct mimg_value *info);
	/* Read the snapshot whose id is ID and whose name is NAME (one of
	 * them may be NULL: matched on the other alone), or -ENOENT. */
	int (*select_snapshot)(struct mimg *img, const char *id,
			       const char *name);
	/* True when a new image reads as zeroes (raw on a regular file: yes;
	 * qcow2 without backing: yes).  NULL means false. */
	bool (*has_zero_init)(struct mimg *img);

	/* Optional compressed writing, used by mimg_convert with -c and by
	 * formats that always compress (VMDK streamOptimized).
	 * compress_unit: the unit (cluster/grain) in bytes, 0 when compressed
	 * writes are not possible for this image.
	 * compress: thread-safe, pure: compress IN (one unit) into OUT (OUTCAP
	 * bytes); return the compressed length, or -ENOSPC when the result
	 * would not save space (the unit is then written uncompressed).
	 * write_compressed: called in guest-offset order from one thread;
	 * OFF is unit-aligned; when LEN == compress_unit and the data is not
	 * compressed, DATA is plain.  The flag says which. */
	uint32_t (*compress_unit)(struct mimg *img);
	ssize_t (*compress)(struct mimg *img, const void *in, size_t inlen,
			    void *out, size_t outcap);
	int (*write_compressed)(struct mimg *img, uint64_t off,
				const void *data, size_t len, bool compressed);
	/* True when this image must be written through write_compressed in
	 * ascending order (stream formats), even without -c. */
	bool (*stream_only)(struct mimg *img);
	/* Optional: record NAME (NULL: no backing file) and FMT (NULL: none)
	 * as the image's backing file in its metadata, nothing else.  The
	 * core checks the image is writable and updates backing_name and
	 * backing_fmt afterwards. */
	int (*set_backing)(struct mimg *img, const char *name, const char *fmt);
	/* Optional internal snapshots (the core checks the image is
	 * writable): create one named NAME; apply the one whose id, else
	 * name, is NAME; delete the first one named NAME. */
	int (*snapshot_create)(struct mimg *img, const char *name);
	int (*snapshot_apply)(struct mimg *img, const char *name);
	int (*snapshot_delete)(struct mimg *img, const char *name);
	/* Optional: drop every mapping so that the image reads all of its
	 * content from the backing file (qemu's make_empty). */
	int (*make_empty)(struct mimg *img);

	/* Optional: called by mimg_close before the final flush of a
	 * writable image (persistent bitmaps are stored there); its error
	 * is mimg_close's. */
	int (*close_prepare)(struct mimg *img);
	/* Optional persistent dirty bitmaps (see mimg_bitmap_add and the
	 * others; the core checks the arguments and that IMG is writable
	 * for the changes; messages are qemu's). */
	int (*bitmap_add)(struct mimg *img, const char *name,
			  uint64_t granularity, bool enabled);
	int (*bitmap_remove)(struct mimg *img, const char *name);
	int (*bitmap_clear)(struct mimg *img, const char *name);
	int (*bitmap_enable)(struct mimg *img, const char *name, bool enable);
	int (*bitmap_merge)(struct mimg *img, const char *name,
			    struct mimg *src, const char *src_name);
	int (*bitmap_status)(struct mimg *img, const char *name, uint64_t off,
			     uint64_t len, uint64_t *pnum, bool *dirty);

	/* Option schemas (NULL: the format takes none).  create() receives
	 * options the core has checked against create_opts. */
	const struct mimg_optdesc *create_opts;
	const struct mimg_optdesc *amend_opts;
	/* What mimg_open_opts may give the image asked for: open() finds
	 * them in img->open_vals, checked against this schema. */
	const struct mimg_optdesc *open_opts;
	/* Optional: change the open image IMG (read-write, backing chain
	 * open) as VALS (checked against amend_opts) ask; FLAGS are
	 * MIMG_AMEND_*.  PROGRESS may be NULL. */
	int (*amend)(struct mimg *img, const struct mimg_optval *vals,
		     unsigned flags,
		     void (*progress)(void *opaque, uint64_t done,
				      uint64_t total),
		     void *opaque);
	/* A driver built on runs.h: what its map and decode are (its
	 * preadv and block_status are then runs.h's). */
	const struct mimg_runs *runs;
};

/* An info callback for formats qemu-img has no driver information for
 * (no bdrv_get_info): their info has no dirty flag (nor cluster size). */
int mimg__info_without_driver_info(struct mimg *img, struct mimg_value *info);

/* Check a caller's struct mimg_secret (its size field) and copy the
 * fields it has into OUT with defaults for the others. */
int mimg__secret_normalize(const struct mimg_secret *in,
			   struct mimg_secret *out);

/* formats/drivers.c: NULL-terminated table of every driver. */
extern const struct mimg_driver *const mimg_drivers[];

const struct mimg_driver *mimg__find_driver(const char *name);
/* Open an image of FORMAT over FILE, which it owns from then on (closed
 * on failure too); NAME names it in messages.  Like an image in memory,
 * it has no directory: it may name no other file. */
int mimg__open_on_file(struct mimg **imgp, const char *name, const char *format,
		       unsigned flags, struct mimg_file *file);

/* The size of img->file into *FILE_SIZE and its first LEN bytes into
 * BUF; a file shorter than LEN is refused, naming the format. */
int mimg__read_header(struct mimg *img, void *buf, size_t len,
		      uint64_t *file_size);

/*
 * Fill [off, off+len) of IOV (whose first byte corresponds to image offset
 * OFF; IOV_SKIP bytes of IOV are skipped first) with what the layers below
 * IMG hold: the backing image's data, or zeroes where there is no backing
 * image or it is shorter.  For drivers' unallocated ranges and COW.
 */
int mimg__read_below(struct mimg *img, const struct iovec *iov, int iovcnt,
		     size_t iov_skip, uint64_t off, size_t len);
/* Same into a flat buffer. */
int mimg__read_below_buf(struct mimg *img, void *buf, uint64_t off, size_t len);

/*
 * Resolve NAME, a path found inside an image (backing file, extent, data
 * file) relative to the directory of the image at BASE_PATH.  Applies the
 * untrusted-path policy: with CONTAINED, absolute paths and ".." escapes
 * are refused (-EPERM) unless img flags allow external files; with
 * MIMG_OPEN_UNTRUSTED every reference is refused.  WHAT names the
 * reference for messages ("extent", "data file").  Returns a malloc'ed
 * path in *OUT.
 */
int mimg__resolve_ref(const struct mimg *img, const char *name, bool contained,
		      const char *what, char **out);

/* Open an additional host file for IMG (VMDK extents, qcow2 data file),
 * with IMG's access mode and cache flags. */
int mimg__open_extra_file(struct mimg *img, const char *path, bool create,
			  struct mimg_file **fp);

/* Option helpers for create(): look up KEY in OPTS (NULL if absent). */
const char *mimg__opt(const struct mimg_opt *opts, size_t nopts,
		      const char *key);
/* Whether V is one of the four words of YES (*OUT set true) or of NO
 * (*OUT false), compared with CMP (strcmp or strcasecmp). */
bool mimg__bool_word(const char *v, const char *const yes[4],
		     const char *const no[4],
		     int (*cmp)(const char *, const char *), bool *out);
/* Parse a boolean option ("on"/"off"/"true"/"false"/"yes"/"no"/1/0). */
int mimg__opt_bool(const char *key, const char *value, bool *out);
/* Parse a size option with suffixes. */
int mimg__opt_size(const char *key, const char *value, uint64_t *out);
int mimg__opt_prealloc(const char *value, enum mimg_prealloc *out);
/* The same for create's preallocation value V of file PATH (named in the
 * error): NULL, the option not given, is off. */
int mimg__opt_prealloc_of(const char *path, const char *v,
			  enum mimg_prealloc *out);
/* The same for formats that take only off and falloc (FMT names the
 * format in the error). */
int mimg__opt_prealloc_falloc(const char *path, const char *fmt, const char *v,
			      enum mimg_prealloc *out);

/* Make [OFF, OFF+LEN) of host file F read as zeroes (zero range where
 * the file supports it, else writes of zeroes). */
int mimg__file_zero(struct mimg_file *f, uint64_t off, uint64_t len);

/* Add one line to a check report (at most 1000 lines are kept; lines that
 * do not fit are dropped, the caller's counters still count them). */
void mimg__check_report(struct mimg_check_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same with a va_list, for a driver's own report function. */
void mimg__check_vreport(struct mimg_check_result *res, const char *fmt,
			 va_list ap) __attribute__((format(printf, 2, 0)));

/* The host bytes one allocation unit of an image (a grain, a block)
 * takes, for a check that no two units share bytes. */
struct mimg_host_range {
	uint64_t start, len;
	uint32_t unit; /* the caller's number for the unit */
};
/* Sort the N RANGES by start and call OVERLAP for each range that starts
 * inside an earlier one (PREV: of those, the one reaching furthest). */
void mimg__host_overlaps(struct mimg_host_range *ranges, size_t n,
			 void (*overlap)(void *opaque,
					 const struct mimg_host_range *prev,
					 const struct mimg_host_range *cur),
			 void *opaque);

#endif
