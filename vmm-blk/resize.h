/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Resizing the image the daemon serves, while it serves it.  Callers stop
 * the device's queues first (vu_server_change_disk): no request may be in
 * blockif while its size changes.
 */
#ifndef VMMBLK_RESIZE_H
#define VMMBLK_RESIZE_H

#include <stdint.h>

struct blockif_ctxt;

/* Resize BC's image to SIZE bytes (mimg_truncate: shrinking is refused by
 * formats that cannot do it) and serve the new size.  Returns 0 or a
 * negative errno with the reason in *WHY. */
int vmmblk_resize(struct blockif_ctxt *bc, uint64_t size, const char **why);

/* Serve the size a raw image's file has now, after it was resized by
 * another program.  Returns 0 (also when nothing changed) or a negative
 * errno with the reason in *WHY; -ENOTSUP for other formats, whose size
 * only changes through vmmblk_resize. */
int vmmblk_reread_size(struct blockif_ctxt *bc, const char **why);

#endif
