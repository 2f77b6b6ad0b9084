#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# bhyve-compat-check.sh FREEBSD_SRC [MIMG_BUILD_DIR]
#
# Compiles FreeBSD's own bhyve block device models (usr.sbin/bhyve/
# pci_virtio_block.c, pci_ahci.c and pci_nvme.c from the source tree at
# FREEBSD_SRC, unchanged) on Linux against vmm-blk's block_if.h instead of
# bhyve's, links them with libvmmblk and libmimg, and opens a raw and a
# qcow2 image with each model's own configuration parser and init function.
# Each model is compiled twice, plain and with BHYVE_SNAPSHOT.
#
# Everything bhyve-internal or FreeBSD-specific that the models include is
# a small stand-in: the configuration tree is the unit tests' (tests/unit/
# bhyve_config_tree.c), the PCI/virtio layers and FreeBSD libc spellings
# are written below, except FreeBSD headers that are plain
# definitions, which are taken from the tree itself: sys/sys/ata.h,
# sys/dev/nvme/nvme.h, sys/net/ieee_oui.h, sys/dev/pci/pcireg.h and
# usr.sbin/bhyve/ahci.h.  Those eight files are all the tree must hold.
# Which interface to build (FreeBSD 12's blockif_open(const char *) with
# VMMBLK_BLOCKIF_LEGACY_API, the vmctx argument of init functions before
# FreeBSD 14) is read from pci_virtio_block.c itself.
#
# Checked, all passing, against FreeBSD stable/12 of February 2020,
# 14-CURRENT of July 2022 (__FreeBSD_version 1400063) and 15-CURRENT of
# mid-2024 or later:
# pci_virtio_block.c, pci_ahci.c and sys/dev/nvme/nvme.h of freebsd-src
# commit e4452d45ec5a, pci_nvme.c of commit 3890cae0e411 of the
# fel1x-developer/freebsd-src mirror.  Those models call
# blockif_add_boot_device(), blockif_register_resize_callback() and, under
# BHYVE_SNAPSHOT, blockif_pause/resume().  Also passing: the FreeBSD 14
# generation of pci_virtio_block.c and pci_ahci.c (init without a vmctx
# argument, const device tables, no blockif_add_boot_device()) of
# opnsense/src commit 598754d632c2, with pci_nvme.c and the headers of the
# 15-CURRENT set; and the three models of a mid-2023 14-CURRENT fork
# (Beckhoff/freebsd-src 67984384a7e2), its NVMe model given the nvme.h
# definitions of its generation.  No 14.x release tree has been checked.
# See doc/bhyve.md.
#
# Nothing is downloaded.  MIMG_BUILD_DIR (default: ./build) is a meson
# build of mimg; the work directory is $BHYVE_CHECK_DIR or a temporary one
# (kept, and printed).  Exit status 0 when every model compiled, linked and
# opened both images.
set -eu

src=${1:?usage: bhyve-compat-check.sh FREEBSD_SRC [MIMG_BUILD_DIR]}
build=${2:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
src=$(cd "$src" && pwd)
build=$(cd "$build" && pwd)
bhyve=$src/usr.sbin/bhyve
work=${BHYVE_CHECK_DIR:-$(mktemp -d /tmp/bhyve-check.XXXXXX)}
CC=${CC:-cc}
models="pci_virtio_block pci_ahci pci_nvme"

for f in $models; do
	[ -f "$bhyve/$f.c" ] || { echo "no $bhyve/$f.c" >&2; exit 2; }
done
for f in vmm-blk/libvmmblk.a libmimg.a mimg/mimg; do
	[ -e "$build/$f" ] || { echo "no $build/$f (build mimg first)" >&2; exit 2; }
done

mkdir -p "$work/src" "$work/fbsd/sys" "$work/fbsd/dev/nvme" \
	"$work/fbsd/dev/pci" "$work/fbsd/net" "$work/shim"
for f in $models; do
	cp "$bhyve/$f.c" "$work/src/"
done
# No block_if.h next to the models: theirs must come from vmm-blk.
rm -f "$work/src/block_if.h"
cp "$src/sys/sys/ata.h" "$work/fbsd/sys/"
cp "$src/sys/dev/nvme/nvme.h" "$work/fbsd/dev/nvme/"
cp "$src/sys/dev/pci/pcireg.h" "$work/fbsd/dev/pci/"
cp "$src/sys/net/ieee_oui.h" "$work/fbsd/net/"
cp "$bhyve/ahci.h" "$work/fbsd/"

shim() {
	mkdir -p "$(dirname "$work/shim/$1")"
	cat >"$work/shim/$1"
}
shim bhyverun.h <<'SHIM_EOF'
#ifndef SHIM_BHYVERUN_H
#define SHIM_BHYVERUN_H
#include <stdint.h>
struct vmctx;
void *paddr_guest2host();
int fbsdrun_virtio_msix();
extern char *vmname;
#endif
SHIM_EOF
# bhyve's configuration tree (config.h): the stand-in the unit tests use.
mkdir -p "$work/shim" && cp "$top/tests/unit/bhyve_config_tree.h" "$work/shim/config.h"
shim debug.h <<'SHIM_EOF'
#ifndef SHIM_DEBUG_H
#define SHIM_DEBUG_H
#include <stdio.h>
extern int raw_stdio;
#define FPRINTLN(filep, fmt, arg...) fprintf(filep, fmt "\n", ##arg)
#define PRINTLN(fmt, arg...) FPRINTLN(stdout, fmt, ##arg)
#define EPRINTLN(fmt, arg...) FPRINTLN(stderr, fmt, ##arg)
#endif
SHIM_EOF
shim machine/atomic.h <<'SHIM_EOF'
#define atomic_load_acq_short(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define atomic_store_short(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define atomic_add_int(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define atomic_subtract_int(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
#define atomic_load_int(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define atomic_thread_fence_rel() __atomic_thread_fence(__ATOMIC_RELEASE)
#define atomic_thread_fence_acq() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define atomic_store_int(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define atomic_store_rel_int(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define atomic_load_acq_int(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define atomic_testandset_int(p, bit) \
	((__atomic_fetch_or((p), 1u << ((bit) & 31), __ATOMIC_SEQ_CST) >> ((bit) & 31)) & 1)
#define atomic_cmpset_int(p, o, n) ({ __typeof__(*(p)) __o = (o); \
	__atomic_compare_exchange_n((p), &__o, (n), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); })
SHIM_EOF
shim machine/vmm.h <<'SHIM_EOF'
struct vmctx;
SHIM_EOF
shim machine/vmm_snapshot.h <<'SHIM_EOF'
/* bhyve's snapshot helpers, reduced to type checks of their arguments. */
#ifndef SHIM_VMM_SNAPSHOT_H
#define SHIM_VMM_SNAPSHOT_H
struct vm_snapshot_meta {
	const char *dev_name;
	void *dev_data;
	int op;
};
enum vm_snapshot_op { VM_SNAPSHOT_SAVE, VM_SNAPSHOT_RESTORE };
int vm_snapshot_buf();
int vm_snapshot_guest2host_addr();
int vm_snapshot_buf_cmp();
#define SNAPSHOT_BUF_OR_LEAVE(DATA, LEN, META, RES, LABEL) \
	do { (RES) = vm_snapshot_buf((DATA), (LEN), (META)); if ((RES) != 0) goto LABEL; } while (0)
#define SNAPSHOT_VAR_OR_LEAVE(DATA, META, RES, LABEL) \
	SNAPSHOT_BUF_OR_LEAVE(&(DATA), sizeof(DATA), (META), (RES), LABEL)
/* Six arguments before FreeBSD 14, the VM context first since then. */
#define SHIM_G2H_PICK(_1, _2, _3, _4, _5, _6, _7, NAME, ...) NAME
#define SNAPSHOT_GUEST2HOST_ADDR_OR_LEAVE(...) \
	SHIM_G2H_PICK(__VA_ARGS__, SHIM_G2H_CTX, SHIM_G2H, _)(__VA_ARGS__)
#define SHIM_G2H(ADDR, LEN, RNULL, META, RES, LABEL) \
	do { (RES) = vm_snapshot_guest2host_addr((void **)&(ADDR), (LEN), (RNULL), (META)); if ((RES) != 0) goto LABEL; } while (0)
#define SHIM_G2H_CTX(CTX, ADDR, LEN, RNULL, META, RES, LABEL) \
	do { (RES) = vm_snapshot_guest2host_addr((CTX), (void **)&(ADDR), (LEN), (RNULL), (META)); if ((RES) != 0) goto LABEL; } while (0)
#define SNAPSHOT_BUF_CMP_OR_LEAVE(DATA, LEN, META, RES, LABEL) \
	do { (RES) = vm_snapshot_buf_cmp((DATA), (LEN), (META)); if ((RES) != 0) goto LABEL; } while (0)
#define SNAPSHOT_VAR_CMP_OR_LEAVE(DATA, META, RES, LABEL) \
	SNAPSHOT_BUF_CMP_OR_LEAVE(&(DATA), sizeof(DATA), (META), (RES), LABEL)
#endif
SHIM_EOF
shim snapshot.h <<'SHIM_EOF'
/* bhyve's snapshot.h (FreeBSD 14+): the helpers are in vmm_snapshot.h. */
#include <machine/vmm_snapshot.h>
SHIM_EOF
shim sys/crc16.h <<'SHIM_EOF'
/* FreeBSD 14+ <sys/crc16.h>: the NVMe model derives its EUI-64 with
 * crc16(); a CRC-16 written in stubs.c stands in. */
#include <stdint.h>
uint16_t crc16(uint16_t crc, const void *buffer, unsigned int len);
SHIM_EOF
shim md5.h <<'SHIM_EOF'
typedef struct { unsigned char state[128]; } MD5_CTX;
void MD5Init(MD5_CTX *);
void MD5Update(MD5_CTX *, const void *, unsigned int);
void MD5Final(unsigned char[16], MD5_CTX *);
SHIM_EOF
shim pci_emul.h <<'SHIM_EOF'
/* bhyve's PCI emulation interface, as far as block device models use it.
 * Function members are untyped and functions unprototyped so that models
 * of any FreeBSD version (whose signatures differ) compile. */
#ifndef SHIM_PCI_EMUL_H
#define SHIM_PCI_EMUL_H
#include <sys/queue.h>
#include <sys/nv.h>
#include <sys/linker_set.h>
#include <dev/pci/pcireg.h>
#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
struct vmctx;
struct vm_snapshot_meta;
struct pci_devinst {
	struct vmctx *pi_vmctx;
	uint8_t pi_bus, pi_slot, pi_func;
	char pi_name[32];
	void *pi_arg;
};
struct pci_devemu {
	const char *pe_emu;
	void *pe_init;
	void *pe_legacy_config;
	const char *pe_alias;
	void *pe_write_dsdt;
	void *pe_cfgwrite;
	void *pe_cfgread;
	void *pe_barwrite;
	void *pe_barread;
	void *pe_baraddr;
	void *pe_snapshot;
	void *pe_pause;
	void *pe_resume;
};
#define PCI_EMUL_SET(x) DATA_SET(pci_devemu_set, x)
enum pcibar_type { PCIBAR_NONE, PCIBAR_IO, PCIBAR_MEM32, PCIBAR_MEM64,
		   PCIBAR_MEMHI64, PCIBAR_ROM };
int pci_emul_alloc_bar();
int pci_emul_add_msicap();
int pci_emul_add_msixcap();
int pci_emul_add_pciecap();
int pci_emul_msix_twrite();
uint64_t pci_emul_msix_tread();
int pci_emul_add_boot_device();
void pci_generate_msi();
void pci_generate_msix();
void pci_lintr_assert();
void pci_lintr_deassert();
void pci_lintr_request();
int pci_msix_enabled();
int pci_msix_table_bar();
int pci_msix_pba_bar();
int pci_msi_maxmsgnum();
int pci_parse_legacy_config();
void pci_set_cfgdata8();
void pci_set_cfgdata16();
void pci_set_cfgdata32();
uint8_t pci_get_cfgdata8();
uint16_t pci_get_cfgdata16();
uint32_t pci_get_cfgdata32();
#endif
SHIM_EOF
shim prelude.h <<'SHIM_EOF'
/* Forced first include: FreeBSD compiler and libc spellings. */
#define _GNU_SOURCE 1
#include <sys/cdefs.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#define __FBSDID(s) struct __hack
#define __packed __attribute__((__packed__))
#define __aligned(x) __attribute__((__aligned__(x)))
#define __unused __attribute__((__unused__))
#define __used __attribute__((__used__))
#define __printflike(a, b) __attribute__((__format__(__printf__, a, b)))
#define __dead2 __attribute__((__noreturn__))
#define __DECONST(t, v) ((t)(uintptr_t)(const void *)(v))
#define __containerof(p, t, f) ((t *)((char *)(p) - offsetof(t, f)))
#ifndef __BYTE_ORDER__
#error no byte order
#endif
#define _BYTE_ORDER __BYTE_ORDER__
#define _LITTLE_ENDIAN __ORDER_LITTLE_ENDIAN__
#define _BIG_ENDIAN __ORDER_BIG_ENDIAN__
typedef unsigned char u_char;
typedef unsigned short u_short;
typedef unsigned int u_int;
typedef unsigned long u_long;
typedef uint8_t u_int8_t;
typedef uint16_t u_int16_t;
typedef uint32_t u_int32_t;
typedef uint64_t u_int64_t;
typedef uint64_t vm_paddr_t;
typedef int cpuset_t;
size_t strlcpy(char *, const char *, size_t);
static inline int flsl(long mask)
{
	return mask ? (int)(sizeof(long) * 8) - __builtin_clzl((unsigned long)mask) : 0;
}
static inline int fls(int mask)
{
	return mask ? 32 - __builtin_clz((unsigned)mask) : 0;
}
SHIM_EOF
shim pthread_np.h <<'SHIM_EOF'
#include <pthread.h>
void pthread_set_name_np(pthread_t, const char *);
int pthread_mutex_isowned_np(pthread_mutex_t *);
SHIM_EOF
shim sys/disk.h <<'SHIM_EOF'
/* ioctl numbers bhyve's device models name (values are irrelevant here). */
#define DIOCGSECTORSIZE 1
#define DIOCGMEDIASIZE 2
#define DIOCGFLUSH 3
#define DIOCGDELETE 4
SHIM_EOF
shim sys/endian.h <<'SHIM_EOF'
#ifndef SHIM_SYS_ENDIAN_H
#define SHIM_SYS_ENDIAN_H
#include <endian.h>
#include <stdint.h>
#define SHIM_DEC(n, e) \
static inline uint##n##_t e##n##dec(const void *p) { uint##n##_t v; __builtin_memcpy(&v, p, sizeof(v)); return e##n##toh(v); } \
static inline void e##n##enc(void *p, uint##n##_t v) { v = hto##e##n(v); __builtin_memcpy(p, &v, sizeof(v)); }
SHIM_DEC(16, le) SHIM_DEC(32, le) SHIM_DEC(64, le)
SHIM_DEC(16, be) SHIM_DEC(32, be) SHIM_DEC(64, be)
#endif
SHIM_EOF
shim sys/ioccom.h <<'SHIM_EOF'
#include <sys/ioctl.h>
SHIM_EOF
shim sys/linker_set.h <<'SHIM_EOF'
/* FreeBSD linker sets: a pointer per item in section set_<name>, which
 * the GNU linker brackets with __start_set_<name>/__stop_set_<name>. */
#ifndef SHIM_LINKER_SET_H
#define SHIM_LINKER_SET_H
#define DATA_SET(set, sym)                                              \
	static void const *const __set_##set##_sym_##sym                \
		__attribute__((__section__("set_" #set), __used__)) = &(sym)
#endif
SHIM_EOF
shim sys/nv.h <<'SHIM_EOF'
#ifndef _NVLIST_T_DECLARED
#define _NVLIST_T_DECLARED
struct nvlist;
typedef struct nvlist nvlist_t;
#endif
SHIM_EOF
shim sys/param.h <<'SHIM_EOF'
#include_next <sys/param.h>
#ifndef nitems
#define nitems(x) (sizeof(x) / sizeof((x)[0]))
#endif
#ifndef MAXCOMLEN
#define MAXCOMLEN 19
#endif
#ifndef DEV_BSIZE
#define DEV_BSIZE 512
#endif
#ifndef MAXPHYS
#define MAXPHYS (1024 * 1024)
#endif
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096
#endif
#ifndef PAGE_SHIFT
#define PAGE_SHIFT 12
#endif
#define OFF_MAX INT64_MAX
#include <sys/endian.h>
#ifndef PAGE_MASK
#define PAGE_MASK (PAGE_SIZE - 1)
#endif
#ifndef SPECNAMELEN
#define SPECNAMELEN 255
#endif
SHIM_EOF
shim sys/queue.h <<'SHIM_EOF'
#include_next <sys/queue.h>
#ifndef STAILQ_FOREACH_SAFE
#define STAILQ_FOREACH_SAFE(v, h, f, t) \
	for ((v) = STAILQ_FIRST(h); (v) && ((t) = STAILQ_NEXT(v, f), 1); (v) = (t))
#endif
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(v, h, f, t) \
	for ((v) = TAILQ_FIRST(h); (v) && ((t) = TAILQ_NEXT(v, f), 1); (v) = (t))
#endif
#ifndef STAILQ_LAST
#define STAILQ_LAST(h, t, f) (STAILQ_EMPTY(h) ? NULL : __containerof((h)->stqh_last, struct t, f.stqe_next))
#endif
SHIM_EOF
shim virtio.h <<'SHIM_EOF'
/* bhyve's virtio transport, as far as virtio-blk uses it. */
#ifndef SHIM_VIRTIO_H
#define SHIM_VIRTIO_H
#include <pthread.h>
#include <stdint.h>
#include <sys/uio.h>
#define VIRTIO_VENDOR 0x1AF4
#define VIRTIO_DEV_BLOCK 0x1001
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_TYPE_BLOCK 2
#define VIRTIO_RING_F_INDIRECT_DESC (1 << 28)
#define VIRTIO_RING_F_EVENT_IDX (1 << 29)
#define VIRTIO_F_VERSION_1 (1ULL << 32)
#define VIRTIO_PCI_ISR_CONFIG 0x02
#define VIRTIO_PCI_ISR_INTR 0x01
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_T_FLUSH 4
#define VRING_DESC_F_WRITE 2
struct vm_snapshot_meta;
struct pci_devinst;
struct vqueue_info {
	uint16_t vq_qsize;
	uint16_t vq_num;
	void *vq_vs;
	void (*vq_notify)(void *, struct vqueue_info *);
	uint16_t vq_msix_idx;
};
struct virtio_consts {
	const char *vc_name;
	int vc_nvq;
	size_t vc_cfgsize;
	void *vc_reset;
	void *vc_qnotify;
	void *vc_cfgread;
	void *vc_cfgwrite;
	void *vc_apply_features;
	uint64_t vc_hv_caps;
	void *vc_pause;
	void *vc_resume;
	void *vc_snapshot;
};
struct virtio_softc {
	struct virtio_consts *vs_vc;
	struct pci_devinst *vs_pi;
	pthread_mutex_t *vs_mtx;
	uint64_t vs_negotiated_caps;
	uint16_t vs_msix_cfg_idx;
	uint8_t vs_isr;
	int vs_flags;
};
struct vi_req {
	int readable, writable;
	unsigned int idx;
};
int vq_has_descs();
int vq_getchain();
void vq_relchain();
void vq_endchains();
void vi_interrupt();
void vi_softc_linkup();
int vi_intr_init();
void vi_reset_dev();
void vi_set_io_bar();
uint64_t vi_pci_read();
void vi_pci_write();
int vi_pci_snapshot();
int vi_pci_pause();
int vi_pci_resume();
#endif
SHIM_EOF
shim vmmapi.h <<'SHIM_EOF'
struct vmctx;
void *vm_map_gpa();
SHIM_EOF
cat >"$work/stubs.c" <<'SHIM_EOF'
/* bhyve-internal functions the device models call, for linking them on
 * Linux (the configuration tree is tests/unit/bhyve_config_tree.c): the
 * legacy option parser and inert stand-ins for the PCI, virtio, snapshot
 * and VM-memory layers. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include <sys/uio.h>

int pci_parse_legacy_config(nvlist_t *nvl, const char *opt)
{
	char *copy, *rest, *name;

	if (!opt)
		return 0;
	rest = copy = strdup(opt);
	while ((name = strsep(&rest, ",")) != NULL) {
		char *value = strchr(name, '=');

		if (value) {
			*value++ = '\0';
			set_config_value_node(nvl, name, value);
		} else {
			set_config_bool_node(nvl, name, true);
		}
	}
	free(copy);
	return 0;
}

/* Inert PCI, virtio, VM and snapshot layers. */
int boot_devices;
int pci_emul_add_boot_device(void *pi, int bootindex)
{
	(void)pi;
	printf("  pci_emul_add_boot_device(bootindex %d)\n", bootindex);
	boot_devices++;
	return 0;
}
#define INERT(type, name) type name() { return 0; }
INERT(int, pci_emul_alloc_bar)
INERT(int, pci_emul_add_msicap)
INERT(int, pci_emul_add_msixcap)
INERT(int, pci_emul_add_pciecap)
INERT(int, pci_emul_msix_twrite)
INERT(uint64_t, pci_emul_msix_tread)
INERT(int, pci_generate_msi)
INERT(int, pci_generate_msix)
INERT(int, pci_lintr_assert)
INERT(int, pci_lintr_deassert)
INERT(int, pci_lintr_request)
INERT(int, pci_msix_enabled)
INERT(int, pci_msix_table_bar)
INERT(int, pci_msix_pba_bar)
INERT(int, pci_msi_maxmsgnum)
INERT(int, pci_set_cfgdata8)
INERT(int, pci_set_cfgdata16)
INERT(int, pci_set_cfgdata32)
INERT(int, vq_endchains)
INERT(int, vi_interrupt)
INERT(int, vi_intr_init)
INERT(int, vi_reset_dev)
INERT(int, vi_set_io_bar)
INERT(uint64_t, vi_pci_read)
INERT(int, vi_pci_write)
INERT(int, vi_pci_snapshot)
INERT(int, vi_pci_pause)
INERT(int, vi_pci_resume)
INERT(int, vi_pci_is_modern)
INERT(int, vi_pci_modern_init)
INERT(int, vm_snapshot_buf)
INERT(int, vm_snapshot_guest2host_addr)
INERT(int, vm_snapshot_buf_cmp)
INERT(int, fbsdrun_virtio_msix)
INERT(void *, paddr_guest2host)
INERT(void *, vm_map_gpa)
void pthread_set_name_np(pthread_t t, const char *name)
{
	(void)t;
	(void)name;
}
int pthread_mutex_isowned_np(pthread_mutex_t *m)
{
	(void)m;
	return 1;
}
typedef struct { unsigned char state[128]; } MD5_CTX;
void MD5Init(MD5_CTX *c) { memset(c, 0, sizeof(*c)); }
void MD5Update(MD5_CTX *c, const void *p, unsigned int n) { (void)c; (void)p; (void)n; }
void MD5Final(unsigned char d[16], MD5_CTX *c) { (void)c; memset(d, 0, 16); }
size_t strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size) {
		size_t k = n < size - 1 ? n : size - 1;

		memcpy(dst, src, k);
		dst[k] = '\0';
	}
	return n;
}
int raw_stdio;
char *vmname = "vm";

/* CRC-16, polynomial 0x8005 taken bit-reflected (0xA001), no final
 * inversion: what the NVMe model's crc16() call expects. */
uint16_t crc16(uint16_t crc, const void *buffer, unsigned int len)
{
	const unsigned char *p = buffer;

	while (len--) {
		crc ^= *p++;
		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001)
					: (uint16_t)(crc >> 1);
	}
	return crc;
}

/*
 * A one-request virtqueue, enough to run a virtio-blk model's request path:
 * vi_softc_linkup() remembers the model's callbacks, vq_getchain() hands
 * out the chain main() set up, vq_relchain() reports its completion.
 */
struct vi_req { /* as in virtio.h */
	int readable, writable;
	unsigned int idx;
};
void *linked_vc;
void *linked_softc;
void *linked_vq;
struct iovec *chain_iov;
int chain_len, chain_readable, chain_pending;
pthread_mutex_t chain_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t chain_cond = PTHREAD_COND_INITIALIZER;
int chain_done;

void vi_softc_linkup(void *vs, void *vc, void *dev_softc, void *pi,
		     void *queues)
{
	(void)vs;
	(void)pi;
	linked_vc = vc;
	linked_softc = dev_softc;
	linked_vq = queues;
}

int vq_has_descs(void *vq)
{
	(void)vq;
	return chain_pending;
}

int vq_getchain(void *vq, struct iovec *iov, int niov, struct vi_req *req)
{
	(void)vq;
	if (!chain_pending || chain_len > niov)
		return -1;
	chain_pending = 0;
	memcpy(iov, chain_iov, sizeof(*iov) * (size_t)chain_len);
	req->readable = chain_readable;
	req->writable = chain_len - chain_readable;
	req->idx = 0;
	return chain_len;
}

/* (uint16_t idx, uint32_t iolen) in bhyve, promoted here. */
void vq_relchain(void *vq, int idx, unsigned int iolen)
{
	(void)vq;
	(void)idx;
	(void)iolen;
	pthread_mutex_lock(&chain_lock);
	chain_done = 1;
	pthread_cond_broadcast(&chain_cond);
	pthread_mutex_unlock(&chain_lock);
}
SHIM_EOF
cat >"$work/main.c" <<'SHIM_EOF'
/* Opens a disk image with each linked bhyve device model, as bhyve does
 * for -s SLOT,MODEL,IMAGE: the model's legacy-config parser fills a
 * configuration node, then its init function opens the image through
 * blockif (here vmm-blk's). */
#include <stdio.h>
#include <string.h>

#include "pci_emul.h"

extern struct pci_devemu *__start_set_pci_devemu_set[];
extern struct pci_devemu *__stop_set_pci_devemu_set[];
nvlist_t *create_config_node(const char *path);
extern int boot_devices;

#if defined(PE_INIT_OPTSTR)
/* FreeBSD 12: the init function takes the option string itself. */
typedef int init_fn(struct vmctx *, struct pci_devinst *, char *);
#define CALL_INIT(pe, pi, nvl) ((init_fn *)(pe)->pe_init)(NULL, (pi), opts)
#elif defined(PE_INIT_HAS_CTX)
typedef int init_fn(struct vmctx *, struct pci_devinst *, nvlist_t *);
#define CALL_INIT(pe, pi, nvl) ((init_fn *)(pe)->pe_init)(NULL, (pi), (nvl))
#else
typedef int init_fn(struct pci_devinst *, nvlist_t *);
#define CALL_INIT(pe, pi, nvl) ((init_fn *)(pe)->pe_init)((pi), (nvl))
#endif
typedef int legacy_fn(nvlist_t *, const char *);

#ifndef PE_INIT_OPTSTR
#include <pthread.h>
#include <sys/uio.h>
#include "virtio.h"

extern struct virtio_consts *linked_vc;
extern void *linked_softc;
extern struct vqueue_info *linked_vq;
extern struct iovec *chain_iov;
extern int chain_len, chain_readable, chain_pending, chain_done;
extern pthread_mutex_t chain_lock;
extern pthread_cond_t chain_cond;

/* One request through the virtio-blk model's own request path (its
 * qnotify callback): a header, NSEG data segments, a status byte.  Returns
 * the status the model wrote. */
static int vtblk_request(uint32_t type, uint64_t sector, uint8_t *data,
			 int nseg, size_t seglen)
{
	struct {
		uint32_t type, ioprio;
		uint64_t sector;
	} __attribute__((packed)) hdr = {type, 0, sector};
	struct iovec iov[130];
	uint8_t status = 0xff;

	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	for (int i = 0; i < nseg; i++) {
		iov[1 + i].iov_base = data + seglen * (size_t)i;
		iov[1 + i].iov_len = seglen;
	}
	iov[1 + nseg].iov_base = &status;
	iov[1 + nseg].iov_len = 1;
	chain_iov = iov;
	chain_len = nseg + 2;
	chain_readable = type == 1 ? nseg + 1 : 1;
	chain_done = 0;
	chain_pending = 1;
	((void (*)(void *, struct vqueue_info *))linked_vc->vc_qnotify)(
		linked_softc, linked_vq);
	pthread_mutex_lock(&chain_lock);
	while (!chain_done)
		pthread_cond_wait(&chain_cond, &chain_lock);
	pthread_mutex_unlock(&chain_lock);
	return status;
}

/* Write 128 segments through the model, read them back in 128 others. */
static int vtblk_io_check(void)
{
	static uint8_t out[128 * 4096], in[128 * 4096];
	int w, r;

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7 + i / 4096);
	w = vtblk_request(1, 2048, out, 128, 4096);
	r = vtblk_request(0, 2048, in, 128, 4096);
	printf("virtio-blk: 128-segment write status %d, read status %d, "
	       "data %s\n", w, r, memcmp(in, out, sizeof(in)) ? "DIFFERS" : "same");
	return w != 0 || r != 0 || memcmp(in, out, sizeof(in)) != 0;
}
#endif

/* Is NAME one of the comma-separated LIST? */
static int listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

/* The model an alias (ahci-hd) stands for (ahci), as bhyve resolves it. */
static struct pci_devemu *resolve(struct pci_devemu *pe)
{
	if (pe->pe_init || !pe->pe_alias)
		return pe;
	for (struct pci_devemu **p = __start_set_pci_devemu_set;
	     p < __stop_set_pci_devemu_set; p++)
		if (!strcmp((*p)->pe_emu, pe->pe_alias))
			return *p;
	return pe;
}

int main(int argc, char **argv)
{
	int failed = 0, slot = 3;

	if (argc != 3) {
		fprintf(stderr, "usage: %s MODEL[,MODEL...] IMAGE-OPTIONS\n",
			argv[0]);
		return 2;
	}
	for (struct pci_devemu **p = __start_set_pci_devemu_set;
	     p < __stop_set_pci_devemu_set; p++) {
		struct pci_devemu *pe = *p;
		struct pci_devinst pi = {.pi_slot = (uint8_t)slot};
		char node[32], *opts = argv[2];
		nvlist_t *nvl;
		int r;

		if (!listed(argv[1], pe->pe_emu))
			continue;
		snprintf(node, sizeof(node), "pci.0.%d.0", slot++);
		nvl = create_config_node(node);
		r = pe->pe_legacy_config
			    ? ((legacy_fn *)pe->pe_legacy_config)(nvl, opts)
			    : 0;
		(void)opts;
		if (r == 0)
			r = CALL_INIT(resolve(pe), &pi, nvl);
		printf("%s: init %s\n", pe->pe_emu, r == 0 ? "ok" : "FAILED");
		failed |= r != 0;
#ifndef PE_INIT_OPTSTR
		if (r == 0 && !strcmp(pe->pe_emu, "virtio-blk") && linked_vc)
			failed |= vtblk_io_check();
#endif
	}
	return failed;
}
SHIM_EOF

# Which interface the tree's models use, read from the models themselves
# (so only the files copied above are needed from the tree).
defs=
if grep -q 'blockif_open(opts' "$bhyve/pci_virtio_block.c"; then
	defs="$defs -DVMMBLK_BLOCKIF_LEGACY_API"
	api="FreeBSD 12 (blockif_open(const char *), VMMBLK_BLOCKIF_LEGACY_API)"
else
	api="FreeBSD 13+ (blockif_open(nvlist_t *))"
fi
if grep -q 'pci_vtblk_init(struct vmctx' "$bhyve/pci_virtio_block.c"; then
	defs="$defs -DPE_INIT_HAS_CTX"
fi
if ! grep -q 'pe_legacy_config' "$bhyve/pci_virtio_block.c"; then
	defs="$defs -DPE_INIT_OPTSTR"
fi
if grep -q 'blockif_add_boot_device' "$bhyve/pci_virtio_block.c"; then
	api="$api, blockif_add_boot_device() called by the models"
fi

# Warnings about how the models call blockif are errors; the models' own
# style warnings are not ours to judge.
cflags="-std=gnu11 -O2 -Wall -Wno-unused-parameter -Wno-sign-compare
	-Wno-missing-field-initializers -Wno-format-truncation
	-Wno-maybe-uninitialized -Wno-uninitialized -Wno-pointer-sign
	-Wno-unused-variable -Wno-unused-function -Wno-address-of-packed-member
	-Werror=implicit-function-declaration -Werror=incompatible-pointer-types
	-Werror=int-conversion -Werror=return-type
	-include $work/shim/prelude.h -I$work/shim -I$work/fbsd
	-I$top/vmm-blk/include/vmm-blk $defs"

# What libvmmblk.a and libmimg.a link against: the packages the build's own
# (uninstalled) pkg-config files require, as shared libraries.
pcpath="$build/meson-private"
# shellcheck disable=SC2086
libs=$(deps=$(PKG_CONFIG_PATH="$pcpath" pkg-config --print-requires-private \
	libmimg vmmblk | sed 's/[ <>=].*//' | sort -u) &&
	pkg-config --libs $deps) || libs="-lz -lzstd"
libs="$libs -pthread"

cd "$work"
echo "FreeBSD tree: $src"
echo "interface:    $api"
echo "work dir:     $work"
fail=0
for snap in "" -DBHYVE_SNAPSHOT; do
	objs=
	for f in $models; do
		o=$f${snap:+-snapshot}.o
		# shellcheck disable=SC2086
		if $CC $cflags $snap -c "src/$f.c" -o "$o" 2>"$o.log"; then
			echo "compile $f.c ${snap:-(plain)}: ok"
		else
			echo "compile $f.c ${snap:-(plain)}: FAILED"
			cat "$o.log"
			fail=1
		fi
		objs="$objs $o"
	done
	[ $fail = 0 ] || break
	exe=bhyve-models${snap:+-snapshot}
	# shellcheck disable=SC2086
	$CC $cflags -c stubs.c -o stubs.o
	# shellcheck disable=SC2086
	$CC $cflags -c "$top/tests/unit/bhyve_config_tree.c" -o config_tree.o
	# shellcheck disable=SC2086
	$CC $cflags -c main.c -o main.o
	# shellcheck disable=SC2086
	if $CC -o "$exe" main.o stubs.o config_tree.o $objs "$build/vmm-blk/libvmmblk.a" \
		"$build/libmimg.a" $libs 2>"$exe.log"; then
		echo "link $exe with libvmmblk.a and libmimg.a: ok"
	else
		echo "link $exe: FAILED"
		cat "$exe.log"
		fail=1
		break
	fi
done
if [ $fail = 0 ]; then
	rm -f disk.raw disk.qcow2
	"$build/mimg/mimg" create -f raw disk.raw 64M >/dev/null
	"$build/mimg/mimg" create -f qcow2 disk.qcow2 1G >/dev/null
	# FreeBSD 12's NVMe model parses the options itself and knows
	# neither sectorsize nor bootindex.
	opts=",sectorsize=512/4096,bootindex=1"
	case $api in FreeBSD\ 12*) opts= ;; esac
	for img in disk.raw "disk.qcow2$opts"; do
		echo "open $img:"
		./bhyve-models virtio-blk,ahci-hd,nvme "$img" || fail=1
	done
fi
# bhyve never closes its disks: what a model's completed writes left in
# the qcow2 image after the process exited (reported, not judged here).
if [ $fail = 0 ] && command -v qemu-img >/dev/null 2>&1; then
	echo "after exit without close, qemu-img check disk.qcow2:"
	qemu-img check disk.qcow2 2>&1 | sed 's/^/  /' | tail -4 || true
fi
[ $fail = 0 ] && echo "bhyve-compat-check: PASS" || echo "bhyve-compat-check: FAIL"
exit $fail
