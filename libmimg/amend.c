/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg_amend: change the format options of an existing image (qemu-img
 * amend).  The options are checked against the driver's amend schema;
 * the driver's amend callback does the work.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "error.h"
#include "image.h"
#include "crypto/luks1.h"

const char *const mimg__keyslot_states[] = {"active", "inactive", NULL};

static const struct mimg_secret *named_secret(const struct mimg *img,
					      const char *id)
{
	for (size_t i = 0; i < img->amend_nsecrets; i++)
		if (img->amend_secrets[i].id &&
		    strcmp(img->amend_secrets[i].id, id) == 0)
			return &img->amend_secrets[i].secret;
	return NULL;
}

int mimg__keyslot_amend(struct mimg *img, const struct mimg_keyslot_change *c,
			int (*apply)(struct mimg *img,
				     const struct luks1_keyslot_change *lc,
				     int *slotp))
{
	struct luks1_keyslot_change lc = {.slot = -1, .force = c->force};
	const struct mimg_secret *sec;

	if (!c->state->set)
		return mimg_err(-EINVAL, "%s: Parameter 'state' is required",
				img->filename);
	lc.activate = c->state->u == 0;
	if (c->keyslot->set) {
		if (c->keyslot->u >= LUKS1_NUM_SLOTS)
			return mimg_err(-EINVAL,
					"%s: Invalid keyslot %llu: "
					"there are %d",
					img->filename,
					(unsigned long long)c->keyslot->u,
					LUKS1_NUM_SLOTS);
		lc.slot = (int)c->keyslot->u;
	}
	if (c->new_secret->set && *c->new_secret->s) {
		if (!(sec = named_secret(img, c->new_secret->s)))
			return mimg_err(-ENOENT, "No secret with id '%s' found",
					c->new_secret->s);
		lc.new_pass = sec->data;
		lc.new_len = sec->len;
		lc.max_iters = sec->max_pbkdf2_iters;
	}
	if (c->old_secret->set) {
		if (!(sec = named_secret(img, c->old_secret->s)))
			return mimg_err(-ENOENT, "No secret with id '%s' found",
					c->old_secret->s);
		lc.old_pass = sec->data;
		lc.old_len = sec->len;
	}
	if (lc.activate && !lc.new_pass)
		return mimg_err(-EINVAL,
				"%s: 'new-secret' is required to "
				"activate a keyslot",
				img->filename);
	if (!lc.activate && lc.new_pass)
		return mimg_err(-EINVAL,
				"%s: 'new-secret' must not be given "
				"when erasing keyslots",
				img->filename);
	if (!lc.activate && !lc.old_pass && lc.slot < 0)
		return mimg_err(-EINVAL,
				"%s: 'keyslot' or 'old-secret' is "
				"required to erase keyslots",
				img->filename);
	if (c->iter_time->set)
		lc.iter_time_ms = c->iter_time->u;
	return apply(img, &lc, NULL);
}

int mimg_amend_secrets(struct mimg *img, const struct mimg_opt *opts,
		       size_t nopts, unsigned flags,
		       const struct mimg_named_secret *secrets, size_t nsecrets,
		       void (*progress)(void *opaque, uint64_t done,
					uint64_t total),
		       void *opaque)
{
	int r;

	if (!img)
		return mimg_err(-EINVAL, "mimg_amend: no image");
	img->amend_secrets = secrets;
	img->amend_nsecrets = secrets ? nsecrets : 0;
	r = mimg_amend(img, opts, nopts, flags, progress, opaque);
	img->amend_secrets = NULL;
	img->amend_nsecrets = 0;
	return r;
}

int mimg_amend(struct mimg *img, const struct mimg_opt *opts, size_t nopts,
	       unsigned flags,
	       void (*progress)(void *opaque, uint64_t done, uint64_t total),
	       void *opaque)
{
	const struct mimg_driver *drv;
	struct mimg_optval *vals;
	int r;

	mimg_err_clear();
	if (!img)
		return mimg_err(-EINVAL, "mimg_amend: no image");
	if ((r = mimg__check_flags("mimg_amend", flags, MIMG_AMEND_ALL_FLAGS)) <
	    0)
		return r;
	drv = img->drv;
	if (!drv->amend || !drv->amend_opts)
		return mimg_err(-ENOTSUP,
				"Format driver '%s' does not support "
				"option amendment",
				drv->name);
	if ((r = mimg__check_writable(img, "amend")) < 0)
		return r;
	size_t n = mimg__opts_count(drv->amend_opts);
	if (!(vals = calloc(n + 1, sizeof(*vals))))
		return mimg_err(-ENOMEM, "out of memory");
	r = mimg__opts_validate(drv->amend_opts, drv->create_opts, opts, nopts,
				vals);
	if (r == 0)
		r = drv->amend(img, vals, flags, progress, opaque);
	free(vals);
	return r;
}
