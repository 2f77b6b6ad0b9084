/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The VHDX log.  A writer records each metadata update in the circular
 * log before making it in place; a file it did not close cleanly may
 * hold updates that were never made.  They are found as the format
 * says: every valid entry (signature, the header's log GUID, CRC-32C,
 * descriptors and data sectors consistent) is a link; entries that
 * follow each other in the log with sequence numbers one apart form a
 * sequence; a sequence whose last entry (its head) names as its tail an
 * entry of the sequence is valid, and the valid one with the highest
 * head sequence number is the active one, replayed from its tail to its
 * head.  The replay is made to a patched view of the file
 * (file-patched.h): read-only, the image reads as the writer left it and
 * the file is not written; opened for writing, the updates are then
 * written into the file and the log is dropped from the header, as
 * qemu-img does on opening such an image for writing.
 *
 * An entry: a 64-byte header, descriptors (32 bytes each, the first 126
 * in the header's 4 KiB sector, 128 in each further one), then one 4 KiB
 * data sector per data descriptor.  A data descriptor's sector is its
 * first 8 bytes, bytes 8..4091 of the data sector and its last 4 bytes;
 * a zero descriptor clears a range.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "crc32c.h"
#include "endian.h"
#include "error.h"
#include "file-patched.h"
#include "vhdx.h"

#define SECTOR 4096u

/* What a valid entry at a log position says. */
struct link {
	bool valid;
	uint32_t len;
	uint32_t tail;
	uint64_t seq;
	uint64_t flushed, last; /* file offsets */
	uint32_t next; /* position of the entry after it + 1, 0: none */
};

/* Read LEN bytes of the circular log from POS (wrapping at its end). */
static int read_log(struct mimg *img, const struct vhdx *s, uint64_t pos,
		    uint8_t *buf, uint64_t len)
{
	while (len) {
		uint64_t n = min_u64(len, s->log_length - pos);
		int r = mimg_file_pread_exact(img->file, buf, n,
					      s->log_offset + pos, "vhdx log");
		if (r < 0)
			return r;
		buf += n;
		len -= n;
		pos = 0;
	}
	return 0;
}

static uint32_t desc_sectors(uint32_t count)
{
	/* The header takes the room of two descriptors. */
	return (uint32_t)(((uint64_t)count + 2 + 127) / 128);
}

/* Whether the LEN-byte entry E is whole and consistent for SEQ. */
static bool entry_consistent(const uint8_t *e, uint32_t len, uint64_t seq)
{
	uint32_t count = ld_le32(e + 24), ndata = 0;
	uint64_t dsec = desc_sectors(count);
	if (dsec * SECTOR > len)
		return false;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *d = e + 64 + 32 * (size_t)i;
		if (ld_le64(d + 24) != seq || ld_le64(d + 16) % SECTOR)
			return false;
		if (memcmp(d, "zero", 4) == 0) {
			if (ld_le64(d + 8) % SECTOR)
				return false;
		} else if (memcmp(d, "desc", 4) == 0) {
			uint64_t at = (dsec + ndata++) * SECTOR;
			if (at + SECTOR > len)
				return false;
			const uint8_t *ds = e + at;
			if (memcmp(ds, "data", 4) != 0 ||
			    ld_le32(ds + 4) != (uint32_t)(seq >> 32) ||
			    ld_le32(ds + 4092) != (uint32_t)seq)
				return false;
		} else {
			return false;
		}
	}
	return (dsec + ndata) * SECTOR == len;
}

/* Fill L from the entry at POS when it is valid.  Entries are read whole
 * to check them; *BUDGET caps the bytes read (a crafted log of
 * overlapping entries would otherwise cost its size squared). */
static int read_link(struct mimg *img, const struct vhdx *s, uint64_t pos,
		     const uint8_t *guid, uint64_t *budget, struct link *l)
{
	uint8_t h[VHDX_LOG_ENTRY_HEADER_SIZE];
	int r = read_log(img, s, pos, h, sizeof(h));
	memset(l, 0, sizeof(*l));
	if (r < 0)
		return r;
	uint32_t len = ld_le32(h + 8), tail = ld_le32(h + 12);
	uint64_t seq = ld_le64(h + 16);
	if (memcmp(h, "loge", 4) != 0 || memcmp(h + 32, guid, 16) != 0 ||
	    len < SECTOR || len % SECTOR || len > s->log_length ||
	    tail % SECTOR || tail >= s->log_length || seq == 0)
		return 0;
	if (len > *budget)
		return mimg_err(-EINVAL,
				"%s: vhdx: the log holds more overlapping "
				"entries than it can",
				img->filename);
	*budget -= len;
	uint8_t *e = malloc(len);
	if (!e)
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = read_log(img, s, pos, e, len)) == 0 &&
	    vhdx_checksum_ok(e, len) && entry_consistent(e, len, seq))
		*l = (struct link){.valid = true,
				   .len = len,
				   .tail = tail,
				   .seq = seq,
				   .flushed = ld_le64(e + 48),
				   .last = ld_le64(e + 56)};
	free(e);
	return r;
}

/* Lay the updates of the entry at POS over the view F. */
static int apply_entry(struct mimg *img, const struct vhdx *s, uint64_t pos,
		       const struct link *l, struct mimg_file *f)
{
	uint8_t *e = malloc(l->len), sector[SECTOR];
	int r;
	if (!e)
		return mimg_err(-ENOMEM, "out of memory");
	if ((r = read_log(img, s, pos, e, l->len)) < 0)
		goto out;
	/* Read again: it must still be the entry checked. */
	if (!vhdx_checksum_ok(e, l->len) ||
	    !entry_consistent(e, l->len, l->seq)) {
		r = mimg_err(-EIO, "%s: vhdx: the log changed while read",
			     img->filename);
		goto out;
	}
	uint32_t count = ld_le32(e + 24), ndata = 0;
	uint64_t dsec = desc_sectors(count);
	for (uint32_t i = 0; i < count && r == 0; i++) {
		const uint8_t *d = e + 64 + 32 * (size_t)i;
		uint64_t off = ld_le64(d + 16);
		if (memcmp(d, "zero", 4) == 0) {
			r = mimg__patched_add(f, off, ld_le64(d + 8), NULL);
			continue;
		}
		const uint8_t *ds = e + (dsec + ndata++) * SECTOR;
		memcpy(sector, d + 8, 8);
		memcpy(sector + 8, ds + 8, SECTOR - 12);
		memcpy(sector + SECTOR - 4, d + 4, 4);
		r = mimg__patched_add(f, off, SECTOR, sector);
	}
out:
	free(e);
	return r;
}

/* The head each entry's sequence runs to, following the links: each
 * entry is walked to once more than it is resolved, so the whole is
 * linear whatever the links (sequences may share their ends). */
static void resolve_heads(const struct link *links, uint32_t n,
			  uint32_t *head_of)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!links[i].valid || head_of[i])
			continue;
		uint32_t k = i;
		while (!head_of[k] && links[k].next)
			k = links[k].next - 1;
		uint32_t head = head_of[k] ? head_of[k] : k + 1;
		for (uint32_t j = i; !head_of[j]; j = links[j].next - 1) {
			head_of[j] = head;
			if (!links[j].next)
				break;
		}
	}
}

/* The active sequence among the links: *TAILP and *HEADP, positions in
 * sectors; false when there is none (or no memory to look). */
static bool active_sequence(struct link *links, uint32_t n, uint32_t *tailp,
			    uint32_t *headp)
{
	uint32_t *head_of = calloc(n, sizeof(*head_of));
	uint64_t best = 0;
	bool found = false;
	if (!head_of)
		return false;
	/* Sequence numbers rise along the links: they cannot go round. */
	for (uint32_t i = 0; i < n; i++) {
		if (!links[i].valid)
			continue;
		uint32_t j = (uint32_t)((i + links[i].len / SECTOR) % n);
		if (links[j].valid && links[j].seq == links[i].seq + 1)
			links[i].next = j + 1;
	}
	resolve_heads(links, n, head_of);
	/* A head whose tail leads to it ends a valid sequence. */
	for (uint32_t h = 0; h < n; h++) {
		if (!links[h].valid || links[h].next ||
		    (found && links[h].seq <= best))
			continue;
		uint32_t t = links[h].tail / SECTOR;
		if (links[t].valid && head_of[t] == h + 1) {
			found = true;
			best = links[h].seq;
			*tailp = t;
			*headp = h;
		}
	}
	free(head_of);
	return found;
}

int vhdx_log_view(struct mimg *img, struct vhdx *s, const uint8_t *h)
{
	const uint8_t *guid = h + VHDX_H_LOG_GUID;
	static const uint8_t zero_guid[16];
	uint32_t n = (uint32_t)(s->log_length / SECTOR), tail = 0, head = 0;
	uint64_t budget = 4 * s->log_length, fsize;
	struct mimg_file *view = NULL;
	int r = 0;
	if (!n || memcmp(guid, zero_guid, 16) == 0)
		return 0;
	/* The replayed updates are held in memory: at most the log's size,
	 * 1 MiB as Hyper-V and qemu-img make it. */
	if (s->log_length > VHDX_MAX_REPLAY_LOG)
		return mimg_err(-EFBIG,
				"%s: vhdx: a log of %llu bytes is larger than "
				"the %u MiB that can be replayed",
				img->filename,
				(unsigned long long)s->log_length,
				(unsigned)(VHDX_MAX_REPLAY_LOG >> 20));
	struct link *links = calloc(n, sizeof(*links));
	if (!links)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n && r == 0; i++)
		r = read_link(img, s, (uint64_t)i * SECTOR, guid, &budget,
			      &links[i]);
	if (r < 0 || !active_sequence(links, n, &tail, &head))
		goto out;
	if ((r = mimg_file_size(img->file, &fsize)) < 0)
		goto out;
	if (links[head].flushed > fsize) {
		r = mimg_err(-EINVAL,
			     "%s: vhdx: the log was written for a file of "
			     "%llu bytes, longer than this one (%llu): it "
			     "was cut",
			     img->filename,
			     (unsigned long long)links[head].flushed,
			     (unsigned long long)fsize);
		goto out;
	}
	if ((r = mimg__patched_open(img->file, &view)) < 0)
		goto out;
	/* The entries are read from the file itself, their updates laid
	 * over the view. */
	for (uint32_t k = tail;; k = links[k].next - 1)
		if ((r = apply_entry(img, s, (uint64_t)k * SECTOR, &links[k],
				     view)) < 0 ||
		    k == head)
			break;
	/* The view owns the file: the image reads through it and closes
	 * it, whatever happened. */
	img->file = view;
	if (r < 0)
		goto out;
	mimg__patched_min_size(view, min_u64(links[head].last, INT64_MAX));
	s->log_pending = true;
	/* Opened for writing, the updates go into the file, as the format
	 * wants before anything else is written, and the header forgets
	 * the log. */
	if (!img->read_only &&
	    (r = mimg__patched_commit(view, &img->file)) == 0) {
		memset(s->header + VHDX_H_LOG_GUID, 0, 16);
		r = vhdx_renew_headers(img, s);
		s->log_pending = false;
		s->log_replayed = r == 0;
	}
out:
	free(links);
	return r;
}
