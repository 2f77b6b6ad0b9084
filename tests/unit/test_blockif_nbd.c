/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * blockif over an image whose bytes live behind NBD: a qcow2 overlay
 * served as plain bytes by nbdkit's file plugin, its backing file local,
 * opened by blockif as nbd+unix:///?socket=...  After a concurrent stress
 * through blockif, qemu-img must find the overlay consistent and holding
 * the expected content.  Skipped (77) without nbdkit or qemu-img.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mimg.h>

#include "blockif_run.h"
#include "testutil.h"
#include "test_blockif_stress.h"
#include "vmm-blk/block_if.h"

#define DISK_SIZE (8u << 20)

static void stop_nbdkit(pid_t pid)
{
	int status;
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

START_TEST(stress_qcow2_over_nbd)
{
	uint8_t *shadow = stress_base_image("-O qcow2", "base.qcow2", DISK_SIZE,
					    DISK_SIZE / 2, 5);
	char uri[600];
	pid_t pid;

	/* A relative backing name has no directory behind NBD. */
	tu_sh("qemu-img create -q -f qcow2 -b %s/base.qcow2 -F qcow2 -o "
	      "cluster_size=4096 overlay.qcow2 && truncate -s 32M "
	      "overlay.qcow2",
	      tu_tmpdir());
	pid = tu_start_nbdkit("overlay.qcow2", uri, sizeof(uri));
	stress_open(uri, shadow, DISK_SIZE, 4, 600, 21);
	stop_nbdkit(pid);

	tu_qemu_reads("overlay.qcow2", "qcow2", shadow, DISK_SIZE);
	free(shadow);
}
END_TEST

/* The server going away fails requests with an error, not a hang. */
START_TEST(server_gone_fails_requests)
{
	struct blockif_ctxt *bc;
	char uri[600], buf[4096];
	int err;
	pid_t pid;

	tu_make_sparse("disk.raw", 1 << 20);
	pid = tu_start_nbdkit("disk.raw", uri, sizeof(uri));
	bc = blockif_open_optstr(uri, "nbd");
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);

	ck_assert_int_eq(blockif_run(blockif_read, bc, buf, sizeof(buf), 0,
				     &err),
			 0);
	ck_assert_int_ne(err, 0);
	blockif_close(bc);
}
END_TEST

int main(void)
{
	if (!tu_have_program("nbdkit") || !tu_have_program("qemu-img")) {
		fprintf(stderr, "nbdkit or qemu-img not found: skipped\n");
		return 77;
	}
	return tu_main("blockif_nbd", "nbd",
		       TU_TESTS(stress_qcow2_over_nbd,
				server_gone_fails_requests));
}
