/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif's bhyve-facing surface: blockif_open() over a configuration
 * node and every key it reads, blockif_legacy_config(), bootindex, the
 * sectorsize grammar bhyve accepts, the default physical sector size,
 * CHS geometry for a table of sizes, requests with more segments than
 * BLOCKIF_IOV_MAX, resize callbacks, pause/resume, and nocache on every
 * format.
 */
/* blockif_pause/resume are declared for bhyve's snapshot builds. */
#define BHYVE_SNAPSHOT 1
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mimg.h>

#include "bhyve_config.h"
#include "blockif_assert.h"
#include "testutil.h"

#define DISK_SIZE (4u << 20)

static uint8_t *disk;

static void make_disk(void)
{
	disk = tu_random_file("disk.raw", DISK_SIZE, 7);
}

/* blockif_open of a node built from a legacy option string. */
static struct blockif_ctxt *open_legacy(const char *opts)
{
	nvlist_t *nvl = test_nvlist_create();
	struct blockif_ctxt *bc;

	ck_assert_int_eq(blockif_legacy_config(nvl, opts), 0);
	bc = blockif_open(nvl, "0:4:0");
	test_nvlist_destroy(nvl);
	return bc;
}

/* One request and a way to wait for it. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, err;
};

static struct waiter wt = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			   0, 0};

static void wake_cb(struct blockif_req *br, int err)
{
	(void)br;
	pthread_mutex_lock(&wt.lock);
	wt.done++;
	wt.err = err;
	pthread_cond_broadcast(&wt.cond);
	pthread_mutex_unlock(&wt.lock);
}

/* Wait for the next completion; returns its error. */
static int wait_one(void)
{
	int err;

	pthread_mutex_lock(&wt.lock);
	while (wt.done == 0)
		pthread_cond_wait(&wt.cond, &wt.lock);
	wt.done--;
	err = wt.err;
	pthread_mutex_unlock(&wt.lock);
	return err;
}

START_TEST(config_keys)
{
	nvlist_t *nvl = test_nvlist_create();
	struct blockif_ctxt *bc;

	make_disk();
	/* Missing path. */
	ck_assert_ptr_null(blockif_open(nvl, "t"));
	ck_assert_int_eq(errno, EINVAL);
	set_config_value_node(nvl, "path", "disk.raw");
	bc = blockif_open(nvl, "t");
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(blockif_size(bc), DISK_SIZE);
	ck_assert_int_eq(blockif_sectsz(bc), 512);
	ck_assert_int_eq(blockif_is_ro(bc), 0);
	/* No bootindex: nothing is reported. */
	test_boot_calls = 0;
	ck_assert_int_eq(blockif_add_boot_device(NULL, bc), 0);
	ck_assert_int_eq(test_boot_calls, 0);
	ck_assert_int_eq(blockif_close(bc), 0);

	set_config_bool_node(nvl, "ro", true);
	set_config_bool_node(nvl, "nodelete", true);
	set_config_value_node(nvl, "sync", "yes");
	set_config_value_node(nvl, "sectorsize", "4096/16384");
	set_config_value_node(nvl, "bootindex", "3");
	set_config_value_node(nvl, "format", "raw");
	set_config_bool_node(nvl, "untrusted", true);
	bc = blockif_open(nvl, "t");
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(blockif_is_ro(bc), 1);
	ck_assert_int_eq(blockif_candelete(bc), 0);
	blockif_assert_sectors(bc, 4096, 16384, 0);
	test_boot_calls = 0;
	test_boot_ret = 0;
	ck_assert_int_eq(blockif_add_boot_device((struct pci_devinst *)&nvl,
						 bc),
			 0);
	ck_assert_int_eq(test_boot_calls, 1);
	ck_assert_int_eq(test_boot_index, 3);
	ck_assert_ptr_eq(test_boot_pi, (struct pci_devinst *)&nvl);
	/* bhyve's answer is passed on. */
	test_boot_ret = 1;
	ck_assert_int_eq(blockif_add_boot_device(NULL, bc), 1);
	test_boot_ret = 0;
	ck_assert_int_eq(blockif_close(bc), 0);

	/* "false" is honoured, a wrong format refused. */
	set_config_value_node(nvl, "ro", "false");
	set_config_value_node(nvl, "format", "qcow2");
	ck_assert_ptr_null(blockif_open(nvl, "t"));
	set_config_value_node(nvl, "format", "raw");
	set_config_value_node(nvl, "path", "missing.raw");
	ck_assert_ptr_null(blockif_open(nvl, "t"));
	ck_assert_int_eq(errno, ENOENT);
	test_nvlist_destroy(nvl);
	free(disk);
}
END_TEST

START_TEST(legacy_config_string)
{
	nvlist_t *nvl = test_nvlist_create();
	struct blockif_ctxt *bc;

	ck_assert_int_eq(blockif_legacy_config(nvl, NULL), 0);
	ck_assert_ptr_null(get_config_value_node(nvl, "path"));
	ck_assert_int_eq(blockif_legacy_config(nvl, "/images/a.img,nocache,"
						    "ro,sectorsize=512/4096,"
						    "bootindex=2,format=raw"),
			 0);
	ck_assert_str_eq(get_config_value_node(nvl, "path"), "/images/a.img");
	ck_assert_str_eq(get_config_value_node(nvl, "nocache"), "true");
	ck_assert_str_eq(get_config_value_node(nvl, "ro"), "true");
	ck_assert_str_eq(get_config_value_node(nvl, "sectorsize"), "512/4096");
	ck_assert_str_eq(get_config_value_node(nvl, "bootindex"), "2");
	ck_assert_str_eq(get_config_value_node(nvl, "format"), "raw");
	ck_assert_ptr_null(get_config_value_node(nvl, "sync"));
	test_nvlist_destroy(nvl);

	/* A path alone. */
	nvl = test_nvlist_create();
	ck_assert_int_eq(blockif_legacy_config(nvl, "disk.raw"), 0);
	ck_assert_str_eq(get_config_value_node(nvl, "path"), "disk.raw");
	test_nvlist_destroy(nvl);

	make_disk();
	bc = open_legacy("disk.raw,nodelete,direct,sectorsize=4096");
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(blockif_sectsz(bc), 4096);
	ck_assert_int_eq(blockif_candelete(bc), 0);
	ck_assert_int_eq(blockif_close(bc), 0);
	free(disk);
}
END_TEST

/* What bhyve's sectorsize parser accepts, and what it makes of it. */
START_TEST(sectorsize_grammar)
{
	static const struct {
		const char *val;
		int l, p; /* -1: refused; 0: the defaults */
	} cases[] = {
		{"512", 512, 512},
		{"4096", 4096, 4096},
		{"512/4096", 512, 4096},
		{"4096/131072", 4096, 131072}, /* ZFS-sized physical */
		{"65536/1048576", 65536, 1048576},
		{"131072", 131072, 131072}, /* no upper bound */
		{"0", 0, 0},		    /* 0: defaults */
		{"0/4096", 0, 0},	    /* P ignored with L = 0 */
		{" 512", 512, 512},	    /* strtol skips blanks */
		{"+512/+4096", 512, 4096},
		{"4294967808", 512, 512}, /* stored in an int: 2^32 + 512 */
		{"", -1, -1},
		{"abc", -1, -1},
		{"512x", -1, -1},
		{"512/", -1, -1},
		{"512/abc", -1, -1},
		{"512/4096/8192", -1, -1},
		{"0/abc", -1, -1},
		{"1000", -1, -1},
		{"256", -1, -1},
		{"4096/512", -1, -1},
		{"-512", -1, -1},
		{"512/-4096", -1, -1},
		{"512/0", -1, -1},
		{"99999999999999", -1, -1},
	};
	struct stat st;
	int def_p;

	make_disk();
	ck_assert_int_eq(stat("disk.raw", &st), 0);
	def_p = st.st_blksize >= 512 && !(st.st_blksize & (st.st_blksize - 1))
			? (int)st.st_blksize
			: 512;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		nvlist_t *nvl = test_nvlist_create();
		struct blockif_ctxt *bc;

		set_config_value_node(nvl, "path", "disk.raw");
		set_config_value_node(nvl, "sectorsize", cases[i].val);
		bc = blockif_open(nvl, "t");
		test_nvlist_destroy(nvl);
		if (cases[i].l < 0) {
			ck_assert_msg(bc == NULL, "sectorsize=%s accepted",
				      cases[i].val);
			continue;
		}
		ck_assert_msg(bc != NULL, "sectorsize=%s refused",
			      cases[i].val);
		blockif_assert_sectors(bc, cases[i].l ? cases[i].l : 512,
				       cases[i].l ? cases[i].p : def_p, 0);
		ck_assert_int_eq(blockif_close(bc), 0);
	}
	free(disk);
}
END_TEST

/* Without sectorsize, the physical sector is the file's st_blksize. */
START_TEST(default_physical_sector)
{
	struct blockif_ctxt *bc;
	struct stat st;
	int sz, off;

	make_disk();
	ck_assert_int_eq(stat("disk.raw", &st), 0);
	bc = open_legacy("disk.raw");
	ck_assert_ptr_nonnull(bc);
	blockif_psectsz(bc, &sz, &off);
	if (st.st_blksize >= 512 && !(st.st_blksize & (st.st_blksize - 1)))
		ck_assert_int_eq(sz, (int)st.st_blksize);
	else
		ck_assert_int_eq(sz, 512);
	ck_assert_int_eq(off, 0);
	ck_assert_int_eq(blockif_close(bc), 0);
	free(disk);
}
END_TEST

/*
 * The expected values come from the algorithm bhyve's blockif_chs()
 * follows, worked by hand: the VHD specification's, switching to 255
 * sectors per track from 65536 * 16 * 63 sectors (31.5 GiB) where the
 * specification says 65535 * 16 * 63.  E.g. 65535 * 16 * 63 sectors: below
 * bhyve's threshold, 17 spt gives hcyl 3885434 and heads 3795 (stored in 8
 * bits: 211, > 16), 31 spt gives hcyl 2130740 >= 16 * 1024, so 63 spt,
 * hcyl 1048560, 65535 cylinders (the VHD specification: 16191/16/255).
 */
START_TEST(chs_table)
{
	static const struct {
		uint64_t size;
		int sectsz;
		uint16_t c;
		uint8_t h, s;
	} rows[] = {
		{0, 512, 0, 4, 17},
		{512, 512, 0, 4, 17},
		{1ull << 20, 512, 30, 4, 17},
		{4ull << 20, 512, 120, 4, 17},
		{(17ull * 4 * 1024 - 1) * 512, 512, 1023, 4, 17},
		{17ull * 4 * 1024 * 512, 512, 140, 16, 31},
		{17ull * 16 * 1024 * 512, 512, 561, 16, 31},
		{(31ull * 16 * 1024 - 1) * 512, 512, 1023, 16, 31},
		{31ull * 16 * 1024 * 512, 512, 503, 16, 63},
		{504ull << 20, 512, 1024, 16, 63},
		{1ull << 30, 512, 2080, 16, 63},
		{8ull << 30, 512, 16644, 16, 63},
		{(65535ull * 16 * 63 - 1) * 512, 512, 65534, 16, 63},
		{65535ull * 16 * 63 * 512, 512, 65535, 16, 63},
		{65536ull * 16 * 63 * 512 - 512, 512, 65535, 16, 63},
		{65536ull * 16 * 63 * 512, 512, 16191, 16, 255}, /* 31.5 GiB */
		{65536ull * 16 * 63 * 512 + 512, 512, 16191, 16, 255},
		{100ull << 30, 512, 51400, 16, 255},
		{65535ull * 16 * 255 * 512, 512, 65535, 16, 255},
		{2ull << 40, 512, 65535, 16, 255},
		/* In logical sectors of the configured size. */
		{8ull << 30, 4096, 2080, 16, 63},
		{65536ull * 16 * 63 * 512 - 4096, 4096, 8191, 16, 63},
		{1ull << 40, 4096, 65535, 16, 255},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char opts[64];
		struct blockif_ctxt *bc;
		uint16_t c;
		uint8_t h, s;

		unlink("chs.raw");
		tu_make_sparse("chs.raw", rows[i].size);
		snprintf(opts, sizeof(opts), "chs.raw,format=raw,sectorsize=%d",
			 rows[i].sectsz);
		bc = open_legacy(opts);
		ck_assert_ptr_nonnull(bc);
		blockif_chs(bc, &c, &h, &s);
		ck_assert_msg(c == rows[i].c && h == rows[i].h &&
				      s == rows[i].s,
			      "size %llu/%d: %u/%u/%u, want %u/%u/%u",
			      (unsigned long long)rows[i].size, rows[i].sectsz,
			      c, h, s, rows[i].c, rows[i].h, rows[i].s);
		ck_assert_int_eq(blockif_close(bc), 0);
	}
}
END_TEST

/* A request with NSEG segments of 512 bytes: bhyve's NVMe layout, the
 * request followed by the iovecs that do not fit in br_iov. */
struct long_req {
	struct blockif_req req;
	struct iovec more[2048 - BLOCKIF_IOV_MAX];
};

/* The segments as one array: indexing br_iov itself past its declared
 * bound lets the compiler assume a loop stops at BLOCKIF_IOV_MAX. */
static struct iovec *segments(struct long_req *lr)
{
	return (struct iovec *)(void *)((char *)&lr->req +
					offsetof(struct blockif_req, br_iov));
}

static void fill_segments(struct long_req *lr, uint8_t *buf, int nseg)
{
	struct iovec *iov = segments(lr);

	for (int i = 0; i < nseg; i++) {
		iov[i].iov_base = buf + 512 * (size_t)i;
		iov[i].iov_len = 512;
	}
	lr->req.br_iovcnt = nseg;
	lr->req.br_resid = 512 * (ssize_t)nseg;
}

START_TEST(many_segments)
{
	static const int counts[] = {BLOCKIF_IOV_MAX + 1, 513, 1024, 2048};
	struct long_req *lr = calloc(1, sizeof(*lr));
	uint8_t *buf = malloc(2048 * 512);
	struct blockif_ctxt *bc;

	ck_assert(lr && buf);
	/* The tail must start right after br_iov, as in bhyve's NVMe. */
	ck_assert_ptr_eq(&lr->req.br_iov[BLOCKIF_IOV_MAX], &lr->more[0]);
	make_disk();
	bc = open_legacy("disk.raw,format=raw");
	ck_assert_ptr_nonnull(bc);
	lr->req.br_callback = wake_cb;
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		int n = counts[k];
		off_t off = 8192 * (off_t)k;

		/* Read: every segment gets its own 512 bytes. */
		fill_segments(lr, buf, n);
		lr->req.br_offset = off;
		ck_assert_int_eq(blockif_read(bc, &lr->req), 0);
		ck_assert_int_eq(wait_one(), 0);
		ck_assert_int_eq(lr->req.br_resid, 0);
		ck_assert(memcmp(buf, disk + off, 512 * (size_t)n) == 0);
		/* Write a new pattern in as many segments, read it back. */
		tu_fill_random(buf, 512 * (size_t)n, 100 + k);
		memcpy(disk + off, buf, 512 * (size_t)n);
		fill_segments(lr, buf, n);
		ck_assert_int_eq(blockif_write(bc, &lr->req), 0);
		ck_assert_int_eq(wait_one(), 0);
		ck_assert_int_eq(lr->req.br_resid, 0);
		memset(buf, 0, 512 * (size_t)n);
		fill_segments(lr, buf, n);
		ck_assert_int_eq(blockif_read(bc, &lr->req), 0);
		ck_assert_int_eq(wait_one(), 0);
		ck_assert(memcmp(buf, disk + off, 512 * (size_t)n) == 0);
	}
	/* Crossing the end with many segments: the rest stays in resid. */
	fill_segments(lr, buf, 1024);
	lr->req.br_offset = DISK_SIZE - 512 * 1000;
	ck_assert_int_eq(blockif_read(bc, &lr->req), 0);
	ck_assert_int_eq(wait_one(), 0);
	ck_assert_int_eq(lr->req.br_resid, 512 * 24);
	ck_assert(memcmp(buf, disk + DISK_SIZE - 512 * 1000, 512 * 1000) == 0);
	ck_assert_int_eq(blockif_close(bc), 0);
	free(lr);
	free(buf);
	free(disk);
}
END_TEST

static struct blockif_ctxt *resized_bc;
static void *resized_arg;
static size_t resized_to;
static int resized_calls;

static pthread_mutex_t resize_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t resize_cond = PTHREAD_COND_INITIALIZER;

static void resized(struct blockif_ctxt *bc, void *arg, size_t size)
{
	pthread_mutex_lock(&resize_lock);
	resized_bc = bc;
	resized_arg = arg;
	resized_to = size;
	resized_calls++;
	pthread_cond_broadcast(&resize_cond);
	pthread_mutex_unlock(&resize_lock);
}

/* Wait until the resize callback has run CALLS times in all. */
static void wait_resized(int calls)
{
	pthread_mutex_lock(&resize_lock);
	while (resized_calls < calls)
		pthread_cond_wait(&resize_cond, &resize_lock);
	pthread_mutex_unlock(&resize_lock);
}

START_TEST(resize_callback)
{
	struct blockif_ctxt *bc;
	int arg;

	make_disk();
	bc = open_legacy("disk.raw,format=raw");
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(blockif_register_resize_callback(bc, NULL, NULL),
			 EINVAL);
	ck_assert_int_eq(blockif_register_resize_callback(bc, resized, &arg),
			 0);
	ck_assert_int_eq(blockif_register_resize_callback(bc, resized, NULL),
			 EBUSY);
	ck_assert_int_eq(blockif_resize(bc, 2 * DISK_SIZE), 0);
	ck_assert_int_eq(resized_calls, 1);
	ck_assert_ptr_eq(resized_bc, bc);
	ck_assert_ptr_eq(resized_arg, &arg);
	ck_assert_uint_eq(resized_to, 2 * DISK_SIZE);
	ck_assert_int_eq(blockif_size(bc), 2 * DISK_SIZE);
	/* Another program grows the raw file: noticed, as bhyve notices it,
	 * and the new space reads as zeroes. */
	ck_assert_int_eq(truncate("disk.raw", 3 * DISK_SIZE), 0);
	wait_resized(2);
	ck_assert_int_eq(blockif_size(bc), 3 * DISK_SIZE);
	ck_assert_int_eq(resized_calls, 2);
	ck_assert_uint_eq(resized_to, 3 * DISK_SIZE);
	{
		struct blockif_req br = {.br_callback = wake_cb};
		uint8_t buf[4096];

		memset(buf, 0xee, sizeof(buf));
		br.br_iovcnt = 1;
		br.br_iov[0].iov_base = buf;
		br.br_iov[0].iov_len = sizeof(buf);
		br.br_offset = 3 * DISK_SIZE - 4096;
		br.br_resid = sizeof(buf);
		ck_assert_int_eq(blockif_read(bc, &br), 0);
		ck_assert_int_eq(wait_one(), 0);
		ck_assert_int_eq(br.br_resid, 0);
		for (size_t i = 0; i < sizeof(buf); i++)
			ck_assert_uint_eq(buf[i], 0);
	}
	ck_assert_int_eq(blockif_close(bc), 0);
	/* Read-only images cannot be resized. */
	bc = open_legacy("disk.raw,format=raw,ro");
	ck_assert_int_eq(blockif_resize(bc, DISK_SIZE), EROFS);
	ck_assert_int_eq(blockif_size(bc), 3 * DISK_SIZE);
	ck_assert_int_eq(blockif_close(bc), 0);
	free(disk);
}
END_TEST

START_TEST(pause_and_resume)
{
	struct blockif_ctxt *bc;
	struct blockif_req br = {.br_callback = wake_cb};
	uint8_t buf[512];

	make_disk();
	bc = open_legacy("disk.raw,format=raw");
	ck_assert_ptr_nonnull(bc);
	blockif_pause(bc);
	br.br_iovcnt = 1;
	br.br_iov[0].iov_base = buf;
	br.br_iov[0].iov_len = sizeof(buf);
	br.br_resid = sizeof(buf);
	ck_assert_int_eq(blockif_read(bc, &br), 0);
	pthread_mutex_lock(&wt.lock);
	ck_assert_int_eq(wt.done, 0);
	pthread_mutex_unlock(&wt.lock);
	/* Still queued while paused: cancellable. */
	ck_assert_int_eq(blockif_cancel(bc, &br), 0);
	ck_assert_int_eq(blockif_read(bc, &br), 0);
	blockif_resume(bc);
	ck_assert_int_eq(wait_one(), 0);
	ck_assert(memcmp(buf, disk, sizeof(buf)) == 0);
	ck_assert_int_eq(blockif_close(bc), 0);
	free(disk);
}
END_TEST

/* nocache on each format: opened with O_DIRECT where the file system
 * allows (unaligned metadata I/O is bounced); all serve I/O. */
START_TEST(nocache_every_format)
{
	static const char *const formats[] = {"raw", "qcow2", "vmdk"};
	uint8_t *buf = aligned_alloc(4096, 65536);
	uint8_t *pat = malloc(65536);

	ck_assert(buf && pat);
	tu_fill_random(pat, 65536, 9);
	for (size_t i = 0; i < 3; i++) {
		struct blockif_req br = {.br_callback = wake_cb};
		struct blockif_ctxt *bc;
		char path[32], opts[64];

		snprintf(path, sizeof(path), "nc.%s", formats[i]);
		ck_assert_int_eq(mimg_create(path, formats[i], 1 << 20, NULL,
					     0),
				 0);
		snprintf(opts, sizeof(opts), "%s,nocache", path);
		bc = open_legacy(opts);
		ck_assert_msg(bc != NULL, "nocache open of %s failed", path);
		br.br_iovcnt = 1;
		br.br_iov[0].iov_base = buf;
		br.br_iov[0].iov_len = 65536;
		br.br_offset = 65536;
		br.br_resid = 65536;
		memcpy(buf, pat, 65536);
		ck_assert_int_eq(blockif_write(bc, &br), 0);
		ck_assert_int_eq(wait_one(), 0);
		ck_assert_int_eq(blockif_flush(bc, &br), 0);
		ck_assert_int_eq(wait_one(), 0);
		memset(buf, 0, 65536);
		br.br_resid = 65536;
		ck_assert_int_eq(blockif_read(bc, &br), 0);
		ck_assert_int_eq(wait_one(), 0);
		ck_assert_int_eq(br.br_resid, 0);
		ck_assert(memcmp(buf, pat, 65536) == 0);
		ck_assert_int_eq(blockif_close(bc), 0);
	}
	free(buf);
	free(pat);
}
END_TEST

int main(void)
{
	return tu_main("blockif_config", "bhyve",
		       TU_TESTS(config_keys, legacy_config_string,
				sectorsize_grammar, default_physical_sector,
				chs_table, many_segments, resize_callback,
				pause_and_resume, nocache_every_format));
}
