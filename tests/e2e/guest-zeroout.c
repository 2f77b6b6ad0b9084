/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 */
/*
 * Guest helper for the end-to-end test: zeroes a byte range of a block
 * device with the BLKZEROOUT ioctl, which Linux turns into virtio-blk
 * WRITE_ZEROES requests when the device offers them (busybox has no tool
 * for it).  Built on the host with gcc -static.
 *
 *   guest-zeroout DEV OFFSET LENGTH
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	uint64_t range[2];
	char *end1, *end2;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s DEV OFFSET LENGTH\n", argv[0]);
		return 2;
	}
	errno = 0;
	range[0] = strtoull(argv[2], &end1, 10);
	range[1] = strtoull(argv[3], &end2, 10);
	if (errno || *end1 || *end2 || end1 == argv[2] || end2 == argv[3]) {
		fprintf(stderr, "%s: bad OFFSET or LENGTH\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (ioctl(fd, BLKZEROOUT, range)) {
		fprintf(stderr, "%s: BLKZEROOUT %s+%s: %s\n", argv[1], argv[2], argv[3],
			strerror(errno));
		return 1;
	}
	return close(fd) ? 1 : 0;
}
