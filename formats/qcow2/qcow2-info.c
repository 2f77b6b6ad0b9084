/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2's part of mimg_info: "format-specific" with qemu-img 7.2's keys,
 * "snapshots", and the dirty flag.
 */
#include <errno.h>

#include "error.h"
#include "qcow2.h"
#include "value.h"

static int add_specific(struct qcow2 *s, struct mimg_value *info)
{
	struct mimg_value *fs = mimg_value_add(info, "format-specific",
					       MIMG_VALUE_OBJECT);
	bool ok = fs && mimg_value_add_str(fs, "type", "qcow2");
	struct mimg_value *d = ok ? mimg_value_add(fs, "data",
						   MIMG_VALUE_OBJECT)
				  : NULL;
	ok = d != NULL;
	bool v3 = s->version >= 3;
	ok = ok && mimg_value_add_str(d, "compat", v3 ? "1.1" : "0.10");
	ok = ok &&
	     mimg_value_add_str(d, "compression-type",
				s->compression == QCOW2_COMPRESS_ZSTD ? "zstd"
								      : "zlib");
	if (v3)
		ok = ok &&
		     mimg_value_add_bool(d, "lazy-refcounts",
					 (s->compat &
					  QCOW2_COMPAT_LAZY_REFCOUNTS) != 0);
	if (ok && qcow2_info_bitmaps(s, d) < 0)
		return -ENOMEM;
	ok = ok && mimg_value_add_uint(d, "refcount-bits", s->refcount_bits);
	if (ok && s->crypt_method && qcow2_crypt_info(s, d) < 0)
		return -ENOMEM;
	if (s->data_file_name) {
		ok = ok &&
		     mimg_value_add_str(d, "data-file", s->data_file_name);
		ok = ok && mimg_value_add_bool(d, "data-file-raw", s->data_raw);
	}
	if (v3) {
		ok = ok && mimg_value_add_bool(d, "corrupt",
					       (s->incompat &
						QCOW2_INCOMPAT_CORRUPT) != 0);
		ok = ok &&
		     mimg_value_add_bool(d, "extended-l2", s->extended_l2);
	}
	return ok ? 0 : mimg_err(-ENOMEM, "out of memory");
}

int qcow2_info(struct mimg *img, struct mimg_value *info)
{
	struct qcow2 *s = qcow2_of(img);
	int r = qcow2_info_snapshots(s, info);
	if (r == 0 && s->crypt_method &&
	    !mimg_value_add_bool(info, "encrypted", true))
		r = mimg_err(-ENOMEM, "out of memory");
	if (r == 0)
		r = add_specific(s, info);
	if (r == 0) {
		struct mimg_value *df = mimg_value_find(info, "dirty-flag");
		if (df && df->type == MIMG_VALUE_BOOL)
			df->v.b = (s->incompat & QCOW2_INCOMPAT_DIRTY) != 0;
	}
	return r;
}
