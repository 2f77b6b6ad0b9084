/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Parallels driver: header and BAT validation, reads, writes with
 * cluster allocation, block status.
 *
 * A new cluster goes after everything the file holds: its data is
 * written first (the rest of the cluster reads as zeroes), then its BAT
 * entry, so an interrupted allocation leaves the old image plus space
 * at the end that check reports as leaked.  The first write marks the
 * header in use, as qemu-img does on opening for writing; closing
 * flushes the data and clears the mark.  An image marked in use was not
 * closed by its writer: it is read, but written only after check -r.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blocktable.h"
#include "checked.h"
#include "endian.h"
#include "error.h"
#include "iov-file.h"
#include "parallels.h"

/* X rounded up to a multiple of UNIT (clusters need not be powers of
 * two); X is a file offset, far from overflowing. */
static uint64_t round_up(uint64_t x, uint64_t unit)
{
	return div_round_up_u64(x, unit) * unit;
}

static int parallels_probe(const uint8_t *buf, size_t len, const char *filename)
{
	(void)filename;
	/* A shorter file is still one (qemu-img pads what it probes with
	 * zeroes); opening it says what is missing. */
	if (len < PRL_H_VERSION + 4 ||
	    ld_le32(buf + PRL_H_VERSION) != PRL_VERSION)
		return 0;
	return memcmp(buf, PRL_MAGIC_OLD, PRL_MAGIC_LEN) == 0 ||
			       memcmp(buf, PRL_MAGIC_EXT, PRL_MAGIC_LEN) == 0
		       ? 100
		       : 0;
}

/* The header's fields, each checked before use; the BAT must be in the
 * file (it is read whole, which bounds its memory) and hold the disk. */
static int parse_header(struct mimg *img, struct parallels *s)
{
	const uint8_t *h = s->header;
	const char *fn = img->filename;
	uint32_t v;

	if (memcmp(h, PRL_MAGIC_EXT, PRL_MAGIC_LEN) == 0)
		s->ext = true;
	else if (memcmp(h, PRL_MAGIC_OLD, PRL_MAGIC_LEN) != 0)
		return mimg_err(-EINVAL, "%s: Image not in Parallels format",
				fn);
	if ((v = ld_le32(h + PRL_H_VERSION)) != PRL_VERSION)
		return mimg_err(-ENOTSUP,
				"%s: parallels: unsupported version %u", fn, v);
	uint32_t tracks = ld_le32(h + PRL_H_TRACKS);
	if (tracks == 0 || tracks > PRL_TRACKS_MAX)
		return mimg_err(-EINVAL,
				"%s: parallels: cluster size of %u sectors "
				"(tracks) is not between 1 and %u",
				fn, tracks, PRL_TRACKS_MAX);
	s->cluster_size = (uint64_t)tracks * PRL_SECTOR;
	s->unit = s->ext ? (uint32_t)s->cluster_size : PRL_SECTOR;
	s->bat_entries = ld_le32(h + PRL_H_BAT_ENTRIES);
	if (s->bat_entries > PRL_BAT_ENTRIES_MAX)
		return mimg_err(-EFBIG,
				"%s: parallels: BAT of %u entries is larger "
				"than %u (catalog too large)",
				fn, s->bat_entries, PRL_BAT_ENTRIES_MAX);
	uint64_t bat_end = PRL_HEADER_SIZE + (uint64_t)s->bat_entries * 4;
	if (bat_end > s->file_size)
		return mimg_err(
			-EINVAL,
			"%s: parallels: BAT of %u entries ends at %llu, "
			"past the end of the file (%llu bytes)",
			fn, s->bat_entries, (unsigned long long)bat_end,
			(unsigned long long)s->file_size);
	/* Only the low half counts in old images (the format's rule). */
	uint64_t sectors = ld_le64(h + PRL_H_NB_SECTORS);
	if (!s->ext)
		sectors &= UINT32_MAX;
	if (sectors > (uint64_t)s->bat_entries * tracks)
		return mimg_err(-EINVAL,
				"%s: parallels: disk size of %llu sectors does "
				"not fit in the %u BAT entries of %u sectors",
				fn, (unsigned long long)sectors, s->bat_entries,
				tracks);
	img->size = sectors * PRL_SECTOR;
	/* Without a data offset (old images), data starts at the first
	 * sector after the BAT. */
	uint32_t data_off = ld_le32(h + PRL_H_DATA_OFF);
	s->data_start = data_off ? (uint64_t)data_off * PRL_SECTOR
				 : round_up(bat_end, PRL_SECTOR);
	if (s->data_start < bat_end)
		return mimg_err(-EINVAL,
				"%s: parallels: data offset %llu is inside the "
				"header or BAT (which ends at %llu)",
				fn, (unsigned long long)s->data_start,
				(unsigned long long)bat_end);
	/* New clusters' offsets are whole units from the file's start. */
	if (s->ext && s->data_start % s->cluster_size)
		return mimg_err(-EINVAL,
				"%s: parallels: data offset %llu is not a "
				"multiple of the cluster size %llu",
				fn, (unsigned long long)s->data_start,
				(unsigned long long)s->cluster_size);
	v = ld_le32(h + PRL_H_INUSE);
	s->was_in_use = v == PRL_INUSE;
	return 0;
}

static int load_bat(struct mimg *img, struct parallels *s)
{
	size_t bytes = (size_t)s->bat_entries * 4;
	if (!(s->bat = mimg__img_calloc(img, s->bat_entries, 4)))
		return -ENOMEM;
	int r = mimg_file_pread_exact(img->file, s->bat, bytes, PRL_HEADER_SIZE,
				      "parallels BAT");
	if (r < 0)
		return r;
	/* New clusters go after every cluster in use and whatever else
	 * the file holds, so that nothing is handed out twice. */
	uint64_t end = max_u64(s->data_start, round_up(s->file_size, s->unit));
	for (uint32_t i = 0; i < s->bat_entries; i++) {
		s->bat[i] = ld_le32(&s->bat[i]);
		if (s->bat[i])
			end = max_u64(end,
				      prl_host(s, s->bat[i]) + s->cluster_size);
	}
	s->next_host = round_up(end, s->unit);
	return 0;
}

/* Host offset of the cluster holding guest offset OFF into *HOST (0 when
 * not allocated).  An entry must name a whole cluster of the data area
 * inside the file.  Called with img->table_lock held. */
static int cluster_host(struct mimg *img, uint64_t off, uint64_t *host)
{
	struct parallels *s = img->priv;
	uint32_t idx = (uint32_t)(off / s->cluster_size), e = s->bat[idx];
	uint64_t h = prl_host(s, e);

	*host = 0;
	if (!e)
		return 0;
	if (h < s->data_start || h + s->cluster_size > s->file_size)
		return mimg_err(-EIO,
				"%s: parallels: BAT entry %u (%u) places its "
				"cluster at %llu, outside the data area "
				"[%llu, %llu)",
				img->filename, idx, e, (unsigned long long)h,
				(unsigned long long)s->data_start,
				(unsigned long long)s->file_size);
	*host = h;
	return 0;
}

int parallels_set_in_use(struct mimg *img, uint32_t value)
{
	struct parallels *s = img->priv;
	uint8_t v[4];
	st_le32(v, value);
	int r = mimg_file_pwrite(img->file, v, 4, PRL_H_INUSE);
	if (r == 0)
		memcpy(s->header + PRL_H_INUSE, v, 4);
	return r;
}

/* Before the first write: the header says a writer has the image open
 * (flushed, so that no write reaches the file before the mark does).
 * Called with img->table_lock held. */
static int mark_in_use(struct mimg *img)
{
	struct parallels *s = img->priv;
	int r;
	if (s->in_use_set)
		return 0;
	if ((r = parallels_set_in_use(img, PRL_INUSE)) < 0 ||
	    (r = mimg_file_flush(img->file)) < 0)
		return r;
	s->in_use_set = true;
	return 0;
}

/*
 * Allocate the cluster holding OFF and write the LEN bytes of IOV (from
 * byte SKIP) into it, in crash-safe order.  Called with img->table_lock held.
 */
static int allocate_and_write(struct mimg *img, const struct iovec *iov,
			      int iovcnt, size_t skip, uint64_t off, size_t len)
{
	struct parallels *s = img->priv;
	uint32_t idx = (uint32_t)(off / s->cluster_size);
	uint64_t host = s->next_host, end = host + s->cluster_size;
	int r;

	if (host / s->unit > UINT32_MAX)
		return mimg_err(-ENOSPC,
				"%s: parallels: no room for another cluster "
				"(a BAT entry cannot reach %llu)",
				img->filename, (unsigned long long)host);
	/* The whole cluster in the file, as qemu-img leaves it. */
	if ((r = mimg__bt_place_block(img, &s->file_size, host, s->cluster_size,
				      iov, iovcnt, skip, len,
				      off % s->cluster_size)) < 0)
		return r;
	uint8_t entry[4];
	st_le32(entry, (uint32_t)(host / s->unit));
	if ((r = mimg_file_pwrite(img->file, entry, 4,
				  PRL_HEADER_SIZE + (uint64_t)idx * 4)) < 0)
		return r;
	s->bat[idx] = (uint32_t)(host / s->unit);
	s->next_host = end;
	return 0;
}

/* A writer's image is marked closed only once its data is in the file
 * for good. */
static void parallels_close(struct mimg *img)
{
	struct parallels *s = img->priv;
	if (s->in_use_set && mimg_file_flush(img->file) == 0 &&
	    parallels_set_in_use(img, 0) == 0)
		(void)mimg_file_flush(img->file);
}

static int parallels_open(struct mimg *img)
{
	struct parallels *s = img->priv;
	int r;

	if ((r = mimg__read_header(img, s->header, PRL_HEADER_SIZE,
				   &s->file_size)) < 0 ||
	    (r = parse_header(img, s)) < 0 || (r = load_bat(img, s)) < 0)
		return r;
	s->bt = (struct mimg_blocktable){.block_size = s->cluster_size,
					 .lookup = cluster_host,
					 .allocate = allocate_and_write,
					 .before_write = mark_in_use};
	img->blocktable = &s->bt;
	if (!img->read_only && s->was_in_use && !(img->flags & MIMG_OPEN_CHECK))
		return mimg_err(-EBUSY,
				"parallels: Image was not closed correctly; "
				"cannot be opened read/write");
	/* Dirty bitmaps in a format extension would go stale: written
	 * only when there is none. */
	if (!img->read_only && ld_le64(s->header + PRL_H_EXT_OFF))
		return mimg_err(-ENOTSUP,
				"%s: parallels: images with a format extension "
				"(dirty bitmaps) can only be opened read-only",
				img->filename);
	return 0;
}

/* Unallocated clusters are this layer's holes: qemu-img map shows them
 * neither present nor data (zero, as the image has nothing below). */
static int parallels_block_status(struct mimg *img, uint64_t off, uint64_t len,
				  uint64_t *pnum, unsigned *status,
				  uint64_t *host_off)
{
	int r = mimg__bt_block_status(img, off, len, pnum, status, host_off);
	if (r == 0 && !(*status & MIMG_BS_DATA))
		*status = 0;
	return r;
}

const struct mimg_driver mimg_parallels_driver = {
	.name = "parallels",
	.priv_size = sizeof(struct parallels),
	.probe = parallels_probe,
	.open = parallels_open,
	.close = parallels_close,
	.create = parallels_create,
	.create_opts = parallels_create_opts,
	.preadv = mimg__bt_preadv,
	.pwritev = mimg__bt_pwritev,
	.pwrite_zeroes = mimg__bt_pwrite_zeroes,
	.block_status = parallels_block_status,
	.check = parallels_check,
	.info = mimg__info_without_driver_info,
};
