/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iov.h"

size_t iov_total(const struct iovec *iov, int cnt)
{
	size_t t = 0;
	for (int i = 0; i < cnt; i++)
		t += iov[i].iov_len;
	return t;
}

int iov_slice(const struct iovec *src, int cnt, size_t skip, size_t len,
	      struct iovec *storage, int nstorage, struct iovec **out)
{
	int first = 0, n = 0;
	size_t rem;

	/* One buffer, as most requests come: nothing to count. */
	if (cnt == 1 && len && skip < src->iov_len && nstorage > 0) {
		size_t take = src->iov_len - skip;
		storage[0].iov_base = (char *)src->iov_base + skip;
		storage[0].iov_len = take < len ? take : len;
		*out = storage;
		return 1;
	}
	while (first < cnt && skip >= src[first].iov_len) {
		skip -= src[first].iov_len;
		first++;
	}
	/* count entries needed */
	rem = len;
	for (int i = first; i < cnt && rem; i++) {
		size_t avail = src[i].iov_len - (i == first ? skip : 0);
		rem -= avail < rem ? avail : rem;
		n++;
	}
	struct iovec *dst = n <= nstorage ? storage
					  : malloc((size_t)n * sizeof(*dst));
	if (!dst)
		return -ENOMEM;
	rem = len;
	for (int i = 0; i < n; i++) {
		const struct iovec *s = &src[first + i];
		size_t o = i == 0 ? skip : 0;
		size_t take = s->iov_len - o;
		if (take > rem)
			take = rem;
		dst[i].iov_base = (char *)s->iov_base + o;
		dst[i].iov_len = take;
		rem -= take;
	}
	*out = dst;
	return n;
}

void *iov_flat(const struct iovec *iov, int cnt, size_t skip, size_t len)
{
	for (int i = 0; i < cnt; i++) {
		if (skip < iov[i].iov_len)
			return len <= iov[i].iov_len - skip
				       ? (char *)iov[i].iov_base + skip
				       : NULL;
		skip -= iov[i].iov_len;
	}
	return NULL;
}

void iov_slice_free(struct iovec *iov, struct iovec *storage)
{
	if (iov != storage)
		free(iov);
}

/* Walk bytes [SKIP, SKIP+LEN) of IOV calling FN on each piece. */
#define IOV_WALK(iov, cnt, skip, len, BODY)                                    \
	do {                                                                   \
		size_t s_ = (skip), l_ = (len), done_ = 0;                     \
		for (int i_ = 0; i_ < (cnt) && l_; i_++) {                     \
			if (s_ >= (iov)[i_].iov_len) {                         \
				s_ -= (iov)[i_].iov_len;                       \
				continue;                                      \
			}                                                      \
			char *p_ = (char *)(iov)[i_].iov_base + s_;            \
			size_t n_ = (iov)[i_].iov_len - s_;                    \
			if (n_ > l_)                                           \
				n_ = l_;                                       \
			BODY;                                                  \
			done_ += n_;                                           \
			l_ -= n_;                                              \
			s_ = 0;                                                \
		}                                                              \
		(void)done_; /* not every BODY uses it */                      \
	} while (0)

void iov_memset(const struct iovec *iov, int cnt, size_t skip, int c,
		size_t len)
{
	IOV_WALK(iov, cnt, skip, len, memset(p_, c, n_));
}

void iov_to_buf(const struct iovec *iov, int cnt, size_t skip, void *buf,
		size_t len)
{
	IOV_WALK(iov, cnt, skip, len, memcpy((char *)buf + done_, p_, n_));
}

void iov_from_buf(const struct iovec *iov, int cnt, size_t skip,
		  const void *buf, size_t len)
{
	IOV_WALK(iov, cnt, skip, len,
		 memcpy(p_, (const char *)buf + done_, n_));
}

bool buf_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	/* Bytes up to 16-byte alignment, then 4 words per step (the
	 * compiler vectorises it), then the tail. */
	while (len && ((uintptr_t)p & 15)) {
		if (*p)
			return false;
		p++;
		len--;
	}
	const uint64_t *w = (const uint64_t *)(const void *)p;
	size_t nw = len / 8;
	for (size_t i = 0; i + 4 <= nw; i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return false;
	for (size_t i = nw & ~(size_t)3; i < nw; i++)
		if (w[i])
			return false;
	p += nw * 8;
	len -= nw * 8;
	while (len--)
		if (*p++)
			return false;
	return true;
}
