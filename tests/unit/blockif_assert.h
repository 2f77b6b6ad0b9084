/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Checks of what an open blockif reports about its disk, for the blockif
 * tests of either blockif_open interface.
 */
#ifndef TEST_BLOCKIF_ASSERT_H
#define TEST_BLOCKIF_ASSERT_H

struct blockif_ctxt;

/* BC's logical sector is SECTSZ bytes and its physical sector PSECTSZ
 * bytes at offset PSECTOFF; the current Check test fails otherwise. */
void blockif_assert_sectors(struct blockif_ctxt *bc, int sectsz, int psectsz,
			    int psectoff);

#endif
