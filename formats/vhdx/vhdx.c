/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * VHDX driver: probing, opening (vhdx-open.c parses, vhdx-log.c replays
 * a log left with updates to a view of the file), reads through the
 * block table and block status.  Images are read-only: writing would
 * have to go through the format's log to keep its crash safety.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "error.h"
#include "vhdx.h"

static int vhdx_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)filename;
	return len >= 8 && memcmp(buf, "vhdxfile", 8) == 0 ? 100 : 0;
}

/* The block table's lookup: the BAT was checked at open. */
static int bt_lookup(struct mimg *img, uint64_t off, uint64_t *host)
{
	struct vhdx *s = img->priv;
	*host = s->block_host[off / s->block_size];
	return 0;
}

static void vhdx_close(struct mimg *img)
{
	struct vhdx *s = img->priv;
	free(s->block_host);
	pthread_mutex_destroy(&s->lock);
}

static int vhdx_open(struct mimg *img, unsigned flags)
{
	struct vhdx *s = img->priv;
	int r;
	(void)flags;
	pthread_mutex_init(&s->lock, NULL);
	if (!img->read_only)
		return mimg_err(-EROFS,
				"%s: vhdx: images can only be opened "
				"read-only",
				img->filename);
	if ((r = vhdx_parse(img, s)) < 0)
		return r;
	s->bt = (struct mimg_blocktable){.lock = &s->lock,
					 .block_size = s->block_size,
					 .lookup = bt_lookup};
	img->blocktable = &s->bt;
	img->cluster_size = s->block_size;
	return 0;
}

const struct mimg_driver mimg_vhdx_driver = {
	.name = "vhdx",
	.priv_size = sizeof(struct vhdx),
	.probe = vhdx_probe,
	.open = vhdx_open,
	.close = vhdx_close,
	.preadv = mimg__bt_preadv,
	.block_status = mimg__bt_block_status,
	.check = vhdx_check,
};
