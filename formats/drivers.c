/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The one table of format drivers.  Probing asks each in turn; raw scores
 * lowest, so it is last in effect whatever the order here.
 */
#include "driver.h"

extern const struct mimg_driver mimg_raw_driver;
extern const struct mimg_driver mimg_qcow2_driver;
extern const struct mimg_driver mimg_vmdk_driver;
extern const struct mimg_driver mimg_luks_driver;
extern const struct mimg_driver mimg_vpc_driver;
extern const struct mimg_driver mimg_vdi_driver;
extern const struct mimg_driver mimg_vhdx_driver;
extern const struct mimg_driver mimg_parallels_driver;
extern const struct mimg_driver mimg_dmg_driver;
extern const struct mimg_driver mimg_qcow_driver;
extern const struct mimg_driver mimg_qed_driver;
extern const struct mimg_driver mimg_bochs_driver;
extern const struct mimg_driver mimg_cloop_driver;

const struct mimg_driver *const mimg_drivers[] = {
	&mimg_raw_driver,
	&mimg_qcow2_driver,
	&mimg_vmdk_driver,
	&mimg_luks_driver,
	&mimg_vpc_driver,
	&mimg_vdi_driver,
	&mimg_vhdx_driver,
	&mimg_parallels_driver,
	&mimg_dmg_driver,
	&mimg_qcow_driver,
	&mimg_qed_driver,
	/* bochs and cloop: qemu-img only reads them too */
	&mimg_bochs_driver,
	&mimg_cloop_driver,
	NULL,
};
