#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Delta links (parentFileNameHint + parentCID) both ways: mimg reads qemu's
# chains, qemu reads mimg's, three levels deep and mixed, including a
# twoGbMaxExtentSparse child; a parent modified after the child was made
# is refused by both tools on reads that reach it.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/vmdk-lib.sh"

# qemu chain: base <- mid <- top, each layer partly overwritten.
qemu-img create -q -f vmdk base.vmdk 4M
qio base.vmdk "write -P 0x11 0 4M"
qemu-img create -q -f vmdk -b base.vmdk -F vmdk mid.vmdk
qio mid.vmdk "write -P 0x22 64k 64k" "write -P 0x23 1000k 10"
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse \
	-b mid.vmdk -F vmdk top.vmdk
qio top.vmdk "write -P 0x33 130k 1k" "write -z 3M 64k"
same_content top.vmdk "(qemu chain)"
same_info top.vmdk
same_info mid.vmdk

# mimg-made delta links on qemu's and on mimg's parents.
"$MIMG" create -q -f vmdk -b base.vmdk -F vmdk m1.vmdk ||
	fail "mimg create with a VMDK parent"
qemu-img info --output=json m1.vmdk >m1.json
[ "$(json_get m1.json backing-filename)" = base.vmdk ] ||
	fail "qemu sees no parent in m1.vmdk"
same_info m1.vmdk
qio m1.vmdk "write -P 0x44 70k 5k"
"$MIMG" create -q -f vmdk -b m1.vmdk -F vmdk m2.vmdk ||
	fail "mimg create on a mimg parent"
qio m2.vmdk "write -P 0x55 200000 3000"
same_content m2.vmdk "(mimg chain)"
qemu-img check m2.vmdk >/dev/null || fail "qemu-img check m2.vmdk"

# Flattening a chain with mimg gives what qemu gives.
"$MIMG" convert -O vmdk top.vmdk flat.vmdk || fail "mimg convert chain"
qemu-img convert -O raw top.vmdk top.raw
qemu_accepts flat.vmdk top.raw "(flattened chain)"

# A parent changed after the child was made: its CID no longer matches.
qemu-img create -q -f vmdk p.vmdk 1M
qemu-img create -q -f vmdk -b p.vmdk -F vmdk c.vmdk
qio p.vmdk "write -P 0x66 0 4k"
qemu-img convert -O raw c.vmdk c.q.raw 2>/dev/null &&
	fail "qemu-img read through a stale delta link"
"$MIMG" convert -O raw c.vmdk c.m.raw 2>err.txt &&
	fail "mimg read through a stale delta link"
grep -q parentCID err.txt || fail "CID mismatch message: $(cat err.txt)"

# A parent that is not a VMDK is refused at creation, as by qemu-img.
qemu-img create -q -f raw r.raw 1M
"$MIMG" create -q -f vmdk -b r.raw -F raw x.vmdk 2>/dev/null &&
	fail "VMDK with a raw parent created"
echo "ok: delta links read and written compatibly"
