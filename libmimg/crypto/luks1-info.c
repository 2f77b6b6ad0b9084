/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * A LUKS1 header as qemu-img 7.2 describes it in "info": the members of
 * a luks image's format-specific data, and of a qcow2 image's "encrypt"
 * object (the same members plus "format").  The order is the one
 * qemu-img prints, which follows its dictionary's hash buckets.
 */
#include <stdio.h>

#include "luks1.h"
#include "value.h"

static bool add_slots(struct mimg_value *data, const struct luks1_header *h)
{
	struct mimg_value *slots = mimg_value_add(data, "slots",
						  MIMG_VALUE_ARRAY);
	if (!slots)
		return false;
	for (int i = 0; i < LUKS1_NUM_SLOTS; i++) {
		const struct luks1_slot *s = &h->slots[i];
		struct mimg_value *o = mimg_value_add(slots, NULL,
						      MIMG_VALUE_OBJECT);
		bool ok = o && mimg_value_add_bool(o, "active", s->active);
		if (ok && s->active)
			ok = mimg_value_add_uint(o, "iters", s->iters);
		ok = ok && mimg_value_add_uint(o, "key-offset",
					       (uint64_t)s->key_offset *
						       MIMG_CRYPTO_SECTOR);
		if (ok && s->active)
			ok = mimg_value_add_uint(o, "stripes", s->stripes);
		if (!ok)
			return false;
	}
	return true;
}

bool luks1_info(struct mimg_value *data, const struct luks1_header *h,
		const char *format)
{
	char alg[16];
	bool ok;

	snprintf(alg, sizeof(alg), "aes-%u", h->aes_bits);
	ok = mimg_value_add_str(data, "ivgen-alg", mimg_ivgen_name(h->ivgen)) &&
	     mimg_value_add_str(data, "hash-alg", mimg_hash_name(h->hash)) &&
	     mimg_value_add_str(data, "cipher-alg", alg) &&
	     mimg_value_add_str(data, "uuid", h->uuid);
	if (ok && h->ivgen == MIMG_IVGEN_ESSIV)
		ok = mimg_value_add_str(data, "ivgen-hash-alg",
					mimg_hash_name(h->ivhash));
	if (ok && format)
		ok = mimg_value_add_str(data, "format", format);
	return ok &&
	       mimg_value_add_str(data, "cipher-mode",
				  mimg_cipher_mode_name(h->mode)) &&
	       add_slots(data, h) &&
	       mimg_value_add_uint(data, "payload-offset",
				   (uint64_t)h->payload_offset *
					   MIMG_CRYPTO_SECTOR) &&
	       mimg_value_add_uint(data, "master-key-iters", h->mk_iters);
}
