#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# Guest dependencies for the end-to-end tests and bench/vmm-blk.sh:
# installs QEMU, qemu-storage-daemon, qemu-img, busybox-static and cpio when
# missing (Debian, as root), and caches Debian's kernel plus the virtio
# modules the guest needs.  No kernel package is installed: the .deb is
# fetched with `apt-get download` and only the few files used are unpacked.
#
# Sourced, it defines e2e_deps (sets E2E_KERNEL and E2E_MODDIR); run
# directly, it fetches everything and prints where the kernel is.
# Exit/return status 77 means "cannot be installed here" (test skip).
#
# Cache: $MIMG_E2E_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/mimg-e2e.

# Modules in load order; a missing one is assumed built into the kernel.
E2E_MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"

e2e_log() {
	echo "e2e: $*" >&2
}

e2e_cache_dir() {
	if [ -n "${MIMG_E2E_CACHE:-}" ]; then
		echo "$MIMG_E2E_CACHE"
	else
		echo "${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mimg-e2e"
	fi
}

e2e_pkg_installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# Packages needed for the guest tests; prints the missing ones.
# $1 = "cc" also wants gcc and a static libc for guest-side helper programs.
e2e_missing_packages() {
	command -v qemu-system-x86_64 >/dev/null 2>&1 || echo qemu-system-x86
	command -v qemu-storage-daemon >/dev/null 2>&1 || echo qemu-system-common
	command -v qemu-img >/dev/null 2>&1 || echo qemu-utils
	command -v cpio >/dev/null 2>&1 || echo cpio
	# The initramfs needs a static busybox: the dynamic "busybox" package
	# would need the host's libc inside the guest.
	e2e_pkg_installed busybox-static || echo busybox-static
	if [ "${1:-}" = cc ]; then
		command -v gcc >/dev/null 2>&1 || echo gcc
		e2e_pkg_installed libc6-dev || echo libc6-dev
	fi
}

e2e_apt_updated=
e2e_apt_update() {
	[ -n "$e2e_apt_updated" ] && return 0
	e2e_log "apt-get update"
	apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null 2>&1 || return 1
	e2e_apt_updated=1
}

e2e_install_packages() {
	missing=$(e2e_missing_packages "${1:-}" | sort -u | tr '\n' ' ')
	[ -z "$missing" ] && return 0
	if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
		e2e_log "missing $missing and no apt-get to install them"
		return 77
	fi
	if [ "$(id -u)" != 0 ]; then
		e2e_log "missing $missing and not root, cannot install"
		return 77
	fi
	e2e_apt_update || { e2e_log "apt-get update failed"; return 77; }
	e2e_log "installing $missing"
	# shellcheck disable=SC2086
	if ! DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
		install --no-install-recommends $missing >/dev/null; then
		e2e_log "apt-get install $missing failed"
		return 77
	fi
	missing=$(e2e_missing_packages "${1:-}" | tr '\n' ' ')
	if [ -n "$missing" ]; then
		e2e_log "still missing after install: $missing"
		return 77
	fi
}

# Unpacks vmlinuz and the virtio modules from a kernel .deb into $2.
e2e_unpack_kernel() {
	deb=$1 dest=$2
	mkdir -p "$dest/x" "$dest/modules" || return 1
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dest/x" --wildcards \
		'./boot/vmlinuz-*' \
		'./lib/modules/*/kernel/drivers/virtio/*.ko*' \
		'./lib/modules/*/kernel/drivers/block/virtio_blk.ko*' || return 1
	mv "$dest"/x/boot/vmlinuz-* "$dest/vmlinuz" || return 1
	for m in $E2E_MODULES; do
		for f in "$dest"/x/lib/modules/*/kernel/drivers/*/"$m".ko*; do
			[ -e "$f" ] || continue
			# Decompress on the host: busybox insmod and the kernel's
			# in-kernel decompression are both optional.
			case $f in
			*.ko) cp "$f" "$dest/modules/$m.ko" ;;
			*.ko.xz) xz -dc "$f" >"$dest/modules/$m.ko" || return 1 ;;
			*.ko.zst) zstd -qdc "$f" >"$dest/modules/$m.ko" || return 1 ;;
			*.ko.gz) gzip -dc "$f" >"$dest/modules/$m.ko" || return 1 ;;
			esac
		done
	done
	rm -rf "$dest/x"
	[ -s "$dest/vmlinuz" ]
}

# Sets E2E_KERNEL (vmlinuz) and E2E_MODDIR (flat directory of .ko files).
e2e_fetch_kernel() {
	cache=$(e2e_cache_dir)
	if [ -s "$cache/current/vmlinuz" ] && [ -d "$cache/current/modules" ]; then
		E2E_KERNEL=$cache/current/vmlinuz
		E2E_MODDIR=$cache/current/modules
		return 0
	fi
	command -v apt-get >/dev/null 2>&1 || { e2e_log "no apt-get to fetch a kernel"; return 77; }
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
	if [ -z "$pkg" ]; then
		e2e_apt_update
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
	fi
	[ -n "$pkg" ] || { e2e_log "cannot find the kernel package linux-image-amd64 depends on"; return 77; }
	mkdir -p "$cache" || return 77
	dl=$(mktemp -d "$cache/dl-XXXXXX") || return 77
	e2e_log "downloading $pkg"
	# apt drops privileges to _apt for downloads; let it write there.
	chmod 777 "$dl" 2>/dev/null
	if ! (cd "$dl" && apt-get -q download "$pkg" >/dev/null 2>&1); then
		rm -rf "$dl"
		e2e_log "apt-get download $pkg failed"
		return 77
	fi
	if ! e2e_unpack_kernel "$dl"/*.deb "$dl/kernel"; then
		rm -rf "$dl"
		e2e_log "unpacking $pkg failed"
		return 1
	fi
	# Unpacked aside and renamed into place, so a concurrent run never
	# sees a half-written kernel; if another run got there first, keep its.
	mv -T "$dl/kernel" "$cache/$pkg" 2>/dev/null || [ -s "$cache/$pkg/vmlinuz" ] || {
		rm -rf "$dl"
		e2e_log "cannot move the kernel into $cache/$pkg"
		return 1
	}
	rm -rf "$dl"
	ln -sfn "$pkg" "$cache/current.tmp.$$" && mv -T "$cache/current.tmp.$$" "$cache/current"
	E2E_KERNEL=$cache/current/vmlinuz
	E2E_MODDIR=$cache/current/modules
}

# Everything a guest test needs; $1 = "cc" to build static guest helpers.
e2e_deps() {
	e2e_install_packages "${1:-}" || return $?
	e2e_fetch_kernel || return $?
	E2E_BUSYBOX=$(command -v busybox 2>/dev/null || echo /bin/busybox)
	[ -x "$E2E_BUSYBOX" ] || { e2e_log "busybox not found"; return 77; }
}

# Run directly: fetch and report.
case ${0##*/} in
e2e-guest-deps.sh)
	e2e_deps "${1:-}" || exit $?
	echo "kernel:  $E2E_KERNEL"
	echo "modules: $E2E_MODDIR"
	;;
esac
