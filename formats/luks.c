/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * luks: a raw disk encrypted with LUKS1, as qemu-img's "luks" format and
 * cryptsetup make it.  The file is the LUKS header and key material, then
 * the payload: the guest's sectors, each encrypted on its own with the
 * master key (sector numbers count from the payload's start).
 *
 * The master key comes from the secret given at open (mimg_open_secret).
 * Without one the header is still parsed, so mimg_info works, but data
 * I/O fails with -EACCES, as qemu-img info works without key-secret.
 * Data I/O goes through a bounce buffer per call; partial sectors are
 * read, decrypted, patched and written back under a lock, so concurrent
 * unaligned writes to one sector do not lose each other's bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "crypto/luks1.h"
#include "error.h"
#include "image.h"
#include "iov.h"
#include "value.h"

#define SECTOR MIMG_CRYPTO_SECTOR
#define CHUNK (1u << 20) /* most bounce buffer per step of a request */

extern const struct mimg_driver mimg_luks_driver;

struct luks_state {
	struct luks1_header hdr;
	uint64_t payload; /* bytes */
	bool unlocked;
	struct mimg_sector_cipher cipher;
	pthread_mutex_t rmw_lock;
	bool lock_ready;
};

static int luks_probe(const uint8_t *buf, size_t len, const char *filename)
{
	static const uint8_t magic[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
	(void)filename;
	if (len >= 8 && memcmp(buf, magic, sizeof(magic)) == 0 && buf[6] == 0 &&
	    buf[7] == 1)
		return 100;
	return 0;
}

static int luks_unlock(struct mimg *img, struct luks_state *s)
{
	const struct mimg_secret *sec = img->secret;
	uint8_t mk[MIMG_CRYPTO_MAX_KEY];
	int r = luks1_unlock(&s->hdr, img->file, 0, img->filename, sec->data,
			     sec->len, mk);
	if (r == 0)
		r = mimg_sector_cipher_init(&s->cipher, s->hdr.mode,
					    s->hdr.ivgen, s->hdr.ivhash, mk,
					    s->hdr.key_bytes);
	explicit_bzero(mk, sizeof(mk));
	if (r == 0)
		s->unlocked = true;
	return r;
}

static int luks_open(struct mimg *img)
{
	struct luks_state *s = img->priv;
	uint8_t buf[LUKS1_HEADER_SIZE];
	uint64_t fsize, max_iters = MIMG_MAX_PBKDF2_ITERS_DEFAULT;
	int r;

	if (img->secret)
		max_iters = img->secret->max_pbkdf2_iters;
	if ((r = mimg_file_size(img->file, &fsize)) < 0 ||
	    (r = mimg_file_pread_exact(img->file, buf, sizeof(buf), 0,
				       "LUKS header")) < 0)
		return r;
	if ((r = luks1_parse(buf, fsize, max_iters, img->filename, &s->hdr)) <
	    0)
		return r;
	s->payload = (uint64_t)s->hdr.payload_offset * SECTOR;
	img->size = align_down_u64(fsize - s->payload, SECTOR);
	if (pthread_mutex_init(&s->rmw_lock, NULL) != 0)
		return mimg_err(-ENOMEM, "out of memory");
	s->lock_ready = true;
	img->locked = !img->secret;
	return img->secret ? luks_unlock(img, s) : 0;
}

static void luks_close(struct mimg *img)
{
	struct luks_state *s = img->priv;
	if (s->lock_ready)
		pthread_mutex_destroy(&s->rmw_lock);
	if (s->unlocked)
		mimg_sector_cipher_wipe(&s->cipher);
	explicit_bzero(s, sizeof(*s));
}

static int need_key(struct mimg *img)
{
	struct luks_state *s = img->priv;
	if (s->unlocked)
		return 0;
	return mimg_err(-EACCES,
			"%s: Parameter 'key-secret' is required for "
			"cipher (no secret was given to open this encrypted "
			"image)",
			img->filename);
}

/* Read and decrypt whole sectors [start, start+len) of the guest. */
static int read_sectors(struct mimg *img, uint8_t *buf, uint64_t start,
			size_t len)
{
	struct luks_state *s = img->priv;
	int r = mimg_file_pread(img->file, buf, len, s->payload + start);
	if (r < 0)
		return r;
	return mimg_sector_crypt(&s->cipher, false, start / SECTOR, buf, len);
}

static int write_sectors(struct mimg *img, uint8_t *buf, uint64_t start,
			 size_t len)
{
	struct luks_state *s = img->priv;
	int r = mimg_sector_crypt(&s->cipher, true, start / SECTOR, buf, len);
	if (r < 0)
		return r;
	return mimg_file_pwrite(img->file, buf, len, s->payload + start);
}

/* A bounce buffer for a request of LEN bytes: whole sectors, room for a
 * partial sector at each end, at most CHUNK. */
static size_t bounce_size(size_t len)
{
	return (size_t)min_u64(CHUNK, align_down_u64(len, SECTOR) + 2 * SECTOR);
}

/* One step of a request: N bytes at guest offset POS, DONE bytes into
 * the request's IOV, through the bounce buffer BUF. */
typedef int (*luks_step_fn)(struct mimg *img, const struct iovec *iov,
			    int iovcnt, size_t done, uint64_t pos, size_t n,
			    uint8_t *buf);

/* Run a request of LEN bytes at OFF in steps of at most one bounce
 * buffer, which is wiped after (it held plaintext). */
static int luks_request(struct mimg *img, const struct iovec *iov, int iovcnt,
			uint64_t off, size_t len, luks_step_fn step)
{
	size_t done = 0, bsize = bounce_size(len);
	uint8_t *buf;
	int r;

	if ((r = need_key(img)) < 0)
		return r;
	if (!(buf = malloc(bsize)))
		return mimg_err(-ENOMEM, "out of memory");
	while (done < len && r == 0) {
		uint64_t pos = off + done;
		size_t skip = (size_t)(pos % SECTOR);
		size_t n = min_u64(len - done, bsize - skip);
		r = step(img, iov, iovcnt, done, pos, n, buf);
		done += n;
	}
	explicit_bzero(buf, bsize);
	free(buf);
	return r;
}

/* Read the sectors that cover one step and copy out its bytes. */
static int read_step(struct mimg *img, const struct iovec *iov, int iovcnt,
		     size_t done, uint64_t pos, size_t n, uint8_t *buf)
{
	uint64_t start = align_down_u64(pos, SECTOR);
	size_t skip = (size_t)(pos - start);
	size_t span = (size_t)div_round_up_u64(skip + n, SECTOR) * SECTOR;
	int r = read_sectors(img, buf, start, span);
	if (r == 0)
		iov_from_buf(iov, iovcnt, done, buf + skip, n);
	return r;
}

static int luks_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		       uint64_t off, size_t len)
{
	return luks_request(img, iov, iovcnt, off, len, read_step);
}

/* Write the part of one step that covers whole or partial sectors. */
static int write_step(struct mimg *img, const struct iovec *iov, int iovcnt,
		      size_t done, uint64_t pos, size_t n, uint8_t *buf)
{
	struct luks_state *s = img->priv;
	uint64_t start = align_down_u64(pos, SECTOR);
	size_t skip = (size_t)(pos - start);
	size_t span = (size_t)div_round_up_u64(skip + n, SECTOR) * SECTOR;
	bool partial = skip != 0 || (skip + n) % SECTOR != 0;
	int r = 0;

	if (!partial) {
		iov_to_buf(iov, iovcnt, done, buf, n);
		return write_sectors(img, buf, start, span);
	}
	pthread_mutex_lock(&s->rmw_lock);
	if (skip != 0)
		r = read_sectors(img, buf, start, SECTOR);
	if (r == 0 && (skip + n) % SECTOR != 0 && (span > SECTOR || skip == 0))
		r = read_sectors(img, buf + span - SECTOR,
				 start + span - SECTOR, SECTOR);
	if (r == 0) {
		iov_to_buf(iov, iovcnt, done, buf + skip, n);
		r = write_sectors(img, buf, start, span);
	}
	pthread_mutex_unlock(&s->rmw_lock);
	return r;
}

static int luks_pwritev(struct mimg *img, const struct iovec *iov, int iovcnt,
			uint64_t off, size_t len)
{
	return luks_request(img, iov, iovcnt, off, len, write_step);
}

static int luks_block_status(struct mimg *img, uint64_t off, uint64_t len,
			     uint64_t *pnum, unsigned *status,
			     uint64_t *host_off)
{
	/* Every sector is ciphertext: even a hole in the host file decrypts
	 * to noise, so all of it is data.  No host offset: the bytes there
	 * are not the guest's (qemu-img map prints none either). */
	(void)img;
	(void)off;
	*pnum = len;
	*status = MIMG_BS_DATA | MIMG_BS_ALLOCATED;
	if (host_off)
		*host_off = 0;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Creation                                                                */

/* qemu-img 7.2's luks create options, its help texts, sorted by name. */
enum {
	LO_CIPHER_ALG,
	LO_CIPHER_MODE,
	LO_HASH_ALG,
	LO_ITER_TIME,
	LO_IVGEN_ALG,
	LO_IVGEN_HASH_ALG,
	LO_KEY_SECRET,
	LO_SIZE,
	LO_COUNT
};
static const struct mimg_optdesc luks_create_opts[] = {
	{"cipher-alg", MIMG_OPTK_STRING, "Name of encryption cipher algorithm",
	 NULL, NULL, NULL, 0},
	{"cipher-mode", MIMG_OPTK_STRING, "Name of encryption cipher mode",
	 NULL, NULL, NULL, 0},
	{"hash-alg", MIMG_OPTK_STRING, "Name of encryption hash algorithm",
	 NULL, NULL, NULL, 0},
	MIMG_OPT_LUKS_ITER_TIME("iter-time"),
	{"ivgen-alg", MIMG_OPTK_STRING, "Name of IV generator algorithm", NULL,
	 NULL, NULL, 0},
	{"ivgen-hash-alg", MIMG_OPTK_STRING,
	 "Name of IV generator hash algorithm", NULL, NULL, NULL, 0},
	{"key-secret", MIMG_OPTK_STRING,
	 "ID of the secret that provides the "
	 "keyslot passphrase",
	 NULL, NULL, NULL, 0},
	MIMG_OPT_SIZE,
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};
MIMG_OPTS_INDEXED(luks_create_opts, LO_COUNT);

/* The key-slot options qemu-img amend takes for luks. */
static const struct mimg_optdesc luks_amend_opts[] = {
	MIMG_OPT_LUKS_ITER_TIME("iter-time"),
	MIMG_OPT_LUKS_KEYSLOT("keyslot"),
	MIMG_OPT_LUKS_NEW_SECRET("new-secret"),
	MIMG_OPT_LUKS_OLD_SECRET("old-secret"),
	MIMG_OPT_LUKS_STATE("state"),
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};

static int parse_create_opts(const char *path, const struct mimg_opt *opts,
			     size_t nopts, struct luks1_create_params *p)
{
	struct mimg_optval vals[LO_COUNT];
	int r = mimg__opts_validate(luks_create_opts, NULL, opts, nopts, vals);
	if (r < 0)
		return r;
	return luks1_create_opts(path, opts, nopts, "", p);
}

static int luks_create_secret(const char *path, uint64_t size,
			      const struct mimg_opt *opts, size_t nopts,
			      struct mimg *backing,
			      const struct mimg_secret *secret)
{
	struct luks1_create_params p;
	struct luks1_header h;
	uint8_t mk[MIMG_CRYPTO_MAX_KEY];
	struct mimg_file *f;
	uint64_t total = 0;
	int r;

	if ((r = parse_create_opts(path, opts, nopts, &p)) < 0)
		return r;
	p.max_iters = secret->max_pbkdf2_iters;
	if ((r = mimg_file_open(&f, path, MIMG_FILE_RDWR | MIMG_FILE_CREATE)) <
	    0)
		return r;
	r = luks1_prepare(&p, &h);
	if (r == 0 &&
	    !ck_add_u64((uint64_t)h.payload_offset * SECTOR, size, &total))
		r = mimg_err(-EFBIG, "%s: image size %llu is too large", path,
			     (unsigned long long)size);
	if (r == 0)
		r = mimg_file_truncate(f, total);
	if (r == 0)
		r = luks1_format(f, 0, &p, secret->data, secret->len, &h, mk);
	explicit_bzero(mk, sizeof(mk));
	explicit_bzero(&h, sizeof(h));
	int rc = mimg_file_close(f);
	return r < 0 ? r : rc;
}

static int luks_create(const char *path, uint64_t size,
		       const struct mimg_opt *opts, size_t nopts,
		       struct mimg *backing)
{
	(void)size;
	(void)opts;
	(void)nopts;
	(void)backing;
	return mimg_err(-EINVAL,
			"%s: Parameter 'key-secret' is required for "
			"cipher",
			path);
}

/* ---------------------------------------------------------------------- */
/* Info                                                                    */

/* Key-slot changes (qemu-img amend -f luks -o state=...,new-secret=...). */
static int luks_amend(struct mimg *img, const struct mimg_optval *v,
		      unsigned flags,
		      void (*progress)(void *opaque, uint64_t done,
				       uint64_t total),
		      void *opaque)
{
	struct mimg_keyslot_change c = {
		.iter_time = &v[0],
		.keyslot = &v[1],
		.new_secret = &v[2],
		.old_secret = &v[3],
		.state = &v[4],
		.force = (flags & MIMG_AMEND_FORCE) != 0,
	};
	(void)progress;
	(void)opaque;
	return mimg__keyslot_amend(img, &c, luks_keyslot_change);
}

/* Members in the order qemu-img 7.2 prints them. */
static int luks_info(struct mimg *img, struct mimg_value *info)
{
	struct luks_state *s = img->priv;
	struct mimg_value *fs, *data;
	bool ok = mimg_value_add_bool(info, "encrypted", true) &&
		  (fs = mimg_value_add(info, "format-specific",
				       MIMG_VALUE_OBJECT)) &&
		  mimg_value_add_str(fs, "type", "luks") &&
		  (data = mimg_value_add(fs, "data", MIMG_VALUE_OBJECT)) &&
		  luks1_info(data, &s->hdr, NULL);
	return ok ? 0 : mimg_err(-ENOMEM, "out of memory");
}

int luks_keyslot_change(struct mimg *img, const struct luks1_keyslot_change *c,
			int *slotp)
{
	struct luks_state *s = img->priv;
	if (img->drv != &mimg_luks_driver)
		return mimg_err(-EINVAL, "%s: not a LUKS image", img->filename);
	if (img->read_only)
		return mimg_err(-EROFS, "%s: the image is open read-only",
				img->filename);
	return luks1_keyslot_change(img->file, 0, img->filename, &s->hdr,
				    s->unlocked ? s->cipher.key : NULL, c,
				    slotp);
}

const struct mimg_driver mimg_luks_driver = {
	.name = "luks",
	.priv_size = sizeof(struct luks_state),
	.probe = luks_probe,
	.open = luks_open,
	.close = luks_close,
	.create = luks_create,
	.create_secret = luks_create_secret,
	.create_opts = luks_create_opts,
	.amend_opts = luks_amend_opts,
	.amend = luks_amend,
	.preadv = luks_preadv,
	.pwritev = luks_pwritev,
	.block_status = luks_block_status,
	.info = luks_info,
};
