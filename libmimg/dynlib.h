/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Shared libraries loaded when first needed rather than when a program
 * linking libmimg starts.  Each costs every start its loading and
 * relocation whether it is used or not: libarchive (with the libxml2, ICU
 * and C++ runtime it brings), libcrypto and libnbd (with GnuTLS and its
 * eight libraries) made up most of the start of the mimg command, which
 * most runs never use.
 *
 * A library is a struct of typed function pointers named as in its own
 * header, filled in by its load function, which every path into the
 * library calls first: mimg__libarchive.archive_read_new() once
 * mimg__archive_lib_load() has succeeded.  The lists below are every
 * function libmimg calls.
 */
#ifndef MIMG_DYNLIB_H
#define MIMG_DYNLIB_H

#include <archive.h>
#include <archive_entry.h>

#define MIMG_ARCHIVE_FUNCTIONS(X)                                              \
	X(archive_entry_filetype)                                              \
	X(archive_entry_free)                                                  \
	X(archive_entry_hardlink)                                              \
	X(archive_entry_new)                                                   \
	X(archive_entry_pathname)                                              \
	X(archive_entry_set_filetype)                                          \
	X(archive_entry_set_mtime)                                             \
	X(archive_entry_set_pathname)                                          \
	X(archive_entry_set_perm)                                              \
	X(archive_entry_set_size)                                              \
	X(archive_entry_size)                                                  \
	X(archive_entry_size_is_set)                                           \
	X(archive_errno)                                                       \
	X(archive_error_string)                                                \
	X(archive_filter_code)                                                 \
	X(archive_filter_count)                                                \
	X(archive_filter_name)                                                 \
	X(archive_read_data)                                                   \
	X(archive_read_data_block)                                             \
	X(archive_read_data_skip)                                              \
	X(archive_read_free)                                                   \
	X(archive_read_new)                                                    \
	X(archive_read_next_header)                                            \
	X(archive_read_open1)                                                  \
	X(archive_read_set_callback_data)                                      \
	X(archive_read_set_read_callback)                                      \
	X(archive_read_set_skip_callback)                                      \
	X(archive_read_support_filter_bzip2)                                   \
	X(archive_read_support_filter_gzip)                                    \
	X(archive_read_support_filter_lz4)                                     \
	X(archive_read_support_filter_xz)                                      \
	X(archive_read_support_filter_zstd)                                    \
	X(archive_read_support_format_raw)                                     \
	X(archive_read_support_format_tar)                                     \
	X(archive_set_error)                                                   \
	X(archive_write_add_filter_gzip)                                       \
	X(archive_write_add_filter_xz)                                         \
	X(archive_write_close)                                                 \
	X(archive_write_data)                                                  \
	X(archive_write_free)                                                  \
	X(archive_write_header)                                                \
	X(archive_write_new)                                                   \
	X(archive_write_open2)                                                 \
	X(archive_write_set_bytes_in_last_block)                               \
	X(archive_write_set_filter_option)                                     \
	X(archive_write_set_format_pax_restricted)                             \
	X(archive_write_set_format_raw)

struct mimg_archive_lib {
#define MIMG_DYNLIB_POINTER(f) __typeof__(f) *f;
	MIMG_ARCHIVE_FUNCTIONS(MIMG_DYNLIB_POINTER)
};
extern struct mimg_archive_lib mimg__libarchive;

/* Load libarchive once (later calls give the first's result): 0, or
 * -ENOTSUP with a message naming WHAT when it cannot be loaded. */
int mimg__archive_lib_load(const char *what);

#include <openssl/evp.h>
#include <openssl/rand.h>

#define MIMG_CRYPTO_FUNCTIONS(X)                                               \
	X(EVP_CIPHER_CTX_free)                                                 \
	X(EVP_CIPHER_CTX_new)                                                  \
	X(EVP_CIPHER_CTX_set_padding)                                          \
	X(EVP_CIPHER_fetch)                                                    \
	X(EVP_CIPHER_free)                                                     \
	X(EVP_CipherInit_ex2)                                                  \
	X(EVP_CipherUpdate)                                                    \
	X(EVP_Digest)                                                          \
	X(EVP_DigestFinal_ex)                                                  \
	X(EVP_DigestInit_ex)                                                   \
	X(EVP_DigestUpdate)                                                    \
	X(EVP_EncryptUpdate)                                                   \
	X(EVP_MD_CTX_free)                                                     \
	X(EVP_MD_CTX_new)                                                      \
	X(EVP_MD_get_flags)                                                    \
	X(EVP_MD_get_size)                                                     \
	X(EVP_aes_128_ecb)                                                     \
	X(EVP_aes_192_ecb)                                                     \
	X(EVP_aes_256_ecb)                                                     \
	X(EVP_get_digestbyname)                                                \
	X(EVP_sha1)                                                            \
	X(EVP_sha256)                                                          \
	X(EVP_sha512)                                                          \
	X(PKCS5_PBKDF2_HMAC)                                                   \
	X(RAND_bytes)

struct mimg_crypto_lib {
	MIMG_CRYPTO_FUNCTIONS(MIMG_DYNLIB_POINTER)
};
extern struct mimg_crypto_lib mimg__libcrypto;

/* The same for libcrypto. */
int mimg__crypto_lib_load(const char *what);

#ifdef MIMG_HAVE_LIBNBD
#include <libnbd.h>

#define MIMG_NBD_FUNCTIONS(X)                                                  \
	X(nbd_add_meta_context)                                                \
	X(nbd_aio_block_status)                                                \
	X(nbd_aio_command_completed)                                           \
	X(nbd_aio_connect_uri)                                                 \
	X(nbd_aio_disconnect)                                                  \
	X(nbd_aio_flush)                                                       \
	X(nbd_aio_get_direction)                                               \
	X(nbd_aio_get_fd)                                                      \
	X(nbd_aio_is_closed)                                                   \
	X(nbd_aio_is_connecting)                                               \
	X(nbd_aio_is_dead)                                                     \
	X(nbd_aio_is_ready)                                                    \
	X(nbd_aio_notify_read)                                                 \
	X(nbd_aio_notify_write)                                                \
	X(nbd_aio_pread)                                                       \
	X(nbd_aio_pwrite)                                                      \
	X(nbd_aio_zero)                                                        \
	X(nbd_can_flush)                                                       \
	X(nbd_can_fua)                                                         \
	X(nbd_can_meta_context)                                                \
	X(nbd_can_multi_conn)                                                  \
	X(nbd_can_zero)                                                        \
	X(nbd_close)                                                           \
	X(nbd_create)                                                          \
	X(nbd_get_block_size)                                                  \
	X(nbd_get_errno)                                                       \
	X(nbd_get_error)                                                       \
	X(nbd_get_size)                                                        \
	X(nbd_is_read_only)                                                    \
	X(nbd_poll)                                                            \
	X(nbd_set_uri_allow_local_file)

struct mimg_nbd_lib {
	MIMG_NBD_FUNCTIONS(MIMG_DYNLIB_POINTER)
};
extern struct mimg_nbd_lib mimg__nbd;

/* The same for libnbd. */
int mimg__nbd_load(const char *what);
#endif

#ifdef MIMG_HAVE_LIBXML2
#include <libxml/parser.h>
#include <libxml/tree.h>

#define MIMG_XML_FUNCTIONS(X)                                                  \
	X(xmlDocGetRootElement)                                                \
	X(xmlFreeDoc)                                                          \
	X(xmlInitParser)                                                       \
	X(xmlReadMemory)

struct mimg_xml_lib {
	MIMG_XML_FUNCTIONS(MIMG_DYNLIB_POINTER)
};
extern struct mimg_xml_lib mimg__libxml2;

/* The same for libxml2, its parser initialised. */
int mimg__xml_lib_load(const char *what);
#endif

#undef MIMG_DYNLIB_POINTER
#endif
