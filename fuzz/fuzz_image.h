/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A fuzz pass for simple block-table formats (VHD, VDI, VHDX, Parallels,
 * DMG, qcow, QED, Bochs, cloop): open the input as FORMAT, read, walk
 * block status, build info, check, then write a few ranges into it and
 * read them back.
 */
#ifndef MIMG_FUZZ_IMAGE_H
#define MIMG_FUZZ_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* NAME: the input's file name in the private directory (fixed per
 * target).  Aborts when data written is not read back. */
void fuzz_image_run(const uint8_t *data, size_t size, const char *format,
		    const char *name);
/* The same pass over the image already at PATH. */
void fuzz_image_run_file(const char *path, const char *format);

#endif
