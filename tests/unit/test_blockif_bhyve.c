/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif driven the way FreeBSD 14's device models drive it
 * (usr.sbin/bhyve/pci_virtio_block.c, pci_ahci.c, pci_nvme.c), each model
 * reduced to its use of the block interface:
 *  - virtio-blk: configured from a legacy option string through
 *    blockif_legacy_config(), a ring of requests submitted while the
 *    device lock is held (its callback takes that lock, so a callback run
 *    in the submitter's context would deadlock), every submission asserted
 *    to return 0, bootindex and resize callback registration;
 *  - AHCI: a request pool of blockif_queuesz() entries, IDENTIFY geometry
 *    from blockif_chs() for a table of disk sizes, 128-segment requests
 *    trimmed to whole sectors, TRIM ranges continued from the callback,
 *    and a port stop that cancels every outstanding request while holding
 *    the lock the callbacks take;
 *  - NVMe: requests embedded with a tail of iovecs (513 segments for a
 *    2 MiB transfer that starts inside a page), the out-of-range check,
 *    flush, and a multi-range deallocate whose callback resubmits the same
 *    request (and a cancel of that resubmission).
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
#include <strings.h>
#include <sys/queue.h>
#include <unistd.h>

#include "bhyve_config.h"
#include "testutil.h"

#define DISK_SIZE (16u << 20)

static uint8_t *disk;

static void make_disk(void)
{
	disk = tu_random_file("disk.raw", DISK_SIZE, 21);
}

/* Guest memory: pages the models point their iovecs into. */
#define GUEST_PAGES 1200
static uint8_t *guest;

static uint8_t *guest_page(int n)
{
	return guest + 4096 * (size_t)n;
}

/* A stand-in for struct pci_devinst, which only bhyve defines. */
static struct {
	int slot, func;
} fake_pi = {3, 0};
#define PI ((struct pci_devinst *)&fake_pi)

/* ---- virtio-blk ---------------------------------------------------- */

#define VTBLK_RINGSZ 128
_Static_assert(VTBLK_RINGSZ <= BLOCKIF_RING_MAX,
	       "Each ring entry must be able to queue a request");

struct vtblk_softc;
struct vtblk_ioreq {
	struct blockif_req io_req;
	struct vtblk_softc *io_sc;
	uint8_t io_status;
};

struct vtblk_softc {
	pthread_mutex_t vsc_mtx;
	pthread_cond_t done_cond;
	struct blockif_ctxt *bc;
	pthread_t submitter;
	int completed, in_submitter;
	struct vtblk_ioreq ios[VTBLK_RINGSZ];
	uint64_t capacity;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	size_t resized_to;
};

static void vtblk_done(struct blockif_req *br, int err)
{
	struct vtblk_ioreq *io = br->br_param;
	struct vtblk_softc *sc = io->io_sc;

	if (pthread_equal(pthread_self(), sc->submitter))
		__atomic_fetch_add(&sc->in_submitter, 1, __ATOMIC_SEQ_CST);
	io->io_status = err == EOPNOTSUPP ? 2 : err ? 1 : 0;
	pthread_mutex_lock(&sc->vsc_mtx);
	sc->completed++;
	pthread_cond_broadcast(&sc->done_cond);
	pthread_mutex_unlock(&sc->vsc_mtx);
}

static void vtblk_resized(struct blockif_ctxt *bc, void *arg, size_t size)
{
	struct vtblk_softc *sc = arg;

	ck_assert_ptr_eq(bc, sc->bc);
	sc->resized_to = size;
	sc->capacity = size / 512;
}

START_TEST(virtio_blk_model)
{
	struct vtblk_softc *sc = calloc(1, sizeof(*sc));
	nvlist_t *nvl = test_nvlist_create();
	char bident[sizeof("XXX:XXX")];
	int sectsz, sts, sto, seg = 0;

	ck_assert_ptr_nonnull(sc);
	make_disk();
	/* pe_legacy_config, then pe_init. */
	ck_assert_int_eq(blockif_legacy_config(nvl,
					       "disk.raw,sectorsize=512/"
					       "4096,bootindex=1,format=raw"),
			 0);
	snprintf(bident, sizeof(bident), "%u:%u", fake_pi.slot, fake_pi.func);
	sc->bc = blockif_open(nvl, bident);
	ck_assert_ptr_nonnull(sc->bc);
	test_boot_calls = 0;
	ck_assert_int_eq(blockif_add_boot_device(PI, sc->bc), 0);
	ck_assert_int_eq(test_boot_calls, 1);
	ck_assert_int_eq(test_boot_index, 1);
	sectsz = blockif_sectsz(sc->bc);
	blockif_psectsz(sc->bc, &sts, &sto);
	sc->capacity = (uint64_t)blockif_size(sc->bc) / 512;
	sc->blk_size = (uint32_t)sectsz;
	sc->physical_block_exp = sts > sectsz
					 ? (uint8_t)(ffsll(sts / sectsz) - 1)
					 : 0;
	ck_assert_uint_eq(sc->capacity, DISK_SIZE / 512);
	ck_assert_uint_eq(sc->physical_block_exp, 3);
	pthread_mutex_init(&sc->vsc_mtx, NULL);
	pthread_cond_init(&sc->done_cond, NULL);
	for (int i = 0; i < VTBLK_RINGSZ; i++) {
		sc->ios[i].io_req.br_callback = vtblk_done;
		sc->ios[i].io_req.br_param = &sc->ios[i];
		sc->ios[i].io_sc = sc;
	}
	ck_assert_int_eq(blockif_register_resize_callback(sc->bc, vtblk_resized,
							  sc),
			 0);

	/* The notify path: the device lock is held while the ring is
	 * processed.  Reads of up to BLOCKIF_IOV_MAX segments, a write, a
	 * flush, a discard and a read past the capacity. */
	guest = aligned_alloc(4096, 4096 * (size_t)GUEST_PAGES);
	ck_assert_ptr_nonnull(guest);
	pthread_mutex_lock(&sc->vsc_mtx);
	sc->submitter = pthread_self();
	for (int i = 0; i < VTBLK_RINGSZ; i++) {
		struct blockif_req *br = &sc->ios[i].io_req;
		int n = i == 0 ? BLOCKIF_IOV_MAX : 1 + i % 7;
		ssize_t iolen = 0;
		int err;

		if (seg + n > GUEST_PAGES)
			seg = 0;
		for (int k = 0; k < n; k++) {
			br->br_iov[k].iov_base = guest_page(seg + k);
			br->br_iov[k].iov_len = 4096;
			iolen += 4096;
		}
		br->br_iovcnt = n;
		br->br_offset = (off_t)(i * 8) * 512;
		br->br_resid = iolen;
		if (i == VTBLK_RINGSZ - 1) {
			br->br_offset = (off_t)DISK_SIZE + 512;
			err = blockif_write(sc->bc, br);
		} else if (i == 5) {
			err = blockif_flush(sc->bc, br);
		} else if (i == 6) {
			br->br_iovcnt = 0;
			br->br_offset = 4 << 20;
			br->br_resid = 8192;
			err = blockif_delete(sc->bc, br);
		} else {
			err = blockif_read(sc->bc, br);
		}
		/* bhyve: assert(err == 0). */
		ck_assert_int_eq(err, 0);
		seg += n;
	}
	pthread_mutex_unlock(&sc->vsc_mtx);
	pthread_mutex_lock(&sc->vsc_mtx);
	while (sc->completed < VTBLK_RINGSZ)
		pthread_cond_wait(&sc->done_cond, &sc->vsc_mtx);
	pthread_mutex_unlock(&sc->vsc_mtx);
	ck_assert_int_eq(sc->in_submitter, 0);
	for (int i = 0; i < VTBLK_RINGSZ - 1; i++) {
		if (i == 6)
			ck_assert_uint_eq(sc->ios[i].io_status,
					  blockif_candelete(sc->bc) ? 0 : 2);
		else
			ck_assert_uint_eq(sc->ios[i].io_status, 0);
	}
	/* The write past the capacity is an I/O error for the guest. */
	ck_assert_uint_eq(sc->ios[VTBLK_RINGSZ - 1].io_status, 1);
	/* Request 0 read 128 pages at offset 0. */
	ck_assert(memcmp(guest, disk, 4096 * BLOCKIF_IOV_MAX) == 0);

	/* The image grows: the model hears of it. */
	ck_assert_int_eq(blockif_resize(sc->bc, 2 * DISK_SIZE), 0);
	ck_assert_uint_eq(sc->resized_to, 2 * DISK_SIZE);
	ck_assert_uint_eq(sc->capacity, 2 * DISK_SIZE / 512);
	ck_assert_int_eq(blockif_close(sc->bc), 0);
	test_nvlist_destroy(nvl);
	free(guest);
	free(sc);
	free(disk);
}
END_TEST

/* ---- AHCI ---------------------------------------------------------- */

struct ahci_port;
struct ahci_ioreq {
	struct blockif_req io_req;
	struct ahci_port *io_pr;
	STAILQ_ENTRY(ahci_ioreq) io_flist;
	TAILQ_ENTRY(ahci_ioreq) io_blist;
	int slot, callbacks;
	bool trim;
	/* TRIM: ranges still to delete */
	int ranges_left;
};

struct ahci_port {
	pthread_mutex_t mtx; /* the controller's lock, held by the models */
	pthread_cond_t cond;
	struct blockif_ctxt *bctx;
	int ioqsz, done, errors;
	struct ahci_ioreq *ioreq;
	STAILQ_HEAD(ahci_fhead, ahci_ioreq) iofhd;
	TAILQ_HEAD(ahci_bhead, ahci_ioreq) iobhd;
};

static void ahci_next_trim(struct ahci_port *p, struct ahci_ioreq *aior)
{
	struct blockif_req *breq = &aior->io_req;

	/* As ahci_handle_next_trim: the next range, from the callback. */
	aior->ranges_left--;
	breq->br_offset += 1 << 20;
	breq->br_resid = 65536;
	TAILQ_INSERT_HEAD(&p->iobhd, aior, io_blist);
	ck_assert_int_eq(blockif_delete(p->bctx, breq), 0);
}

static void ata_ioreq_cb(struct blockif_req *br, int err)
{
	struct ahci_ioreq *aior = br->br_param;
	struct ahci_port *p = aior->io_pr;

	pthread_mutex_lock(&p->mtx);
	aior->callbacks++;
	TAILQ_REMOVE(&p->iobhd, aior, io_blist);
	if (aior->trim && !err && aior->ranges_left > 0) {
		ahci_next_trim(p, aior);
	} else {
		STAILQ_INSERT_TAIL(&p->iofhd, aior, io_flist);
		if (err)
			p->errors++;
		p->done++;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->mtx);
}

static void ahci_port_init(struct ahci_port *p, struct blockif_ctxt *bc)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->bctx = bc;
	/* pci_ahci_ioreq_init */
	p->ioqsz = blockif_queuesz(bc);
	p->ioreq = calloc((size_t)p->ioqsz, sizeof(*p->ioreq));
	ck_assert_ptr_nonnull(p->ioreq);
	STAILQ_INIT(&p->iofhd);
	TAILQ_INIT(&p->iobhd);
	for (int i = 0; i < p->ioqsz; i++) {
		struct ahci_ioreq *vr = &p->ioreq[i];

		vr->io_pr = p;
		vr->io_req.br_callback = ata_ioreq_cb;
		vr->io_req.br_param = vr;
		STAILQ_INSERT_TAIL(&p->iofhd, vr, io_flist);
	}
}

/* ahci_build_iov: PRD entries into br_iov, at most BLOCKIF_IOV_MAX, the
 * excess over whole sectors trimmed off the end. */
static void ahci_build_iov(struct ahci_port *p, struct ahci_ioreq *aior,
			   int prdtl, uint32_t dbcsz, int page)
{
	struct blockif_req *breq = &aior->io_req;
	uint32_t todo = 0, extra;
	int j;

	for (j = 0; j < prdtl && j < BLOCKIF_IOV_MAX; j++) {
		breq->br_iov[j].iov_base = guest_page(page + j);
		breq->br_iov[j].iov_len = dbcsz;
		todo += dbcsz;
	}
	if (j == BLOCKIF_IOV_MAX) {
		extra = todo % (uint32_t)blockif_sectsz(p->bctx);
		todo -= extra;
		while (extra > 0) {
			if (breq->br_iov[j - 1].iov_len > extra) {
				breq->br_iov[j - 1].iov_len -= extra;
				break;
			}
			extra -= (uint32_t)breq->br_iov[j - 1].iov_len;
			j--;
		}
	}
	breq->br_iovcnt = j;
	breq->br_resid = todo;
}

/* ahci_port_stop: called with the lock held; cancels what it can. */
static int ahci_port_stop(struct ahci_port *p)
{
	struct ahci_ioreq *aior, *next;
	int cancelled = 0;

	for (aior = TAILQ_FIRST(&p->iobhd); aior; aior = next) {
		next = TAILQ_NEXT(aior, io_blist);
		if (blockif_cancel(p->bctx, &aior->io_req) != 0)
			continue;
		TAILQ_REMOVE(&p->iobhd, aior, io_blist);
		STAILQ_INSERT_TAIL(&p->iofhd, aior, io_flist);
		cancelled++;
	}
	return cancelled;
}

START_TEST(ahci_model)
{
	struct ahci_port port, *p = &port;
	nvlist_t *nvl = test_nvlist_create();
	struct blockif_ctxt *bc;
	int slots, cancelled, submitted = 0;

	make_disk();
	set_config_value_node(nvl, "path", "disk.raw");
	bc = blockif_open(nvl, "0:2:0");
	ck_assert_ptr_nonnull(bc);
	ahci_port_init(p, bc);
	ck_assert_int_eq(p->ioqsz, BLOCKIF_RING_MAX + 7);
	/* Intel ICH8 AHCI: 32 command slots at most. */
	slots = p->ioqsz < 32 ? p->ioqsz : 32;
	guest = aligned_alloc(4096, 4096 * (size_t)GUEST_PAGES);
	ck_assert_ptr_nonnull(guest);

	/* A read of 130 PRD entries of 1001 bytes: 128 used, cut to whole
	 * sectors (128128 -> 128000 bytes, the last entry 873). */
	pthread_mutex_lock(&p->mtx);
	{
		struct ahci_ioreq *aior = STAILQ_FIRST(&p->iofhd);

		STAILQ_REMOVE_HEAD(&p->iofhd, io_flist);
		ahci_build_iov(p, aior, 130, 1001, 0);
		ck_assert_int_eq(aior->io_req.br_iovcnt, BLOCKIF_IOV_MAX);
		ck_assert_int_eq(aior->io_req.br_resid, 128000);
		ck_assert_uint_eq(aior->io_req.br_iov[127].iov_len, 873);
		aior->io_req.br_offset = 1 << 20;
		TAILQ_INSERT_HEAD(&p->iobhd, aior, io_blist);
		ck_assert_int_eq(blockif_read(bc, &aior->io_req), 0);
		while (p->done < 1)
			pthread_cond_wait(&p->cond, &p->mtx);
		ck_assert_int_eq(p->errors, 0);
		ck_assert_int_eq(aior->io_req.br_resid, 0);
		for (int j = 0; j < 127; j++)
			ck_assert(memcmp(guest_page(j),
					 disk + (1 << 20) + 1001 * j,
					 1001) == 0);
		ck_assert(memcmp(guest_page(127), disk + (1 << 20) + 127127,
				 873) == 0);
	}
	pthread_mutex_unlock(&p->mtx);

	/* DSM TRIM of four 64 KiB ranges 1 MiB apart, one request. */
	if (blockif_candelete(bc) && !blockif_is_ro(bc)) {
		struct ahci_ioreq *aior;
		uint8_t zero[65536] = {0}, buf[65536];

		pthread_mutex_lock(&p->mtx);
		aior = STAILQ_FIRST(&p->iofhd);
		STAILQ_REMOVE_HEAD(&p->iofhd, io_flist);
		aior->trim = true;
		aior->ranges_left = 3;
		aior->io_req.br_offset = 8 << 20;
		aior->io_req.br_resid = 65536;
		TAILQ_INSERT_HEAD(&p->iobhd, aior, io_blist);
		ck_assert_int_eq(blockif_delete(bc, &aior->io_req), 0);
		while (p->done < 2)
			pthread_cond_wait(&p->cond, &p->mtx);
		pthread_mutex_unlock(&p->mtx);
		ck_assert_int_eq(p->errors, 0);
		ck_assert_int_eq(aior->callbacks, 4);
		aior->trim = false;
		for (int r = 0; r < 4; r++) {
			tu_read_at("disk.raw", buf, sizeof(buf),
				   (8 << 20) + (r << 20));
			ck_assert(memcmp(buf, zero, sizeof(buf)) == 0);
		}
	}

	/* NCQ: fill every slot, then stop the port at once with the lock
	 * held.  Callbacks that already started wait for the lock; cancel
	 * must answer without waiting for them. */
	pthread_mutex_lock(&p->mtx);
	p->done = 0;
	for (int i = 0; i < p->ioqsz; i++)
		p->ioreq[i].callbacks = 0;
	for (int s = 0; s < slots; s++) {
		struct ahci_ioreq *aior = STAILQ_FIRST(&p->iofhd);

		STAILQ_REMOVE_HEAD(&p->iofhd, io_flist);
		aior->slot = s;
		aior->callbacks = 0;
		ahci_build_iov(p, aior, 8, 4096, 8 * s);
		aior->io_req.br_offset = (off_t)s * 32768;
		TAILQ_INSERT_HEAD(&p->iobhd, aior, io_blist);
		ck_assert_int_eq(blockif_read(bc, &aior->io_req), 0);
		submitted++;
	}
	cancelled = ahci_port_stop(p);
	pthread_mutex_unlock(&p->mtx);
	/* Every request not cancelled completes through its callback. */
	pthread_mutex_lock(&p->mtx);
	while (p->done < submitted - cancelled)
		pthread_cond_wait(&p->cond, &p->mtx);
	pthread_mutex_unlock(&p->mtx);
	ck_assert_int_eq(blockif_close(bc), 0);
	ck_assert_int_eq(p->done, submitted - cancelled);
	ck_assert(TAILQ_EMPTY(&p->iobhd));
	for (int i = 0; i < p->ioqsz; i++)
		ck_assert_int_le(p->ioreq[i].callbacks, 1);
	free(p->ioreq);
	test_nvlist_destroy(nvl);
	free(guest);
	free(disk);
}
END_TEST

/* ATA IDENTIFY geometry (ata_identify_init) for a table of sizes. */
START_TEST(ahci_identify_geometry)
{
	static const struct {
		uint64_t size;
		uint16_t c;
		uint8_t h, s;
	} rows[] = {
		{4ull << 20, 120, 4, 17},
		{1ull << 30, 2080, 16, 63},
		{65535ull * 16 * 63 * 512, 65535, 16, 63},
		{65536ull * 16 * 63 * 512 - 512, 65535, 16, 63},
		{65536ull * 16 * 63 * 512, 16191, 16, 255},
		{1ull << 40, 65535, 16, 255},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		nvlist_t *nvl = test_nvlist_create();
		struct blockif_ctxt *bc;
		uint64_t sectors;
		uint16_t cyl;
		uint8_t heads, sech;
		int psectsz, psectoff;

		unlink("id.raw");
		tu_make_sparse("id.raw", rows[i].size);
		ck_assert_int_eq(blockif_legacy_config(nvl, "id.raw,ro"), 0);
		bc = blockif_open(nvl, "0:2:0");
		ck_assert_ptr_nonnull(bc);
		ck_assert_int_eq(blockif_is_ro(bc), 1);
		ck_assert_int_eq(blockif_candelete(bc), 0);
		sectors = (uint64_t)blockif_size(bc) /
			  (uint64_t)blockif_sectsz(bc);
		blockif_chs(bc, &cyl, &heads, &sech);
		blockif_psectsz(bc, &psectsz, &psectoff);
		ck_assert_uint_eq(sectors, rows[i].size / 512);
		ck_assert_msg(cyl == rows[i].c && heads == rows[i].h &&
				      sech == rows[i].s,
			      "%llu bytes: %u/%u/%u",
			      (unsigned long long)rows[i].size, cyl, heads,
			      sech);
		ck_assert_int_ge(psectsz, 512);
		ck_assert_int_eq(psectoff, 0);
		ck_assert_int_eq(blockif_close(bc), 0);
		test_nvlist_destroy(nvl);
	}
}
END_TEST

/* ---- NVMe ---------------------------------------------------------- */

#define NVME_MDTS 9
#define NVME_MAX_IOVEC ((1 << NVME_MDTS) + 1)
#define MDTS_PAD_SIZE                                                          \
	(NVME_MAX_IOVEC > BLOCKIF_IOV_MAX ? NVME_MAX_IOVEC - BLOCKIF_IOV_MAX   \
					  : 0)

struct nvme_ioreq {
	uint64_t prev_gpaddr;
	size_t prev_size;
	int done, callbacks;
	int status;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct blockif_ctxt *ctx;
	bool cancel_resubmission;
	int cancel_answer;
	struct blockif_req io_req;
	struct iovec iovpadding[MDTS_PAD_SIZE];
};

/* The request's segments, br_iov and the padding after it, as one array.
 * bhyve indexes br_iov itself past BLOCKIF_IOV_MAX; here the same memory
 * is reached through a pointer, which C (and UBSan) allow. */
static struct iovec *nvme_segs(struct nvme_ioreq *req)
{
	return (struct iovec *)(void *)((char *)&req->io_req +
					offsetof(struct blockif_req, br_iov));
}

/* pci_nvme_append_iov_req: contiguous pieces merge, others add a
 * segment; at most NVME_MAX_IOVEC. */
static int nvme_append_iov(struct nvme_ioreq *req, uint64_t gpaddr, size_t size)
{
	struct iovec *segs = nvme_segs(req);
	int idx;

	if (req->io_req.br_iovcnt == NVME_MAX_IOVEC)
		return -1;
	if (req->io_req.br_iovcnt > 0 &&
	    req->prev_gpaddr + req->prev_size == gpaddr) {
		idx = req->io_req.br_iovcnt - 1;
		req->prev_size += size;
		segs[idx].iov_len = req->prev_size;
	} else {
		idx = req->io_req.br_iovcnt;
		segs[idx].iov_base = guest + gpaddr;
		segs[idx].iov_len = size;
		req->io_req.br_iovcnt++;
		req->prev_gpaddr = gpaddr;
		req->prev_size = size;
	}
	req->io_req.br_resid += (ssize_t)size;
	return 0;
}

/* pci_nvme_out_of_range */
static bool nvme_out_of_range(uint64_t size, int sectsz_bits, uint64_t slba,
			      uint32_t nblocks)
{
	uint64_t offset, bytes;

	if (slba >> (64 - sectsz_bits))
		return true;
	offset = slba << sectsz_bits;
	bytes = (uint64_t)nblocks << sectsz_bits;
	return size <= offset || size - offset < bytes;
}

static void nvme_req_finish(struct nvme_ioreq *req, int status)
{
	pthread_mutex_lock(&req->mtx);
	req->status = status;
	req->done++;
	pthread_cond_broadcast(&req->cond);
	pthread_mutex_unlock(&req->mtx);
}

static void nvme_io_done(struct blockif_req *br, int err)
{
	struct nvme_ioreq *req = br->br_param;

	req->callbacks++;
	nvme_req_finish(req, err);
}

/* pci_nvme_dealloc_sm: the ranges sit in br_iov (offset in iov_base,
 * length in iov_len); each completion submits the next range. */
static void nvme_dealloc_sm(struct blockif_req *br, int err)
{
	struct nvme_ioreq *req = br->br_param;

	req->callbacks++;
	if (err) {
		nvme_req_finish(req, err);
	} else if (req->prev_gpaddr + 1 == req->prev_size) {
		nvme_req_finish(req, 0);
	} else {
		struct iovec *iov = req->io_req.br_iov + ++req->prev_gpaddr;
		bool cancel = req->cancel_resubmission;

		req->io_req.br_offset = (off_t)(uintptr_t)iov->iov_base;
		req->io_req.br_resid = (ssize_t)iov->iov_len;
		/* To cancel the resubmission before an idle worker takes it,
		 * hold the workers (a test device, not what bhyve does). */
		if (cancel)
			blockif_pause(req->ctx);
		if (blockif_delete(req->ctx, &req->io_req)) {
			nvme_req_finish(req, EIO);
			return;
		}
		if (cancel) {
			/* Cancel finds the queued submission, not the one
			 * whose callback is running. */
			req->cancel_resubmission = false;
			req->cancel_answer = blockif_cancel(req->ctx, br);
			blockif_resume(req->ctx);
			nvme_req_finish(req, 0);
		}
	}
}

static int nvme_wait(struct nvme_ioreq *req)
{
	pthread_mutex_lock(&req->mtx);
	while (!req->done)
		pthread_cond_wait(&req->cond, &req->mtx);
	req->done = 0;
	pthread_mutex_unlock(&req->mtx);
	return req->status;
}

static void nvme_req_reset(struct nvme_ioreq *req)
{
	req->io_req.br_iovcnt = 0;
	req->io_req.br_resid = 0;
	req->io_req.br_param = req;
	req->callbacks = 0;
}

START_TEST(nvme_model)
{
	struct nvme_ioreq *req = calloc(1, sizeof(*req));
	nvlist_t *nvl = test_nvlist_create();
	uint64_t size;
	int sectsz, sectsz_bits;
	const uint64_t slba = 2048 + 3; /* inside page 0 of the buffer */

	ck_assert_ptr_nonnull(req);
	make_disk();
	guest = aligned_alloc(4096, 4096 * (size_t)GUEST_PAGES);
	ck_assert_ptr_nonnull(guest);
	pthread_mutex_init(&req->mtx, NULL);
	pthread_cond_init(&req->cond, NULL);
	ck_assert_int_eq(blockif_legacy_config(nvl, "disk.raw"), 0);
	req->ctx = blockif_open(nvl, "nvme0");
	ck_assert_ptr_nonnull(req->ctx);
	size = (uint64_t)blockif_size(req->ctx);
	sectsz = blockif_sectsz(req->ctx);
	sectsz_bits = ffs(sectsz) - 1;
	ck_assert_int_eq(sectsz_bits, 9);

	/* A 2 MiB read (MDTS) whose PRP list starts 1536 bytes into a page
	 * and uses every other guest page: 513 segments. */
	ck_assert(!nvme_out_of_range(size, sectsz_bits, slba, 4096));
	ck_assert(nvme_out_of_range(size, sectsz_bits, size / 512 - 8, 16));
	ck_assert(nvme_out_of_range(size, sectsz_bits, ~0ull >> 1, 1));
	nvme_req_reset(req);
	req->io_req.br_offset = (off_t)(slba << sectsz_bits);
	req->io_req.br_callback = nvme_io_done;
	ck_assert_int_eq(nvme_append_iov(req, 1536, 4096 - 1536), 0);
	for (int pg = 1; pg < 512; pg++)
		ck_assert_int_eq(nvme_append_iov(req, 8192 * (uint64_t)pg,
						 4096),
				 0);
	ck_assert_int_eq(nvme_append_iov(req, 8192 * 512, 1536), 0);
	ck_assert_int_eq(req->io_req.br_iovcnt, NVME_MAX_IOVEC);
	ck_assert_int_eq(nvme_append_iov(req, 8192 * 600, 512), -1);
	ck_assert_int_eq(req->io_req.br_resid, 2 << 20);
	ck_assert_int_eq(blockif_read(req->ctx, &req->io_req), 0);
	ck_assert_int_eq(nvme_wait(req), 0);
	ck_assert_int_eq(req->io_req.br_resid, 0);
	{
		size_t done = 0;

		/* Through a pointer: indexing br_iov past its declared
		 * bound in a loop lets the compiler assume the loop ends at
		 * BLOCKIF_IOV_MAX. */
		struct iovec *segs = nvme_segs(req);

		for (int i = 0; i < NVME_MAX_IOVEC; i++) {
			struct iovec *v = &segs[i];

			ck_assert(memcmp(v->iov_base, disk + (slba << 9) + done,
					 v->iov_len) == 0);
			done += v->iov_len;
		}
		ck_assert_uint_eq(done, 2 << 20);
	}

	/* The same 513 segments written elsewhere, then flushed. */
	req->io_req.br_offset = 8 << 20;
	req->io_req.br_resid = 2 << 20;
	ck_assert_int_eq(blockif_write(req->ctx, &req->io_req), 0);
	ck_assert_int_eq(nvme_wait(req), 0);
	ck_assert_int_eq(blockif_flush(req->ctx, &req->io_req), 0);
	ck_assert_int_eq(nvme_wait(req), 0);
	{
		uint8_t *back = malloc(2 << 20);

		ck_assert_ptr_nonnull(back);
		tu_read_at("disk.raw", back, 2 << 20, 8 << 20);
		ck_assert(memcmp(back, disk + (slba << 9), 2 << 20) == 0);
		free(back);
	}

	/* Dataset management, three ranges, one request. */
	nvme_req_reset(req);
	req->io_req.br_iov[0].iov_base = (void *)(uintptr_t)(1 << 20);
	req->io_req.br_iov[0].iov_len = 4096;
	req->io_req.br_iov[1].iov_base = (void *)(uintptr_t)(3 << 20);
	req->io_req.br_iov[1].iov_len = 8192;
	req->io_req.br_iov[2].iov_base = (void *)(uintptr_t)(5 << 20);
	req->io_req.br_iov[2].iov_len = 65536;
	req->io_req.br_offset = 1 << 20;
	req->io_req.br_resid = 4096;
	req->io_req.br_callback = nvme_dealloc_sm;
	req->prev_gpaddr = 0;
	req->prev_size = 3;
	ck_assert_int_eq(blockif_delete(req->ctx, &req->io_req), 0);
	if (blockif_candelete(req->ctx)) {
		ck_assert_int_eq(nvme_wait(req), 0);
		ck_assert_int_eq(req->callbacks, 3);
		ck_assert_int_eq(req->io_req.br_resid, 0);
	} else {
		ck_assert_int_eq(nvme_wait(req), EOPNOTSUPP);
	}

	/* A resubmission from the callback can be cancelled. */
	if (blockif_candelete(req->ctx)) {
		nvme_req_reset(req);
		req->io_req.br_offset = 1 << 20;
		req->io_req.br_resid = 4096;
		req->prev_gpaddr = 0;
		req->prev_size = 3;
		req->cancel_resubmission = true;
		req->cancel_answer = -1;
		ck_assert_int_eq(blockif_delete(req->ctx, &req->io_req), 0);
		ck_assert_int_eq(nvme_wait(req), 0);
		ck_assert_int_eq(req->cancel_answer, 0);
	}
	ck_assert_int_eq(blockif_close(req->ctx), 0);
	/* The cancelled submission's callback never ran. */
	if (req->cancel_answer == 0)
		ck_assert_int_eq(req->callbacks, 1);
	test_nvlist_destroy(nvl);
	free(req);
	free(guest);
	free(disk);
}
END_TEST

int main(void)
{
	return tu_main("blockif_bhyve", "models",
		       TU_TESTS(virtio_blk_model, ahci_model,
				ahci_identify_geometry, nvme_model));
}
