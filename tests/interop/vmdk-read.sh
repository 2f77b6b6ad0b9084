#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg reads VMDKs made by qemu-img (every subformat and creation option)
# and written by qemu-io (data, partial grains, zeroes with and without
# zeroed grains, streamOptimized conversion), byte for byte as qemu-img
# reads them, and prints the same info and map JSON.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/vmdk-lib.sh"

n=0
for opts in $VMDK_VARIANTS
do
	n=$((n + 1))
	rm -f img*.vmdk
	qemu-img create -q -f vmdk -o "$opts" img.vmdk 3M ||
		fail "qemu-img create -o $opts"
	qio img.vmdk "write -P 0x11 0 64k" "write -P 0x22 100k 3k" \
		"write -P 0x33 1M 512" "write -z 1M 128k" \
		"write -P 0x44 2M 300k" "write -P 0x55 3071k 1k" \
		"write -P 0x66 511 1025"
	same_content img.vmdk "($opts)"
	same_info img.vmdk
	same_map img.vmdk "($opts)"
	"$MIMG" check img.vmdk >/dev/null || fail "mimg check ($opts)"
done

# streamOptimized as qemu-img writes it (GD at the front, markers).
make_raw src.raw 3
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw qs.vmdk ||
	fail "qemu-img convert to streamOptimized"
same_content qs.vmdk "(qemu streamOptimized)"
same_info qs.vmdk
same_map qs.vmdk "(qemu streamOptimized)"
"$MIMG" convert -O raw qs.vmdk back.raw && cmp src.raw back.raw ||
	fail "streamOptimized made by qemu-img"

# Sizes that are not a multiple of the grain.
qemu-img create -q -f vmdk odd.vmdk 1000k
qio odd.vmdk "write -P 0x77 960k 40k"
same_content odd.vmdk "(odd size)"
echo "ok: $n qemu-made option sets and streamOptimized read identically"
