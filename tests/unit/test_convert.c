/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The convert engine on raw images: content is copied exactly, sparseness
 * is kept (holes and zero blocks are not written), -S 0 allocates
 * everything, -n over an existing target with and without
 * --target-is-zero, progress reports, and bounded memory on a large
 * sparse source.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "mimg.h"
#include "testutil.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)

/* Compare two files byte for byte, chunk by chunk. */
static void assert_same_content(const char *a, const char *b, uint64_t len)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	ck_assert_int_ge(fa, 0);
	ck_assert_int_ge(fb, 0);
	uint8_t *ba = malloc(MIB), *bb = malloc(MIB);
	for (uint64_t off = 0; off < len; off += MIB) {
		size_t n = len - off < MIB ? (size_t)(len - off) : MIB;
		ck_assert_int_eq(pread(fa, ba, n, (off_t)off), (ssize_t)n);
		ck_assert_int_eq(pread(fb, bb, n, (off_t)off), (ssize_t)n);
		ck_assert_msg(memcmp(ba, bb, n) == 0,
			      "%s and %s differ in the MiB at %llu", a, b,
			      (unsigned long long)off);
	}
	free(ba);
	free(bb);
	close(fa);
	close(fb);
}

/*
 * A 16 MiB sparse source: random data at 1M (256K), 5M..7M, the last 4K;
 * an allocated but all-zero 512K run at 9M; random data at 12M with a
 * 64K zero hole written inside it (12M+64K..12M+128K).
 * Nonzero bytes: 256K + 2M + 4K + 192K.
 */
#define SRC_SIZE (16 * MIB)
#define SRC_NONZERO (256 * KIB + 2 * MIB + 4 * KIB + 192 * KIB)

static void make_source(const char *path)
{
	uint8_t *buf = malloc(2 * MIB);
	tu_make_sparse(path, SRC_SIZE);
	tu_fill_random(buf, 2 * MIB, 77);
	tu_write_file(path, buf, 256 * KIB, 1 * MIB);
	tu_write_file(path, buf, 2 * MIB, 5 * MIB);
	tu_write_file(path, buf + 100, 4 * KIB, SRC_SIZE - 4 * KIB);
	tu_write_file(path, buf, 256 * KIB, 12 * MIB);
	memset(buf, 0, 512 * KIB);
	tu_write_file(path, buf, 512 * KIB, 9 * MIB);
	tu_write_file(path, buf, 64 * KIB, 12 * MIB + 64 * KIB);
	free(buf);
}

static int convert_files(const char *src, const char *dst, bool create,
			 const struct mimg_convert_opts *o)
{
	struct mimg *s, *d;
	int r = mimg_open(&s, src, NULL, 0);
	ck_assert_msg(r == 0, "%s", mimg_errmsg());
	if (create) {
		r = mimg_create(dst, "raw", mimg_size(s), NULL, 0);
		ck_assert_msg(r == 0, "%s", mimg_errmsg());
	}
	r = mimg_open(&d, dst, "raw", MIMG_OPEN_RDWR);
	ck_assert_msg(r == 0, "%s", mimg_errmsg());
	r = mimg_convert(s, d, o);
	ck_assert_int_eq(mimg_close(d), 0);
	ck_assert_int_eq(mimg_close(s), 0);
	return r;
}

/* Convert SRC (SIZE bytes) into a new DST with sparse_size SPARSE (-S):
 * DST reads the same. */
static void convert_sparse(const char *src, const char *dst, uint64_t size,
			   uint64_t sparse)
{
	struct mimg_convert_opts o = {.size = sizeof(o), .sparse_size = sparse};
	ck_assert_msg(convert_files(src, dst, true, &o) == 0, "-S %llu: %s",
		      (unsigned long long)sparse, mimg_errmsg());
	assert_same_content(src, dst, size);
}

START_TEST(sparse_source_stays_sparse)
{
	make_source("src.img");
	ck_assert_msg(convert_files("src.img", "dst.img", true, NULL) == 0,
		      "%s", mimg_errmsg());
	ck_assert_uint_eq(tu_file_size("dst.img"), SRC_SIZE);
	assert_same_content("src.img", "dst.img", SRC_SIZE);
	/* only the nonzero data is allocated (zero blocks inside data and
	 * the allocated zero run are not written) */
	ck_assert_uint_ge(tu_allocated("dst.img"), SRC_NONZERO);
	ck_assert_uint_le(tu_allocated("dst.img"), SRC_NONZERO + 256 * KIB);
	ck_assert_uint_lt(tu_allocated("dst.img"), tu_allocated("src.img"));
}
END_TEST

START_TEST(sparse_granularity)
{
	make_source("src.img");
	/* -S 1M: the 64K zero hole inside data is written this time, the
	 * 512K zero run (aligned to nothing larger) is too */
	convert_sparse("src.img", "dst.img", SRC_SIZE, MIB);
	ck_assert_uint_ge(tu_allocated("dst.img"), SRC_NONZERO + 64 * KIB);
	/* any multiple of 512 up to 16 MiB, as qemu-img -S */
	convert_sparse("src.img", "d1536.img", SRC_SIZE, 1536);
	ck_assert_uint_le(tu_allocated("d1536.img"), SRC_NONZERO + 256 * KIB);
	convert_sparse("src.img", "d16m.img", SRC_SIZE, 16 * MIB);
	/* a small extent next to holes is written alone, not widened to
	 * the granularity */
	uint8_t data[4096];
	tu_fill_random(data, sizeof(data), 3);
	tu_make_sparse("small.img", 8 * MIB);
	tu_write_file("small.img", data, sizeof(data), 3 * MIB + 4096);
	convert_sparse("small.img", "dsmall.img", 8 * MIB, 64 * KIB);
	ck_assert_uint_le(tu_allocated("dsmall.img"), 4096);
	/* an allocated zero run shorter than the granularity is skipped */
	memset(data, 0, sizeof(data));
	tu_write_file("small.img", data, sizeof(data), 6 * MIB);
	convert_sparse("small.img", "dz.img", 8 * MIB, 4 * MIB);
	ck_assert_uint_le(tu_allocated("dz.img"), 4096);

	struct mimg_convert_opts o = {.size = sizeof(o), .sparse_size = 3000};
	ck_assert_int_eq(convert_files("src.img", "bad.img", true, &o),
			 -EINVAL);
	o.sparse_size = 16 * MIB + 512;
	ck_assert_int_eq(convert_files("src.img", "bad.img", true, &o),
			 -EINVAL);
}
END_TEST

START_TEST(no_sparse_allocates_everything)
{
	make_source("src.img");
	convert_sparse("src.img", "dst.img", SRC_SIZE, MIMG_CONVERT_NO_SPARSE);
	ck_assert_uint_ge(tu_allocated("dst.img"), SRC_SIZE);
}
END_TEST

static void make_garbage(const char *path, uint64_t size)
{
	uint8_t *buf = malloc(MIB);
	memset(buf, 0xA5, MIB);
	for (uint64_t off = 0; off < size; off += MIB)
		tu_write_file(path, buf, MIB, off);
	free(buf);
}

START_TEST(existing_target_is_overwritten)
{
	make_source("src.img");
	make_garbage("dst.img", SRC_SIZE);
	struct mimg_convert_opts o = {.size = sizeof(o), .existing_target = 1};
	ck_assert_int_eq(convert_files("src.img", "dst.img", false, &o), 0);
	assert_same_content("src.img", "dst.img", SRC_SIZE);
	/* zeroes are written efficiently: holes punched, not data */
	ck_assert_uint_le(tu_allocated("dst.img"), SRC_NONZERO + 256 * KIB);
}
END_TEST

START_TEST(existing_target_is_zero)
{
	make_source("src.img");
	/* a target that really reads as zeroes: only data is written */
	tu_make_sparse("dst.img", SRC_SIZE);
	struct mimg_convert_opts o = {.size = sizeof(o),
				      .existing_target = 1,
				      .target_is_zero = 1};
	ck_assert_int_eq(convert_files("src.img", "dst.img", false, &o), 0);
	assert_same_content("src.img", "dst.img", SRC_SIZE);
	ck_assert_uint_le(tu_allocated("dst.img"), SRC_NONZERO + 256 * KIB);

	/* over garbage the flag is taken at its word: the data lands, the
	 * zero ranges are not touched */
	make_garbage("junk.img", SRC_SIZE);
	ck_assert_int_eq(convert_files("src.img", "junk.img", false, &o), 0);
	int fd = open("junk.img", O_RDONLY);
	uint8_t *buf = malloc(2 * MIB), *want = malloc(2 * MIB);
	tu_fill_random(want, 2 * MIB, 77);
	ck_assert_int_eq(pread(fd, buf, 2 * MIB, 5 * MIB), (ssize_t)(2 * MIB));
	ck_assert_mem_eq(buf, want, 2 * MIB);
	ck_assert_int_eq(pread(fd, buf, 4096, 0), 4096);
	ck_assert_uint_eq(buf[0], 0xA5);
	ck_assert_uint_eq(buf[4095], 0xA5);
	close(fd);
	free(buf);
	free(want);
}
END_TEST

START_TEST(larger_target_keeps_tail)
{
	make_source("src.img");
	make_garbage("dst.img", SRC_SIZE + MIB);
	struct mimg_convert_opts o = {.size = sizeof(o), .existing_target = 1};
	ck_assert_int_eq(convert_files("src.img", "dst.img", false, &o), 0);
	assert_same_content("src.img", "dst.img", SRC_SIZE);
	int fd = open("dst.img", O_RDONLY);
	uint8_t b;
	ck_assert_int_eq(pread(fd, &b, 1, SRC_SIZE), 1);
	ck_assert_uint_eq(b, 0xA5);
	close(fd);
}
END_TEST

START_TEST(target_checks)
{
	make_source("src.img");
	struct mimg *s, *d;
	ck_assert_int_eq(mimg_open(&s, "src.img", NULL, 0), 0);
	/* smaller target */
	tu_make_sparse("small.img", SRC_SIZE - 512);
	ck_assert_int_eq(mimg_open(&d, "small.img", "raw", MIMG_OPEN_RDWR), 0);
	ck_assert_int_eq(mimg_convert(s, d, NULL), -ENOSPC);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "small.img"));
	ck_assert_int_eq(mimg_close(d), 0);
	/* read-only target */
	tu_make_sparse("ro.img", SRC_SIZE);
	ck_assert_int_eq(mimg_open(&d, "ro.img", "raw", 0), 0);
	ck_assert_int_eq(mimg_convert(s, d, NULL), -EROFS);
	ck_assert_int_eq(mimg_close(d), 0);
	/* raw cannot take compressed output */
	ck_assert_int_eq(mimg_open(&d, "ro.img", "raw", MIMG_OPEN_RDWR), 0);
	struct mimg_convert_opts o = {.size = sizeof(o), .compress = 1};
	ck_assert_int_eq(mimg_convert(s, d, &o), -ENOTSUP);
	ck_assert_int_eq(mimg_close(d), 0);
	ck_assert_int_eq(mimg_close(s), 0);
}
END_TEST

START_TEST(parallel_and_out_of_order_agree)
{
	make_source("src.img");
	struct mimg_convert_opts o1 = {.size = sizeof(o1), .parallel = 1};
	struct mimg_convert_opts ow = {.size = sizeof(ow),
				       .parallel = 64,
				       .out_of_order = 1};
	struct mimg_convert_opts big = {.size = sizeof(big), .parallel = 1000};
	ck_assert_int_eq(convert_files("src.img", "d1.img", true, &o1), 0);
	ck_assert_int_eq(convert_files("src.img", "dw.img", true, &ow), 0);
	ck_assert_int_eq(convert_files("src.img", "db.img", true, &big), 0);
	assert_same_content("src.img", "d1.img", SRC_SIZE);
	assert_same_content("src.img", "dw.img", SRC_SIZE);
	assert_same_content("src.img", "db.img", SRC_SIZE);
}
END_TEST

START_TEST(odd_sizes)
{
	/* a size that is not a multiple of the window or of 4K */
	uint64_t size = 5 * MIB + 1234;
	uint8_t *buf = malloc(size);
	tu_fill_random(buf, size, 5);
	memset(buf + MIB, 0, 2 * MIB);
	tu_write_file("src.img", buf, size, 0);
	free(buf);
	ck_assert_int_eq(convert_files("src.img", "dst.img", true, NULL), 0);
	ck_assert_uint_eq(tu_file_size("dst.img"), 5 * MIB + 1536);
	assert_same_content("src.img", "dst.img", size);
	/* an empty source */
	tu_make_sparse("empty.img", 0);
	ck_assert_int_eq(convert_files("empty.img", "e2.img", true, NULL), 0);
	ck_assert_uint_eq(tu_file_size("e2.img"), 0);
}
END_TEST

struct prog {
	uint64_t last, total, calls;
	bool backwards, over;
};

static void on_progress(void *opaque, uint64_t done, uint64_t total)
{
	struct prog *p = opaque;
	if (done < p->last)
		p->backwards = true;
	if (done > total)
		p->over = true;
	p->last = done;
	p->total = total;
	p->calls++;
}

START_TEST(progress_monotonic)
{
	make_source("src.img");
	struct prog p = {0};
	struct mimg_convert_opts o = {.size = sizeof(o),
				      .progress = on_progress,
				      .opaque = &p};
	ck_assert_int_eq(convert_files("src.img", "dst.img", true, &o), 0);
	ck_assert(!p.backwards);
	ck_assert(!p.over);
	ck_assert_uint_eq(p.total, SRC_SIZE);
	ck_assert_uint_eq(p.last, SRC_SIZE);
	/* at least once per MiB-sized step of data, and at the end */
	ck_assert_uint_ge(p.calls, 3);

	struct prog q = {0};
	o.opaque = &q;
	o.existing_target = 1;
	ck_assert_int_eq(convert_files("src.img", "dst.img", false, &o), 0);
	ck_assert(!q.backwards);
	ck_assert_uint_eq(q.last, SRC_SIZE);
}
END_TEST

START_TEST(bounded_memory_on_large_sparse)
{
	/* 4 GiB virtual, 64 MiB of data in 16 spread-out pieces */
	uint8_t *buf = malloc(4 * MIB);
	tu_make_sparse("big.img", 4 * GIB);
	for (int i = 0; i < 16; i++) {
		tu_fill_random(buf, 4 * MIB, (uint64_t)i + 100);
		tu_write_file("big.img", buf, 4 * MIB,
			      (uint64_t)i * 256 * MIB +
				      (uint64_t)i * 12345 * 4);
	}
	free(buf);
	struct prog p = {0};
	struct mimg_convert_opts o = {.size = sizeof(o),
				      .progress = on_progress,
				      .opaque = &p};
	ck_assert_msg(convert_files("big.img", "out.img", true, &o) == 0, "%s",
		      mimg_errmsg());
	struct rusage ru;
	ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
	ck_assert_msg(ru.ru_maxrss < 256 * 1024, "peak RSS %ld KiB",
		      ru.ru_maxrss);
	ck_assert_uint_eq(p.last, 4 * GIB);
	ck_assert_uint_eq(tu_file_size("out.img"), 4 * GIB);
	ck_assert_uint_le(tu_allocated("out.img"), 64 * MIB + MIB);
	ck_assert_uint_ge(tu_allocated("out.img"), 64 * MIB);
	/* spot-check the pieces */
	int fd = open("out.img", O_RDONLY);
	uint8_t *got = malloc(4 * MIB), *want = malloc(4 * MIB);
	for (int i = 0; i < 16; i += 5) {
		uint64_t off = (uint64_t)i * 256 * MIB +
			       (uint64_t)i * 12345 * 4;
		tu_fill_random(want, 4 * MIB, (uint64_t)i + 100);
		ck_assert_int_eq(pread(fd, got, 4 * MIB, (off_t)off),
				 (ssize_t)(4 * MIB));
		ck_assert_mem_eq(got, want, 4 * MIB);
	}
	close(fd);
	free(got);
	free(want);
}
END_TEST

/* Count the writes that reach host files. */
struct write_count {
	uint64_t ops, bytes;
};

static int count_writes(void *opaque, enum mimg_file_op op, const char *path,
			uint64_t off, uint64_t len)
{
	struct write_count *w = opaque;
	(void)path;
	(void)off;
	if (op == MIMG_FILE_OP_WRITE) {
		__atomic_add_fetch(&w->ops, 1, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&w->bytes, len, __ATOMIC_SEQ_CST);
	}
	return 0;
}

START_TEST(work_proportional_to_data)
{
	/* 1 TiB virtual with 3 small extents: reading or writing the holes
	 * would take far longer than the test's timeout */
	uint8_t buf[65536];
	tu_fill_random(buf, sizeof(buf), 21);
	tu_make_sparse("huge.img", 1ull << 40);
	tu_write_file("huge.img", buf, 4096, 0);
	tu_write_file("huge.img", buf, 65536, 300 * GIB);
	tu_write_file("huge.img", buf, 4096, (1ull << 40) - 4096);
	struct write_count w = {0};
	mimg_file_set_fault_hook(count_writes, &w);
	int r = convert_files("huge.img", "out.img", true, NULL);
	mimg_file_set_fault_hook(NULL, NULL);
	ck_assert_msg(r == 0, "%s", mimg_errmsg());
	ck_assert_uint_le(w.ops, 8);
	ck_assert_uint_eq(w.bytes, 4096 + 65536 + 4096);
	ck_assert_uint_eq(tu_file_size("out.img"), 1ull << 40);
	ck_assert_uint_le(tu_allocated("out.img"), 4096 + 65536 + 4096 + 65536);
	int fd = open("out.img", O_RDONLY);
	uint8_t got[65536];
	ck_assert_int_eq(pread(fd, got, 65536, (off_t)(300 * GIB)), 65536);
	ck_assert_mem_eq(got, buf, 65536);
	close(fd);
}
END_TEST

START_TEST(into_clustered_target)
{
	/* windows start and end on the target's clusters: check a qcow2
	 * target with small clusters against qemu-img */
	if (!tu_have_format("qcow2") || !tu_have_program("qemu-img")) {
		printf("into_clustered_target: needs the qcow2 driver and "
		       "qemu-img; skipped\n");
		return;
	}
	make_source("src.img");
	struct mimg_opt o = {"cluster_size", "4096"};
	ck_assert_msg(mimg_create("dst.qcow2", "qcow2", SRC_SIZE, &o, 1) == 0,
		      "%s", mimg_errmsg());
	struct mimg *s, *d;
	ck_assert_int_eq(mimg_open(&s, "src.img", NULL, 0), 0);
	ck_assert_int_eq(mimg_open(&d, "dst.qcow2", "qcow2", MIMG_OPEN_RDWR),
			 0);
	struct mimg_convert_opts co = {.size = sizeof(co),
				       .sparse_size = 64 * KIB};
	ck_assert_msg(mimg_convert(s, d, &co) == 0, "%s", mimg_errmsg());
	ck_assert_int_eq(mimg_close(d), 0);
	ck_assert_int_eq(mimg_close(s), 0);
	tu_sh("qemu-img compare -q -f raw -F qcow2 src.img dst.qcow2");
	tu_sh("qemu-img check -q dst.qcow2");
	/* data only: well under the source's allocation */
	ck_assert_uint_lt(tu_allocated("dst.qcow2"), tu_allocated("src.img"));
}
END_TEST

/* dst_offset: two sources one after the other; a source that does not
 * fit at its offset is refused. */
START_TEST(sources_concatenated)
{
	make_source("src.img");
	uint8_t *tail = malloc(3000);
	tu_fill_random(tail, 3000, 5);
	tu_write_file("small.img", tail, 3000, 0);
	ck_assert_int_eq(mimg_create("dst.img", "raw", SRC_SIZE + 3000, NULL,
				     0),
			 0);
	struct mimg *a, *b, *d;
	ck_assert_int_eq(mimg_open(&a, "src.img", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&b, "small.img", "raw", 0), 0);
	ck_assert_int_eq(mimg_open(&d, "dst.img", "raw", MIMG_OPEN_RDWR), 0);
	struct mimg_convert_opts o = {.size = sizeof(o), .dst_offset = 0};
	ck_assert_msg(mimg_convert(a, d, &o) == 0, "%s", mimg_errmsg());
	o.dst_offset = SRC_SIZE;
	ck_assert_msg(mimg_convert(b, d, &o) == 0, "%s", mimg_errmsg());
	o.dst_offset = SRC_SIZE + 1;
	ck_assert_int_eq(mimg_convert(b, d, &o), -ENOSPC);
	o.dst_offset = UINT64_MAX;
	ck_assert_int_eq(mimg_convert(b, d, &o), -ENOSPC);
	ck_assert_int_eq(mimg_close(d), 0);
	ck_assert_int_eq(mimg_close(a), 0);
	ck_assert_int_eq(mimg_close(b), 0);
	assert_same_content("src.img", "dst.img", SRC_SIZE);
	uint8_t back[3000];
	int fd = open("dst.img", O_RDONLY);
	ck_assert_int_eq(pread(fd, back, 3000, SRC_SIZE), 3000);
	close(fd);
	ck_assert(memcmp(back, tail, 3000) == 0);
	ck_assert_uint_ge(tu_file_size("dst.img"), SRC_SIZE + 3000);
	free(tail);
}
END_TEST

/* copy_offload gives the same bytes and keeps holes. */
START_TEST(copy_offload_same_content)
{
	make_source("src.img");
	struct mimg_convert_opts o = {.size = sizeof(o), .copy_offload = 1};
	ck_assert_msg(convert_files("src.img", "dst.img", true, &o) == 0, "%s",
		      mimg_errmsg());
	assert_same_content("src.img", "dst.img", SRC_SIZE);
	ck_assert_uint_lt(tu_allocated("dst.img"), SRC_SIZE);
}
END_TEST

int main(void)
{
	return tu_main("convert", "convert",
		       TU_TESTS(sparse_source_stays_sparse, sparse_granularity,
				no_sparse_allocates_everything,
				existing_target_is_overwritten,
				existing_target_is_zero,
				larger_target_keeps_tail, target_checks,
				parallel_and_out_of_order_agree, odd_sizes,
				progress_monotonic,
				bounded_memory_on_large_sparse,
				work_proportional_to_data,
				into_clustered_target, sources_concatenated,
				copy_offload_same_content));
}
