#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Bundle programs with every shared library they load, the loader
# included, into one folder that runs on an x86-64 Linux machine where
# none of them is installed (a many-core machine lent for the scaling
# table, say).  Each program in DIR/bin is patched to load its libraries
# from PREFIX/lib with PREFIX/lib's loader, so DIR must be found at
# PREFIX there (copy or link it).
#   bench/bundle.sh DIR PREFIX PROG...
# PROG is a path or a name on PATH; mimg's shared library comes with the
# mimg program, as does libcrypto, which libmimg opens at run time for
# encrypted images (not libarchive: its XML parser pulls in 30 MiB of
# Unicode tables).  Needs patchelf.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 DIR PREFIX PROG..." >&2; exit 2; }
dir=$1 prefix=$2
shift 2
command -v patchelf >/dev/null || { echo "bundle: patchelf is needed" >&2; exit 1; }
mkdir -p "$dir/bin" "$dir/lib"

# copy_libs FILE: FILE's libraries (as the loader here resolves them) into
# DIR/lib, loader included, each under the name it is asked for by.
copy_libs() {
	ldd "$1" | while read -r name arrow path _; do
		case $arrow in
		'=>') [ -f "$path" ] && cp -L "$path" "$dir/lib/$name" ;;
		*) case $name in /*) cp -L "$name" "$dir/lib/" ;; esac ;;
		esac
	done
}

loader=""
for p in "$@"; do
	exe=$(command -v "$p") || { echo "bundle: no program $p" >&2; exit 1; }
	copy_libs "$exe"
	cp -L "$exe" "$dir/bin/"
	case $(basename "$exe") in
	mimg)
		# A library libmimg opens when a feature needs it.
		for so in libcrypto.so.3; do
			path=$(ldconfig -p | awk -v n="$so" '$1 == n { print $NF; exit }')
			[ -n "$path" ] || continue
			cp -L "$path" "$dir/lib/$so"
			copy_libs "$path"
		done
		;;
	esac
done
for f in "$dir"/lib/ld-linux*; do loader=$(basename "$f"); done
[ -n "$loader" ] || { echo "bundle: no loader found" >&2; exit 1; }
for f in "$dir"/bin/*; do
	# DT_RPATH (not RUNPATH): it applies to the libraries' own needs too.
	patchelf --set-interpreter "$prefix/lib/$loader" --force-rpath \
		--set-rpath "$prefix/lib" "$f"
done
for f in "$dir"/lib/*; do
	case $f in */ld-linux*) continue ;; esac
	patchelf --force-rpath --set-rpath "$prefix/lib" "$f"
done
