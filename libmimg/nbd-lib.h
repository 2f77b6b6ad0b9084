/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * libnbd, loaded when the first NBD export is opened rather than when a
 * program linking libmimg starts: libnbd brings TLS (GnuTLS and its
 * eight libraries, every symbol bound at load), which made each start
 * of the mimg command three times as costly for the many that never
 * name an nbd:// URI.
 */
#ifndef MIMG_NBD_LIB_H
#define MIMG_NBD_LIB_H

#include <libnbd.h>

/* Every libnbd function libmimg calls. */
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

/* The functions, named as in libnbd.h: mimg__nbd.nbd_create() and so
 * on, once mimg__nbd_load() has succeeded. */
struct mimg_nbd_lib {
#define MIMG_NBD_POINTER(f) __typeof__(f) *f;
	MIMG_NBD_FUNCTIONS(MIMG_NBD_POINTER)
#undef MIMG_NBD_POINTER
};
extern struct mimg_nbd_lib mimg__nbd;

/* Load libnbd once (later calls give the first's result): 0, or
 * -ENOTSUP with a message naming WHAT when it cannot be loaded. */
int mimg__nbd_load(const char *what);

#endif
