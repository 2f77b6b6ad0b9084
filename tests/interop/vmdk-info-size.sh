#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The space a multi-file VMDK takes ("actual-size" in JSON, "disk size"
# in human output) is the descriptor's plus every extent file's, as
# qemu-img 7.2 counts it, for every subformat and for a hand-written
# descriptor naming one file twice.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/vmdk-lib.sh"

make_raw src.raw 3

# same_size IMG: mimg and qemu-img report the same space for IMG.
same_size() {
	qemu-img info --output=json "$1" >q.json || fail "qemu-img info $1"
	"$MIMG" info --output json "$1" >m.json || fail "mimg info $1"
	q=$(json_get q.json actual-size) m=$(json_get m.json actual-size)
	check_eq "$m" "$q" "actual-size of $1"
	qemu-img info "$1" | sed -n 's/^disk size: //p' >q.txt
	"$MIMG" info "$1" | sed -n 's/^disk size: //p' >m.txt
	[ -s q.txt ] && cmp -s q.txt m.txt ||
		fail "disk size of $1: mimg '$(cat m.txt)', qemu-img '$(cat q.txt)'"
}

n=0
for opts in subformat=monolithicSparse subformat=monolithicFlat \
	subformat=twoGbMaxExtentSparse subformat=twoGbMaxExtentFlat \
	subformat=streamOptimized subformat=monolithicFlat,preallocation=full
do
	rm -f m*.vmdk
	"$MIMG" convert -f raw -O vmdk -o "$opts" src.raw m.vmdk ||
		fail "mimg convert -o $opts"
	same_size m.vmdk
	n=$((n + 1))
done

# Several extents, with data in the second one (created by qemu-img,
# written by mimg and by qemu-io).
rm -f m*.vmdk
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse m.vmdk 5G
"$MIMG" convert -n -f raw -O vmdk src.raw m.vmdk || fail "mimg convert -n"
qio m.vmdk "write -P 0x5a 4G 3M"
[ "$(ls m*.vmdk | wc -l)" -eq 4 ] || fail "expected three extents"
same_size m.vmdk
n=$((n + 1))

# One extent file named twice: qemu-img counts it once per extent.
head -c 1048576 src.raw >twice-flat.img
cat >twice.vmdk <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW 2048 FLAT "twice-flat.img" 0
RW 2048 FLAT "twice-flat.img" 0

# The Disk Data Base
#DDB

ddb.adapterType = "ide"
EOF
same_size twice.vmdk
n=$((n + 1))
echo "ok: $n images report the space qemu-img reports"
