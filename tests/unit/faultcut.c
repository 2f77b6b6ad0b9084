/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The "fail every host-file operation after N" fault hook (faultcut.h).
 */
#include "faultcut.h"

#include <errno.h>

#include "file.h"

static long ops_left; /* operations still allowed; < 0: all */
static long ops_seen;

static int cut_hook(void *opaque, enum mimg_file_op op, const char *path,
		    uint64_t off, uint64_t len)
{
	(void)opaque, (void)op, (void)path, (void)off, (void)len;
	ops_seen++;
	if (ops_left < 0)
		return 0;
	if (ops_left == 0)
		return -EIO;
	ops_left--;
	return 0;
}

void fc_allow(long allowed)
{
	ops_left = allowed;
}

void fc_begin(long allowed)
{
	ops_left = allowed;
	ops_seen = 0;
	mimg_file_set_fault_hook(cut_hook, NULL);
}

long fc_seen(void)
{
	return ops_seen;
}

void fc_end(void)
{
	mimg_file_set_fault_hook(NULL, NULL);
}
