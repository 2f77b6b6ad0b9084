/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Internal snapshots: parse the snapshot table, list it in info, and read
 * a snapshot's content (convert -l).  Creating, applying and deleting
 * them is in qcow2-snapshot-write.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "endian.h"
#include "error.h"
#include "qcow2.h"
#include "value.h"

/* qemu's limits: extra data per entry and total table size. */
#define SNAP_MAX_EXTRA 1024u
#define SNAP_MAX_TABLE (64ull << 20)

void qcow2_free_snapshots(struct qcow2 *s)
{
	for (uint32_t i = 0; i < s->nb_snapshots && s->snaps; i++) {
		free(s->snaps[i].id);
		free(s->snaps[i].name);
		free(s->snaps[i].extra_more);
	}
	free(s->snaps);
	s->snaps = NULL;
}

static int read_string(struct qcow2 *s, uint64_t off, uint16_t len, char **out)
{
	char *p = malloc((size_t)len + 1);
	if (!p)
		return mimg_err(-ENOMEM, "out of memory");
	int r = len ? mimg_file_pread_exact(s->file, p, len, off,
					    "snapshot table")
		    : 0;
	if (r < 0) {
		free(p);
		return r;
	}
	p[len] = 0;
	*out = p;
	return 0;
}

int qcow2_read_snapshots(struct qcow2 *s)
{
	const char *path = qcow2_path(s);
	uint64_t off = s->snapshots_offset, total = 0;
	if (!s->nb_snapshots)
		return 0;
	s->snaps = calloc(s->nb_snapshots, sizeof(*s->snaps));
	if (!s->snaps)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		struct qcow2_snapshot *sn = &s->snaps[i];
		uint8_t h[40], extra[24];
		int r = mimg_file_pread_exact(s->file, h, 40, off,
					      "snapshot table");
		if (r < 0)
			return r;
		sn->l1_offset = ld_be64(h);
		sn->l1_size = ld_be32(h + 8);
		uint16_t id_len = ld_be16(h + 12), name_len = ld_be16(h + 14);
		sn->date_sec = ld_be32(h + 16);
		sn->date_nsec = ld_be32(h + 20);
		sn->vm_clock_nsec = ld_be64(h + 24);
		sn->vm_state_size = ld_be32(h + 32);
		uint32_t extra_len = ld_be32(h + 36);
		if (extra_len > SNAP_MAX_EXTRA)
			return mimg_err(-EINVAL,
					"%s: qcow2: snapshot %u has "
					"%u bytes of extra data (max %u)",
					path, i, extra_len, SNAP_MAX_EXTRA);
		sn->disk_size = UINT64_MAX;
		memset(extra, 0, sizeof(extra));
		uint32_t want = extra_len < 24 ? extra_len : 24;
		if (want &&
		    (r = mimg_file_pread_exact(s->file, extra, want, off + 40,
					       "snapshot table")) < 0)
			return r;
		if (extra_len >= 8)
			sn->vm_state_size = ld_be64(extra);
		if (extra_len >= 16)
			sn->disk_size = ld_be64(extra + 8);
		if (extra_len >= 24 && ld_be64(extra + 16) != UINT64_MAX) {
			sn->has_icount = true;
			sn->icount = ld_be64(extra + 16);
		}
		/* Extra data we do not know is kept for rewriting the table,
		 * as qemu keeps it. */
		sn->extra_len = extra_len;
		if (extra_len > 24) {
			sn->extra_more = malloc(extra_len - 24);
			if (!sn->extra_more)
				return mimg_err(-ENOMEM, "out of memory");
			if ((r = mimg_file_pread_exact(s->file, sn->extra_more,
						       extra_len - 24, off + 64,
						       "snapshot table")) < 0)
				return r;
		}
		uint64_t p = off + 40 + extra_len;
		if ((r = read_string(s, p, id_len, &sn->id)) < 0 ||
		    (r = read_string(s, p + id_len, name_len, &sn->name)) < 0)
			return r;
		uint64_t sz = 40ull + extra_len + id_len + name_len, asz;
		ck_align_up_u64(sz, 8, &asz);
		total += asz;
		if (total > SNAP_MAX_TABLE)
			return mimg_err(-EINVAL,
					"%s: qcow2: snapshot table "
					"exceeds 64 MiB",
					path);
		if (!is_aligned_u64(sn->l1_offset, s->cluster_size) ||
		    (uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES)
			return mimg_err(-EINVAL,
					"%s: qcow2: snapshot %s has an "
					"invalid L1 table (offset 0x%llx, %u "
					"entries)",
					path, sn->id,
					(unsigned long long)sn->l1_offset,
					sn->l1_size);
		off += asz;
	}
	s->snapshots_size = total;
	return 0;
}

/* The snapshot with id ID and name NAME, either NULL to match on the
 * other alone (qemu's rule for convert -l snapshot.id=,snapshot.name=). */
static int find_by_id_and_name(const struct qcow2 *s, const char *id,
			       const char *name)
{
	if (!id && !name)
		return mimg_err(-EINVAL, "%s: qcow2: no snapshot id or name",
				qcow2_path(s));
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if ((!id || strcmp(s->snaps[i].id, id) == 0) &&
		    (!name || strcmp(s->snaps[i].name, name) == 0))
			return (int)i;
	if (id && name)
		return mimg_err(-ENOENT,
				"%s: qcow2: no snapshot with id '%s' and "
				"name '%s'",
				qcow2_path(s), id, name);
	return mimg_err(-ENOENT, "%s: qcow2: no snapshot with %s '%s'",
			qcow2_path(s), id ? "id" : "name", id ? id : name);
}

int qcow2_find_snapshot(const struct qcow2 *s, const char *name)
{
	int i = find_by_id_and_name(s, name, NULL);
	if (i == -ENOENT)
		i = find_by_id_and_name(s, NULL, name);
	if (i == -ENOENT)
		i = mimg_err(-ENOENT, "%s: qcow2: no snapshot '%s'",
			     qcow2_path(s), name);
	return i;
}

int qcow2_select_snapshot(struct mimg *img, const char *id, const char *name)
{
	struct qcow2 *s = qcow2_of(img);
	int i = find_by_id_and_name(s, id, name);
	if (i < 0)
		return i;
	struct qcow2_snapshot *sn = &s->snaps[i];
	uint64_t *l1;
	int r = qcow2_load_table(s, sn->l1_offset, sn->l1_size, 0, &l1,
				 "snapshot L1 table");
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	if (!s->l1_active)
		s->l1_active = s->l1;
	else
		free(s->l1);
	s->l1 = l1;
	s->l1_size = sn->l1_size;
	/* qemu-img convert -l keeps the image's current size: what lies
	 * past the snapshot's L1 table reads as unallocated. */
	s->snapshot_selected = (int)(sn - s->snaps);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int qcow2_info_snapshots(struct qcow2 *s, struct mimg_value *info)
{
	if (!s->nb_snapshots)
		return 0;
	struct mimg_value *arr = mimg_value_add(info, "snapshots",
						MIMG_VALUE_ARRAY);
	if (!arr)
		return mimg_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		const struct qcow2_snapshot *sn = &s->snaps[i];
		struct mimg_value *o = mimg_value_add(arr, NULL,
						      MIMG_VALUE_OBJECT);
		bool ok = o != NULL;
		if (ok && sn->has_icount)
			ok = mimg_value_add_uint(o, "icount", sn->icount);
		ok = ok &&
		     mimg_value_add_uint(o, "vm-clock-nsec",
					 sn->vm_clock_nsec % 1000000000ull);
		ok = ok && mimg_value_add_str(o, "name", sn->name);
		ok = ok && mimg_value_add_uint(o, "date-sec", sn->date_sec);
		ok = ok && mimg_value_add_uint(o, "date-nsec", sn->date_nsec);
		ok = ok &&
		     mimg_value_add_uint(o, "vm-clock-sec",
					 sn->vm_clock_nsec / 1000000000ull);
		ok = ok && mimg_value_add_str(o, "id", sn->id);
		ok = ok &&
		     mimg_value_add_uint(o, "vm-state-size", sn->vm_state_size);
		if (!ok)
			return mimg_err(-ENOMEM, "out of memory");
	}
	return 0;
}
