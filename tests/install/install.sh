#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The install as a new user meets it: `meson install` into a DESTDIR tree,
# then the library and its .pc file must sit where Debian's loader and
# pkg-config look for the configured prefix, README's C example must build
# with `pkg-config --cflags --libs libmimg` and run, and the installed
# programs must start and find libmimg.
#   BUILD_ROOT=build SOURCE_ROOT=. tests/install/install.sh
set -eu
: "${BUILD_ROOT:?}" "${SOURCE_ROOT:?}"
for tool in meson pkg-config cc; do
	command -v $tool >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mimg-install.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$BUILD_ROOT" --no-rebuild --quiet --destdir "$T/root" \
	>"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "meson install"; }
root=$T/root

lib=$(cd "$root" && find . -name 'libmimg.so.0' | head -1)
[ -n "$lib" ] || fail "no libmimg.so.0 installed"
libdir=$(dirname "${lib#.}")
pc=$(cd "$root" && find . -name libmimg.pc | head -1)
[ -n "$pc" ] || fail "no libmimg.pc installed"
pcdir=$(dirname "${pc#.}")

# Where Debian's loader looks: its default directories and the ones listed
# in /etc/ld.so.conf.d.
searched() {
	case $1 in
	/lib | /usr/lib | /lib/*-linux-gnu | /usr/lib/*-linux-gnu) return 0 ;;
	esac
	cat /etc/ld.so.conf /etc/ld.so.conf.d/*.conf 2>/dev/null |
		grep -qx "$1"
}
searched "$libdir" ||
	fail "libmimg installed in $libdir, which the loader does not search"
echo ":$(pkg-config --variable pc_path pkg-config):" | grep -q ":$pcdir:" ||
	fail "libmimg.pc installed in $pcdir, which pkg-config does not search"

# README's example, taken from README itself.
sed -n '/^## Using libmimg/,/^## /p' "$SOURCE_ROOT/README.md" |
	sed -n '/^```c$/,/^```$/p' | sed '1d;$d' >"$T/example.c"
grep -q mimg_open "$T/example.c" || fail "no C example found in README.md"
flags=$(PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_PATH=$root$pcdir \
	pkg-config --cflags --libs libmimg) || fail "pkg-config libmimg"
# A library built with the sanitizers needs a program built with them.
if command -v readelf >/dev/null &&
	readelf -d "$(ls "$root$libdir"/libmimg.so* | head -1)" |
	grep -q 'NEEDED.*libasan'; then
	flags="$flags -fsanitize=address,undefined"
fi
# shellcheck disable=SC2086
cc -o "$T/example" "$T/example.c" $flags || fail "README example does not build"

export LD_LIBRARY_PATH="$root$libdir"
bindir=$(dirname "$(cd "$root" && find . -path '*/bin/mimg' | head -1)")
mimg=$root${bindir#.}/mimg
"$mimg" create -f qcow2 "$T/disk.qcow2" 1M >/dev/null || fail "installed mimg"
# mimg is a client of the shared library, not a copy of it.
if command -v readelf >/dev/null; then
	readelf -d "$mimg" | grep -q 'NEEDED.*\[libmimg\.so\.0\]' ||
		fail "installed mimg does not link libmimg.so.0"
fi
out=$("$T/example" "$T/disk.qcow2") || fail "README example failed: $out"
[ "$out" = "qcow2, 1048576 bytes" ] || fail "README example printed '$out'"
vmmblk=$(cd "$root" && find . -path '*bin/vmm-blk' | head -1)
if [ -n "$vmmblk" ]; then
	"$root${vmmblk#.}" --help >/dev/null 2>&1 ||
		fail "installed vmm-blk does not start"
fi
for page in man1/mimg.1 man3/libmimg.3 man8/vmm-blk.8; do
	[ -n "$(cd "$root" && find . -path "*/man/$page")" ] ||
		fail "man page $page not installed"
done
echo "installed in $libdir (.pc in $pcdir); README example ran: $out"
