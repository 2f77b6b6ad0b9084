#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Install what is missing, build mimg, then run the main job on a built-in
# sample: make a sparse 1 GiB disk with mixed data, convert it between every
# available format (plain and compressed), show `info`, and verify that
# every round trip gives back the same bytes.
#   scripts/demo.sh [WORKDIR]   (WORKDIR is kept; without it a temporary
#                               directory is used and removed)
# With MIMG set to a built mimg, only the job runs (the test suite runs it
# so, as its "demo" test).
set -eu
. "$(dirname "$0")/setup.sh"

if [ -z "${MIMG:-}" ]; then
	install_packages
	build -Dtests=false
	MIMG=$BUILD_DIR/mimg/mimg
fi

# A working directory of our own is removed at the end; one the user
# named is kept with the images in it.
if [ $# -ge 1 ]; then
	WORK=$1
	mkdir -p "$WORK"
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/mimg-demo-XXXXXX")
	trap 'cd / && rm -rf "$WORK"' EXIT
	trap 'exit 130' INT TERM
fi
cd "$WORK"
echo "== working in $WORK"

# A 1 GiB sparse disk: random data, text, a zero-filled block and holes.
python3 - disk.raw <<'PY'
import os, random, sys
rng = random.Random(1)
with open(sys.argv[1], "wb") as f:
    f.truncate(1 << 30)
    f.seek(0)
    f.write(rng.randbytes(4 << 20))                  # "boot" area
    f.seek(100 << 20)
    words = [b"mimg", b"qcow2", b"vmdk", b"raw", b"cluster", b"grain"]
    f.write(b" ".join(rng.choice(words) for _ in range(1 << 20))[: 8 << 20])
    f.seek(512 << 20)
    f.write(bytes(4 << 20))                           # explicit zeroes
    f.seek((1 << 30) - (2 << 20))
    f.write(rng.randbytes(2 << 20))                   # end of disk
PY
echo "== source"
"$MIMG" info disk.raw

formats=$("$MIMG" --help | sed -n 's/^Formats: //p')
# Encrypted formats take the demo's passphrase as qemu-img takes secrets.
secret="--object secret,id=demo,data=demo-passphrase"
verify() { # verify IMAGE FORMAT
	# shellcheck disable=SC2086
	"$MIMG" convert $secret -f "$2" -O raw "$1" back.raw
	if cmp -s disk.raw back.raw; then
		echo "   $1 -> raw: identical"
	else
		echo "demo: $1 does not convert back to the original" >&2
		exit 1
	fi
	rm -f back.raw
}

for fmt in $formats; do
	[ "$fmt" = raw ] && continue
	# Formats mimg only reads (DMG, QED, ...) are converted from, not to.
	if ! "$MIMG" create -f "$fmt" -o help >/dev/null 2>&1; then
		echo "== $fmt: read only, skipped"
		continue
	fi
	echo "== raw -> $fmt"
	opts=
	case $fmt in
	luks) opts="-o key-secret=demo,iter-time=100" ;;
	# VHD rounds sizes to its disk geometry unless told not to.
	vpc) opts="-o force_size=on" ;;
	esac
	# shellcheck disable=SC2086
	"$MIMG" convert -p $secret -O "$fmt" $opts disk.raw "disk.$fmt"
	"$MIMG" info "disk.$fmt"
	verify "disk.$fmt" "$fmt"
	if [ "$fmt" = qcow2 ]; then
		echo "== raw -> compressed qcow2"
		"$MIMG" convert -c -O qcow2 disk.raw disk-c.qcow2
		"$MIMG" info disk-c.qcow2 | sed -n '1,4p'
		verify disk-c.qcow2 qcow2
		"$MIMG" check disk-c.qcow2
	fi
done

echo "== raw -> raw (sparse)"
"$MIMG" convert disk.raw copy.raw
cmp disk.raw copy.raw
echo "   allocated: source $(du -k disk.raw | cut -f1) KiB," \
	"copy $(du -k copy.raw | cut -f1) KiB"
echo "demo: every conversion verified"
