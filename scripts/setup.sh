#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Shared by demo.sh and test.sh: install missing build and test packages
# (Debian, as root, apt-get), then configure and build mimg in $BUILD_DIR.
# Source it: . scripts/setup.sh
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
PACKAGES="meson ninja-build gcc pkg-config zlib1g-dev libzstd-dev libarchive-dev
libssl-dev libxml2-dev check qemu-utils python3 xz-utils zstd bzip2 lz4
cryptsetup-bin python3-cryptography python3-oslo.log python3-oslo.utils
libdeflate-dev libnbd-dev libnbd-bin nbdkit nbdkit-plugin-dev liblzma-dev
clang-format libisal-dev strace patchelf libbz2-dev dmg2img"
# What the sanitized libFuzzer build of scripts/test.sh adds.
# shellcheck disable=SC2034 # used by test.sh
SANITIZER_PACKAGES="clang libclang-rt-dev"

missing_packages() {
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q "install ok installed" || echo "$p"
	done
}

install_packages() {
	missing=$(missing_packages)
	[ -z "$missing" ] && return 0
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "setup: missing packages ($missing) and no apt-get" >&2
		return 1
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages ($missing); run as root" >&2
		return 1
	fi
	echo "setup: installing $(echo $missing)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# configure [meson options...]
configure() {
	if [ -f "$BUILD_DIR/build.ninja" ]; then
		meson configure "$BUILD_DIR" "$@" >/dev/null
	else
		meson setup "$BUILD_DIR" "$ROOT" "$@" >/dev/null
	fi
}

# build [meson options...]
build() {
	configure "$@"
	ninja -C "$BUILD_DIR" >/dev/null
}
