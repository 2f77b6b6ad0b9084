/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 */
/*
 * Guest helper for the end-to-end test, for what busybox cannot do.
 * Built on the host with gcc -static.
 *
 *   guest-io zeroout DEV OFFSET LENGTH
 *       BLKZEROOUT, which Linux sends as virtio-blk WRITE_ZEROES requests
 *       when the device offers them.
 *   guest-io stripe DEV FILE OFFSET INDEX COUNT BS
 *       O_DIRECT writes of FILE's blocks number INDEX, INDEX+COUNT, ...
 *       (BS bytes each) to DEV at OFFSET.  COUNT of these running at once
 *       write FILE in interleaved blocks, so concurrent requests land in
 *       the same clusters.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "guest-io: bad number '%s'\n", s);
		return -1;
	}
	return 0;
}

static int zeroout(char **argv)
{
	uint64_t range[2];
	int fd;

	if (parse_u64(argv[1], &range[0]) || parse_u64(argv[2], &range[1]))
		return 2;
	fd = open(argv[0], O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	if (ioctl(fd, BLKZEROOUT, range)) {
		fprintf(stderr, "%s: BLKZEROOUT %s+%s: %s\n", argv[0], argv[1],
			argv[2], strerror(errno));
		return 1;
	}
	return close(fd) ? 1 : 0;
}

static int stripe(char **argv)
{
	uint64_t off, index, count, bs;
	struct stat st;
	void *buf;
	int in, out;

	if (parse_u64(argv[2], &off) || parse_u64(argv[3], &index) ||
	    parse_u64(argv[4], &count) || parse_u64(argv[5], &bs))
		return 2;
	if (count == 0 || index >= count || bs == 0 || bs % 512 ||
	    bs > (64u << 20)) {
		fprintf(stderr, "guest-io: bad INDEX, COUNT or BS\n");
		return 2;
	}
	in = open(argv[1], O_RDONLY);
	out = open(argv[0], O_WRONLY | O_DIRECT);
	if (in < 0 || out < 0 || fstat(in, &st)) {
		fprintf(stderr, "guest-io: opening %s or %s: %s\n", argv[0],
			argv[1], strerror(errno));
		return 1;
	}
	if (posix_memalign(&buf, 4096, bs))
		return 1;
	for (uint64_t b = index; b * bs < (uint64_t)st.st_size; b += count) {
		if (pread(in, buf, bs, (off_t)(b * bs)) != (ssize_t)bs) {
			fprintf(stderr,
				"guest-io: %s: short read at block %llu\n",
				argv[1], (unsigned long long)b);
			return 1;
		}
		if (pwrite(out, buf, bs, (off_t)(off + b * bs)) !=
		    (ssize_t)bs) {
			fprintf(stderr, "guest-io: %s: write at %llu: %s\n",
				argv[0], (unsigned long long)(off + b * bs),
				strerror(errno));
			return 1;
		}
	}
	free(buf);
	close(in);
	return close(out) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "zeroout") == 0)
		return zeroout(argv + 2);
	if (argc == 8 && strcmp(argv[1], "stripe") == 0)
		return stripe(argv + 2);
	fprintf(stderr,
		"usage: guest-io zeroout DEV OFFSET LENGTH\n"
		"       guest-io stripe DEV FILE OFFSET INDEX COUNT BS\n");
	return 2;
}
