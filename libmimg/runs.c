/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Run-by-run reads and block status (see runs.h).
 */
#include "runs.h"

#include <errno.h>

#include "checked.h"
#include "decoded.h"
#include "driver.h"
#include "error.h"
#include "image.h"
#include "iov-file.h"
#include "iov.h"

/* The run at OFF, checked: a format that answers an empty run or one
 * longer than asked has a bug, which must not become a loop or an
 * overrun. */
static int map_run(struct mimg *img, uint64_t off, uint64_t len,
		   struct mimg_run *run)
{
	*run = (struct mimg_run){0};
	int r = img->drv->runs->map(img, off, len, run);
	if (r == 0 && (run->len == 0 || run->len > len))
		r = mimg_err(-EIO, "%s: %s: run of %llu bytes at %llu",
			     img->filename, img->drv->name,
			     (unsigned long long)run->len,
			     (unsigned long long)off);
	return r;
}

/* A DATA run must lie in the file: past its end a read would return
 * zeroes for what the image says is data (qemu-img reads them so). */
static int data_in_file(struct mimg *img, uint64_t pos, uint64_t host, size_t n,
			uint64_t *file_size)
{
	int r;
	if (*file_size == UINT64_MAX &&
	    (r = mimg_file_size(img->file, file_size)) < 0)
		return r;
	if (ck_range_within(host, n, *file_size))
		return 0;
	return mimg_err(-EIO,
			"%s: %s: the data of offset %llu is at %llu, outside "
			"the file",
			img->filename, img->drv->name, (unsigned long long)pos,
			(unsigned long long)host);
}

/* Copy LEN bytes of the DECODED run RUN into IOV at byte DONE: from the
 * unit the image decoded last when it is RUN's, else read, decoded and
 * kept in its place (decoded.h). */
static int read_decoded(struct mimg *img, const struct mimg_run *run,
			const struct iovec *iov, int iovcnt, size_t done,
			size_t len)
{
	const struct mimg_runs *runs = img->drv->runs;
	struct mimg_decode_unit u = {.key = run->unit,
				     .what = runs->what,
				     .decode = runs->decode,
				     .arg = img};
	int r = runs->unit(img, run, &u);
	if (r < 0)
		return r;
	return mimg__decoded_read(&img->decoded, img->file, &u, run->skip, iov,
				  iovcnt, done, len);
}

int mimg__runs_preadv(struct mimg *img, const struct iovec *iov, int iovcnt,
		      uint64_t off, size_t len)
{
	uint64_t file_size = UINT64_MAX; /* asked when first needed */
	size_t done = 0;
	while (done < len) {
		struct mimg_run run;
		uint64_t pos = off + done;
		int r = map_run(img, pos, len - done, &run);
		if (r < 0)
			return r;
		size_t n = (size_t)run.len;
		switch (run.kind) {
		case MIMG_RUN_BELOW:
			r = mimg__read_below(img, iov, iovcnt, done, pos, n);
			break;
		case MIMG_RUN_ZERO: iov_memset(iov, iovcnt, done, 0, n); break;
		case MIMG_RUN_DATA:
			r = data_in_file(img, pos, run.host, n, &file_size);
			if (r == 0)
				r = mimg__file_preadv_slice(img->file, iov,
							    iovcnt, done, n,
							    run.host);
			break;
		case MIMG_RUN_DECODED:
			r = read_decoded(img, &run, iov, iovcnt, done, n);
			break;
		}
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}

int mimg__runs_block_status(struct mimg *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, unsigned *status,
			    uint64_t *host_off)
{
	struct mimg_run run;
	int r = map_run(img, off, len, &run);
	if (r < 0)
		return r;
	*pnum = run.len;
	*host_off = 0;
	switch (run.kind) {
	case MIMG_RUN_BELOW: *status = 0; break;
	case MIMG_RUN_ZERO: *status = MIMG_BS_ZERO | MIMG_BS_ALLOCATED; break;
	case MIMG_RUN_DATA:
		*status = MIMG_BS_DATA | MIMG_BS_ALLOCATED |
			  MIMG_BS_OFFSET_VALID;
		*host_off = run.host;
		break;
	case MIMG_RUN_DECODED:
		*status = MIMG_BS_DATA | MIMG_BS_ALLOCATED |
			  (run.compressed ? MIMG_BS_COMPRESSED : 0);
		break;
	}
	return 0;
}
