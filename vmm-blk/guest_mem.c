/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Guest-physical to host address translation.  Regions are few (a
 * hypervisor maps RAM in a handful of pieces), so a linear scan is fine.
 */
#include <errno.h>

#include "virtqueue.h"

/* The region containing GPA, or NULL. */
static const struct vblk_mem_region *find_region(const struct vblk_mem *mem,
						 uint64_t gpa)
{
	for (unsigned i = 0; i < mem->nregions && i < VBLK_MEM_MAX_REGIONS;
	     i++) {
		const struct vblk_mem_region *r = &mem->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *vblk_mem_translate(const struct vblk_mem *mem, uint64_t gpa, uint64_t len)
{
	const struct vblk_mem_region *r = find_region(mem, gpa);
	uint64_t off;

	if (!r)
		return NULL;
	if (len == 0)
		len = 1;
	off = gpa - r->gpa;
	if (len > r->size - off)
		return NULL;
	return (uint8_t *)r->host + off;
}

int vblk_mem_map(const struct vblk_mem *mem, uint64_t gpa, uint64_t len,
		 struct iovec *iov, unsigned *n, unsigned cap, bool *overflow)
{
	while (len > 0) {
		const struct vblk_mem_region *r = find_region(mem, gpa);
		uint64_t off, chunk;

		if (!r)
			return -EFAULT;
		off = gpa - r->gpa;
		chunk = r->size - off;
		if (chunk > len)
			chunk = len;
		if (*n < cap) {
			iov[*n].iov_base = (uint8_t *)r->host + off;
			iov[*n].iov_len = (size_t)chunk;
			(*n)++;
		} else {
			*overflow = true;
		}
		/* chunk <= r->size - off, so gpa + chunk cannot wrap past
		 * the region's end unless the region itself wraps, which
		 * vblk_dev_set_mem refuses. */
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}
