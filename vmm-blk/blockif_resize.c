/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Size changes: blockif_resize(), the resize callback, and for raw images
 * a thread that notices the file being resized by another program (as
 * bhyve notices it with kqueue), so `truncate -s +1G disk.img` grows the
 * guest's disk.  Other formats change size only through blockif_resize():
 * resizing a qcow2 or VMDK image that is open elsewhere is not safe.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <mimg.h>

#include "blockif_impl.h"

/* How often the watcher looks at the file. */
#define WATCH_INTERVAL_MS 500

/*
 * Make the image SIZE bytes with no request running, and return the
 * callback to call (outside the lock) or NULL.  Called with the mutex;
 * 0 or a positive errno in *ERRP.
 */
static blockif_resize_cb *set_size(struct blockif_ctxt *bc, uint64_t size,
				   void **argp, int *errp)
{
	bool was_paused = blockif_quiesce(bc);
	int r = mimg_truncate(bc->img, size, MIMG_PREALLOC_OFF);

	if (r == 0)
		__atomic_store_n(&bc->size, mimg_size(bc->img),
				 __ATOMIC_RELEASE);
	bc->paused = was_paused;
	pthread_cond_broadcast(&bc->work_cond);
	*errp = r < 0 ? -r : 0;
	*argp = bc->resize_arg;
	return r == 0 ? bc->resize_cb : NULL;
}

int blockif_resize(struct blockif_ctxt *bc, off_t size)
{
	blockif_resize_cb *cb;
	void *arg;
	int err;

	if (size < 0)
		return EINVAL;
	if (bc->ro)
		return EROFS;
	pthread_mutex_lock(&bc->mtx);
	cb = set_size(bc, (uint64_t)size, &arg, &err);
	pthread_mutex_unlock(&bc->mtx);
	if (err) {
		blockif_warn(bc->ident, "%s", mimg_errmsg());
		return err;
	}
	if (cb)
		cb(bc, arg, (size_t)blockif_disk_size(bc));
	return 0;
}

/* Wait up to the interval for close; true when closing. */
static bool watch_wait(struct blockif_ctxt *bc)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += WATCH_INTERVAL_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	if (!bc->closing)
		pthread_cond_timedwait(&bc->watch_cond, &bc->mtx, &ts);
	return bc->closing;
}

static void *watch_main(void *arg)
{
	struct blockif_ctxt *bc = arg;
	off_t failed = -1; /* a size that could not be followed */

	pthread_mutex_lock(&bc->mtx);
	while (!watch_wait(bc)) {
		blockif_resize_cb *cb = NULL;
		struct stat st;
		void *cb_arg;
		int err = 0;

		/* Under the lock, so a blockif_resize() is seen whole. */
		if (stat(bc->watch_path, &st) == 0 && st.st_size >= 0 &&
		    st.st_size != failed &&
		    (uint64_t)st.st_size != blockif_disk_size(bc))
			cb = set_size(bc, (uint64_t)st.st_size, &cb_arg, &err);
		if (err) {
			blockif_warn(bc->ident,
				     "following the resized file: %s",
				     mimg_errmsg());
			failed = st.st_size;
		}
		if (cb) {
			pthread_mutex_unlock(&bc->mtx);
			cb(bc, cb_arg, (size_t)blockif_disk_size(bc));
			pthread_mutex_lock(&bc->mtx);
		}
	}
	pthread_mutex_unlock(&bc->mtx);
	return NULL;
}

/* Watch a writable raw image's file (resizing needs write access).  An
 * NBD export (a URI) has no file here, and its size is fixed while it is
 * connected. */
static int start_watcher(struct blockif_ctxt *bc)
{
	int err;

	if (bc->ro || strcmp(mimg_format(bc->img), "raw") != 0 ||
	    strstr(mimg_filename(bc->img), "://"))
		return 0;
	bc->watch_path = realpath(mimg_filename(bc->img), NULL);
	if (!bc->watch_path)
		return errno;
	err = pthread_create(&bc->watcher, NULL, watch_main, bc);
	if (err) {
		free(bc->watch_path);
		bc->watch_path = NULL;
		return err;
	}
	bc->watching = true;
	return 0;
}

int blockif_register_resize_callback(struct blockif_ctxt *bc,
				     blockif_resize_cb *cb, void *cb_arg)
{
	int err = 0;

	if (!cb)
		return EINVAL;
	pthread_mutex_lock(&bc->mtx);
	if (bc->resize_cb) {
		err = EBUSY;
	} else {
		bc->resize_cb = cb;
		bc->resize_arg = cb_arg;
		err = start_watcher(bc);
		if (err) {
			bc->resize_cb = NULL;
			bc->resize_arg = NULL;
		}
	}
	pthread_mutex_unlock(&bc->mtx);
	return err;
}
