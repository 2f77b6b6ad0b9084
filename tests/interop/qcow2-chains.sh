#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Backing chains mixing qemu-img and mimg: a mimg overlay on a qemu base
# written by mimg, a qemu overlay (written by qemu-io) on a mimg base, a
# four-level chain of alternating writers, relative backing paths, and
# overlays larger than their base.  Both tools must read the same bytes,
# qemu-img check must find every image clean, and info --backing-chain
# must agree.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/qcow2-lib.sh"

# --- mimg overlay on a qemu base, written by mimg -------------------------
qemu-img create -q -f qcow2 -o cluster_size=4k base.qcow2 4M
qio base.qcow2 qcow2 "write -P 0x10 0 1M" "write -P 0x11 2M 512k" \
	"write -c -P 0x12 3M 64k"
base_sum=$(md5sum <base.qcow2)

"$MIMG" create -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2 ||
	fail "mimg create overlay"
qemu-img info --output=json ov.qcow2 >ov.json
check_eq "$(json_get ov.json virtual-size)" 4194304 \
	"overlay created without a size takes the base's"
check_eq "$(json_get ov.json backing-filename)" base.qcow2 "backing name"
check_eq "$(json_get ov.json backing-filename-format)" qcow2 "backing format"
qemu_clean ov.qcow2 "(fresh mimg overlay)"
qemu-img compare -q ov.qcow2 base.qcow2 ||
	fail "fresh mimg overlay does not read as its base"

# The wanted content: the base's, with unaligned changes, some zeroes.
qemu-img convert -O raw base.qcow2 want.raw
qio want.raw raw "write -P 0x20 1000 3000" "write -P 0 2M 4k" \
	"write -P 0x21 4095k 1k" "write -P 0x22 3M 100"
"$MIMG" convert -n -f raw -O qcow2 want.raw ov.qcow2 ||
	fail "mimg convert -n into its overlay"
qemu_clean ov.qcow2 "(mimg overlay after writes)"
qemu-img compare -f raw want.raw ov.qcow2 >cmp.out 2>&1 ||
	{ cat cmp.out >&2; fail "mimg overlay on qemu base: content"; }
[ "$(md5sum <base.qcow2)" = "$base_sum" ] || fail "writing the overlay changed the base"
same_content ov.qcow2
same_info ov.qcow2 --backing-chain

# --- qemu overlay on a mimg base ------------------------------------------
make_pattern_raw pat.raw 4M
"$MIMG" convert -f raw -O qcow2 -o cluster_size=16k pat.raw mbase.qcow2 ||
	fail "mimg convert for a base"
qemu-img create -q -f qcow2 -b mbase.qcow2 -F qcow2 -o cluster_size=64k \
	qov.qcow2
qio qov.qcow2 qcow2 "write -P 0x30 5000 70000" "write -z 1M 16k" \
	"discard 2M 64k" "write -P 0x31 4000k 96k"
qemu_clean qov.qcow2
same_content qov.qcow2 qcow2 "(qemu overlay on mimg base)"
same_info qov.qcow2 --backing-chain

# --- four levels, alternating writers, base raw ---------------------------
qemu-img create -q -f raw l0.raw 3M
qio l0.raw raw "write -P 0x40 0 3M"
qemu-img create -q -f qcow2 -b l0.raw -F raw -o cluster_size=512 l1.qcow2 4M
qio l1.qcow2 qcow2 "write -P 0x41 700 1000" "write -z 2M 600k"
"$MIMG" create -f qcow2 -b l1.qcow2 -F qcow2 -o cluster_size=2k l2.qcow2 ||
	fail "mimg create level 2"
qemu-img convert -O raw l1.qcow2 want2.raw
qio want2.raw raw "write -P 0x42 1500 5000" "write -P 0x43 3M 8k"
"$MIMG" convert -n -f raw -O qcow2 want2.raw l2.qcow2 ||
	fail "mimg write level 2"
qemu-img create -q -f qcow2 -b l2.qcow2 -F qcow2 l3.qcow2 6M
qio l3.qcow2 qcow2 "write -P 0x44 3000 100" "write -P 0x45 5M 4k"
for f in l1.qcow2 l2.qcow2 l3.qcow2; do
	qemu_clean $f
	same_content $f
done
same_info l3.qcow2 --backing-chain

# --- relative backing names resolve against the overlay's directory ------
mkdir sub
"$MIMG" create -f qcow2 -b ../base.qcow2 -F qcow2 sub/rel.qcow2 4M ||
	fail "mimg create with a relative backing name"
qemu-img compare -q sub/rel.qcow2 base.qcow2 ||
	fail "relative backing name: qemu reads something else"
qemu-img create -q -f qcow2 -b ../mbase.qcow2 -F qcow2 sub/qrel.qcow2
qio sub/qrel.qcow2 qcow2 "write -P 0x50 12k 4k"
same_content sub/qrel.qcow2 qcow2 "(relative backing name)"

# --- overlay larger than its base: the rest reads as zeroes ---------------
"$MIMG" create -f qcow2 -b base.qcow2 -F qcow2 big.qcow2 8M ||
	fail "mimg create a larger overlay"
qemu_clean big.qcow2
same_content big.qcow2
qio big.qcow2 qcow2 "write -P 0x60 4094k 8k"
same_content big.qcow2 qcow2 "(write across the end of the base)"
# --- hostile references ----------------------------------------------------
# set_backing IMG NAME: point IMG's backing file name at NAME.
set_backing() {
	python3 -c 'import struct, sys
name = sys.argv[2].encode()
with open(sys.argv[1], "r+b") as f:
    f.seek(8)
    f.write(struct.pack(">QI", 0x800, len(name)))
    f.seek(0x800)
    f.write(name)' "$1" "$2"
}
# A backing file that is the image itself, and a loop of two: qemu-img
# recurses until it runs out of memory here; mimg must stop with an error.
qemu-img create -q -f qcow2 self.qcow2 1M
set_backing self.qcow2 self.qcow2
qemu-img create -q -f qcow2 loopa.qcow2 1M
qemu-img create -q -f qcow2 -b loopa.qcow2 -F qcow2 loopb.qcow2
set_backing loopa.qcow2 loopb.qcow2
for f in self.qcow2 loopb.qcow2; do
	timeout 60 "$MIMG" convert -O raw $f loop.raw >loop.out 2>&1
	st=$?
	[ $st != 0 ] && [ $st != 124 ] || fail "convert of backing loop $f: exit $st"
	grep -qi loop loop.out || fail "backing loop $f: message does not say so: $(cat loop.out)"
	timeout 60 "$MIMG" info --backing-chain $f >/dev/null 2>&1
	st=$?
	[ $st != 0 ] && [ $st != 124 ] || fail "info --backing-chain of loop $f: exit $st"
done
# External data files must stay inside the image's directory.
qemu-img create -q -f qcow2 -o data_file="$T/abs.data" abs.qcow2 1M
"$MIMG" convert -O raw abs.qcow2 abs.raw >ext.out 2>&1 &&
	fail "mimg followed an absolute data file name"
grep -q "data file" ext.out || fail "absolute data file: message: $(cat ext.out)"
qemu-img create -q -f qcow2 -o data_file=../esc.data sub/esc.qcow2 1M
"$MIMG" convert -O raw sub/esc.qcow2 esc.raw >/dev/null 2>&1 &&
	fail "mimg followed a data file name escaping with .."
# Untrusted mode refuses any reference, and only those.
"$MIMG" convert --untrusted -O raw ov.qcow2 u.raw >/dev/null 2>&1 &&
	fail "convert --untrusted read an overlay"
"$MIMG" convert --untrusted -O raw base.qcow2 u.raw ||
	fail "convert --untrusted refused a standalone image"
# An absolute backing name is followed, as qemu does.
qemu-img create -q -f qcow2 -b "$T/base.qcow2" -F qcow2 absb.qcow2
same_content absb.qcow2 qcow2 "(absolute backing name)"
echo "ok: mixed chains"
