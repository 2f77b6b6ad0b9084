/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Concurrent blockif stress with verification, shared by the raw and the
 * qcow2 blockif tests.
 */
#ifndef TEST_BLOCKIF_STRESS_H
#define TEST_BLOCKIF_STRESS_H

#include <stdint.h>

#include "vmm-blk/block_if.h"

/*
 * NTHREADS submitters each own one slice of the disk and issue NOPS
 * random, overlapping reads, writes (in several segments), write-zeroes
 * and flushes there without waiting for them (up to 32 at a time).
 * Because requests to the same blocks keep their order, every read must
 * return what SHADOW (the disk's expected content, SIZE bytes, updated
 * here) held when the read was submitted.  Afterwards the whole disk is
 * read back and compared.  Fails the current Check test on any mismatch.
 */
void stress_blockif(struct blockif_ctxt *bc, uint8_t *shadow, uint64_t size,
		    unsigned nthreads, unsigned nops, uint64_t seed);

/* Open OPTSTR (blockif_open_optstr), check that it is SIZE bytes, run
 * stress_blockif on it with NTHREADS, NOPS and SEED, and close it. */
void stress_open(const char *optstr, uint8_t *shadow, uint64_t size,
		 unsigned nthreads, unsigned nops, uint64_t seed);

/* A disk's content, SIZE bytes (free() it): random data from SEED in the
 * first DATA bytes, zeroes after; written to base.raw too. */
uint8_t *stress_base_raw(uint64_t size, uint64_t data, uint64_t seed);

/* stress_base_raw, converted by qemu-img convert -q -f raw ARGS base.raw
 * IMAGE (ARGS: the output format and options). */
uint8_t *stress_base_image(const char *args, const char *image, uint64_t size,
			   uint64_t data, uint64_t seed);

/* stress_open, then qemu-img finds IMAGE (of FORMAT) clean and reading
 * as SHADOW (tu_qemu_reads). */
void stress_open_qemu_reads(const char *optstr, const char *image,
			    const char *format, uint8_t *shadow, uint64_t size,
			    unsigned nops, uint64_t seed);

#endif
