/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Encrypted qcow2 images.  crypt_method 2 is LUKS: a LUKS1 header and its
 * key material live in clusters of the image named by the full disk
 * encryption header extension (offset, length), and every 512-byte
 * sector of a data cluster is encrypted with the master key, its IV made
 * from the sector's host offset in the file (so data moved to another
 * cluster is encrypted again there).  crypt_method 1 is the legacy
 * AES-128-CBC: the passphrase itself (zero-padded to 16 bytes) is the
 * key and the IV is the plain64 guest sector number; it is only read,
 * so that old images can be converted out.
 *
 * Compressed clusters are never encrypted (qemu writes none to encrypted
 * images and reads them as they are).  Guest I/O on an encrypted image
 * is done in whole sectors: qcow2_preadv and qcow2_pwritev turn
 * unaligned requests into whole sectors, read-modify-write under
 * crypt_rmw for the partial ones.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "crypto/luks1.h"
#include "endian.h"
#include "error.h"
#include "iov.h"
#include "qcow2.h"
#include "value.h"

#define SECTOR MIMG_CRYPTO_SECTOR
/* The largest LUKS1 area qemu makes is about 2 MiB (AES-256-XTS). */
#define MAX_CRYPT_HDR (64u << 20)
#define AES_LEGACY_KEY 16

extern const struct mimg_driver mimg_qcow2_driver;

int qcow2_crypt_ext(struct qcow2 *s, const uint8_t *p, uint32_t len)
{
	if (len != 16)
		return mimg_err(-EINVAL,
				"%s: qcow2: encryption header "
				"extension is %u bytes (expected 16)",
				qcow2_path(s), len);
	s->crypt_hdr_off = ld_be64(p);
	s->crypt_hdr_len = ld_be64(p + 8);
	s->has_crypt_ext = true;
	return 0;
}

/* Validate where the LUKS header lives and parse it. */
static int read_luks_header(struct qcow2 *s, uint64_t max_iters)
{
	const char *path = qcow2_path(s);
	uint8_t buf[LUKS1_HEADER_SIZE];
	uint64_t fsize;
	int r;

	if (!s->has_crypt_ext)
		return mimg_err(-EINVAL,
				"%s: qcow2: LUKS encryption "
				"(crypt_method 2) without the encryption "
				"header extension",
				path);
	if ((r = mimg_file_size(s->file, &fsize)) < 0)
		return r;
	if (s->crypt_hdr_off == 0 ||
	    !is_aligned_u64(s->crypt_hdr_off, s->cluster_size))
		return mimg_err(-EINVAL,
				"%s: qcow2: encryption header offset "
				"0x%llx is not a cluster boundary after the "
				"header",
				path, (unsigned long long)s->crypt_hdr_off);
	if (s->crypt_hdr_len < LUKS1_HEADER_SIZE ||
	    s->crypt_hdr_len > MAX_CRYPT_HDR)
		return mimg_err(-EINVAL,
				"%s: qcow2: encryption header length "
				"%llu is out of range (%u to %u bytes)",
				path, (unsigned long long)s->crypt_hdr_len,
				LUKS1_HEADER_SIZE, MAX_CRYPT_HDR);
	if (!ck_range_within(s->crypt_hdr_off, s->crypt_hdr_len, fsize))
		return mimg_err(-EINVAL,
				"%s: qcow2: encryption header at "
				"0x%llx (%llu bytes) lies past the end of the "
				"file (%llu bytes)",
				path, (unsigned long long)s->crypt_hdr_off,
				(unsigned long long)s->crypt_hdr_len,
				(unsigned long long)fsize);
	if ((r = mimg_file_pread_exact(s->file, buf, sizeof(buf),
				       s->crypt_hdr_off, "LUKS header")) < 0)
		return r;
	if (!(s->luks = calloc(1, sizeof(*s->luks))))
		return mimg_err(-ENOMEM, "out of memory");
	/* Everything of the header must lie inside the extension's area:
	 * its length is the "file" the LUKS layer checks against. */
	r = luks1_parse(buf, s->crypt_hdr_len, max_iters, path, s->luks);
	if (r < 0)
		return mimg_err_prefix(r,
				       "%s: qcow2: encryption header at "
				       "0x%llx (%llu bytes)",
				       path,
				       (unsigned long long)s->crypt_hdr_off,
				       (unsigned long long)s->crypt_hdr_len);
	return 0;
}

static int unlock_luks(struct qcow2 *s, const struct mimg_secret *sec)
{
	const struct luks1_header *h = s->luks;
	uint8_t mk[MIMG_CRYPTO_MAX_KEY];
	int r = luks1_unlock(h, s->file, s->crypt_hdr_off, qcow2_path(s),
			     sec->data, sec->len, mk);
	if (r == 0)
		r = mimg_sector_cipher_init(&s->cipher, h->mode, h->ivgen,
					    h->ivhash, mk, h->key_bytes);
	explicit_bzero(mk, sizeof(mk));
	return r;
}

/* qemu's legacy key: the passphrase's bytes, cut or zero-padded to 16. */
static int unlock_aes(struct qcow2 *s, const struct mimg_secret *sec)
{
	uint8_t key[AES_LEGACY_KEY] = {0};
	memcpy(key, sec->data, min_u64(sec->len, sizeof(key)));
	int r = mimg_sector_cipher_init(&s->cipher, MIMG_CIPHER_CBC,
					MIMG_IVGEN_PLAIN64, MIMG_HASH_NONE, key,
					sizeof(key));
	explicit_bzero(key, sizeof(key));
	return r;
}

int qcow2_crypt_open(struct qcow2 *s)
{
	struct mimg *img = s->img;
	const struct mimg_secret *sec = img->secret;
	const char *path = qcow2_path(s);
	int r;

	if (s->has_crypt_ext && s->crypt_method != 2)
		return mimg_err(-EINVAL,
				"%s: qcow2: encryption header "
				"extension without LUKS encryption "
				"(crypt_method %u)",
				path, s->crypt_method);
	if (s->crypt_method == 0)
		return 0;
	if (img->size % SECTOR)
		return mimg_err(-EINVAL,
				"%s: qcow2: encrypted image size %llu "
				"is not a multiple of %u",
				path, (unsigned long long)img->size, SECTOR);
	if (s->crypt_method == 1 && !img->read_only)
		return mimg_err(-EROFS,
				"%s: qcow2: AES-CBC encrypted images "
				"(crypt_method 1) can only be read; convert "
				"them to LUKS encryption",
				path);
	if (s->crypt_method == 2 &&
	    (r = read_luks_header(s, sec ? sec->max_pbkdf2_iters
					 : MIMG_MAX_PBKDF2_ITERS_DEFAULT)) < 0)
		return r;
	if (pthread_mutex_init(&s->crypt_rmw, NULL) != 0)
		return mimg_err(-ENOMEM, "mutex init failed");
	s->crypt_rmw_init = true;
	img->locked = !sec;
	if (!sec)
		return 0;
	r = s->crypt_method == 2 ? unlock_luks(s, sec) : unlock_aes(s, sec);
	if (r == 0)
		s->crypt_ready = true;
	return r;
}

void qcow2_crypt_close(struct qcow2 *s)
{
	if (s->crypt_ready)
		mimg_sector_cipher_wipe(&s->cipher);
	if (s->crypt_rmw_init)
		pthread_mutex_destroy(&s->crypt_rmw);
	if (s->luks) {
		explicit_bzero(s->luks, sizeof(*s->luks));
		free(s->luks);
	}
	s->luks = NULL;
	s->crypt_ready = false;
	s->crypt_rmw_init = false;
}

int qcow2_crypt_need_key(struct qcow2 *s)
{
	if (s->crypt_ready)
		return 0;
	return mimg_err(-EACCES,
			"%s: Parameter 'encrypt.key-secret' is "
			"required for cipher (no secret was given to open "
			"this encrypted image)",
			qcow2_path(s));
}

int qcow2_crypt_unaligned(struct qcow2 *s, uint64_t off, size_t len)
{
	if (!s->crypt_method)
		return 0;
	int r = qcow2_crypt_need_key(s);
	if (r < 0)
		return r;
	return (off | len) % MIMG_CRYPTO_SECTOR != 0;
}

/* qcow2_data_io on an encrypted image, a bounded piece at a time. */
static int crypt_io(struct qcow2 *s, bool write, const struct iovec *iov,
		    int iovcnt, size_t skip, size_t len, uint64_t host,
		    uint64_t guest)
{
	size_t bsize = (size_t)min_u64(len, CRYPT_CHUNK), done = 0;
	uint8_t *buf = malloc(bsize);
	int r = 0;
	if (!buf)
		return mimg_err(-ENOMEM, "out of memory");
	while (done < len && r == 0) {
		size_t n = (size_t)min_u64(len - done, bsize);
		uint64_t at = host + done;
		if (write) {
			iov_to_buf(iov, iovcnt, skip + done, buf, n);
			r = qcow2_crypt(s, true, at, guest + done, buf, n);
			if (r == 0)
				r = mimg_file_pwrite(s->data, buf, n, at);
		} else {
			/* Ciphertext cut short by the file's end would
			 * decrypt to noise: an error instead of the zeroes a
			 * hole reads as. */
			r = mimg_file_pread_exact(s->data, buf, n, at,
						  "qcow2 encrypted data "
						  "cluster");
			if (r == 0)
				r = qcow2_crypt(s, false, at, guest + done, buf,
						n);
			if (r == 0)
				iov_from_buf(iov, iovcnt, skip + done, buf, n);
		}
		done += n;
	}
	free(buf);
	return r;
}

int qcow2_data_io(struct qcow2 *s, bool write, const struct iovec *iov,
		  int iovcnt, size_t skip, size_t len, uint64_t host,
		  uint64_t guest)
{
	struct iovec st[16], *v;
	if (s->crypt_method)
		return crypt_io(s, write, iov, iovcnt, skip, len, host, guest);
	/* All of IOV: passed on as it is, as the last call (a jump). */
	if (skip == 0 && iov_total(iov, iovcnt) == len)
		return write ? mimg_file_pwritev(s->data, iov, iovcnt, host)
			     : mimg_file_preadv(s->data, iov, iovcnt, host);
	int n = iov_slice(iov, iovcnt, skip, len, st, 16, &v);
	if (n < 0)
		return mimg_err(n, "out of memory");
	int r = write ? mimg_file_pwritev(s->data, v, n, host)
		      : mimg_file_preadv(s->data, v, n, host);
	iov_slice_free(v, st);
	return r;
}

int qcow2_crypt(struct qcow2 *s, bool encrypt, uint64_t host, uint64_t guest,
		uint8_t *buf, size_t len)
{
	/* LUKS takes the IV from where the sector is stored, the legacy
	 * format from where the guest sees it. */
	uint64_t pos = s->crypt_method == 2 ? host : guest;
	if (!s->crypt_ready)
		return qcow2_crypt_need_key(s);
	if (pos % SECTOR || len % SECTOR)
		return mimg_err(-EINVAL,
				"%s: qcow2: encrypted I/O at 0x%llx "
				"(%zu bytes) is not in whole sectors",
				qcow2_path(s), (unsigned long long)pos, len);
	return mimg_sector_crypt(&s->cipher, encrypt, pos / SECTOR, buf, len);
}

int qcow2_crypt_info(struct qcow2 *s, struct mimg_value *data)
{
	struct mimg_value *e = mimg_value_add(data, "encrypt",
					      MIMG_VALUE_OBJECT);
	bool ok = e != NULL;
	if (ok && s->crypt_method == 1)
		ok = mimg_value_add_str(e, "format", "aes");
	else if (ok)
		ok = luks1_info(e, s->luks, "luks");
	return ok ? 0 : mimg_err(-ENOMEM, "out of memory");
}

int qcow2_crypt_setup(struct mimg *img, const struct luks1_create_params *p,
		      const struct mimg_secret *sec, uint64_t *offp,
		      uint64_t *lenp)
{
	struct qcow2 *s = qcow2_of(img);
	struct luks1_header h;
	uint8_t mk[MIMG_CRYPTO_MAX_KEY];
	uint64_t len, alloc, off, fsize;
	int r;

	if ((r = luks1_prepare(p, &h)) < 0)
		return r;
	len = (uint64_t)h.payload_offset * SECTOR;
	alloc = div_round_up_u64(len, s->cluster_size) * s->cluster_size;
	pthread_mutex_lock(&s->lock);
	r = qcow2_alloc_clusters(s, alloc / s->cluster_size, &off);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	/* The area reads as zeroes where no key material is written. */
	if ((r = mimg_file_size(s->file, &fsize)) < 0)
		return r;
	if (fsize < off + alloc)
		r = mimg_file_truncate(s->file, off + alloc);
	if (r == 0 && fsize > off)
		r = mimg_file_zero_range(s->file, off,
					 min_u64(alloc, fsize - off), false);
	if (r == 0)
		r = luks1_format(s->file, off, p, sec->data, sec->len, &h, mk);
	explicit_bzero(mk, sizeof(mk));
	explicit_bzero(&h, sizeof(h));
	if (r == 0)
		r = mimg_file_flush(s->file);
	*offp = off;
	*lenp = len;
	return r;
}

int qcow2_crypt_refs(struct qcow2 *s,
		     void (*inc)(void *opaque, uint64_t off, uint64_t len),
		     void *opaque)
{
	if (s->crypt_method == 2 && s->has_crypt_ext)
		inc(opaque, s->crypt_hdr_off, s->crypt_hdr_len);
	return 0;
}

int qcow2_keyslot_change(struct mimg *img, const struct luks1_keyslot_change *c,
			 int *slotp)
{
	struct qcow2 *s = qcow2_of(img);
	if (img->drv != &mimg_qcow2_driver || s->crypt_method != 2)
		return mimg_err(-EINVAL, "%s: not a LUKS encrypted qcow2 image",
				img->filename);
	if (img->read_only)
		return mimg_err(-EROFS, "%s: the image is open read-only",
				img->filename);
	/* The header's clusters are metadata: no guest write lands there,
	 * so the header is rewritten in place. */
	return luks1_keyslot_change(s->file, s->crypt_hdr_off, img->filename,
				    s->luks,
				    s->crypt_ready ? s->cipher.key : NULL, c,
				    slotp);
}
