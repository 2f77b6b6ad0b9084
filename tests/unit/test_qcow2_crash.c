/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 crash safety.  A fixed workload (allocating writes, growing the
 * image so that the L1 table moves, partial writes over a backing file
 * that need copy-on-write, zero writes and discards
 * that free clusters, enough sequential writes to grow the refcount table,
 * in-place overwrites, flushes in between) runs on a fresh image while the
 * host-file fault hook lets only the first K write-type operations through
 * and fails every later one: from the image's point of view, the machine
 * lost power after K writes.  For cut points K spread over the whole
 * operation stream:
 *   - qemu-img check must find no corruption (leaks are allowed);
 *   - everything written and flushed before the cut must read back (via
 *     qemu-img convert, an independent reader) exactly; every other 16-byte
 *     unit must hold its flushed content or one of the values written to
 *     it after the last flush;
 *   - mimg's own check must count the same leaks as qemu-img, mimg must
 *     read the same bytes as qemu, and repairing the leaks with mimg must
 *     leave an image qemu-img check finds clean, with the same content.
 * The uncut run must end clean, with the expected content and with a
 * grown refcount table where the variant is sized for it.  With lazy
 * refcounts the cut image is first opened read-write by mimg, which must
 * rebuild the refcounts of the dirty image.
 * MIMG_CRASH_CUTS=N overrides the number of cut points per variant.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "mimg.h"
#include "testutil.h"

#define UNIT 16u
#define IMG_SIZE (4u << 20)
#define BACKING_SIZE (1u << 20)
#define NUNITS (IMG_SIZE / UNIT)
#define MAXIO (64u << 10)
/* Version tag of a unit that reads as zeroes. */
#define V_ZERO UINT32_MAX

struct variant {
	const char *tcase; /* its test case (CK_RUN_CASE) */
	const char *name;
	const char *opts; /* creation options besides the backing file */
	uint32_t cluster_size;
	bool expect_reftable_growth;
	int cuts; /* how many cut points to try */
	/* Lazy refcounts: refcounts on disk may be stale after a cut until
	 * the dirty image is opened read-write, which rebuilds them. */
	bool lazy;
};

/* ---------------------------------------------------------------------- */
/* The fault hook: counts write-type operations, fails all after the cut. */

static atomic_ulong ops_seen;
static unsigned long ops_allowed;
static atomic_bool hook_armed;

static int cut_hook(void *opaque, enum mimg_file_op op, const char *path,
		    uint64_t off, uint64_t len)
{
	(void)opaque, (void)op, (void)path, (void)off, (void)len;
	if (!atomic_load(&hook_armed))
		return 0;
	unsigned long n = atomic_fetch_add(&ops_seen, 1);
	return n < ops_allowed ? 0 : -EIO;
}

/* ---------------------------------------------------------------------- */
/* The model: what each 16-byte unit may contain. */

struct logged_op {
	uint64_t off, len;
	uint32_t version;
};

struct model {
	uint32_t cur[NUNITS];	  /* value after every completed op */
	uint32_t durable[NUNITS]; /* value as of the last successful flush */
	struct logged_op *log;	  /* ops issued since the last flush */
	size_t nlog, caplog;
	uint32_t next_version;
	bool grown;	    /* the image was grown to IMG_SIZE */
	bool grown_durable; /* ... and flushed since */
};

/* Content of unit U at version V.  Version 0 is the initial content: the
 * backing file's data where it reaches, zeroes beyond. */
static void unit_content(uint64_t u, uint32_t v, uint8_t out[UNIT])
{
	if (v == V_ZERO || (v == 0 && u * UNIT >= BACKING_SIZE)) {
		memset(out, 0, UNIT);
		return;
	}
	uint64_t a = tu_mix64(u * 0x100000001b3ull + v);
	uint64_t b = tu_mix64(a + u);
	memcpy(out, &a, 8);
	memcpy(out + 8, &b, 8);
}

static void fill_range(uint64_t off, uint64_t len, uint32_t v, uint8_t *buf)
{
	for (uint64_t u = off / UNIT; u < (off + len) / UNIT; u++)
		unit_content(u, v, buf + (u * UNIT - off));
}

static struct model *model_new(void)
{
	struct model *m = calloc(1, sizeof(*m));
	ck_assert_ptr_nonnull(m);
	m->next_version = 1;
	return m;
}

static void model_free(struct model *m)
{
	free(m->log);
	free(m);
}

static void model_log(struct model *m, uint64_t off, uint64_t len, uint32_t v)
{
	if (m->nlog == m->caplog) {
		m->caplog = m->caplog ? m->caplog * 2 : 256;
		m->log = realloc(m->log, m->caplog * sizeof(*m->log));
		ck_assert_ptr_nonnull(m->log);
	}
	m->log[m->nlog++] = (struct logged_op){off, len, v};
}

static void model_apply(struct model *m, uint64_t off, uint64_t len, uint32_t v)
{
	for (uint64_t u = off / UNIT; u < (off + len) / UNIT; u++)
		m->cur[u] = v;
}

static void model_flushed(struct model *m)
{
	memcpy(m->durable, m->cur, sizeof(m->cur));
	m->nlog = 0;
	m->grown_durable = m->grown;
}

/* May unit U hold the content in BUF after a cut? */
static bool unit_acceptable(const struct model *m, uint64_t u,
			    const uint8_t *buf)
{
	uint8_t want[UNIT];
	unit_content(u, m->durable[u], want);
	if (memcmp(buf, want, UNIT) == 0)
		return true;
	for (size_t i = 0; i < m->nlog; i++) {
		const struct logged_op *op = &m->log[i];
		if (u * UNIT < op->off || u * UNIT >= op->off + op->len)
			continue;
		unit_content(u, op->version, want);
		if (memcmp(buf, want, UNIT) == 0)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------------- */
/* The workload. */

struct workload {
	struct mimg *img;
	struct model *m;
	uint64_t rng;
	uint32_t cs;
	bool can_discard;
	uint8_t buf[MAXIO];
};

static uint64_t wl_rand(struct workload *w)
{
	w->rng = w->rng * 6364136223846793005ull + 1442695040888963407ull;
	return w->rng >> 33;
}

static int wl_write(struct workload *w, uint64_t off, uint64_t len)
{
	uint32_t v = w->m->next_version++;
	fill_range(off, len, v, w->buf);
	model_log(w->m, off, len, v);
	ssize_t n = mimg_pwrite(w->img, w->buf, len, off, 0);
	if (n != (ssize_t)len)
		return n < 0 ? (int)n : -EIO;
	model_apply(w->m, off, len, v);
	return 0;
}

static int wl_zero(struct workload *w, uint64_t off, uint64_t len,
		   unsigned flags)
{
	model_log(w->m, off, len, V_ZERO);
	int ret = mimg_pwrite_zeroes(w->img, off, len, flags);
	if (ret == 0)
		model_apply(w->m, off, len, V_ZERO);
	return ret;
}

/* Whole clusters past the end of the backing file only: there qemu's
 * discard semantics (zeroes or backing data) both mean zeroes. */
static int wl_discard(struct workload *w, uint64_t off, uint64_t len)
{
	model_log(w->m, off, len, V_ZERO);
	int ret = mimg_discard(w->img, off, len, 0);
	if (ret == 0)
		model_apply(w->m, off, len, V_ZERO);
	return ret;
}

/* The write-type operations that growing the image took, in the last run
 * that got through it: every one of them becomes a cut point. */
static unsigned long grow_ops_begin, grow_ops_end;

/* Growing the image: with small clusters the L1 table must move. */
static int wl_grow(struct workload *w)
{
	grow_ops_begin = atomic_load(&ops_seen);
	int ret = mimg_truncate(w->img, IMG_SIZE, MIMG_PREALLOC_OFF);
	if (ret == 0)
		w->m->grown = true;
	grow_ops_end = atomic_load(&ops_seen);
	return ret;
}

static int wl_flush(struct workload *w)
{
	int ret = mimg_flush(w->img, 0);
	if (ret == 0)
		model_flushed(w->m);
	return ret;
}

#define TRY(x)                                                                 \
	do {                                                                   \
		int ret_ = (x);                                                \
		if (ret_ != 0)                                                 \
			return ret_;                                           \
	} while (0)

/* Runs until the first failure, which it returns (0 when all went
 * through).  The sequence of calls is the same on every run up to that
 * failure, which is what makes cut point K mean the same on each run. */
static int run_workload(struct workload *w)
{
	const uint64_t cs = w->cs;
	const uint64_t nclusters = IMG_SIZE / cs;

	/* Allocating writes of whole clusters all over the image, which is
	 * created at half its final size. */
	for (int i = 0; i < 48; i++) {
		uint64_t n = 1 + wl_rand(w) % 4;
		uint64_t c = wl_rand(w) % (nclusters / 2 - n);
		if (n * cs > MAXIO)
			n = MAXIO / cs;
		TRY(wl_write(w, c * cs, n * cs));
		if (i % 16 == 15)
			TRY(wl_flush(w));
	}
	TRY(wl_flush(w));
	TRY(wl_grow(w));
	TRY(wl_flush(w));

	/* Small unaligned writes over (and just past) the backing file:
	 * copy-on-write of partial clusters. */
	for (int i = 0; i < 48; i++) {
		uint64_t len = UNIT * (1 + wl_rand(w) % 100);
		uint64_t off = UNIT *
			       (wl_rand(w) % ((BACKING_SIZE + 65536) / UNIT));
		TRY(wl_write(w, off, len));
		if (i % 12 == 11)
			TRY(wl_flush(w));
	}
	TRY(wl_flush(w));

	/* Zeroes (some unmapping, some not cluster-aligned) and discards:
	 * these free clusters, so refcounts go down. */
	for (int i = 0; i < 16; i++) {
		uint64_t off, len;
		if (i % 2) {
			off = cs * (wl_rand(w) % (nclusters - 8));
			len = cs * (1 + wl_rand(w) % 8);
		} else {
			off = UNIT * (wl_rand(w) % (NUNITS - 300));
			len = UNIT * (1 + wl_rand(w) % 256);
		}
		TRY(wl_zero(w, off, len, i % 4 < 2 ? MIMG_ZERO_MAY_UNMAP : 0));
	}
	if (w->can_discard) {
		for (int i = 0; i < 8; i++) {
			uint64_t first = BACKING_SIZE / cs;
			uint64_t c = first +
				     wl_rand(w) % (nclusters - first - 4);
			TRY(wl_discard(w, c * cs, cs * (1 + wl_rand(w) % 4)));
		}
	}
	TRY(wl_flush(w));

	/* Fill everything past the backing file: with small clusters this
	 * needs new refcount blocks and a bigger refcount table. */
	int i = 0;
	for (uint64_t off = BACKING_SIZE; off < IMG_SIZE; off += 32768) {
		TRY(wl_write(w, off, 32768));
		if (++i % 8 == 0)
			TRY(wl_flush(w));
	}

	/* In-place overwrites of allocated clusters, any alignment. */
	for (i = 0; i < 32; i++) {
		uint64_t len = UNIT * (1 + wl_rand(w) % 1024);
		uint64_t off = UNIT * (wl_rand(w) % (NUNITS - 1024));
		TRY(wl_write(w, off, len));
		if (i % 8 == 7)
			TRY(wl_flush(w));
	}
	return wl_flush(w);
}

/* ---------------------------------------------------------------------- */
/* Image setup and qemu-img helpers. */

static const char *const img_path = "crash.qcow2";
static const char *const base_path = "base.raw";

static void make_backing(void)
{
	uint8_t *buf = malloc(BACKING_SIZE);
	ck_assert_ptr_nonnull(buf);
	fill_range(0, BACKING_SIZE, 0, buf);
	tu_write_file(base_path, buf, BACKING_SIZE, 0);
	free(buf);
}

static void create_image(const struct variant *var)
{
	char text[256];
	snprintf(text, sizeof(text), "%s,backing_file=%s,backing_fmt=raw",
		 var->opts, base_path);
	tu_create(img_path, "qcow2", IMG_SIZE / 2, text, NULL);
}

static uint32_t reftable_clusters(void)
{
	uint8_t hdr[64];
	int fd = open(img_path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	close(fd);
	return (uint32_t)hdr[56] << 24 | (uint32_t)hdr[57] << 16 |
	       (uint32_t)hdr[58] << 8 | hdr[59];
}

struct qemu_check {
	int status; /* qemu-img check's exit status */
	long leaks; /* -1 when absent from the JSON (= none) */
	long corruptions;
};

static long json_number(const char *json, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(json, pat);
	return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

static struct qemu_check qemu_img_check(void)
{
	struct qemu_check qc;
	qc.status = tu_system("qemu-img check -f qcow2 --output=json '%s' "
			      ">check.json 2>check.err",
			      img_path);
	char json[8192] = "";
	FILE *f = fopen("check.json", "r");
	if (f) {
		size_t n = fread(json, 1, sizeof(json) - 1, f);
		json[n] = 0;
		fclose(f);
	}
	qc.leaks = json_number(json, "leaks");
	qc.corruptions = json_number(json, "corruptions");
	return qc;
}

static void dump_check_output(void)
{
	tu_system("cat check.json check.err >&2; "
		  "qemu-img check -f qcow2 '%s' >&2",
		  img_path);
}

/* The image's content as qemu reads it, zero-padded to IMG_SIZE; *SIZEP
 * is its virtual size (a cut may have lost the growth). */
static uint8_t *qemu_read_all(uint64_t *sizep)
{
	tu_sh("qemu-img convert -f qcow2 -O raw '%s' qemu.raw", img_path);
	uint8_t *buf = calloc(1, IMG_SIZE);
	ck_assert_ptr_nonnull(buf);
	int fd = open("qemu.raw", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ssize_t n = pread(fd, buf, IMG_SIZE, 0);
	ck_assert_msg(n == IMG_SIZE || n == IMG_SIZE / 2,
		      "qemu reads %zd bytes of image", n);
	*sizep = (uint64_t)n;
	close(fd);
	unlink("qemu.raw");
	return buf;
}

static uint8_t *mimg_read_all(unsigned flags, uint64_t size)
{
	struct mimg *img = NULL;
	int ret = mimg_open(&img, img_path, "qcow2", flags);
	ck_assert_msg(ret == 0, "open after cut: %s", mimg_errmsg());
	ck_assert_uint_eq(mimg_size(img), size);
	uint8_t *buf = calloc(1, IMG_SIZE);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(mimg_pread(img, buf, size, 0, 0), (ssize_t)size);
	ck_assert_int_eq(mimg_close(img), 0);
	return buf;
}

/* ---------------------------------------------------------------------- */
/* One run: create, run the workload with at most ALLOWED writes (ULONG_MAX
 * for no cut), close.  Returns the number of write-type ops the run
 * issued. */

static unsigned long run_once(const struct variant *var, struct model *m,
			      unsigned long allowed, int *wl_ret)
{
	unlink(img_path);
	create_image(var);
	struct workload *w = calloc(1, sizeof(*w));
	ck_assert_ptr_nonnull(w);
	w->m = m;
	w->rng = 0x5eed;
	w->cs = var->cluster_size;
	int ret = mimg_open(&w->img, img_path, "qcow2", MIMG_OPEN_RDWR);
	ck_assert_msg(ret == 0, "open %s: %s", img_path, mimg_errmsg());
	ck_assert_uint_eq(mimg_cluster_size(w->img), var->cluster_size);
	w->can_discard = mimg_can_discard(w->img);

	atomic_store(&ops_seen, 0);
	ops_allowed = allowed;
	atomic_store(&hook_armed, true);
	*wl_ret = run_workload(w);
	int cret = mimg_close(w->img);
	atomic_store(&hook_armed, false);
	if (*wl_ret == 0)
		*wl_ret = cret;
	free(w);
	return atomic_load(&ops_seen);
}

/* Opening a dirty lazy-refcounts image read-write rebuilds its refcounts;
 * closing it clears the dirty bit. */
static void reopen_to_rebuild(const struct variant *var, unsigned long cut)
{
	struct mimg *img = NULL;
	int ret = mimg_open(&img, img_path, "qcow2", MIMG_OPEN_RDWR);
	ck_assert_msg(ret == 0,
		      "%s: cut after %lu writes: read-write open "
		      "of the dirty image: %s",
		      var->name, cut, mimg_errmsg());
	ck_assert_int_eq(mimg_close(img), 0);
}

static void verify_cut(const struct variant *var, const struct model *m,
		       unsigned long cut, bool try_repair)
{
	if (var->lazy)
		reopen_to_rebuild(var, cut);
	struct qemu_check qc = qemu_img_check();
	if (qc.status != 0 && qc.status != 3) {
		dump_check_output();
		ck_abort_msg("%s: cut after %lu writes: qemu-img check exit %d "
			     "(corruptions %ld)",
			     var->name, cut, qc.status, qc.corruptions);
	}

	uint64_t size;
	uint8_t *qbuf = qemu_read_all(&size);
	ck_assert_msg(size == IMG_SIZE || !m->grown_durable,
		      "%s: cut after %lu writes: the flushed growth of the "
		      "image was lost",
		      var->name, cut);
	/* (Check logs every assertion, so loops test first.) */
	for (uint64_t u = 0; u < size / UNIT; u++)
		if (!unit_acceptable(m, u, qbuf + u * UNIT))
			ck_abort_msg(
				"%s: cut after %lu writes: bytes at %" PRIu64
				" hold neither the flushed data nor a "
				"later write",
				var->name, cut, u * UNIT);

	/* mimg must see the same bytes and the same leaks as qemu. */
	uint8_t *mbuf = mimg_read_all(0, size);
	ck_assert_msg(memcmp(mbuf, qbuf, IMG_SIZE) == 0,
		      "%s: cut after %lu writes: mimg reads other data than "
		      "qemu-img",
		      var->name, cut);
	free(mbuf);

	struct mimg *img = NULL;
	ck_assert_int_eq(mimg_open(&img, img_path, "qcow2", MIMG_OPEN_CHECK),
			 0);
	struct mimg_check_result res = {.size = sizeof(res)};
	ck_assert_msg(mimg_check(img, 0, &res) == 0, "check: %s",
		      mimg_errmsg());
	ck_assert_uint_eq(res.corruptions, 0);
	ck_assert_msg(res.leaks == (uint64_t)(qc.leaks < 0 ? 0 : qc.leaks),
		      "%s: cut after %lu writes: mimg check counts %" PRIu64
		      " leaks, qemu-img %ld",
		      var->name, cut, res.leaks, qc.leaks);
	mimg_check_result_free(&res);
	mimg_close(img);

	if (try_repair && qc.status == 3) {
		ck_assert_int_eq(mimg_open(&img, img_path, "qcow2",
					   MIMG_OPEN_RDWR | MIMG_OPEN_CHECK),
				 0);
		res = (struct mimg_check_result){.size = sizeof(res)};
		ck_assert_msg(mimg_check(img, MIMG_CHECK_REPAIR_LEAKS, &res) ==
				      0,
			      "repair: %s", mimg_errmsg());
		ck_assert_uint_eq(res.leaks, 0);
		ck_assert_uint_eq(res.leaks_fixed, (uint64_t)qc.leaks);
		mimg_check_result_free(&res);
		ck_assert_int_eq(mimg_close(img), 0);
		struct qemu_check after = qemu_img_check();
		if (after.status != 0) {
			dump_check_output();
			ck_abort_msg("%s: cut after %lu writes: qemu-img check "
				     "exit %d after mimg repaired the leaks",
				     var->name, cut, after.status);
		}
		uint64_t rsize;
		uint8_t *rbuf = qemu_read_all(&rsize);
		ck_assert_uint_eq(rsize, size);
		ck_assert_msg(memcmp(rbuf, qbuf, IMG_SIZE) == 0,
			      "%s: leak repair changed the content", var->name);
		free(rbuf);
	}
	free(qbuf);
}

static void run_variant(const struct variant *var)
{
	if (!tu_have_program("qemu-img")) {
		fprintf(stderr, "qemu-img not installed: %s not run\n",
			var->name);
		return;
	}
	mimg_file_set_fault_hook(cut_hook, NULL);
	make_backing();

	/* The uncut run: learns the length of the op stream and checks the
	 * workload's end state. */
	struct model *m = model_new();
	unlink(img_path);
	create_image(var);
	uint32_t rt_before = reftable_clusters();
	int wl_ret;
	unsigned long total = run_once(var, m, ULONG_MAX, &wl_ret);
	ck_assert_msg(wl_ret == 0, "%s: workload failed without a cut: %s",
		      var->name, mimg_errmsg());
	struct qemu_check qc = qemu_img_check();
	if (qc.status != 0) {
		dump_check_output();
		ck_abort_msg("%s: qemu-img check exit %d after the uncut "
			     "workload",
			     var->name, qc.status);
	}
	uint64_t size;
	uint8_t *qbuf = qemu_read_all(&size);
	ck_assert_uint_eq(size, IMG_SIZE);
	for (uint64_t u = 0; u < NUNITS; u++) {
		uint8_t want[UNIT];
		unit_content(u, m->cur[u], want);
		if (memcmp(qbuf + u * UNIT, want, UNIT) != 0)
			ck_abort_msg(
				"%s: uncut workload: wrong data at %" PRIu64,
				var->name, u * UNIT);
	}
	free(qbuf);
	if (var->expect_reftable_growth)
		ck_assert_msg(reftable_clusters() > rt_before,
			      "%s: the workload did not grow the refcount "
			      "table (%u clusters)",
			      var->name, rt_before);
	model_free(m);
	ck_assert_uint_gt(total, 10);
	const char *env = getenv("MIMG_CRASH_CUTS");
	int cuts = env ? atoi(env) : tu_scaled(var->cuts);
	/* Every operation of the growth, at most 16 of them. */
	unsigned long grow_begin = grow_ops_begin, grow_n = 0;
	if (cuts > 0 && grow_ops_end > grow_ops_begin)
		grow_n = grow_ops_end - grow_ops_begin;
	if (grow_n > (unsigned long)tu_scaled(16))
		grow_n = (unsigned long)tu_scaled(16);
	fprintf(stderr,
		"%s: %lu write-type operations, %d cut points "
		"+ %lu in the growth of the image\n",
		var->name, total, cuts, grow_n);

	/* Cut points: evenly spread over the stream, plus the first few
	 * (header and first allocation) and pseudo-random ones. */
	uint64_t rng = 0xc0ffee;
	for (int i = 0; i < cuts + (int)grow_n; i++) {
		unsigned long cut;
		if (i >= cuts) {
			cut = grow_begin + (unsigned long)(i - cuts);
		} else if (i < 4) {
			cut = (unsigned long)i;
		} else if (i % 3 != 0) {
			cut = (unsigned long)((uint64_t)total * (uint64_t)i /
					      (uint64_t)cuts);
		} else {
			rng = tu_mix64(rng + (uint64_t)i);
			cut = (unsigned long)(rng % total);
		}
		m = model_new();
		unsigned long seen = run_once(var, m, cut, &wl_ret);
		ck_assert_msg(wl_ret != 0,
			      "%s: cut after %lu of %lu writes "
			      "went unnoticed",
			      var->name, cut, total);
		ck_assert_msg(seen > cut,
			      "%s: fewer writes (%lu) than the "
			      "cut (%lu)",
			      var->name, seen, cut);
		verify_cut(var, m, cut, i % 4 == 1);
		model_free(m);
	}
	mimg_file_set_fault_hook(NULL, NULL);
}

static const struct variant variants[] = {
	/* refcount_bits=64 with 512-byte clusters: one refcount block covers
	 * 32 KiB and the initial one-cluster table 2 MiB, so the 3 MiB fill
	 * grows the table. */
	{"refcount64", "cluster 512, refcount_bits 64",
	 "cluster_size=512,refcount_bits=64", 512, true, 48, false},
	{"compat010", "compat 0.10, cluster 512",
	 "compat=0.10,cluster_size=512", 512, false, 24, false},
	{"extended_l2", "extended_l2, cluster 16k",
	 "extended_l2=on,cluster_size=16384", 16384, false, 24, false},
	{"refcount1", "refcount_bits 1, cluster 1k",
	 "refcount_bits=1,cluster_size=1k", 1024, false, 16, false},
	{"lazy", "lazy refcounts, cluster 512",
	 "lazy_refcounts=on,cluster_size=512", 512, false, 16, true},
};

START_TEST(crash_variant)
{
	run_variant(&variants[_i]);
}
END_TEST

/* A compressed conversion (mimg convert -c) cut at points spread over its
 * write stream: no corruption, and every cluster qemu reads is either the
 * source's or zeroes, never a half-written compressed cluster. */
static unsigned long convert_once(unsigned long allowed, int *retp)
{
	unlink(img_path);
	static const struct mimg_opt opts[] = {
		{"cluster_size", "4096"},
		{"compression_type", "zstd"},
	};
	ck_assert_int_eq(mimg_create(img_path, "qcow2", IMG_SIZE / 2, opts, 2),
			 0);
	struct mimg *src = NULL, *dst = NULL;
	ck_assert_int_eq(mimg_open(&src, "src.raw", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&dst, img_path, "qcow2", MIMG_OPEN_RDWR), 0);
	struct mimg_convert_opts co;
	memset(&co, 0, sizeof(co));
	co.size = sizeof(co);
	co.compress = 1;
	atomic_store(&ops_seen, 0);
	ops_allowed = allowed;
	atomic_store(&hook_armed, true);
	*retp = mimg_convert(src, dst, &co);
	int cret = mimg_close(dst);
	atomic_store(&hook_armed, false);
	if (*retp == 0)
		*retp = cret;
	mimg_close(src);
	return atomic_load(&ops_seen);
}

START_TEST(crash_convert_compressed)
{
	/* Compressible, distinct per 16 bytes, with a hole in the middle. */
	uint8_t *src = calloc(1, IMG_SIZE / 2);
	ck_assert_ptr_nonnull(src);
	for (uint64_t u = 0; u < IMG_SIZE / 2 / UNIT; u++) {
		if (u * UNIT >= (512u << 10) && u * UNIT < (768u << 10))
			continue;
		memcpy(src + u * UNIT, &u, 8);
		memcpy(src + u * UNIT + 8, "convert!", 8);
	}
	tu_write_file("src.raw", src, IMG_SIZE / 2, 0);
	mimg_file_set_fault_hook(cut_hook, NULL);

	int ret;
	unsigned long total = convert_once(ULONG_MAX, &ret);
	ck_assert_msg(ret == 0, "convert -c: %s", mimg_errmsg());
	ck_assert_int_eq(qemu_img_check().status, 0);
	const char *env = getenv("MIMG_CRASH_CUTS");
	int cuts = env ? atoi(env) : tu_scaled(16);
	fprintf(stderr,
		"convert -c: %lu write-type operations, %d cut "
		"points\n",
		total, cuts);
	for (int i = 0; i < cuts; i++) {
		unsigned long cut = (unsigned long)((uint64_t)total *
						    (uint64_t)i /
						    (uint64_t)cuts);
		convert_once(cut, &ret);
		ck_assert_msg(ret != 0,
			      "convert -c: cut after %lu writes went "
			      "unnoticed",
			      cut);
		struct qemu_check qc = qemu_img_check();
		if (qc.status != 0 && qc.status != 3) {
			dump_check_output();
			ck_abort_msg("convert -c: cut after %lu of %lu writes: "
				     "qemu-img check exit %d",
				     cut, total, qc.status);
		}
		uint64_t size;
		uint8_t *got = qemu_read_all(&size);
		ck_assert_uint_eq(size, IMG_SIZE / 2);
		static const uint8_t zero[4096];
		for (uint64_t off = 0; off < size; off += 4096)
			if (memcmp(got + off, src + off, 4096) != 0 &&
			    memcmp(got + off, zero, 4096) != 0)
				ck_abort_msg(
					"convert -c: cut after %lu writes: "
					"cluster at %" PRIu64 " holds neither "
					"the source nor zeroes",
					cut, off);
		free(got);
	}
	mimg_file_set_fault_hook(NULL, NULL);
	free(src);
}
END_TEST

int main(void)
{
	if (!tu_have_qemu_img_and("qcow2"))
		return 77;
	Suite *s = suite_create("qcow2_crash");
	/* One case per variant: each gets its own timeout and can be run
	 * alone with CK_RUN_CASE=<name>. */
	TU_TABLE_CASES(s, variants, crash_variant, 180);
	tu_case(s, "convert_compressed", crash_convert_compressed, 0, 180);
	return tu_run_suite(s);
}
