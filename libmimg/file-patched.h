/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A read-only view of a host file with ranges replaced: by given bytes
 * or by zeroes, in the order added (a later patch wins where two meet),
 * and a size of at least a given minimum (the bytes past the base file
 * read as zeroes).  A VHDX image whose log still holds updates is read
 * through one: the updates apply to the view, never to the file.
 */
#ifndef MIMG_FILE_PATCHED_H
#define MIMG_FILE_PATCHED_H

#include <stdint.h>

#include "file.h"

/* A view of BASE, which it owns from then on (closing the view closes
 * BASE), unless this fails. */
int mimg__patched_open(struct mimg_file *base, struct mimg_file **fp);
/* Replace LEN bytes at OFF by DATA (copied), or by zeroes when DATA is
 * NULL. */
int mimg__patched_add(struct mimg_file *f, uint64_t off, uint64_t len,
		      const void *data);
/* Make the view at least SIZE bytes long. */
void mimg__patched_min_size(struct mimg_file *f, uint64_t size);
/* Make the patches in the base file itself, in order, grow it to the
 * minimum size and flush it; then release the view (not the base) and
 * give back the base in *BASEP.  On failure the view stays open. */
int mimg__patched_commit(struct mimg_file *f, struct mimg_file **basep);

#endif
