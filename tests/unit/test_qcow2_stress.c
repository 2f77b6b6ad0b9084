/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 concurrency stress: many threads do random, verified I/O on one
 * open image at once.  The image is cut into stripes smaller than a
 * cluster, dealt out to the threads in turn, so neighbouring threads
 * allocate, copy-on-write, zero and discard inside the same clusters and
 * L2 tables concurrently; each thread only writes its own stripes, so it
 * knows what they must contain and checks every read of them.  Afterwards
 * qemu-img check must find the image clean (no leaks either: nothing
 * crashed) and qemu's reading of it must match every thread's model.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimg.h"
#include "testutil.h"

#define UNIT 16u
#define NTHREADS 8
#define MAXIO (256u << 10)
#define V_ZERO UINT32_MAX
/* After a discard: zeroes, backing data or the old data are all allowed. */
#define V_UNKNOWN (UINT32_MAX - 1)

struct stress_cfg {
	const char *tcase; /* its test case (CK_RUN_CASE) */
	const char *name;
	const char *opts;
	uint64_t size;
	uint64_t backing_size; /* 0: no backing file */
	/* Instead of a backing file, the image starts as qemu-img's
	 * compressed conversion of that content (backing_size bytes). */
	bool start_compressed;
	uint32_t stripe;
	int ops_per_thread;
};

struct stress {
	const struct stress_cfg *cfg;
	struct mimg *img;
	uint32_t *cur; /* per unit; thread t only touches its stripes */
	bool can_discard;
};

struct thread_ctx {
	struct stress *st;
	int id;
	uint64_t rng;
	uint32_t next_version;
	char failure[512];
	uint8_t buf[MAXIO];
	uint8_t want[MAXIO];
};

static void unit_content(const struct stress_cfg *cfg, uint64_t u, uint32_t v,
			 uint8_t out[UNIT])
{
	if (v == V_ZERO || (v == 0 && u * UNIT >= cfg->backing_size)) {
		memset(out, 0, UNIT);
		return;
	}
	if (v == 0) {
		/* Initial content: compressible, yet different everywhere. */
		memcpy(out, &u, 8);
		memcpy(out + 8, "initial!", 8);
		return;
	}
	uint64_t a = tu_mix64(u * 0x9e3779b97f4a7c15ull ^ v);
	uint64_t b = tu_mix64(a ^ u);
	memcpy(out, &a, 8);
	memcpy(out + 8, &b, 8);
}

static void fill_range(const struct stress_cfg *cfg, uint64_t off, uint64_t len,
		       uint32_t v, uint8_t *buf)
{
	for (uint64_t u = off / UNIT; u < (off + len) / UNIT; u++)
		unit_content(cfg, u, v, buf + (u * UNIT - off));
}

static uint64_t t_rand(struct thread_ctx *t)
{
	t->rng = t->rng * 6364136223846793005ull + 1442695040888963407ull;
	return t->rng >> 33;
}

/* A random range inside one of this thread's stripes. */
static void pick_own_range(struct thread_ctx *t, uint64_t *off, uint64_t *len)
{
	const struct stress_cfg *cfg = t->st->cfg;
	uint64_t nstripes = cfg->size / cfg->stripe;
	uint64_t s = (t_rand(t) % (nstripes / NTHREADS)) * NTHREADS +
		     (uint64_t)t->id;
	uint64_t units = cfg->stripe / UNIT;
	if (t_rand(t) % 3 == 0) {
		*off = s * cfg->stripe;
		*len = cfg->stripe;
		return;
	}
	uint64_t first = t_rand(t) % units;
	uint64_t n = 1 + t_rand(t) % (units - first);
	*off = s * cfg->stripe + first * UNIT;
	*len = n * UNIT;
}

static bool owns(const struct thread_ctx *t, uint64_t u)
{
	return (u * UNIT / t->st->cfg->stripe) % NTHREADS == (uint64_t)t->id;
}

static int thread_fail(struct thread_ctx *t, const char *what, uint64_t off,
		       uint64_t len, long ret)
{
	snprintf(t->failure, sizeof(t->failure),
		 "thread %d: %s at %" PRIu64 "+%" PRIu64 ": %ld (%s)", t->id,
		 what, off, len, ret, mimg_errmsg());
	return -1;
}

static int verify(struct thread_ctx *t, uint64_t off, uint64_t len)
{
	const struct stress_cfg *cfg = t->st->cfg;
	for (uint64_t u = off / UNIT; u < (off + len) / UNIT; u++) {
		/* Other threads' units change under us: only the owner may
		 * read its model entry. */
		if (!owns(t, u))
			continue;
		uint32_t v = t->st->cur[u];
		if (v == V_UNKNOWN)
			continue;
		uint8_t want[UNIT];
		unit_content(cfg, u, v, want);
		if (memcmp(t->buf + (u * UNIT - off), want, UNIT) != 0)
			return thread_fail(t, "read returned wrong data",
					   u * UNIT, UNIT, (long)v);
	}
	return 0;
}

/* WHAT over [OFF, OFF+LEN) returned RET (WANT on success): the units
 * there now hold version V, or the thread fails. */
static int record(struct thread_ctx *t, const char *what, uint64_t off,
		  uint64_t len, long ret, long want, uint32_t v)
{
	if (ret != want)
		return thread_fail(t, what, off, len, ret);
	for (uint64_t u = off / UNIT; u < (off + len) / UNIT; u++)
		t->st->cur[u] = v;
	return 0;
}

static int do_write(struct thread_ctx *t)
{
	uint64_t off, len;
	pick_own_range(t, &off, &len);
	uint32_t v = ((uint32_t)t->id << 24) | (t->next_version++ & 0xffffff);
	fill_range(t->st->cfg, off, len, v, t->buf);
	ssize_t n = mimg_pwrite(t->st->img, t->buf, len, off, 0);
	return record(t, "write", off, len, (long)n, (long)len, v);
}

static int do_read(struct thread_ctx *t)
{
	const struct stress_cfg *cfg = t->st->cfg;
	uint64_t off, len;
	if (t_rand(t) % 5 == 0) {
		/* A long read across other threads' stripes too. */
		len = (uint64_t)cfg->stripe * (1 + t_rand(t) % 16);
		if (len > MAXIO)
			len = MAXIO;
		off = UNIT * (t_rand(t) % ((cfg->size - len) / UNIT));
	} else {
		pick_own_range(t, &off, &len);
	}
	ssize_t n = mimg_pread(t->st->img, t->buf, len, off, 0);
	if (n != (ssize_t)len)
		return thread_fail(t, "read", off, len, (long)n);
	return verify(t, off, len);
}

static int do_zero(struct thread_ctx *t)
{
	uint64_t off, len;
	pick_own_range(t, &off, &len);
	unsigned flags = t_rand(t) % 2 ? MIMG_ZERO_MAY_UNMAP : 0;
	int ret = mimg_pwrite_zeroes(t->st->img, off, len, flags);
	return record(t, "write zeroes", off, len, ret, 0, V_ZERO);
}

static int do_discard(struct thread_ctx *t)
{
	uint64_t off, len;
	pick_own_range(t, &off, &len);
	int ret = mimg_discard(t->st->img, off, len, 0);
	return record(t, "discard", off, len, ret, 0, V_UNKNOWN);
}

static int do_block_status(struct thread_ctx *t)
{
	const struct stress_cfg *cfg = t->st->cfg;
	uint64_t off = UNIT * (t_rand(t) % (cfg->size / UNIT));
	uint64_t len = cfg->size - off, pnum = 0;
	unsigned status = 0;
	int ret = mimg_block_status(t->st->img, off, len, &pnum, &status, NULL,
				    0);
	if (ret != 0 || pnum == 0 || pnum > len)
		return thread_fail(t, "block status", off, len, ret ? ret : -1);
	return 0;
}

static void *stress_thread(void *arg)
{
	struct thread_ctx *t = arg;
	for (int i = 0; i < t->st->cfg->ops_per_thread; i++) {
		unsigned r = (unsigned)(t_rand(t) % 100);
		int ret;
		if (r < 40)
			ret = do_write(t);
		else if (r < 75)
			ret = do_read(t);
		else if (r < 85)
			ret = do_zero(t);
		else if (r < 90)
			ret = t->st->can_discard ? do_discard(t) : do_write(t);
		else if (r < 95)
			ret = do_block_status(t);
		else
			ret = mimg_flush(t->st->img, 0) == 0
				      ? 0
				      : thread_fail(t, "flush", 0, 0, -1);
		if (ret != 0)
			break;
	}
	return NULL;
}

static void make_backing(const struct stress_cfg *cfg)
{
	uint8_t *buf = malloc(cfg->backing_size);
	ck_assert_ptr_nonnull(buf);
	fill_range(cfg, 0, cfg->backing_size, 0, buf);
	tu_write_file("base.raw", buf, cfg->backing_size, 0);
	free(buf);
	if (cfg->start_compressed) {
		/* Every cluster compressed: writes must rewrite them. */
		tu_sh("qemu-img convert -c -f raw -O qcow2 -o '%s' base.raw "
		      "stress.qcow2",
		      cfg->opts);
		tu_sh("qemu-img check --output=json stress.qcow2 | grep -q "
		      "'\"compressed-clusters\"'");
		return;
	}
	/* qcow2 backing made by qemu: the chain mixes writers too. */
	tu_sh("qemu-img convert -f raw -O qcow2 base.raw base.qcow2");
}

static void create_image(const struct stress_cfg *cfg)
{
	char text[256];
	snprintf(text, sizeof(text), "%s%s", cfg->opts,
		 cfg->backing_size
			 ? ",backing_file=base.qcow2,backing_fmt=qcow2"
			 : "");
	tu_create("stress.qcow2", "qcow2", cfg->size, text, NULL);
}

/* Every unit's content as READ returned it, against the model. */
static void verify_all(const struct stress *st, const uint8_t *buf,
		       const char *reader)
{
	for (uint64_t u = 0; u < st->cfg->size / UNIT; u++) {
		uint32_t v = st->cur[u];
		if (v == V_UNKNOWN)
			continue;
		uint8_t want[UNIT];
		unit_content(st->cfg, u, v, want);
		/* (Check logs every assertion, so test first.) */
		if (memcmp(buf + u * UNIT, want, UNIT) != 0)
			ck_abort_msg("%s: %s reads wrong data at %" PRIu64,
				     st->cfg->name, reader, u * UNIT);
	}
}

static void run_stress(const struct stress_cfg *cfg)
{
	struct stress st = {.cfg = cfg};
	st.cur = calloc(cfg->size / UNIT, sizeof(*st.cur));
	ck_assert_ptr_nonnull(st.cur);
	if (cfg->backing_size)
		make_backing(cfg);
	if (!cfg->start_compressed)
		create_image(cfg);
	int ret = mimg_open(&st.img, "stress.qcow2", "qcow2", MIMG_OPEN_RDWR);
	ck_assert_msg(ret == 0, "open: %s", mimg_errmsg());
	st.can_discard = mimg_can_discard(st.img);

	struct thread_ctx *ctx[NTHREADS];
	pthread_t tid[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		ctx[i] = calloc(1, sizeof(**ctx));
		ck_assert_ptr_nonnull(ctx[i]);
		ctx[i]->st = &st;
		ctx[i]->id = i;
		ctx[i]->rng = tu_mix64(0x57e55 + (uint64_t)i);
		ctx[i]->next_version = 1;
		ck_assert_int_eq(pthread_create(&tid[i], NULL, stress_thread,
						ctx[i]),
				 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(tid[i], NULL);
	for (int i = 0; i < NTHREADS; i++) {
		ck_assert_msg(ctx[i]->failure[0] == 0, "%s: %s", cfg->name,
			      ctx[i]->failure);
		free(ctx[i]);
	}
	ck_assert_msg(mimg_close(st.img) == 0, "close: %s", mimg_errmsg());

	int status = tu_system("qemu-img check -f qcow2 stress.qcow2 "
			       ">check.out 2>&1");
	if (status != 0)
		tu_system("cat check.out >&2");
	ck_assert_msg(status == 0, "%s: qemu-img check exit %d", cfg->name,
		      status);

	tu_sh("qemu-img convert -f qcow2 -O raw stress.qcow2 qemu.raw");
	uint8_t *buf = malloc(cfg->size);
	ck_assert_ptr_nonnull(buf);
	int fd = open("qemu.raw", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, cfg->size, 0), (ssize_t)cfg->size);
	close(fd);
	verify_all(&st, buf, "qemu-img");

	struct mimg *img = NULL;
	ck_assert_int_eq(mimg_open(&img, "stress.qcow2", "qcow2", 0), 0);
	memset(buf, 0xee, cfg->size);
	ck_assert_int_eq(mimg_pread(img, buf, cfg->size, 0, 0),
			 (ssize_t)cfg->size);
	mimg_close(img);
	verify_all(&st, buf, "mimg after reopening");
	free(buf);
	free(st.cur);
}

static const struct stress_cfg configs[] = {
	/* Stripes of 4 KiB in 64 KiB clusters over a qcow2 backing file:
	 * sixteen writers can copy-on-write the same cluster at once. */
	{"cow", "64k clusters over backing", "cluster_size=65536", 16u << 20,
	 8u << 20, false, 4096, 3000},
	/* Many small clusters: allocation, L2 and refcount block allocation
	 * contend all the time; lazy refcounts must still close clean. */
	{"small_lazy", "4k clusters, lazy refcounts",
	 "cluster_size=4096,lazy_refcounts=on", 8u << 20, 0, false, 1024, 3000},
	/* Subclusters: threads own single subclusters of shared clusters. */
	{"extended_l2", "extended L2, 32k clusters",
	 "extended_l2=on,cluster_size=32768", 8u << 20, 4u << 20, false, 1024,
	 3000},
	{"compat010", "compat 0.10, 8k clusters",
	 "compat=0.10,cluster_size=8192", 8u << 20, 4u << 20, false, 2048,
	 2000},
	/* Threads overwrite parts of compressed clusters that other threads
	 * are reading and overwriting too. */
	{"compressed", "compressed 16k clusters", "cluster_size=16384",
	 8u << 20, 8u << 20, true, 2048, 2000},
	/* 512-byte clusters: 256 L2 tables, twice what the cache holds,
	 * so tables are evicted and loaded while other threads map
	 * through them without the lock. */
	{"evict", "512-byte clusters, L2 cache evicting", "cluster_size=512",
	 8u << 20, 4u << 20, false, 256, 2000},
};

START_TEST(stress_config)
{
	run_stress(&configs[_i]);
}
END_TEST

int main(void)
{
	if (!tu_have_qemu_img_and("qcow2"))
		return 77;
	Suite *s = suite_create("qcow2_stress");
	/* One case per configuration (CK_RUN_CASE=<name> runs one). */
	TU_TABLE_CASES(s, configs, stress_config, 0);
	return tu_run_suite(s);
}
