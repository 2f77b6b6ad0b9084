/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * libmimg: read, write, inspect and convert virtual disk images (raw, qcow2,
 * VMDK, LUKS).  This header is the documentation of the library.
 *
 * Conventions
 *  - Every function returns 0 (or a byte count) on success and a negative
 *    errno value on failure.  The human-readable reason for the last failure
 *    on the calling thread is returned by mimg_errmsg().
 *  - Offsets and lengths are in bytes.
 *  - All I/O calls (mimg_preadv ... mimg_block_status) on one handle may be
 *    called concurrently from many threads.  mimg_open/mimg_close are not
 *    concurrent with anything else on the same handle.
 *  - Nothing here keeps global state except the thread-local error message.
 */
#ifndef MIMG_H
#define MIMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MIMG_API __attribute__((visibility("default")))
#else
#define MIMG_API
#endif

#define MIMG_VERSION_MAJOR 0
#define MIMG_VERSION_MINOR 1
#define MIMG_VERSION_PATCH 0
#define MIMG_VERSION_STRING "0.1.0"
/* One integer that compares as versions do: MAJOR * 10000 + MINOR * 100 +
 * PATCH. */
#define MIMG_VERSION_NUMBER                                                    \
	(MIMG_VERSION_MAJOR * 10000 + MIMG_VERSION_MINOR * 100 +               \
	 MIMG_VERSION_PATCH)

/* The library's version as "MAJOR.MINOR.PATCH" (may differ from the header
 * the caller was built with).  Cannot fail; thread-safe. */
MIMG_API const char *mimg_version(void);
/* The library's MIMG_VERSION_NUMBER, for run-time checks against the
 * header's.  Cannot fail; thread-safe. */
MIMG_API int mimg_version_number(void);

/* Message describing the last failure on this thread, naming the file,
 * field and value involved.  Never NULL; valid until the next libmimg call
 * on this thread.  Cannot fail; thread-safe (each thread has its own). */
MIMG_API const char *mimg_errmsg(void);

/* ---------------------------------------------------------------------- */
/* Opening images                                                          */

struct mimg; /* an open image: one node of a backing chain */

enum {
	MIMG_OPEN_RDWR = 1u << 0,	/* default is read-only */
	MIMG_OPEN_NO_BACKING = 1u << 1, /* do not open backing files */
	/* Refuse any image that refers to another file (backing file,
	 * VMDK extent in another file, qcow2 external data file).  For
	 * services that handle uploaded images. */
	MIMG_OPEN_UNTRUSTED = 1u << 2,
	/* Allow VMDK extents / qcow2 data files outside the image's
	 * directory (absolute paths, ".." escapes).  Off by default. */
	MIMG_OPEN_ALLOW_EXTERNAL = 1u << 3,
	/* O_DIRECT on host files, on every format: transfers the file system
	 * would refuse (unaligned offsets, lengths or memory) are bounced
	 * through aligned buffers, partial blocks read-modify-written. */
	MIMG_OPEN_DIRECT = 1u << 4,
	MIMG_OPEN_SYNC = 1u << 5, /* O_DSYNC on host files */
	/* Open even if the image needs repair (for mimg_check with repair;
	 * e.g. a dirty qcow2 is not rebuilt on open). */
	MIMG_OPEN_CHECK = 1u << 6,
	/* Never ask the host to make writes durable (qemu's cache=unsafe):
	 * mimg_flush still writes out metadata but skips fsync. */
	MIMG_OPEN_NO_FLUSH = 1u << 7,
	/* Exit-safe writes, for hypervisors: when a write, zeroing or
	 * discard returns, its data and the metadata that makes it visible
	 * are in the host file (written, not necessarily durable), so the
	 * process may exit or be killed without losing it.  mimg_flush is
	 * still what makes completed writes survive a power cut, and a
	 * power cut still never corrupts the image.  Writes that copy old
	 * data into a new cluster write that cluster O_DSYNC (encrypted
	 * images: a group flush); writes into empty clusters usually cost
	 * nothing more.  Without it, qcow2 keeps L2
	 * updates in memory until mimg_flush or mimg_close. */
	MIMG_OPEN_EXIT_SAFE = 1u << 8,
	/* Read a compressed file or tar as the bytes it is (see mimg_open). */
	MIMG_OPEN_NO_ARCHIVE = 1u << 9,
	/* The caller reads in ascending order (convert): a raw image in a
	 * compressed file or tar is streamed instead of unpacked. */
	MIMG_OPEN_SEQUENTIAL = 1u << 10,
	/* Only to describe the image (info): what SEQUENTIAL would stream
	 * is streamed, and the rest of its archive read and checked before
	 * mimg_open returns; the image's data can then not be read. */
	MIMG_OPEN_INSPECT = 1u << 11,
};
/* Every MIMG_OPEN_* bit; mimg_open refuses others with -EINVAL. */
#define MIMG_OPEN_ALL_FLAGS 0xfffu

/* Maximum backing-chain depth followed before giving up (-ELOOP). */
#define MIMG_MAX_CHAIN_DEPTH 64

/*
 * Open the image at PATH.  FORMAT is a driver name ("raw", "qcow2", "vmdk")
 * or NULL to probe the contents.  An explicit format always wins.  When the
 * format was only probed as raw, writes that would change what the first
 * sector probes as are refused (-EPERM), as qemu does.
 * Backing files are opened read-only, resolved relative to the overlay's
 * directory; loops give -ELOOP, chains deeper than MIMG_MAX_CHAIN_DEPTH
 * give -ELOOP too.
 *
 * Archives: opened read-only (and without MIMG_OPEN_NO_ARCHIVE), a file
 * that is compressed (gzip, bzip2, xz, zstd, lz4, recognised by content)
 * and/or a tar archive is unpacked into an anonymous sparse file under
 * $TMPDIR (default /tmp), removed when the image is closed or the process
 * ends; the image in it is then opened as usual (FORMAT names that image).
 * A tar must hold one file, or one file in a format other than raw (the
 * others are ignored); an OVA (a tar whose first member is an .ovf
 * descriptor, read without DTDs, entities or network; needs libxml2)
 * gives the first disk the descriptor lists, which must be a member of
 * the same archive.  Links, special files and member names that are
 * absolute or contain ".." are refused.  Limits: the unpacked data (zero
 * blocks stay holes) must fit in the free space of $TMPDIR less 64 MiB
 * (-ENOSPC), an archive has at most 1024 members (-E2BIG), and past the
 * first 64 MiB the data may not unpack to more than 100000 times the bytes
 * read so far (-EFBIG, decompression bombs).  Names inside the unpacked
 * image (backing files, extents) resolve relative to the archive's
 * directory.  mimg_info says where the image came from ("archive").
 * With MIMG_OPEN_SEQUENTIAL, a raw or streamOptimized VMDK image whose
 * size the archive declares (an xz index, a zstd frame header, a tar
 * header) and that is not in an OVA is instead read in one pass with no
 * temporary file ("streamed" in mimg_info), and so is a streamOptimized
 * VMDK from a file that declares no size (gzip, bzip2, lz4), its end
 * found as it is read, and a raw image from such a file (not a tar),
 * its size counted first by decoding the file once: reads must then go
 * forward
 * (at most 32 MiB of the file behind the furthest one, else -ESPIPE),
 * and data shorter or longer than declared fails the read that reaches
 * it.  A streamed VMDK's grains must come in ascending order and be the
 * ones its grain tables list (-EINVAL otherwise, from the read that
 * meets the difference, the end of the stream at the latest).
 *
 * NBD: a PATH of nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=SOCK,
 * nbds:// or nbds+unix:// (libnbd URIs, TLS for nbds) opens the export
 * as the image's file, when built with libnbd (-ENOTSUP otherwise).  The
 * export has a fixed size (reads past it are zeroes, writes past it
 * -ENOSPC), holes come from its base:allocation block status, and a
 * relative backing name inside it is refused (-EPERM).  Requests without
 * an answer within $MIMG_NBD_TIMEOUT seconds (default 60) fail with
 * -ETIMEDOUT; a lost connection fails every later request.
 *
 * Errors: -ENOENT/-EACCES (host), -EINVAL (corrupt or bad field, corrupt
 * compressed data, a tar without a single disk image), -ENOTSUP (feature
 * not supported), -ELOOP, -EPERM (untrusted policy, hostile archive
 * member), -ENOSPC, -E2BIG, -EFBIG (archive limits).
 * Thread-safety: opening different images concurrently is safe.
 */
MIMG_API int mimg_open(struct mimg **imgp, const char *path, const char *format,
		       unsigned flags);

/*
 * As mimg_open, for an OVA: open the disk DISK of its OVF descriptor, an
 * index into its DiskSection counted from 0 ("1") or a disk's file name
 * or id; NULL opens the first.  An OVA's manifest (.mf: SHA1, SHA256 or
 * SHA512 lines), wherever it is in the archive, must match the
 * descriptor and the disk read (mimg_info: "manifest-checked").
 * Errors: as mimg_open; -ENOENT when the OVF has no such disk.
 * Thread-safety: as mimg_open.
 */
MIMG_API int mimg_open_ova_disk(struct mimg **imgp, const char *path,
				const char *format, unsigned flags,
				const char *disk);

/* How much an image opened from memory with MIMG_OPEN_RDWR may grow. */
#define MIMG_MEMORY_GROWTH ((size_t)64 << 20)

/*
 * Open an image held in memory: LEN bytes at BUF, which are copied (BUF
 * may be reused as soon as the call returns).  FORMAT and FLAGS as for
 * mimg_open.  With MIMG_OPEN_RDWR writes go to the copy, which may grow by
 * MIMG_MEMORY_GROWTH bytes (past that, writes fail with -ENOSPC), and are
 * lost at mimg_close.  The image has no directory: naming any other file
 * (backing file, VMDK extent, data file) gives -EPERM; open with
 * MIMG_OPEN_NO_BACKING to inspect an overlay.  mimg_filename() is
 * "(memory)".  For fuzzers, tests and services holding an upload.
 * Errors: those of mimg_open, -ENOMEM, -EINVAL (BUF NULL with LEN > 0).
 * Thread-safety: like mimg_open; the handle is as concurrent as any.
 */
MIMG_API int mimg_open_memory(struct mimg **imgp, const void *buf, size_t len,
			      const char *format, unsigned flags);
/*
 * Key material for encrypted images (LUKS).  The caller allocates this
 * struct and sets SIZE to sizeof(struct mimg_secret) as it was compiled,
 * so fields can be added later; the library reads only the fields SIZE
 * covers and refuses (-EINVAL) a SIZE too small for DATA and LEN.
 * The library copies what it needs while the call runs: the caller may
 * wipe its buffer as soon as the call returns.  Key material kept by an
 * open image is wiped with explicit_bzero when the image is closed, and
 * is never part of a message or of mimg_info's output.
 */
struct mimg_secret {
	size_t size;	  /* sizeof(struct mimg_secret) */
	const void *data; /* the passphrase, LEN bytes (no terminator) */
	size_t len;
	/* Most PBKDF2 iterations accepted from an image's header (each
	 * key slot and the master key digest): a hostile header could
	 * otherwise make opening cost hours of CPU.  0 means
	 * MIMG_MAX_PBKDF2_ITERS_DEFAULT.  Also caps what mimg_create_secret
	 * writes. */
	uint64_t max_pbkdf2_iters;
};
#define MIMG_MAX_PBKDF2_ITERS_DEFAULT 10000000u

/*
 * mimg_open with a secret for encrypted images: the passphrase that
 * unlocks a LUKS image's key slot.  SECRET may be NULL (same as
 * mimg_open).  The secret is offered to every encrypted image of the
 * chain.  An encrypted image opened without a secret can be described
 * (mimg_info, header only), but its reads and writes fail with -EACCES.
 * Errors: those of mimg_open; -EACCES "Invalid password, cannot unlock
 * any keyslot" for a wrong passphrase; -EINVAL for a bad SECRET->size or
 * an iteration count above the cap.  Thread-safe for distinct handles.
 */
MIMG_API int mimg_open_secret(struct mimg **imgp, const char *path,
			      const char *format, unsigned flags,
			      const struct mimg_secret *secret);

struct mimg_opt;

/*
 * mimg_open_secret with NOPTS options of the image's format (not of its
 * backing files), named as qemu's --image-opts names them.  raw takes
 * "offset" and "size" (bytes, with an optional k, M, G, T, P or E
 * suffix): the disk is the SIZE bytes of the file from OFFSET (without
 * "size", the rest of the file, as whole 512-byte sectors); nothing
 * outside them is read or written.  "size" must be a multiple of 512, and
 * both must lie within the file; a disk given a size cannot be resized
 * (-ENOTSUP).  Other formats take none.
 * Errors: those of mimg_open_secret; -EINVAL "Block format 'F' does not
 * support the option 'KEY'", a value that does not parse, a window
 * outside the file, or an option without key or value.
 * Thread-safety: as mimg_open.
 */
MIMG_API int mimg_open_opts(struct mimg **imgp, const char *path,
			    const char *format, unsigned flags,
			    const struct mimg_secret *secret,
			    const struct mimg_opt *opts, size_t nopts);

/* Flush (when writable) and close the image and its backing chain.
 * Returns the flush error, if any (host I/O errors, -EIO); the handle is
 * freed in every case.  mimg_close(NULL) returns 0.  Not concurrent with
 * any other call on IMG; closing different handles concurrently is
 * safe. */
MIMG_API int mimg_close(struct mimg *img);

/* ---------------------------------------------------------------------- */
/* Creating images                                                         */

/* One creation option, as in qemu-img's "-o key=value". */
struct mimg_opt {
	const char *key;
	const char *value;
};

/*
 * Create an image of FORMAT and SIZE bytes at PATH (truncating an existing
 * file).  OPTS are the format's creation options, named as qemu-img names
 * them (e.g. "cluster_size", "compat", "preallocation", "backing_file",
 * "backing_fmt", "subformat").  SIZE may be 0 when backing_file is given:
 * the backing file's size is used.  Unknown options give -EINVAL naming
 * the option.
 * Errors: -EINVAL (unknown format, option or value), -ENOTSUP (an option
 * value the format cannot do), -ENOENT/-EACCES (host, backing file),
 * -EFBIG (SIZE too large for the format), -ENOSPC, host I/O errors.
 * Thread-safe for different PATHs.
 */
MIMG_API int mimg_create(const char *path, const char *format, uint64_t size,
			 const struct mimg_opt *opts, size_t nopts);

enum {
	/* Do not open the backing file named by "backing_file" (qemu-img
	 * create -u): SIZE must then be given, and formats that need the
	 * backing file's content to write the new image (VMDK's parent
	 * CID) refuse with -EINVAL. */
	MIMG_CREATE_UNSAFE_BACKING = 1u << 0,
};
/* Every MIMG_CREATE_* bit; mimg_create_flags refuses others (-EINVAL). */
#define MIMG_CREATE_ALL_FLAGS 0x1u

/* mimg_create with FLAGS (MIMG_CREATE_*); mimg_create is FLAGS = 0.
 * Errors as mimg_create, plus -EINVAL for unknown flags or a zero SIZE
 * with MIMG_CREATE_UNSAFE_BACKING.  Thread-safe for different PATHs. */
MIMG_API int mimg_create_flags(const char *path, const char *format,
			       uint64_t size, const struct mimg_opt *opts,
			       size_t nopts, unsigned flags);
/*
 * mimg_create for formats that encrypt: SECRET (see struct mimg_secret)
 * is the passphrase of the new image's first key slot.  For "luks" the
 * options are qemu-img's: "cipher-alg" (aes-128, aes-192, aes-256,
 * default aes-256), "cipher-mode" (xts default, cbc), "ivgen-alg"
 * (plain64 default, plain, essiv), "ivgen-hash-alg" (sha256 default for
 * essiv), "hash-alg" (sha256 default, sha1, sha512), "iter-time" (ms of
 * PBKDF2 work, default 2000) and "key-secret" (the caller's name for
 * the secret; accepted and ignored).  Other ciphers (serpent, twofish,
 * cast5) give -ENOTSUP naming the cipher.  Formats that do not encrypt
 * give -ENOTSUP when SECRET is not NULL; SECRET NULL is mimg_create.
 * Thread-safe for distinct paths.
 */
MIMG_API int mimg_create_secret(const char *path, const char *format,
				uint64_t size, const struct mimg_opt *opts,
				size_t nopts, const struct mimg_secret *secret);
/*
 * The bytes the LUKS header and key material of a new image take before
 * its encrypted data, for FORMAT "luks" (options "cipher-alg" etc., as
 * mimg_create_secret takes them) or "qcow2" (the same options named
 * "encrypt.cipher-alg" etc.; qcow2 stores them in whole clusters), into
 * *BYTES: what sizing a new encrypted image (measure) adds.  Options
 * other than the cipher's are ignored.  Errors: -EINVAL or -ENOTSUP
 * (with a message) for cipher options mimg_create_secret refuses,
 * -ENOTSUP for another format, -EINVAL for a NULL FORMAT or BYTES.
 * Thread-safe.
 */
MIMG_API int mimg_luks_header_size(const char *format,
				   const struct mimg_opt *opts, size_t nopts,
				   uint64_t *bytes);

/* Parse "a=b,c=d" (qemu-img's -o syntax; ",," is a literal comma) into a
 * newly allocated array.  Free with mimg_opts_free() (which cannot fail).
 * Returns the number of options or a negative errno: -EINVAL (an invalid
 * option list), -ENOMEM.  Both are thread-safe. */
MIMG_API int mimg_opts_parse(const char *text, struct mimg_opt **optsp);
MIMG_API void mimg_opts_free(struct mimg_opt *opts, size_t nopts);

/* Which options mimg_format_opt_info lists. */
enum {
	MIMG_OPTS_CREATE = 0,	   /* the format's create options */
	MIMG_OPTS_AMEND = 1u << 0, /* the options mimg_amend takes */
	/* With the options of the host file too (preallocation), as
	 * qemu-img lists them when it is given the file name. */
	MIMG_OPTS_FILE = 1u << 1,
};
#define MIMG_OPTS_ALL_FLAGS 0x3u

/* One option of a format, for listings.  Set SIZE to sizeof(struct
 * mimg_opt_info) before the call; fields may be added at the end. */
struct mimg_opt_info {
	size_t size;
	const char *name;
	const char *type; /* "str", "bool (on/off)", "num" or "size" */
	const char *help;
	const char *def; /* default as text, NULL when none */
};

/*
 * Fill INFO with option number INDEX (from 0, sorted by name as
 * qemu-img lists them) of FORMAT's create (or, with MIMG_OPTS_AMEND,
 * amend) options.  Strings are static.  Returns 0, -ENOENT past the last
 * option, -EINVAL for an unknown format, flags or a bad INFO->size,
 * -ENOTSUP when FORMAT cannot be created (or, with MIMG_OPTS_AMEND,
 * amended).  Thread-safe.
 */
MIMG_API int mimg_format_opt_info(const char *format, unsigned which,
				  size_t index, struct mimg_opt_info *info);

/*
 * The options an image of FORMAT created with OPTS and SIZE bytes gets,
 * as qemu-img's "Formatting 'FILE', fmt=FORMAT ..." line lists them
 * after "fmt=FORMAT ": in qemu-img's order, "name=value" separated by
 * spaces: each option given (the last of a repeated key) with its value
 * as given, sizes and numbers in decimal; size=SIZE; and the options
 * qemu-img lists with their default when not given.  *TEXTP is a new
 * string for the caller to free.  Only what qemu-img checks before it
 * prints the line is checked: option names and the syntax of sizes,
 * numbers and booleans (a bad choice of a string option is refused by
 * mimg_create, after the line).  Returns 0 or a negative errno: -EINVAL
 * (unknown format, an option FORMAT does not take or a size, number or
 * boolean that does not parse, with qemu-img's message), -ENOTSUP
 * (FORMAT's images cannot be created: qemu-img prints no line), -ENOMEM.
 * Thread-safe.
 */
MIMG_API int mimg_create_summary(const char *format, uint64_t size,
				 const struct mimg_opt *opts, size_t nopts,
				 char **textp);

/* True when the -o text TEXT asks for the option listing: it holds a
 * bare "help" or "?" (not "help=on"), as qemu-img decides.  Thread-safe,
 * cannot fail. */
MIMG_API bool mimg_opts_has_help(const char *text);

/* ---------------------------------------------------------------------- */
/* Changing an image's format options                                     */

enum {
	/* Allow changes that qemu-img amend --force allows (none of the
	 * changes mimg makes needs it today; accepted for callers). */
	MIMG_AMEND_FORCE = 1u << 0,
};
#define MIMG_AMEND_ALL_FLAGS 0x1u

/*
 * Change the format options of IMG (opened read-write, with its backing
 * chain) as OPTS ask, qemu-img amend's options: for qcow2 "compat"
 * (0.10/v2 or 1.1/v3), "lazy_refcounts", "refcount_bits", "size",
 * "backing_file", "backing_fmt", "data_file", "data_file_raw".  The list
 * for a format is mimg_format_opt_info(fmt, MIMG_OPTS_AMEND, ...).
 * PROGRESS (may be NULL) is called with OPAQUE as work proceeds.
 * Returns 0 or a negative errno: -EINVAL for an unknown option or a bad
 * value (messages as qemu-img's), -ENOTSUP for a change the format
 * cannot make ("Format driver 'vmdk' does not support option
 * amendment", a downgrade the image's features forbid, key-slot changes),
 * -EROFS for a read-only handle, I/O errors.  The image's metadata stays
 * consistent at every step (a crash may leak clusters).  Not thread-safe
 * with other calls on IMG.
 */
MIMG_API int mimg_amend(struct mimg *img, const struct mimg_opt *opts,
			size_t nopts, unsigned flags,
			void (*progress)(void *opaque, uint64_t done,
					 uint64_t total),
			void *opaque);

/*
 * mimg_amend with the secrets that key-slot options name by id: the LUKS
 * options of qcow2 (encrypt.new-secret, encrypt.old-secret) and of luks
 * (new-secret, old-secret), as qemu-img amend takes them with --object
 * secret.  SECRETS (NSECRETS entries, may be NULL) are read during the
 * call only.  With encrypt.state=active a key slot (encrypt.keyslot, or
 * the first free one) gets the new secret, the master key coming from
 * the old secret or from the secret IMG was opened with;
 * encrypt.state=inactive erases the slot named or every slot the old
 * secret opens (the last active slot only with MIMG_AMEND_FORCE).
 * Extra errors: -ENOENT (no secret with an id named), -EACCES (the old
 * secret opens no slot), -EBUSY (the slot is active, or the last one
 * would go), -ENOSPC (no free slot).  Not concurrent with any other call
 * on IMG, as mimg_amend.
 */
struct mimg_named_secret {
	const char *id;
	struct mimg_secret secret;
};
MIMG_API int mimg_amend_secrets(struct mimg *img, const struct mimg_opt *opts,
				size_t nopts, unsigned flags,
				const struct mimg_named_secret *secrets,
				size_t nsecrets,
				void (*progress)(void *opaque, uint64_t done,
						 uint64_t total),
				void *opaque);

/* Names of the available drivers, NULL-terminated, static.  Cannot fail;
 * thread-safe. */
MIMG_API const char *const *mimg_formats(void);

/* ---------------------------------------------------------------------- */
/* Properties                                                              */

/* The getters below cannot fail.  Each is thread-safe; the values are
 * fixed while IMG is open, except mimg_size, which changes with
 * mimg_truncate (and amend or snapshot apply) and returns the size before
 * or after a concurrent mimg_truncate, never a torn value. */
MIMG_API uint64_t mimg_size(const struct mimg *img);
MIMG_API const char *mimg_format(const struct mimg *img);
MIMG_API const char *mimg_filename(const struct mimg *img);
MIMG_API bool mimg_is_read_only(const struct mimg *img);
/* The name of the file holding IMG's data at guest offset OFF where
 * mimg_block_status gives a host offset there: an extent of a VMDK, the
 * external data file of a qcow2, else IMG's own file (mimg_filename).
 * For IMG itself, not its backing chain; valid while IMG is open.
 * Cannot fail; thread-safe. */
MIMG_API const char *mimg_host_filename(struct mimg *img, uint64_t off);
/* The opened backing image, or NULL.  Owned by IMG.  Cannot fail;
 * thread-safe. */
MIMG_API struct mimg *mimg_backing(const struct mimg *img);
/*
 * Record NAME as IMG's backing file and FMT as its format, in IMG's
 * metadata only (qemu-img rebase -u): no data is copied and NAME is
 * neither opened nor checked.  NAME NULL or "" removes the backing file
 * (FMT must then be NULL or ""); FMT NULL or "" records no format.  NAME
 * is stored as given (relative names resolve against IMG's directory when
 * it is next opened).  The backing chain already open under IMG
 * (mimg_backing) is unchanged until IMG is reopened.  The header is
 * rewritten in one write: a crash leaves the old or the new name.
 * Errors: -EROFS (IMG read-only), -ENOTSUP (the format cannot record a
 * backing file: raw, VMDK), -EINVAL (NAME or FMT too long, a json: NAME,
 * FMT without NAME), -ENOSPC (the names do not fit in the header
 * cluster), host I/O errors.  Not concurrent with any other call on IMG.
 */
MIMG_API int mimg_set_backing(struct mimg *img, const char *name,
			      const char *fmt);
/* Allocation granularity (cluster/grain size), or 0 when not meaningful.
 * Cannot fail; thread-safe. */
MIMG_API uint32_t mimg_cluster_size(const struct mimg *img);
/* True when freshly created images of this one's kind read as zeroes
 * everywhere and the image has no backing file (convert then skips
 * writing zeroes).  Cannot fail; thread-safe. */
MIMG_API bool mimg_has_zero_init(const struct mimg *img);
/* True when IMG is encrypted and was opened without its secret: it can
 * be described (mimg_info) but its reads and writes fail with -EACCES.
 * Cannot fail; thread-safe. */
MIMG_API bool mimg_needs_secret(const struct mimg *img);
/* True when mimg_discard() can free host space.  Cannot fail;
 * thread-safe. */
MIMG_API bool mimg_can_discard(const struct mimg *img);

/* ---------------------------------------------------------------------- */
/* I/O (thread-safe on one handle)                                         */

/* Flags of the I/O calls.  Each call refuses bits it does not take with
 * -EINVAL (MIMG_*_ALL_FLAGS), so that flags can be added. */
enum {
	/* mimg_pwrite_zeroes may deallocate (punch holes / unmap). */
	MIMG_ZERO_MAY_UNMAP = 1u << 0,
	/* Force unit access: the write (pwrite, zeroes, discard) is durable
	 * when the call returns, as if mimg_flush followed it (with
	 * MIMG_OPEN_NO_FLUSH: written, not durable). */
	MIMG_IO_FUA = 1u << 1,
};
#define MIMG_READ_ALL_FLAGS 0x0u  /* mimg_preadv, mimg_pread */
#define MIMG_WRITE_ALL_FLAGS 0x2u /* mimg_pwritev, mimg_pwrite, discard */
#define MIMG_ZERO_ALL_FLAGS 0x3u  /* mimg_pwrite_zeroes */
#define MIMG_FLUSH_ALL_FLAGS 0x0u /* mimg_flush */
/* mimg_block_status, mimg_block_status_chain */
#define MIMG_BLOCK_STATUS_ALL_FLAGS 0x0u

/* Read LEN bytes at OFF; ranges not allocated in this layer come from the
 * backing chain or read as zeroes.  Returns the number of bytes read
 * (short only at end of image: 0 at or past it) or a negative errno:
 * -EINVAL (FLAGS), -EACCES (encrypted image opened without its secret),
 * -EIO (corrupt metadata or data), -ENOMEM, host I/O errors.  FLAGS: none
 * yet (0).  Thread-safe: concurrent with every I/O call on IMG. */
MIMG_API ssize_t mimg_preadv(struct mimg *img, const struct iovec *iov,
			     int iovcnt, uint64_t off, unsigned flags);
/* mimg_preadv into one buffer: the same errors (Errors: as mimg_preadv)
 * and thread-safety. */
MIMG_API ssize_t mimg_pread(struct mimg *img, void *buf, size_t len,
			    uint64_t off, unsigned flags);

/* Write; the range must lie within the image.  Returns the byte count or
 * -EINVAL (FLAGS), -EROFS (read-only image), -ENOSPC (past the end of
 * the image, or the host is full), -EPERM (a header written into an
 * image only probed as raw), -EACCES (locked encrypted image), -EIO
 * (corrupt image), -ENOMEM, host I/O errors.  FLAGS: MIMG_IO_FUA.
 * Thread-safe: concurrent with every I/O call on IMG; overlapping
 * concurrent writes leave one of them, sector by sector. */
MIMG_API ssize_t mimg_pwritev(struct mimg *img, const struct iovec *iov,
			      int iovcnt, uint64_t off, unsigned flags);
/* mimg_pwritev from one buffer: the same errors (Errors: as mimg_pwritev)
 * and thread-safety. */
MIMG_API ssize_t mimg_pwrite(struct mimg *img, const void *buf, size_t len,
			     uint64_t off, unsigned flags);

/* Make LEN bytes at OFF read as zeroes, efficiently where the format
 * allows (falls back to writing zeroes).  FLAGS: MIMG_ZERO_MAY_UNMAP,
 * MIMG_IO_FUA.  Errors (-EINVAL, -EROFS, -ENOSPC, -EPERM, -EIO, host
 * I/O errors) and thread-safety as mimg_pwritev. */
MIMG_API int mimg_pwrite_zeroes(struct mimg *img, uint64_t off, uint64_t len,
				unsigned flags);

/* Hint that LEN bytes at OFF are no longer needed.  Afterwards the range
 * reads as zeroes or as the backing file's data, format-dependent (as
 * qemu's discard).  Formats without support return 0 and do nothing.
 * FLAGS: MIMG_IO_FUA.  Errors: as mimg_pwritev; its thread-safety too. */
MIMG_API int mimg_discard(struct mimg *img, uint64_t off, uint64_t len,
			  unsigned flags);

/* Make all completed writes durable (metadata included).  Returns 0 (also
 * on read-only images), -EINVAL (FLAGS) or host I/O errors (-EIO,
 * -ENOSPC).  FLAGS: none yet (0).  Thread-safe: concurrent with every I/O
 * call on IMG; covers the writes completed before it was called. */
MIMG_API int mimg_flush(struct mimg *img, unsigned flags);

enum mimg_prealloc {
	MIMG_PREALLOC_OFF = 0,
	MIMG_PREALLOC_METADATA,
	MIMG_PREALLOC_FALLOC,
	MIMG_PREALLOC_FULL,
};
/*
 * Change the virtual size.  Growing reads the new range as zeroes;
 * shrinking drops the tail (-ENOTSUP where the format cannot shrink).
 * Concurrent I/O: mimg_truncate may run beside the I/O calls on IMG
 * (mimg_preadv ... mimg_block_status_chain, mimg_flush) and mimg_size:
 * it waits for the calls in flight to finish and holds new ones back
 * until it is done, so each of them sees the old size and content or the
 * new ones, never a mix, and mimg_size returns the old size or the new
 * one.  A read racing with a shrink may therefore end short (at the new
 * end) and a write past the new end fails with -ENOSPC.  It is not
 * concurrent with the other calls on IMG (amend, snapshots, bitmaps,
 * mimg_info, mimg_check, mimg_convert, mimg_close).
 * Errors: -EROFS, -EFBIG (SIZE above INT64_MAX or the format's limit),
 * -ENOTSUP (the format cannot be resized, shrunk or preallocated that
 * way), -EINVAL (PREALLOC), -ENOSPC, -EIO (corrupt image), host I/O
 * errors.
 */
MIMG_API int mimg_truncate(struct mimg *img, uint64_t size,
			   enum mimg_prealloc prealloc);

/* ---------------------------------------------------------------------- */
/* Block status                                                            */

enum {
	MIMG_BS_DATA = 1u << 0,	     /* reads return data from a file */
	MIMG_BS_ZERO = 1u << 1,	     /* reads return zeroes */
	MIMG_BS_ALLOCATED = 1u << 2, /* defined by this layer (not backing) */
	MIMG_BS_OFFSET_VALID = 1u << 3, /* *host_off is the data's offset */
	MIMG_BS_COMPRESSED = 1u << 4,	/* stored compressed */
};

/*
 * Status of the range [OFF, OFF+LEN) in this layer only.  Sets *PNUM to the
 * length (>0, <=LEN) of the run starting at OFF that shares *STATUS.  A run
 * not ALLOCATED in this layer has its content defined by the backing chain
 * (or reads as zeroes when there is none: then ZERO is also set).
 * HOST_OFF may be NULL.  FLAGS: none yet (0).  Returns 0 or a negative
 * errno: -EINVAL (OFF at or past the end of IMG, LEN 0, FLAGS), -EIO
 * (corrupt metadata), host I/O errors.  Thread-safe: concurrent with
 * every I/O call on IMG.
 */
MIMG_API int mimg_block_status(struct mimg *img, uint64_t off, uint64_t len,
			       uint64_t *pnum, unsigned *status,
			       uint64_t *host_off, unsigned flags);

/*
 * Status of [OFF, OFF+LEN) through the whole backing chain: DATA or ZERO
 * describe what a read returns; ALLOCATED is set when some layer defines
 * the run.  *DEPTH (may be NULL) is the index of the defining layer
 * (0 = IMG; its image is mimg_backing() followed DEPTH times).  HOST_OFF
 * may be NULL; otherwise OFFSET_VALID is set when *HOST_OFF is the run's
 * offset in that layer's file (COMPRESSED: where the compressed data
 * starts), as mimg_block_status reports it for that layer.  A
 * run past the end of a shorter backing file reads as zeroes: ZERO only,
 * DEPTH that layer.  FLAGS: as mimg_block_status.
 * Errors: those of mimg_block_status for each layer.  Thread-safe, as
 * mimg_block_status.
 */
MIMG_API int mimg_block_status_chain(struct mimg *img, uint64_t off,
				     uint64_t len, uint64_t *pnum,
				     unsigned *status, int *depth,
				     uint64_t *host_off, unsigned flags);

/* Make a read-only IMG read the content of its internal snapshot NAME
 * (matched against the snapshot's id, then its name), as qemu-img
 * convert -l NAME does.  -ENOENT when there is no such snapshot,
 * -ENOTSUP for formats without snapshots, -EBUSY when IMG is writable,
 * -EIO for a damaged snapshot table, -EINVAL for a NULL NAME.
 * mimg_select_snapshot_by does the same for the snapshot whose id is ID
 * and whose name is NAME, either of them NULL (not both) to match on the
 * other alone, as convert -l snapshot.id=ID,snapshot.name=NAME does.  Not
 * concurrent with any other call on IMG. */
MIMG_API int mimg_select_snapshot(struct mimg *img, const char *name);
MIMG_API int mimg_select_snapshot_by(struct mimg *img, const char *id,
				     const char *name);

/*
 * Internal snapshots of a writable IMG (qcow2), as qemu-img snapshot
 * makes them; qemu reads and writes what these write and the reverse.
 * mimg_snapshot_create: take a snapshot of the current content named NAME
 * (cut to 255 bytes; names need not be unique) with the next free
 * numeric id and the current time.  mimg_snapshot_apply: make the
 * content (and the size) that of the snapshot whose id, else whose name,
 * is NAME; the snapshot stays.  mimg_snapshot_delete: delete the first
 * snapshot named NAME (names only, as qemu-img snapshot -d) and free what
 * only it used.  A snapshot's VM state is kept as it is.
 * A crash part-way leaves the image as it was or as it is after the call,
 * with leaked clusters at worst.  List them with mimg_info ("snapshots").
 * Errors: -EROFS (read-only), -ENOTSUP (the format has no internal
 * snapshots, or the image has an external data file), -ENOENT (no such
 * snapshot), -EFBIG (65536 snapshots already), -EINVAL (a refcount would
 * overflow: refcount_bits too small), -EIO (corrupt image), host I/O
 * errors.  Not concurrent with any other call on IMG.
 */
MIMG_API int mimg_snapshot_create(struct mimg *img, const char *name);
MIMG_API int mimg_snapshot_apply(struct mimg *img, const char *name);
MIMG_API int mimg_snapshot_delete(struct mimg *img, const char *name);

/*
 * Persistent dirty bitmaps (qcow2 version 3), as qemu-img bitmap handles
 * them.  A bitmap has a NAME (1 to 1023 bytes, unique in the image) and a
 * granularity: each bit covers that many bytes of the guest disk, and a
 * set bit means the range was written while the bitmap was enabled.
 * While IMG is open read-write, every write, zeroing and discard sets the
 * bits of its range in the enabled bitmaps; they are flagged in use on
 * disk until mimg_close stores them (a crash in between leaves them in
 * use: inconsistent, as qemu leaves them).  List them with mimg_info
 * ("format-specific" "data" "bitmaps": name, granularity, flags "auto"
 * when enabled and "in-use" when inconsistent).
 *
 * mimg_bitmap_add: a new, empty bitmap; GRANULARITY 0 picks qemu's
 * default (the cluster size, within 4 KiB..64 KiB), else a power of two
 * from 512 to 2 GiB; MIMG_BITMAP_DISABLED adds it disabled.
 * mimg_bitmap_remove: delete it.  mimg_bitmap_clear: make it all clean.
 * mimg_bitmap_enable: ENABLE true starts recording writes, false stops.
 * mimg_bitmap_merge: set in NAME every range that SRC_NAME of SRC (NULL:
 * IMG itself) has dirty; granularities may differ.
 * Each change is on disk when the call returns; a crash part-way leaves
 * the bitmaps as they were before the call, or leaked clusters at worst.
 * mimg_bitmap_status: *PNUM gets the length (> 0, <= LEN) of the run at
 * OFF that is all dirty or all clean, *DIRTY which; [OFF, OFF+LEN) must
 * lie within the image.  IMG may be read-only.
 * Messages are qemu-img's ("Dirty bitmap 'x' not found").
 * Errors: -EROFS (changes to a read-only IMG), -ENOENT (no such bitmap,
 * or the format has none), -EEXIST (add: the name is taken), -EINVAL
 * (empty or long name, bad granularity, bad range), -ENOTSUP (add: the
 * format or a qcow2 version 2 image cannot store bitmaps), -EBUSY (the
 * bitmap is inconsistent: only remove works on it), -ENOSPC (65535
 * bitmaps already), -EFBIG (the bitmap would take more than 512 MiB),
 * -ENOMEM, host I/O errors, -EINVAL for a damaged bitmap table.
 * Not concurrent with any other call on IMG (mimg_bitmap_status may run
 * beside other reads).
 */
enum {
	MIMG_BITMAP_DISABLED = 1u << 0, /* mimg_bitmap_add: not recording */
};
#define MIMG_BITMAP_ALL_FLAGS 0x1u
MIMG_API int mimg_bitmap_add(struct mimg *img, const char *name,
			     uint64_t granularity, unsigned flags);
MIMG_API int mimg_bitmap_remove(struct mimg *img, const char *name);
MIMG_API int mimg_bitmap_clear(struct mimg *img, const char *name);
MIMG_API int mimg_bitmap_enable(struct mimg *img, const char *name,
				bool enable);
MIMG_API int mimg_bitmap_merge(struct mimg *img, const char *name,
			       struct mimg *src, const char *src_name);
MIMG_API int mimg_bitmap_status(struct mimg *img, const char *name,
				uint64_t off, uint64_t len, uint64_t *pnum,
				bool *dirty);

/*
 * Drop everything IMG's own layer maps, keeping its file (and inode),
 * size, backing file and options, so that it reads what its backing file
 * holds (qemu-img commit does this to the committed overlay).  A qcow2
 * version 3 image with no snapshots, bitmaps or data file gets a fresh
 * image's layout and the file is cut; others have each cluster unmapped.
 * Errors: -EROFS, -ENOTSUP (the format cannot: raw, VMDK, ...), -EIO
 * (corrupt image), host I/O errors.  Not concurrent with any other call
 * on IMG.
 */
MIMG_API int mimg_make_empty(struct mimg *img);

/*
 * A digest of IMG's guest-visible content (through its backing chain)
 * that is the same for every format and conversion of the same content:
 * 64 KiB blocks, block i hashed into stream i mod 64, the checksum the
 * digest of the 64 stream digests in order (mimg(1) CHECKSUM states it
 * exactly; it is blkhash's construction).  Ranges block status reports
 * as zero are not read.  OPTS may be NULL (SHA-256, 4 threads).  MD
 * receives the digest (MIMG_CHECKSUM_MAX bytes room), *MDLEN its length.
 * Errors: -EINVAL (unknown algorithm, OPTS->size unknown), read errors
 * of IMG, -ENOMEM.  Reads IMG concurrently; IMG must not be written
 * meanwhile.
 */
#define MIMG_CHECKSUM_MAX 64
struct mimg_checksum_opts {
	size_t size;	       /* sizeof(struct mimg_checksum_opts) */
	const char *algorithm; /* a libcrypto digest name; NULL: sha256 */
	unsigned threads;      /* 0: 4; rounded down to a power of two <= 16 */
	/* Called from the hashing threads, serialized. */
	void (*progress)(void *opaque, uint64_t done, uint64_t total);
	void *opaque;
};
MIMG_API int mimg_checksum(struct mimg *img,
			   const struct mimg_checksum_opts *opts,
			   unsigned char *md, unsigned *mdlen);

/* ---------------------------------------------------------------------- */
/* Structured values (info, check reports)                                 */

enum mimg_value_type {
	MIMG_VALUE_NULL,
	MIMG_VALUE_BOOL,
	MIMG_VALUE_INT,	 /* signed 64-bit */
	MIMG_VALUE_UINT, /* unsigned 64-bit */
	MIMG_VALUE_STRING,
	MIMG_VALUE_OBJECT, /* ordered members, each with a key */
	MIMG_VALUE_ARRAY,
};

/* A JSON-like tree.  Keys are exactly qemu-img 7.2's JSON keys. */
struct mimg_value {
	enum mimg_value_type type;
	char *key; /* member name inside an object, else NULL */
	union {
		bool b;
		int64_t i;
		uint64_t u;
		char *s;
		struct {
			struct mimg_value *items;
			size_t n;
		} list; /* OBJECT and ARRAY */
	} v;
};

/* Member KEY of object OBJ, or NULL (also when OBJ is not an object);
 * mimg_value_free frees a tree (NULL is fine); these two cannot fail.
 * A tree is plain data its owner may change: its strings and arrays are
 * malloc'ed, and mimg_value_free frees them with free().
 * mimg_value_to_json returns NULL only when out of memory.  Values are
 * plain data: thread-safe as long as no thread frees a tree others
 * read. */
MIMG_API const struct mimg_value *mimg_value_get(const struct mimg_value *obj,
						 const char *key);
MIMG_API void mimg_value_free(struct mimg_value *v);
/* Render as JSON, indented by 4 spaces per level as qemu-img prints it.
 * Returns a malloc'ed string or NULL (-ENOMEM).  Thread-safe, as reading
 * the tree is. */
MIMG_API char *mimg_value_to_json(const struct mimg_value *v);

/*
 * Describe IMG (this layer) as qemu-img's ImageInfo: "virtual-size",
 * "filename", "format", "actual-size", "dirty-flag", and where they apply
 * "cluster-size", "backing-filename", "full-backing-filename",
 * "backing-filename-format", "snapshots", "format-specific" {type, data}.
 * The caller frees *INFOP with mimg_value_free().
 * Errors: -ENOMEM, -EIO (corrupt metadata), host I/O errors.  Reads
 * metadata only; not concurrent with calls that change IMG's metadata
 * (amend, snapshots, bitmaps, mimg_truncate), concurrent with I/O.
 */
MIMG_API int mimg_info(struct mimg *img, struct mimg_value **infop);

/* ---------------------------------------------------------------------- */
/* Consistency check                                                       */

enum {
	MIMG_CHECK_REPAIR_LEAKS = 1u << 0,
	MIMG_CHECK_REPAIR_ERRORS = 1u << 1,
};
#define MIMG_CHECK_ALL_FLAGS 0x3u

/* Filled by mimg_check.  The caller sets SIZE to sizeof(struct
 * mimg_check_result) before the call (e.g. "struct mimg_check_result r =
 * {.size = sizeof r};"): fields may be added at the end. */
struct mimg_check_result {
	size_t size;
	uint64_t corruptions; /* remaining after repair */
	uint64_t leaks;
	uint64_t check_errors; /* e.g. I/O errors while checking */
	uint64_t corruptions_fixed;
	uint64_t leaks_fixed;
	uint64_t image_end_offset; /* 0 when not applicable */
	uint64_t total_clusters;   /* allocation units, 0 if n/a */
	uint64_t allocated_clusters;
	uint64_t fragmented_clusters;
	uint64_t compressed_clusters;
	/* One line per problem found ("ERROR cluster 5 refcount=1 reference=0"),
	 * NULL-terminated, or NULL; freed by mimg_check_result_free. */
	char **messages;
	bool supported; /* false: the format has no check */
};

/* Check IMG's metadata; with repair FLAGS the image must be open read-write
 * (with MIMG_OPEN_CHECK).  Returns 0 when the check ran (whatever it found)
 * or a negative errno when it could not run or finish: -EINVAL (unknown
 * FLAGS, a RES->size this library does not know), -EROFS (repair on a
 * read-only IMG), -EIO (a repair of leaks only, MIMG_CHECK_REPAIR_LEAKS
 * alone, on a qcow2 image whose refcount structure must be rebuilt:
 * qemu-img's "Check failed"), -ENOMEM, host I/O errors.  RES is filled
 * (SIZE kept) in every case, after a failure with what the check found
 * before it (its messages), and freed with mimg_check_result_free.  Not
 * concurrent with any other call on IMG. */
MIMG_API int mimg_check(struct mimg *img, unsigned flags,
			struct mimg_check_result *res);
MIMG_API void mimg_check_result_free(struct mimg_check_result *res);

/*
 * RES as qemu-img's ImageCheck value tree (what qemu-img check
 * --output=json prints): "filename" and "format" (FILENAME and FORMAT, as
 * the caller names them), "check-errors", and the counters
 * "image-end-offset", "total-clusters", "allocated-clusters",
 * "fragmented-clusters", "compressed-clusters", "corruptions",
 * "corruptions-fixed", "leaks", "leaks-fixed" where they are not zero, in
 * qemu-img 7.2's order.  The caller frees *REPORTP with mimg_value_free().
 * Errors: -EINVAL (RES, FILENAME or FORMAT NULL), -ENOMEM.
 * Thread-safe (reads RES only).
 */
MIMG_API int mimg_check_report(const struct mimg_check_result *res,
			       const char *filename, const char *format,
			       struct mimg_value **reportp);

/* ---------------------------------------------------------------------- */
/* Convert                                                                 */

/* Options of mimg_convert.  The caller sets SIZE to sizeof(struct
 * mimg_convert_opts) (e.g. "struct mimg_convert_opts o = {.size = sizeof
 * o};") and leaves what it does not set zero: fields may be added at the
 * end. */
struct mimg_convert_opts {
	size_t size;
	/* Zero runs at least this long (bytes, aligned to it) found inside
	 * data are not written (qemu-img -S).  0 means the default, 4096;
	 * MIMG_CONVERT_NO_SPARSE writes every byte, zeroes included, so the
	 * target ends up fully allocated (qemu-img -S 0). */
	uint64_t sparse_size;
	bool compress;	      /* write compressed clusters (-c) */
	bool existing_target; /* -n: DST was not created for this */
	bool target_is_zero;  /* --target-is-zero: DST reads as zeroes */
	bool out_of_order;    /* -W: writes may complete out of order */
	int parallel;	      /* -m: requests in flight, 0 = default (one
				 * per online CPU, at least 8, at most 32) */
	/* Called with bytes done and total, from one thread at a time
	 * (not necessarily the caller's), at least once per MiB-sized
	 * step and once at the end. */
	void (*progress)(void *opaque, uint64_t done, uint64_t total);
	void *opaque;
	/* SRC's byte 0 goes to this offset of DST (several sources
	 * concatenated into one image, each after the one before). */
	uint64_t dst_offset;
	/* DST's backing file holds what SRC's backing chain holds (qemu-img
	 * convert -B): only what SRC's top layer defines is written, its
	 * zeroes as zeroes; the rest is left to DST's backing file. */
	bool target_has_backing;
	/* --salvage: 512-byte sectors that cannot be read become zeroes,
	 * each reported through WARN, instead of failing the conversion. */
	bool salvage;
	/* -C: move data with copy_file_range(2) where SRC and DST are raw
	 * images over host files; elsewhere the data is copied as usual. */
	bool copy_offload;
	/* Called with a message for every salvaged read error (may be
	 * NULL), from one thread at a time, with OPAQUE. */
	void (*warn)(void *opaque, const char *msg);
	/* Compression level for compressed output, 0 = the format's default
	 * (qemu-img's: deflate 6, zstd 3).  Deflate (qcow2 zlib, VMDK) takes
	 * 1-12 (above 9 only when built with libdeflate, else 9; qcow2's
	 * 4 KiB-window deflate always caps at 9), zstd 1-22; higher is
	 * smaller and slower.  Other values give -EINVAL. */
	int compression_level;
	/* -r: read SRC's data at most this many bytes a second on average
	 * (the first window goes at once), 0 = no limit.  Ranges that need
	 * no read (zeroes, holes) do not count.  Added in 0.1: a caller
	 * built before sets SIZE to offsetof(..., rate_limit). */
	uint64_t rate_limit;
};
#define MIMG_CONVERT_DEFAULT_SPARSE 4096
#define MIMG_CONVERT_NO_SPARSE UINT64_MAX

/* Copy the content of SRC (through its backing chain) into DST, which must
 * be open read-write and at least as large.  Work is proportional to the
 * allocated data; unallocated and zero ranges are skipped on targets that
 * read as zeroes.  Peak memory is bounded (a few MiB per parallel request).
 * OPTS may be NULL for defaults.
 * Errors: -EINVAL (OPTS->size, sparse size or compression level), -EROFS
 * (DST read-only), -ENOSPC (DST too small, or the host is full), -EBUSY
 * (DST is a file SRC reads), -ENOMEM, and the read errors of SRC and
 * write errors of DST.  Reads SRC and writes DST from several threads;
 * neither may be resized, closed or changed otherwise meanwhile (other
 * reads of SRC may run beside it). */
MIMG_API int mimg_convert(struct mimg *src, struct mimg *dst,
			  const struct mimg_convert_opts *opts);

/*
 * Whether writing PATH would change what IMG reads: 0 when PATH does not
 * exist or is none of the files IMG reads; -EBUSY, with a message naming
 * the relation ("Refusing to write to 'PATH': it is the source image
 * ..."), when it is IMG's file, a file of its backing chain, or another
 * file a layer reads (a VMDK extent, a qcow2 data file); the files are
 * compared by identity (device and inode), not by name.  For callers
 * about to create (truncate) PATH as a target; mimg_convert makes the
 * same check on DST's files (-EBUSY).
 * Errors: -EINVAL (IMG or PATH NULL), -EBUSY.  Thread-safe.
 */
MIMG_API int mimg_reads_file(const struct mimg *img, const char *path);

/*
 * Write an OVF 1.0 appliance (OVA) at PATH (created or truncated) holding
 * the N (1 to 15; with controller=ide 1 to 4) images SRCS as
 * streamOptimized VMDK disks: a tar of NAME.ovf, NAME.mf (SHA256 of the
 * others) and NAME-disk1.vmdk ..., in that order, NAME being the
 * virtual machine's name with characters other than [A-Za-z0-9._-]
 * replaced by '_'.  The descriptor has References (with sizes), a
 * DiskSection (capacity, populatedSize), a NetworkSection and a
 * VirtualSystem whose VirtualHardwareSection (vmx-07) has the CPUs,
 * memory, one controller with the disks and an E1000 adapter.  OPTS:
 * "name" (default PATH's file name without .ova), "cpus" (default 1),
 * "memory" (whole MiB, default 1G), "controller" (scsi: LSI Logic, the
 * default; ide), "network" (default "VM Network"; empty: no adapter and
 * no NetworkSection).  Each disk is first converted (COPTS as for
 * mimg_convert, may be NULL; progress covers all disks) into an
 * anonymous file in PATH's directory, which then needs room for the
 * compressed disks twice.  On failure PATH may hold a partial file,
 * which the caller removes.  Errors: those of mimg_convert and
 * mimg_create, -EINVAL for options or a disk count out of range.
 * Thread-safety: the sources are read as mimg_convert reads them.
 */
/*
 * Write the content of the N images SRCS, one after the other, as a raw
 * image compressed with CODEC ("xz", "zstd" or "gzip") into PATH
 * (created or truncated): one xz stream, zstd frame (with a checksum)
 * or gzip member that declares the size it unpacks to, so that readers
 * can stream it.  xz and zstd compress with a thread per online CPU (xz
 * then writes independent blocks, which decoders can also share out).
 * From COPTS (may be NULL) only compression_level (xz and gzip 1-9,
 * zstd 1-19, 0 the codec's default) and progress are used.  On failure
 * PATH may hold a partial file, which the caller removes.
 * Errors: -EINVAL (codec or level), those of reading SRCS, host errors.
 * Thread-safety: SRCS are read by the calling thread only.
 */
MIMG_API int mimg_convert_packed(struct mimg *const *srcs, size_t n,
				 const char *path, const char *codec,
				 const struct mimg_convert_opts *copts);

MIMG_API int mimg_ova_write(const char *path, struct mimg *const *srcs,
			    size_t n, const struct mimg_opt *opts, size_t nopts,
			    const struct mimg_convert_opts *copts);

/* ---------------------------------------------------------------------- */
/* Sizes                                                                   */

/* Parse a size with an optional suffix: b (bytes), k/K, M, G, T, P, E
 * (powers of 1024; no suffix means bytes; fractional values like "1.5G"
 * are accepted as qemu-img accepts them).  Returns 0 or -EINVAL/-ERANGE.
 * Thread-safe. */
MIMG_API int mimg_parse_size(const char *text, uint64_t *sizep);

#ifdef __cplusplus
}
#endif
#endif /* MIMG_H */
