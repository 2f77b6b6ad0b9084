/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * vmm-blk: serve a disk image (raw, qcow2, VMDK, backing chains) to a
 * hypervisor as a vhost-user-blk device.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mimg.h>

#include "blockif_impl.h"
#include "daemon.h"
#include "unix_listen.h"
#include "vhost_user.h"

struct options {
	const char *socket_path;
	const char *control_path;
	int fd;
	const char *image;
	const char *format;
	const char *serial;
	unsigned num_queues;
	bool read_only;
	bool untrusted;
	bool verbose;
	const char *key_file;
};

static void usage(FILE *f)
{
	fputs("usage: vmm-blk --socket PATH [options] IMAGE\n"
	      "       vmm-blk --fd N [options] IMAGE\n"
	      "       vmm-blk --print-capabilities\n"
	      "\n"
	      "Serve IMAGE (raw, qcow2 or VMDK, with its backing chain) as a\n"
	      "vhost-user-blk device to one front-end, such as QEMU.\n"
	      "\n"
	      "  -s, --socket PATH        listen on the Unix socket PATH\n"
	      "      --socket-path PATH   same as --socket\n"
	      "      --fd N               use the inherited socket N "
	      "(listening or\n"
	      "                           connected) instead of --socket\n"
	      "      --control PATH       accept commands (size, resize SIZE) "
	      "on the\n"
	      "                           Unix socket PATH\n"
	      "  -f, --format FMT         image format (raw, qcow2, vmdk); "
	      "probed\n"
	      "                           when absent\n"
	      "  -r, --read-only          refuse writes (the device is "
	      "read-only)\n"
	      "      --serial ID          serial number the guest reads (at "
	      "most\n"
	      "                           20 bytes)\n"
	      "      --num-queues N       request queues, 1 to 64 (default 1)\n"
	      "      --untrusted          refuse images that refer to other "
	      "files\n"
	      "                           (backing files, VMDK extents)\n"
	      "      --key-file PATH      the passphrase of an encrypted "
	      "image (LUKS,\n"
	      "                           LUKS qcow2): the file's bytes as "
	      "they are\n"
	      "      --blk-file PATH      same as the IMAGE argument\n"
	      "  -v, --verbose            log every vhost-user message\n"
	      "      --print-capabilities print the back-end's capabilities "
	      "as\n"
	      "                           JSON and exit\n"
	      "  -h, --help               show this help\n"
	      "  -V, --version            show the version\n"
	      "\n"
	      "On a listening socket vmm-blk serves one front-end at a time "
	      "and\n"
	      "waits for the next one when it disconnects; on a connected "
	      "--fd it\n"
	      "exits when the front-end disconnects.  It flushes the image and "
	      "exits\n"
	      "0 on SIGTERM/SIGINT.  SIGHUP makes it take a raw image's new "
	      "size\n"
	      "after the file was resized by another program.\n",
	      f);
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Returns -1 to exit 0 (help, capabilities), 1 on a usage error, else 0. */
static int parse_args(int argc, char **argv, struct options *o)
{
	enum {
		OPT_FD = 256,
		OPT_SERIAL,
		OPT_NQ,
		OPT_BLK,
		OPT_CAPS,
		OPT_UNTRUSTED,
		OPT_CONTROL,
		OPT_KEYFILE
	};
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"socket-path", required_argument, NULL, 's'},
		{"fd", required_argument, NULL, OPT_FD},
		{"control", required_argument, NULL, OPT_CONTROL},
		{"format", required_argument, NULL, 'f'},
		{"read-only", no_argument, NULL, 'r'},
		{"serial", required_argument, NULL, OPT_SERIAL},
		{"num-queues", required_argument, NULL, OPT_NQ},
		{"blk-file", required_argument, NULL, OPT_BLK},
		{"untrusted", no_argument, NULL, OPT_UNTRUSTED},
		{"key-file", required_argument, NULL, OPT_KEYFILE},
		{"verbose", no_argument, NULL, 'v'},
		{"print-capabilities", no_argument, NULL, OPT_CAPS},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	unsigned v;
	int c;

	o->fd = -1;
	o->num_queues = 1;
	/* --print-capabilities ignores everything else, even errors. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--print-capabilities")) {
			puts("{\n  \"type\": \"block\",\n  \"features\": [\n"
			     "    \"read-only\",\n    \"blk-file\"\n  ]\n}");
			return -1;
		}
	while ((c = getopt_long(argc, argv, "s:f:rvhV", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 's': o->socket_path = optarg; break;
		case OPT_FD:
			if (parse_uint(optarg, INT_MAX, &v) < 0) {
				fprintf(stderr, "vmm-blk: invalid --fd '%s'\n",
					optarg);
				return 1;
			}
			o->fd = (int)v;
			break;
		case OPT_CONTROL: o->control_path = optarg; break;
		case 'f': o->format = optarg; break;
		case 'r': o->read_only = true; break;
		case OPT_SERIAL:
			if (strlen(optarg) > VBLK_ID_BYTES) {
				fprintf(stderr,
					"vmm-blk: --serial '%s' is longer than "
					"%d bytes\n",
					optarg, VBLK_ID_BYTES);
				return 1;
			}
			o->serial = optarg;
			break;
		case OPT_NQ:
			if (parse_uint(optarg, VBLK_MAX_QUEUES, &v) < 0 ||
			    v == 0) {
				fprintf(stderr,
					"vmm-blk: --num-queues '%s' is not in "
					"1..%d\n",
					optarg, VBLK_MAX_QUEUES);
				return 1;
			}
			o->num_queues = v;
			break;
		case OPT_BLK: o->image = optarg; break;
		case OPT_UNTRUSTED: o->untrusted = true; break;
		case OPT_KEYFILE: o->key_file = optarg; break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); return -1;
		case 'V':
			printf("vmm-blk %s (libmimg %s)\n", MIMG_VERSION_STRING,
			       mimg_version());
			return -1;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		if (o->image || optind + 1 < argc) {
			fprintf(stderr,
				"vmm-blk: exactly one image expected\n");
			return 1;
		}
		o->image = argv[optind];
	}
	if (!o->image) {
		fprintf(stderr, "vmm-blk: no image given\n");
		usage(stderr);
		return 1;
	}
	if (!o->socket_path == (o->fd < 0)) {
		fprintf(stderr, "vmm-blk: give exactly one of --socket and "
				"--fd\n");
		return 1;
	}
	return 0;
}

static bool is_listening(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v;
}

/* SIGTERM, SIGINT and SIGHUP arrive on a signalfd. */
static int daemon_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Blocked before blockif starts its threads, so they inherit it. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

struct signal_watch {
	struct vmmblk_daemon *d;
	int fd;
};

/* SIGHUP: take the raw image's new size; the others stop the daemon. */
static int signal_ready(void *opaque)
{
	struct signal_watch *w = opaque;
	struct signalfd_siginfo si;
	const char *why;

	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo != SIGHUP)
			return 1;
		if (daemon_reread_size(w->d, &why) < 0)
			fprintf(stderr, "vmm-blk: SIGHUP: %s\n", why);
	}
	return 0;
}

static int serve(const struct options *o, struct vmmblk_daemon *d, int sig_fd)
{
	struct vu_server *srv = malloc(sizeof(*srv));
	struct signal_watch sw = {d, sig_fd};
	int lfd = -1, conn = -1, r = -1;

	if (!srv || vu_server_init(srv, d->dev, o->verbose) < 0) {
		fprintf(stderr, "vmm-blk: out of resources\n");
		free(srv);
		return -1;
	}
	d->srv = srv;
	vu_server_watch(srv, sig_fd, signal_ready, &sw);
	if (o->control_path) {
		d->ctl_fd = ctl_listen(o->control_path);
		if (d->ctl_fd < 0)
			goto out;
		d->ctl_path = o->control_path;
		vu_server_watch(srv, d->ctl_fd, ctl_ready, d);
	}
	if (o->socket_path) {
		lfd = unix_listen(o->socket_path, 0);
		if (lfd < 0)
			goto out;
	} else if (is_listening(o->fd)) {
		lfd = o->fd;
	} else {
		conn = o->fd;
	}
	r = vu_server_run(srv, lfd, conn) < 0 ? -1 : 0;
	if (lfd >= 0)
		close(lfd);
out:
	vu_server_fini(srv);
	free(srv);
	d->srv = NULL;
	if (o->socket_path && lfd >= 0)
		unlink(o->socket_path);
	if (d->ctl_fd >= 0) {
		close(d->ctl_fd);
		unlink(d->ctl_path);
	}
	return r;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct blockif_opts bo = {0};
	struct vblk_dev_params dp = {0};
	struct blockif_ctxt *bc;
	struct vmmblk_daemon d = {.ctl_fd = -1};
	struct vblk_dev *dev;
	int sig_fd, r, err;

	r = parse_args(argc, argv, &o);
	if (r)
		return r < 0 ? 0 : 1;
	sig_fd = daemon_signals();
	if (sig_fd < 0) {
		perror("vmm-blk: signalfd");
		return 1;
	}
	bo.path = o.image;
	bo.format = o.format;
	bo.ro = o.read_only;
	bo.untrusted = o.untrusted;
	bo.keyfile = o.key_file;
	bc = blockif_open_opts(&bo, "vmm-blk");
	if (!bc)
		return 1;
	dp.serial = o.serial;
	dp.num_queues = o.num_queues;
	/* One thread serves every ring: a lone request may as well be
	 * performed there as wait for a worker's wake-up. */
	dp.lone_here = true;
	dev = vblk_dev_new(bc, &dp);
	if (!dev) {
		perror("vmm-blk: device");
		blockif_close(bc);
		return 1;
	}
	d.bc = bc;
	d.dev = dev;
	r = serve(&o, &d, sig_fd);
	vblk_dev_free(dev);
	err = blockif_close(bc);
	if (err) {
		fprintf(stderr, "vmm-blk: flushing %s failed: %s\n", o.image,
			strerror(err));
		r = -1;
	}
	close(sig_fd);
	return r < 0 ? 1 : 0;
}
