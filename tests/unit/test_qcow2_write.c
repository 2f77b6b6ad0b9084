/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qcow2 writes through libmimg, checked against an in-memory model of the
 * guest disk and with qemu-img check (no corruptions, no leaks) and
 * qemu-img's own reading of the result.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"

struct model {
	uint8_t *data;
	size_t size;
};

static void model_init(struct model *m, size_t size, const char *from_raw)
{
	m->size = size;
	m->data = calloc(1, size);
	ck_assert(m->data != NULL);
	if (from_raw) {
		FILE *f = fopen(from_raw, "rb");
		ck_assert(f != NULL);
		size_t n = fread(m->data, 1, size, f);
		(void)n;
		fclose(f);
	}
}

static struct mimg *open_rw(const char *path)
{
	struct mimg *img;
	int r = mimg_open(&img, path, NULL, MIMG_OPEN_RDWR);
	ck_assert_msg(r == 0, "open %s: %s", path, mimg_errmsg());
	return img;
}

static void do_write(struct mimg *img, struct model *m, uint64_t off,
		     size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len);
	tu_fill_random(b, len, seed);
	ssize_t r = mimg_pwrite(img, b, len, off, 0);
	ck_assert_msg(r == (ssize_t)len, "write %llu+%zu: %zd %s",
		      (unsigned long long)off, len, r, mimg_errmsg());
	memcpy(m->data + off, b, len);
	free(b);
}

/* One pseudo-random write: LEN bytes from SEED at OFF. */
struct wr {
	uint64_t off;
	size_t len;
	uint64_t seed;
};

static void do_writes(struct mimg *img, struct model *m, const struct wr *w,
		      int n)
{
	for (int i = 0; i < n; i++)
		do_write(img, m, w[i].off, w[i].len, w[i].seed);
}

/* Zero [OFF, OFF+LEN) in the image and the model. */
static void do_zero(struct mimg *img, struct model *m, uint64_t off, size_t len,
		    unsigned flags)
{
	ck_assert_int_eq(mimg_pwrite_zeroes(img, off, len, flags), 0);
	memset(m->data + off, 0, len);
}

static void verify_read(struct mimg *img, const struct model *m)
{
	uint8_t *b = malloc(m->size);
	ck_assert_int_eq(mimg_pread(img, b, m->size, 0, 0), (ssize_t)m->size);
	if (memcmp(b, m->data, m->size) != 0) {
		size_t i = 0;
		while (b[i] == m->data[i])
			i++;
		ck_abort_msg("byte %zu: %u != %u", i, b[i], m->data[i]);
	}
	free(b);
}

/* qemu-img check must be clean (exit 0: no corruption, no leak) and
 * qemu's reading must equal the model. */
static void verify_with_qemu(const char *path, const struct model *m)
{
	tu_qemu_reads(path, "qcow2", m->data, m->size);
}

/* The image reads as the model, closes cleanly, and qemu agrees. */
static void close_and_verify(struct mimg *img, struct model *m)
{
	verify_read(img, m);
	ck_assert_int_eq(mimg_close(img), 0);
	verify_with_qemu("t.qcow2", m);
}

/* close_and_verify, then free the model. */
static void finish(struct mimg *img, struct model *m)
{
	close_and_verify(img, m);
	free(m->data);
}

/* t.qcow2 open read-write, and M its model of SIZE bytes (from the raw
 * file FROM_RAW, or zeroes). */
static struct mimg *open_modelled(struct model *m, size_t size,
				  const char *from_raw)
{
	model_init(m, size, from_raw);
	return open_rw("t.qcow2");
}

START_TEST(write_allocating_unaligned)
{
	struct model m;
	ck_assert_int_eq(mimg_create("t.qcow2", "qcow2", 8 << 20, NULL, 0), 0);
	struct mimg *img = open_modelled(&m, 8 << 20, NULL);
	static const struct wr w[] = {
		{0, 100000, 1},
		{777, 3, 2},
		{3 << 20, 2 << 20, 3},
		{(8 << 20) - 5000, 5000, 4},
		{65536 * 5 + 100, 65536 * 3, 5},
	};
	do_writes(img, &m, w, TU_NELEM(w));
	finish(img, &m);
}
END_TEST

/* Partial writes over a backing file copy the rest of the cluster (or
 * only of the subcluster with extended L2) from the backing file. */
START_TEST(write_cow_from_backing)
{
	const char *ext = _i ? "extended_l2=on," : "";
	tu_sh("qemu-img create -q -f raw b.raw 4M && qemu-io -f raw -c "
	      "'write -P 0x5a 0 4M' b.raw >/dev/null");
	tu_sh("qemu-img create -q -f qcow2 -o "
	      "%sbacking_file=b.raw,backing_fmt=raw t.qcow2",
	      ext);
	struct model m;
	struct mimg *img = open_modelled(&m, 4 << 20, "b.raw");
	static const struct wr w[] = {
		{2048, 2048, 1},
		{70000, 10, 2},
		{65536 * 10 - 100, 300, 3},
		{1 << 20, 65536 * 4 + 1, 4},
	};
	do_writes(img, &m, w, TU_NELEM(w));
	verify_read(img, &m);
	if (_i) {
		/* Only the written subcluster is allocated. */
		tu_assert_status(img, 0, 65536, 2048, 0, MIMG_BS_ALLOCATED);
		tu_assert_status(img, 2048, 65536, 2048, MIMG_BS_ALLOCATED, 0);
	}
	/* A second write into the same cluster. */
	do_write(img, &m, 10000, 5000, 5);
	finish(img, &m);
}
END_TEST

START_TEST(write_over_compressed_clusters)
{
	const char *ct = _i ? "zstd" : "zlib";
	tu_sh("qemu-img create -q -f qcow2 -o compression_type=%s t.qcow2 1M "
	      "&& qemu-io -c 'write -c -P 0x61 0 64k' -c "
	      "'write -c -P 0x62 64k 64k' -c 'write -c -P 0x63 128k 64k' "
	      "t.qcow2 >/dev/null",
	      ct);
	struct model m;
	struct mimg *img = open_modelled(&m, 1 << 20, NULL);
	memset(m.data, 0x61, 65536);
	memset(m.data + 65536, 0x62, 65536);
	memset(m.data + 131072, 0x63, 65536);
	verify_read(img, &m);
	static const struct wr w[] = {
		{100, 1000, 1},
		{65536, 65536, 2},
		{131072 + 65000, 1000, 3},
	};
	do_writes(img, &m, w, TU_NELEM(w));
	finish(img, &m);
}
END_TEST

START_TEST(zeroes_and_discard)
{
	static const char *const variants[] = {"compat=1.1", "compat=0.10",
					       "extended_l2=on"};
	tu_sh("qemu-img create -q -f qcow2 -o %s t.qcow2 2M", variants[_i]);
	struct model m;
	struct mimg *img = open_modelled(&m, 2 << 20, NULL);
	do_write(img, &m, 0, 2 << 20, 1);
	do_zero(img, &m, 65536, 131072, 0);
	do_zero(img, &m, 300000, 200000, MIMG_ZERO_MAY_UNMAP);
	ck_assert_int_eq(mimg_discard(img, 1 << 20, 262144, 0), 0);
	memset(m.data + (1 << 20), 0, 262144);
	verify_read(img, &m);
	tu_assert_status(img, 65536, 131072, 0, MIMG_BS_ZERO, 0);
	/* Write again into zeroed and discarded clusters. */
	do_write(img, &m, 65536 + 10, 20, 2);
	do_write(img, &m, (1 << 20) + 5, 70000, 3);
	finish(img, &m);
}
END_TEST

/* 512-byte clusters: the refcount table must grow many times. */
START_TEST(refcount_table_growth)
{
	static const char *const rb[] = {"16", "1", "64"};
	tu_sh("qemu-img create -q -f qcow2 -o "
	      "cluster_size=512,refcount_bits=%s t.qcow2 16M",
	      rb[_i]);
	struct model m;
	struct mimg *img = open_modelled(&m, 16 << 20, NULL);
	for (int i = 0; i < 40; i++)
		do_write(img, &m, (uint64_t)i * 400000 % (15 << 20),
			 60000 + (size_t)i * 13, (uint64_t)i + 10);
	finish(img, &m);
}
END_TEST

START_TEST(truncate_grows_l1)
{
	tu_sh("qemu-img create -q -f qcow2 -o cluster_size=512 t.qcow2 1M");
	struct model m;
	struct mimg *img = open_modelled(&m, 64 << 20, NULL);
	do_write(img, &m, 1000, 5000, 1);
	ck_assert_int_eq(mimg_truncate(img, 64 << 20, MIMG_PREALLOC_OFF), 0);
	ck_assert_uint_eq(mimg_size(img), 64 << 20);
	do_write(img, &m, (64 << 20) - 10000, 10000, 2);
	do_write(img, &m, 30 << 20, 100000, 3);
	verify_read(img, &m);
	/* Growing with preallocated metadata: the new range reads as
	 * zeroes and is allocated. */
	free(m.data);
	model_init(&m, 72 << 20, NULL);
	ck_assert_int_eq(mimg_pread(img, m.data, 64 << 20, 0, 0), 64 << 20);
	ck_assert_int_eq(mimg_truncate(img, 72 << 20, MIMG_PREALLOC_METADATA),
			 0);
	tu_assert_status(img, 70 << 20, 1 << 20, 0, MIMG_BS_ALLOCATED, 0);
	do_write(img, &m, (72 << 20) - 700, 700, 4);
	finish(img, &m);
}
END_TEST

/* Clusters shared with an internal snapshot are copied on write; the
 * snapshot keeps its content. */
START_TEST(write_shared_with_snapshot)
{
	tu_sh("qemu-img create -q -f qcow2 t.qcow2 1M && qemu-io -c "
	      "'write -P 0x41 0 1M' t.qcow2 >/dev/null && qemu-img snapshot -c "
	      "s1 t.qcow2");
	struct model m;
	struct mimg *img = open_modelled(&m, 1 << 20, NULL);
	memset(m.data, 0x41, 1 << 20);
	do_write(img, &m, 1000, 3000, 1);
	do_write(img, &m, 500000, 200000, 2);
	do_zero(img, &m, 917504, 65536, 0);
	close_and_verify(img, &m);

	/* The snapshot still reads as before, through libmimg too. */
	tu_sh("qemu-img convert -l s1 -O raw t.qcow2 s1.raw && qemu-io -f raw "
	      "-c 'read -P 0x41 0 1M' s1.raw | grep -q 'read 1048576'");
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	ck_assert_int_eq(mimg_select_snapshot(img, "s1"), 0);
	memset(m.data, 0x41, 1 << 20);
	verify_read(img, &m);
	mimg_close(img);
	free(m.data);
}
END_TEST

/* The first byte IMG reads once it reads the snapshot ID and NAME name
 * (NULL: mimg_select_snapshot by NAME), or the select's error. */
static int snapshot_byte(const char *id, const char *name)
{
	struct mimg *img;
	uint8_t b;
	ck_assert_int_eq(mimg_open(&img, "t.qcow2", NULL, 0), 0);
	int r = id == name ? mimg_select_snapshot(img, name)
			   : mimg_select_snapshot_by(img, id, name);
	if (r == 0) {
		ck_assert_int_eq(mimg_pread(img, &b, 1, 0, 0), 1);
		r = b;
	}
	mimg_close(img);
	return r;
}

/* Snapshots found by id, then by name, or by both, as qemu-img convert
 * -l finds them: here the snapshot named "1" is the one of id 2. */
START_TEST(select_snapshot_by_id_and_name)
{
	tu_sh("qemu-img create -q -f qcow2 t.qcow2 1M && "
	      "qemu-io -c 'write -P 0x41 0 64k' t.qcow2 >/dev/null && "
	      "qemu-img snapshot -c s1 t.qcow2 && "
	      "qemu-io -c 'write -P 0x42 0 64k' t.qcow2 >/dev/null && "
	      "qemu-img snapshot -c 1 t.qcow2 && "
	      "qemu-io -c 'write -P 0x43 0 64k' t.qcow2 >/dev/null && "
	      "qemu-img snapshot -c s3 t.qcow2");
	ck_assert_int_eq(snapshot_byte("1", "1"), 0x41); /* id first */
	ck_assert_int_eq(snapshot_byte("s3", "s3"), 0x43);
	ck_assert_int_eq(snapshot_byte("nosuch", "nosuch"), -ENOENT);
	ck_assert_int_eq(snapshot_byte(NULL, "1"), 0x42);
	ck_assert_int_eq(snapshot_byte("2", "1"), 0x42);
	ck_assert_int_eq(snapshot_byte("3", NULL), 0x43);
	ck_assert_int_eq(snapshot_byte("1", "s3"), -ENOENT);
	ck_assert_int_eq(snapshot_byte("s1", NULL), -ENOENT); /* not an id */
	ck_assert_int_eq(snapshot_byte(NULL, "2"), -ENOENT);  /* not a name */
	ck_assert_int_eq(snapshot_byte(NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(write_data_file)
{
	static const char *const o[] = {"data_file=t.data",
					"data_file=t.data,data_file_raw=on"};
	tu_sh("qemu-img create -q -f qcow2 -o %s t.qcow2 2M", o[_i]);
	struct model m;
	struct mimg *img = open_modelled(&m, 2 << 20, NULL);
	do_write(img, &m, 0, 3000, 1);
	do_write(img, &m, 100000, 300000, 2);
	do_zero(img, &m, 131072, 65536, 0);
	close_and_verify(img, &m);
	if (_i) {
		/* The raw data file holds the guest disk as is. */
		tu_sh("cmp -s -n 2097152 t.data model.raw");
	}
	free(m.data);
}
END_TEST

struct worker {
	struct mimg *img;
	struct model *m;
	int id;
};

static void *worker_main(void *p)
{
	struct worker *w = p;
	/* Each thread owns interleaved 96 KiB stripes: neighbours share
	 * clusters, so allocation and COW race for the same L2 tables. */
	for (int i = 0; i < 24; i++) {
		uint64_t off = ((uint64_t)i * 8 + (uint64_t)w->id) * 98304;
		size_t len = 98304;
		uint8_t *b = malloc(len);
		tu_fill_random(b, len, off);
		if (mimg_pwrite(w->img, b, len, off, 0) != (ssize_t)len)
			abort();
		memcpy(w->m->data + off, b, len);
		free(b);
	}
	return NULL;
}

START_TEST(concurrent_writers)
{
	tu_sh("qemu-img create -q -f raw b.raw 20M && qemu-io -f raw -c "
	      "'write -P 0x5a 0 20M' b.raw >/dev/null && qemu-img create -q -f "
	      "qcow2 -b b.raw -F raw t.qcow2");
	struct model m;
	struct mimg *img = open_modelled(&m, 20 << 20, "b.raw");
	pthread_t th[8];
	struct worker w[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){img, &m, i};
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	finish(img, &m);
}
END_TEST

int main(void)
{
	return tu_main_qemu("qcow2_write", "write",
			    TU_TESTS(write_allocating_unaligned,
				     truncate_grows_l1,
				     write_shared_with_snapshot,
				     select_snapshot_by_id_and_name,
				     concurrent_writers),
			    TU_LOOPS({write_cow_from_backing, 2},
				     {write_over_compressed_clusters, 2},
				     {zeroes_and_discard, 3},
				     {refcount_table_growth, 3},
				     {write_data_file, 2}));
}
