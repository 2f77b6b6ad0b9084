/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Host files that are NBD exports, through libnbd: nbd://HOST[:PORT]/NAME,
 * nbd+unix:///NAME?socket=PATH and their TLS forms nbds://, nbds+unix://.
 *
 * Every request runs libnbd's asynchronous API under a deadline, so a
 * server that stops answering gives -ETIMEDOUT instead of a hang; a
 * connection that timed out is abandoned (never polled again, so libnbd
 * never writes into a buffer its caller has since reused).  Concurrent
 * callers share one connection, their requests in flight together (more
 * where asked for and the server offers multi-conn).  The export is a fixed-size device: reads past its end
 * are zeroes (a short file), writes past it fail.  Holes come from the
 * base:allocation context: only ranges the server says read as zeroes are
 * reported as holes, since an NBD "hole" alone may hold anything.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dynlib.h"
#include "error.h"
#include "file-impl.h"
#include "iov.h"

#define NBD_MAX_CONN 8
#define NBD_MAX_INFLIGHT 16	/* commands in flight per call */
#define NBD_MAX_IO (32u << 20)	/* largest read or write request */
#define NBD_MAX_ZERO (1u << 30) /* largest zero or block-status request */
#define NBD_DEFAULT_TIMEOUT 60	/* seconds */
#define NBD_EXTENT_CACHE 256	/* extents kept from a block-status reply */

/* Extents of the base:allocation context: [off, end) in N pieces. */
struct extent_list {
	uint64_t off, end;
	int n;
	uint32_t len[NBD_EXTENT_CACHE];
	bool zero[NBD_EXTENT_CACHE];
};

/*
 * The last reply, so that a caller walking the export (convert asks at
 * every window) costs one round trip per reply rather than one per
 * question.  Any write through this file drops it; GEN tells a reply
 * that raced with a write not to be kept.
 */
struct extent_cache {
	pthread_mutex_t lock;
	uint64_t gen;
	struct extent_list l; /* l.end == l.off: nothing */
};

/*
 * Callers share a connection: each issues its commands and waits for
 * them, and one waiter at a time polls the socket for all (POLLING),
 * the others sleep on POLLED until a poll step ends.  libnbd's handle
 * lock is not held across our poll(2), so commands can be issued while
 * replies are awaited, and the server sees them all in flight.
 */
struct nbd_conn {
	pthread_mutex_t lock;
	pthread_cond_t polled;
	struct nbd_handle *h;
	bool polling; /* a waiter is in poll_step */
	bool broken;  /* abandoned: never polled again */
	int users;    /* callers between conn_get and conn_put */
};

struct nbd_file {
	struct mimg_file f;
	uint64_t size;
	uint32_t max_io;
	int timeout_ms;
	bool can_flush, can_zero, can_extents;
	bool no_flush;	      /* MIMG_FILE_NO_FLUSH (cache=unsafe) */
	uint32_t write_flags; /* FUA for MIMG_FILE_SYNC */
	struct extent_cache extents;
	int nconn;
	unsigned next; /* round-robin start for conn_get */
	struct nbd_conn conn[NBD_MAX_CONN];
};

static struct nbd_file *nbd_of(struct mimg_file *f)
{
	return (struct nbd_file *)f;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libnbd's last error on this thread as a mimg error. */
static int nbd_error(const char *path, const char *fmt_what, uint64_t len,
		     uint64_t off)
{
	int e = mimg__nbd.nbd_get_errno();
	const char *msg = mimg__nbd.nbd_get_error();
	if (e <= 0)
		e = EIO;
	if (fmt_what)
		return mimg_err(-e, "%s: %s of %llu bytes at offset %llu: %s",
				path, fmt_what, (unsigned long long)len,
				(unsigned long long)off,
				msg ? msg : strerror(e));
	return mimg_err(-e, "%s: %s", path, msg ? msg : strerror(e));
}

/* The connection with the fewest callers. */
static struct nbd_conn *conn_get(struct nbd_file *n)
{
	unsigned start = __atomic_fetch_add(&n->next, 1, __ATOMIC_RELAXED);
	struct nbd_conn *best = NULL;
	int least = INT_MAX;
	for (int i = 0; i < n->nconn; i++) {
		struct nbd_conn *c =
			&n->conn[(start + (unsigned)i) % (unsigned)n->nconn];
		int users = __atomic_load_n(&c->users, __ATOMIC_RELAXED);
		if (users < least) {
			best = c;
			least = users;
		}
	}
	__atomic_fetch_add(&best->users, 1, __ATOMIC_RELAXED);
	return best;
}

static void conn_put(struct nbd_conn *c)
{
	__atomic_fetch_sub(&c->users, 1, __ATOMIC_RELAXED);
}

/* One request in flight: what to say about it when it fails. */
struct nbd_cmd {
	int64_t cookie;
	const char *what;
	uint64_t off, len;
};

/* The failure of CMD on C, naming a lost connection as such. */
static int cmd_failed(struct nbd_file *n, struct nbd_conn *c,
		      const struct nbd_cmd *cmd)
{
	int e = nbd_error(n->f.path, cmd->what, cmd->len, cmd->off);
	if (mimg__nbd.nbd_aio_is_dead(c->h) == 1 ||
	    mimg__nbd.nbd_aio_is_closed(c->h) == 1)
		return mimg_err_prefix(e, "connection to the NBD server lost");
	return e;
}

static int conn_abandoned(struct nbd_file *n)
{
	return mimg_err(-EIO,
			"%s: the connection to the NBD server was "
			"abandoned after a request timed out or left it in "
			"an unknown state",
			n->f.path);
}

/* Mark C abandoned (under c->lock) and wait until nobody polls it: then
 * libnbd touches no caller's buffer any more. */
static void conn_abandon(struct nbd_conn *c)
{
	c->broken = true;
	while (c->polling)
		pthread_cond_wait(&c->polled, &c->lock);
}

static int conn_usable(struct nbd_file *n, struct nbd_conn *c)
{
	pthread_mutex_lock(&c->lock);
	bool broken = c->broken;
	pthread_mutex_unlock(&c->lock);
	return broken ? conn_abandoned(n) : 0;
}

/* Sleep on POLLED for at most MS milliseconds. */
static void wait_polled(struct nbd_conn *c, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&c->polled, &c->lock, &ts);
}

/*
 * One step of the state machine: wait for the socket as libnbd asks,
 * at most MS milliseconds (short, so that a command issued meanwhile
 * that needs to write is noticed soon), and let libnbd move on.
 * Returns -1 when libnbd fails.
 */
static int poll_step(struct nbd_handle *h, int ms)
{
	int fd = mimg__nbd.nbd_aio_get_fd(h);
	unsigned dir = mimg__nbd.nbd_aio_get_direction(h);
	struct pollfd p = {.fd = fd, .events = 0};
	if (fd < 0)
		return -1;
	if (dir & LIBNBD_AIO_DIRECTION_READ)
		p.events |= POLLIN;
	if (dir & LIBNBD_AIO_DIRECTION_WRITE)
		p.events |= POLLOUT;
	int r = poll(&p, 1, ms);
	if (r < 0)
		return errno == EINTR ? 0 : -1;
	if (r == 0)
		return 0;
	if (p.revents & (POLLIN | POLLHUP | POLLERR))
		return mimg__nbd.nbd_aio_notify_read(h);
	if (p.revents & POLLOUT)
		return mimg__nbd.nbd_aio_notify_write(h);
	return 0;
}

#define NBD_POLL_STEP_MS 100

/*
 * Wait for the CMDS on connection C to complete, all of them (their
 * buffers belong to the caller), within the timeout.  Returns 0 or the
 * first failure.  A connection that times out or fails in a way that
 * leaves commands pending is abandoned: never polled again.
 */
static int wait_all(struct nbd_file *n, struct nbd_conn *c,
		    const struct nbd_cmd *cmds, int ncmds)
{
	int64_t deadline = now_ms() + n->timeout_ms;
	int r = 0, i = 0;

	pthread_mutex_lock(&c->lock);
	while (i < ncmds) {
		const struct nbd_cmd *cmd = &cmds[i];
		int done = mimg__nbd.nbd_aio_command_completed(c->h,
							       cmd->cookie);
		if (done != 0) {
			if (done == -1 && r == 0)
				r = cmd_failed(n, c, cmd);
			i++;
			continue;
		}
		int64_t left = deadline - now_ms();
		if (c->broken) {
			r = r ? r : conn_abandoned(n);
			break;
		}
		if (left <= 0) {
			conn_abandon(c);
			r = mimg_err(-ETIMEDOUT,
				     "%s: %s of %llu bytes at "
				     "offset %llu: no answer from the NBD "
				     "server in %d s",
				     n->f.path, cmd->what,
				     (unsigned long long)cmd->len,
				     (unsigned long long)cmd->off,
				     n->timeout_ms / 1000);
			break;
		}
		if (c->polling) {
			wait_polled(c, left);
			continue;
		}
		c->polling = true;
		pthread_mutex_unlock(&c->lock);
		int pr = poll_step(c->h, left < NBD_POLL_STEP_MS
						 ? (int)left
						 : NBD_POLL_STEP_MS);
		pthread_mutex_lock(&c->lock);
		c->polling = false;
		pthread_cond_broadcast(&c->polled);
		if (pr != -1)
			continue;
		/* A dead connection retires its commands with an error;
		 * one that does not is unusable. */
		if ((done = mimg__nbd.nbd_aio_command_completed(c->h,
								cmd->cookie)) ==
		    0) {
			int e = cmd_failed(n, c, cmd);
			conn_abandon(c);
			r = r ? r : e;
			break;
		}
		if (done == -1 && r == 0)
			r = cmd_failed(n, c, cmd);
		i++;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Issue one command on C and wait for it. */
static int run_one(struct nbd_file *n, struct nbd_conn *c, int64_t cookie,
		   const char *what, uint64_t off, uint64_t len)
{
	if (cookie == -1)
		return nbd_error(n->f.path, what, len, off);
	struct nbd_cmd cmd = {cookie, what, off, len};
	return wait_all(n, c, &cmd, 1);
}

/*
 * Move IOV to or from the export at OFF in requests of at most max_io
 * bytes, up to NBD_MAX_INFLIGHT at a time.  Reads past the end of the
 * export read as zeroes.
 */
static int transfer(struct nbd_file *n, const struct iovec *iov, int iovcnt,
		    uint64_t off, bool write)
{
	const char *what = write ? "write" : "read";
	struct nbd_cmd cmds[NBD_MAX_INFLIGHT];
	struct nbd_conn *c = conn_get(n);
	int ncmds = 0, r = conn_usable(n, c);

	for (int i = 0; i < iovcnt && r == 0; i++) {
		uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;
		while (left && r == 0) {
			size_t len = left < n->max_io ? left : n->max_io;
			if (!write && off >= n->size) {
				memset(p, 0, left);
				off += left;
				break;
			}
			if (!write && len > n->size - off)
				len = (size_t)(n->size - off);
			if (ncmds == NBD_MAX_INFLIGHT) {
				r = wait_all(n, c, cmds, ncmds);
				ncmds = 0;
				if (r < 0)
					break;
			}
			int64_t ck = write ? mimg__nbd.nbd_aio_pwrite(
						     c->h, p, len, off,
						     NBD_NULL_COMPLETION,
						     n->write_flags)
					   : mimg__nbd.nbd_aio_pread(
						     c->h, p, len, off,
						     NBD_NULL_COMPLETION, 0);
			if (ck == -1) {
				r = nbd_error(n->f.path, what, len, off);
				break;
			}
			cmds[ncmds++] = (struct nbd_cmd){ck, what, off, len};
			p += len;
			off += len;
			left -= len;
		}
	}
	if (ncmds) {
		int rw = wait_all(n, c, cmds, ncmds);
		if (r == 0)
			r = rw;
	}
	conn_put(c);
	return r;
}

/* Called before and after every write: a reply that saw the export
 * before the write is stale after it. */
static void cache_drop(struct extent_cache *ec)
{
	pthread_mutex_lock(&ec->lock);
	ec->gen++;
	ec->l.end = ec->l.off;
	pthread_mutex_unlock(&ec->lock);
}

static int nf_preadv(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		     uint64_t off)
{
	return transfer(nbd_of(f), iov, iovcnt, off, false);
}

/* Writes must lie inside the export, which cannot grow. */
static int check_inside(struct nbd_file *n, uint64_t off, uint64_t len,
			const char *what)
{
	if (off <= n->size && len <= n->size - off)
		return 0;
	return mimg_err(-ENOSPC,
			"%s: %s of %llu bytes at offset %llu is past "
			"the end of the NBD export (%llu bytes)",
			n->f.path, what, (unsigned long long)len,
			(unsigned long long)off, (unsigned long long)n->size);
}

static int nf_pwritev(struct mimg_file *f, const struct iovec *iov, int iovcnt,
		      uint64_t off)
{
	struct nbd_file *n = nbd_of(f);
	int r = check_inside(n, off, iov_total(iov, iovcnt), "write");
	if (r < 0)
		return r;
	cache_drop(&n->extents);
	r = transfer(n, iov, iovcnt, off, true);
	cache_drop(&n->extents);
	return r;
}

static int nf_flush(struct mimg_file *f)
{
	struct nbd_file *n = nbd_of(f);
	if (!n->can_flush || n->no_flush)
		return 0;
	/* Without multi-conn there is one connection; with it, a flush on
	 * one covers the writes completed on all. */
	struct nbd_conn *c = conn_get(n);
	int r = conn_usable(n, c);
	if (r == 0)
		r = run_one(n, c,
			    mimg__nbd.nbd_aio_flush(c->h, NBD_NULL_COMPLETION,
						    0),
			    "flush", 0, 0);
	conn_put(c);
	return r;
}

static int nf_size(struct mimg_file *f, uint64_t *sizep)
{
	*sizep = nbd_of(f)->size;
	return 0;
}

/* Host storage in use is not something NBD tells. */
static int nf_allocated(struct mimg_file *f, uint64_t *bytesp)
{
	(void)f;
	(void)bytesp;
	return -ENOTSUP;
}

static int nf_truncate(struct mimg_file *f, uint64_t size)
{
	struct nbd_file *n = nbd_of(f);
	if (size <= n->size)
		return 0;
	return mimg_err(-ENOSPC, "%s: the NBD export is %llu bytes, needs %llu",
			f->path, (unsigned long long)n->size,
			(unsigned long long)size);
}

/* NBD_CMD_WRITE_ZEROES over [off, off+len); trim is not used for
 * discards because it does not promise that the range reads as zeroes. */
static int nf_zero(struct mimg_file *f, uint64_t off, uint64_t len,
		   bool may_unmap)
{
	struct nbd_file *n = nbd_of(f);
	struct nbd_conn *c;
	int r;

	if (!n->can_zero)
		return -ENOTSUP;
	if ((r = check_inside(n, off, len, "zero")) < 0)
		return r;
	cache_drop(&n->extents);
	c = conn_get(n);
	r = conn_usable(n, c);
	while (len && r == 0) {
		uint64_t chunk = len < NBD_MAX_ZERO ? len : NBD_MAX_ZERO;
		r = run_one(
			n, c,
			mimg__nbd.nbd_aio_zero(
				c->h, chunk, off, NBD_NULL_COMPLETION,
				n->write_flags |
					(may_unmap ? 0
						   : LIBNBD_CMD_FLAG_NO_HOLE)),
			"zero", off, chunk);
		off += chunk;
		len -= chunk;
	}
	conn_put(c);
	cache_drop(&n->extents);
	return r;
}

static int nf_punch(struct mimg_file *f, uint64_t off, uint64_t len)
{
	int r = nf_zero(f, off, len, true);
	if (r == -ENOTSUP)
		return mimg_err(-ENOTSUP, "%s: the NBD server cannot zero",
				f->path);
	return r;
}

/* A reply being taken apart: extents from l.off up to LIMIT. */
struct extent_reply {
	bool seen;
	const char *bad; /* why the reply cannot be used */
	uint64_t limit;
	struct extent_list l;
};

/* Keep the extents that lie inside the export; a zero-length extent is
 * a protocol violation (the reply would describe nothing). */
static int extent_cb(void *opaque, const char *context, uint64_t off,
		     uint32_t *entries, size_t nr, int *error)
{
	struct extent_reply *x = opaque;
	struct extent_list *l = &x->l;
	(void)error;
	if (x->seen || strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
		return 0;
	x->seen = true;
	if (off != l->off) {
		x->bad = "extents for another offset";
		return 0;
	}
	if (nr < 2) {
		x->bad = "no extents";
		return 0;
	}
	l->end = off;
	for (size_t i = 0;
	     i + 1 < nr && l->n < NBD_EXTENT_CACHE && l->end < x->limit;
	     i += 2) {
		uint32_t len = entries[i];
		if (len == 0) {
			x->bad = "an empty extent";
			return 0;
		}
		/* The last extent may run past the request (the protocol
		 * allows it) or past the export (it does not): either way
		 * only what lies inside is used. */
		if (len > x->limit - l->end)
			len = (uint32_t)(x->limit - l->end);
		l->len[l->n] = len;
		l->zero[l->n] = entries[i + 1] & LIBNBD_STATE_ZERO;
		l->n++;
		l->end += len;
	}
	return 0;
}

/* The run at OFF (at most LEN bytes) if L describes OFF. */
static bool list_run(const struct extent_list *l, uint64_t off, uint64_t len,
		     bool *is_data, uint64_t *pnum)
{
	if (off < l->off || off >= l->end)
		return false;
	uint64_t pos = l->off;
	int i = 0;
	while (pos + l->len[i] <= off)
		pos += l->len[i++];
	bool zero = l->zero[i];
	uint64_t run = pos + l->len[i] - off;
	while (++i < l->n && l->zero[i] == zero)
		run += l->len[i];
	*is_data = !zero;
	*pnum = run < len ? run : len;
	return true;
}

static bool cache_lookup(struct extent_cache *ec, uint64_t off, uint64_t len,
			 bool *is_data, uint64_t *pnum)
{
	pthread_mutex_lock(&ec->lock);
	bool hit = list_run(&ec->l, off, len, is_data, pnum);
	pthread_mutex_unlock(&ec->lock);
	return hit;
}

static void cache_store(struct extent_cache *ec, uint64_t gen,
			const struct extent_list *l)
{
	pthread_mutex_lock(&ec->lock);
	if (ec->gen == gen)
		ec->l = *l;
	pthread_mutex_unlock(&ec->lock);
}

static uint64_t cache_gen(struct extent_cache *ec)
{
	pthread_mutex_lock(&ec->lock);
	uint64_t gen = ec->gen;
	pthread_mutex_unlock(&ec->lock);
	return gen;
}

static int nf_extent(struct mimg_file *f, uint64_t off, uint64_t len,
		     bool *is_data, uint64_t *pnum)
{
	struct nbd_file *n = nbd_of(f);
	struct extent_reply *x;
	struct nbd_conn *c;
	int r;

	if (!n->can_extents)
		return 0;
	if (off >= n->size) { /* past the end reads as zeroes */
		*is_data = false;
		return 0;
	}
	if (cache_lookup(&n->extents, off, len, is_data, pnum))
		return 0;
	uint64_t ask = len < n->size - off ? len : n->size - off;
	if (ask > NBD_MAX_ZERO)
		ask = NBD_MAX_ZERO;
	if (!(x = calloc(1, sizeof(*x))))
		return mimg_err(-ENOMEM, "out of memory");
	x->l.off = off;
	x->limit = n->size;
	uint64_t gen = cache_gen(&n->extents);
	c = conn_get(n);
	r = conn_usable(n, c);
	if (r == 0) {
		nbd_extent_callback cb = {.callback = extent_cb,
					  .user_data = x};
		r = run_one(n, c,
			    mimg__nbd.nbd_aio_block_status(c->h, ask, off, cb,
							   NBD_NULL_COMPLETION,
							   0),
			    "block status", off, ask);
	}
	conn_put(c);
	if (r == 0 && (!x->seen || x->bad))
		r = mimg_err(-EIO,
			     "%s: the NBD server returned %s for "
			     "block status at offset %llu",
			     f->path, x->seen ? x->bad : "no extents",
			     (unsigned long long)off);
	if (r == 0) {
		/* The first extent is not empty and lies inside the
		 * export, so the reply describes OFF. */
		cache_store(&n->extents, gen, &x->l);
		list_run(&x->l, off, ask, is_data, pnum);
	}
	free(x);
	return r;
}

static void conn_init(struct nbd_conn *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&c->polled, &a);
	pthread_condattr_destroy(&a);
	pthread_mutex_init(&c->lock, NULL);
}

/* Disconnect politely when the connection still works, briefly. */
static void conn_close(struct nbd_file *n, struct nbd_conn *c)
{
	if (!c->broken && mimg__nbd.nbd_aio_is_ready(c->h) == 1 &&
	    mimg__nbd.nbd_aio_disconnect(c->h, 0) == 0) {
		int64_t deadline = now_ms() + 1000;
		while (mimg__nbd.nbd_aio_is_closed(c->h) == 0 &&
		       mimg__nbd.nbd_aio_is_dead(c->h) == 0 &&
		       now_ms() < deadline &&
		       mimg__nbd.nbd_poll(c->h, 100) != -1)
			;
	}
	(void)n;
	mimg__nbd.nbd_close(c->h);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->polled);
}

static int nf_close(struct mimg_file *f)
{
	struct nbd_file *n = nbd_of(f);
	for (int i = 0; i < n->nconn; i++)
		conn_close(n, &n->conn[i]);
	pthread_mutex_destroy(&n->extents.lock);
	free(n);
	return 0;
}

static const struct mimg_file_ops nbd_ops = {
	.preadv = nf_preadv,
	.pwritev = nf_pwritev,
	.flush = nf_flush,
	.size = nf_size,
	.allocated = nf_allocated,
	.truncate = nf_truncate,
	.punch = nf_punch,
	.zero = nf_zero,
	.extent = nf_extent,
	.close = nf_close,
};

/* The request timeout: $MIMG_NBD_TIMEOUT seconds, or the default. */
static int timeout_ms(void)
{
	const char *s = getenv("MIMG_NBD_TIMEOUT");
	char *end;
	long v = s ? strtol(s, &end, 10) : 0;
	if (!s || *end || end == s || v <= 0 || v > 86400)
		v = NBD_DEFAULT_TIMEOUT;
	return (int)v * 1000;
}

/* Connections to open: one (its requests are pipelined), or up to
 * $MIMG_NBD_CONNECTIONS where the server offers multi-conn. */
static int max_connections(void)
{
	const char *s = getenv("MIMG_NBD_CONNECTIONS");
	char *end;
	long v = s ? strtol(s, &end, 10) : 0;
	if (!s || *end || end == s || v <= 0)
		return 1;
	return v > NBD_MAX_CONN ? NBD_MAX_CONN : (int)v;
}

/* Connect H to URI and finish the handshake within TIMEOUT ms. */
static int connect_one(struct nbd_handle **hp, const char *uri, int timeout)
{
	struct nbd_handle *h = mimg__nbd.nbd_create();
	int r;

	*hp = NULL;
	if (!h)
		return nbd_error(uri, NULL, 0, 0);
	if (mimg__nbd.nbd_set_uri_allow_local_file(h, true) == -1 ||
	    mimg__nbd.nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) ==
		    -1 ||
	    mimg__nbd.nbd_aio_connect_uri(h, uri) == -1) {
		r = nbd_error(uri, NULL, 0, 0);
		mimg__nbd.nbd_close(h);
		return mimg_err_prefix(r, "Could not connect to NBD server");
	}
	int64_t deadline = now_ms() + timeout;
	while (mimg__nbd.nbd_aio_is_connecting(h) == 1) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			mimg__nbd.nbd_close(h);
			return mimg_err(-ETIMEDOUT,
					"%s: no answer from the NBD "
					"server in %d s",
					uri, timeout / 1000);
		}
		if (mimg__nbd.nbd_poll(h, left > INT_MAX ? INT_MAX
							 : (int)left) == -1)
			break;
	}
	if (mimg__nbd.nbd_aio_is_ready(h) != 1) {
		r = nbd_error(uri, NULL, 0, 0);
		mimg__nbd.nbd_close(h);
		return mimg_err_prefix(r, "Could not connect to NBD server");
	}
	*hp = h;
	return 0;
}

/* What the first connection tells about the export. */
static int describe_export(struct nbd_file *n, struct nbd_handle *h, bool rw)
{
	int64_t size = mimg__nbd.nbd_get_size(h);
	int64_t max = mimg__nbd.nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
	if (size < 0)
		return nbd_error(n->f.path, NULL, 0, 0);
	if (rw && mimg__nbd.nbd_is_read_only(h) == 1)
		return mimg_err(-EROFS, "%s: the NBD export is read-only",
				n->f.path);
	n->size = (uint64_t)size;
	n->max_io = max > 0 && max < NBD_MAX_IO ? (uint32_t)max : NBD_MAX_IO;
	n->can_flush = mimg__nbd.nbd_can_flush(h) == 1;
	n->can_zero = mimg__nbd.nbd_can_zero(h) == 1;
	n->can_extents = mimg__nbd.nbd_can_meta_context(
				 h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
	return 0;
}

int mimg_file_open_nbd(struct mimg_file **fp, const char *uri, unsigned flags)
{
	bool rw = flags & (MIMG_FILE_RDWR | MIMG_FILE_CREATE);
	struct nbd_handle *h;
	struct nbd_file *n;
	int r;

	*fp = NULL;
	if ((r = mimg__nbd_load(uri)) < 0)
		return r;
	if (!(n = calloc(1, sizeof(*n))))
		return mimg_err(-ENOMEM, "%s: out of memory", uri);
	n->timeout_ms = timeout_ms();
	pthread_mutex_init(&n->extents.lock, NULL);
	if ((r = mimg__file_init(&n->f, &nbd_ops, uri,
				 rw ? MIMG_FILE_CAN_WRITE : 0)) < 0) {
		pthread_mutex_destroy(&n->extents.lock);
		free(n);
		return r;
	}
	if ((r = connect_one(&h, uri, n->timeout_ms)) < 0)
		goto fail;
	n->conn[0].h = h;
	conn_init(&n->conn[0]);
	n->nconn = 1;
	if ((r = describe_export(n, h, rw)) < 0)
		goto fail_conn;
	n->no_flush = flags & MIMG_FILE_NO_FLUSH;
	if ((flags & MIMG_FILE_SYNC) && mimg__nbd.nbd_can_fua(h) == 1)
		n->write_flags = LIBNBD_CMD_FLAG_FUA;
	if (n->can_extents)
		n->f.caps |= MIMG_FILE_CAN_SEEK_DATA;
	if (n->can_zero)
		n->f.caps |= rw ? MIMG_FILE_CAN_ZERO | MIMG_FILE_CAN_PUNCH : 0;
	/* One connection with many requests in flight moved data faster
	 * than several against nbdkit; more can be asked for where the
	 * server promises a consistent view across connections.  One
	 * that then refuses just leaves fewer. */
	int want = max_connections();
	while (mimg__nbd.nbd_can_multi_conn(h) == 1 && n->nconn < want &&
	       connect_one(&n->conn[n->nconn].h, uri, n->timeout_ms) == 0) {
		conn_init(&n->conn[n->nconn]);
		n->nconn++;
	}
	mimg_err_clear();
	*fp = &n->f;
	return 0;

fail_conn:
	conn_close(n, &n->conn[0]);
fail:
	pthread_mutex_destroy(&n->extents.lock);
	free(n->f.path);
	free(n);
	return r;
}
