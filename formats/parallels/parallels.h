/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Parallels expandable images (Parallels Desktop, Virtuozzo, ".hdd"):
 * shared definitions.
 *
 * A 64-byte little-endian header, then the BAT (one 32-bit entry per
 * cluster of the disk: where the cluster is in the file, 0 when it is not
 * allocated), then the data area.  "WithoutFreeSpace" images count BAT
 * entries in 512-byte sectors, "WithouFreSpacExt" images in clusters.
 * The header's in-use field marks an image a writer has open.
 */
#ifndef MIMG_PARALLELS_H
#define MIMG_PARALLELS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blocktable.h"
#include "image.h"

#define PRL_HEADER_SIZE 64
#define PRL_SECTOR 512u
#define PRL_MAGIC_OLD "WithoutFreeSpace"
#define PRL_MAGIC_EXT "WithouFreSpacExt"
#define PRL_MAGIC_LEN 16
#define PRL_VERSION 2u
#define PRL_INUSE 0x746f6e59u	       /* open by a writer */
#define PRL_CLOSED 0x312e3276u	       /* closed (other writers) */
#define PRL_DEFAULT_CLUSTER (1u << 20) /* qemu-img's */
/* qemu-img's bound on the BAT it reads (2 GiB of entries). */
#define PRL_BAT_ENTRIES_MAX (0x7fffffffu / 4u)
/* qemu-img's bound on the sectors per cluster (a cluster under 2 GiB). */
#define PRL_TRACKS_MAX (0x7fffffffu / 513u)

/* Header fields (byte offsets). */
#define PRL_H_VERSION 16
#define PRL_H_HEADS 20
#define PRL_H_CYLINDERS 24
#define PRL_H_TRACKS 28
#define PRL_H_BAT_ENTRIES 32
#define PRL_H_NB_SECTORS 36
#define PRL_H_INUSE 44
#define PRL_H_DATA_OFF 48
#define PRL_H_FLAGS 52
#define PRL_H_EXT_OFF 56

struct parallels {
	/* Under img->table_lock: bat, next_host, file_size, in_use_set. */
	uint8_t header[PRL_HEADER_SIZE];
	bool ext;      /* "WithouFreSpacExt": entries in clusters */
	uint32_t unit; /* bytes per BAT entry unit */
	uint64_t cluster_size;
	uint32_t *bat; /* bat_entries entries, host order */
	uint32_t bat_entries;
	uint64_t data_start; /* first byte of the data area */
	uint64_t next_host;  /* where the next new cluster goes */
	uint64_t file_size;
	bool was_in_use; /* the header said in use when opened */
	bool in_use_set; /* this writer marked the header in use */
	struct mimg_blocktable bt;
};

/* Host offset of BAT entry value E (0: not allocated). */
static inline uint64_t prl_host(const struct parallels *s, uint32_t e)
{
	return (uint64_t)e * s->unit;
}

extern const struct mimg_optdesc parallels_create_opts[];
int parallels_create(const char *path, uint64_t size,
		     const struct mimg_opt *opts, size_t nopts,
		     struct mimg *backing);
int parallels_check(struct mimg *img, unsigned flags,
		    struct mimg_check_result *res);
/* Write header field IN_USE (4 bytes) into the file and S->header. */
int parallels_set_in_use(struct mimg *img, uint32_t value);

#endif
