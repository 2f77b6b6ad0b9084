/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Builders for struct mimg_value trees (info, check reports).  Each adder
 * appends a member to an OBJECT (KEY non-NULL) or an element to an ARRAY
 * (KEY NULL) and returns the new value, or NULL on -ENOMEM (the caller
 * returns -ENOMEM).  Pointers returned by an adder are invalidated by the
 * next add to the same container: fill a container fully before adding
 * to its parent again.
 */
#ifndef MIMG_VALUE_H
#define MIMG_VALUE_H

#include "mimg.h"

struct mimg_value *mimg_value_new_object(void);
struct mimg_value *mimg_value_add(struct mimg_value *c, const char *key,
				  enum mimg_value_type type);
struct mimg_value *mimg_value_add_bool(struct mimg_value *c, const char *key,
				       bool b);
struct mimg_value *mimg_value_add_int(struct mimg_value *c, const char *key,
				      int64_t i);
struct mimg_value *mimg_value_add_uint(struct mimg_value *c, const char *key,
				       uint64_t u);
struct mimg_value *mimg_value_add_str(struct mimg_value *c, const char *key,
				      const char *s);
/* Remove member KEY from object C if present. */
void mimg_value_remove(struct mimg_value *c, const char *key);
/* Mutable lookup. */
struct mimg_value *mimg_value_find(struct mimg_value *obj, const char *key);

#endif
