#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Images on a block device, as cloud tools write them (convert onto a
# volume): a loop device whose old bytes are 0xff, so that a hole left
# unwritten shows.  convert to raw and to qcow2 onto the device (without
# -n, as qemu-img takes a device: nothing is created, its size checked),
# -n -t none, a device smaller than the image refused, info's virtual
# size, and map and check through the device.  qemu-img reads back each
# result.  Skipped where no loop device can be set up (not root, or no
# loop driver).
. "$TESTLIB"
need qemu-img qemu-io losetup python3

fill() {
	python3 -c 'import sys; open(sys.argv[1], "r+b").write(b"\xff" * (16 << 20))' dev.img
}
truncate -s 16M dev.img
fill
L=$(losetup -f --show dev.img 2>/dev/null) && [ -b "$L" ] ||
	{ echo "SKIP: no loop device"; exit 77; }
trap 'losetup -d "$L"; rm -rf "$T"' EXIT

qemu-img create -q -f qcow2 h.qcow2 16M
qemu-io -c 'write -P 5 1M 1M' -c 'write -z 4M 1M' -c 'write -P 6 15M 64k' \
	h.qcow2 >/dev/null || fail "qemu-io h.qcow2"

# raw onto the device: the holes and zeroes must be written as zeroes
"$MIMG" convert -O raw h.qcow2 "$L" || fail "convert -O raw onto $L"
qemu-img compare -q -f qcow2 -F raw h.qcow2 "$L" ||
	fail "raw on the device differs (holes not zeroed?)"
check_eq "$("$MIMG" info --output=json "$L" | grep '"virtual-size"')" \
	"$(qemu-img info --output=json "$L" | grep '"virtual-size"')" \
	"info of the device"

# again with -n and O_DIRECT
fill
"$MIMG" convert -n -t none -O raw h.qcow2 "$L" || fail "convert -n -t none"
qemu-img compare -q -f qcow2 -F raw h.qcow2 "$L" ||
	fail "raw on the device (-n -t none) differs"

# qcow2 on the device
fill
"$MIMG" convert -O qcow2 h.qcow2 "$L" || fail "convert -O qcow2 onto $L"
qemu-img check -q -f qcow2 "$L" || fail "qemu-img check of qcow2 on $L"
qemu-img compare -q -f qcow2 -F qcow2 h.qcow2 "$L" ||
	fail "qcow2 on the device differs"
qemu-img map --output=json -f qcow2 "$L" | sed 's/"offset": [0-9]*//' >q.map
"$MIMG" map --output=json -f qcow2 "$L" | sed 's/"offset": [0-9]*//' >m.map
cmp -s q.map m.map || fail "map of qcow2 on the device: $(diff q.map m.map)"
"$MIMG" check -f qcow2 "$L" >/dev/null || fail "mimg check of qcow2 on $L"

# a device too small for the image: refused, as qemu-img refuses it
qemu-img create -q -f qcow2 big.qcow2 32M
qemu-img convert -O raw big.qcow2 "$L" 2>/dev/null; qs=$?
"$MIMG" convert -O raw big.qcow2 "$L" 2>m.err; ms=$?
check_eq "$ms" "$qs" "exit status for a device too small ($(cat m.err))"
echo ok
