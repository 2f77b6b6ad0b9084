#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg convert -l reads internal snapshots made by qemu-img, by name and
# by id, or by "snapshot.id=,snapshot.name=", including a snapshot taken
# before the image was resized and snapshots of compressed and
# small-cluster images; unknown snapshots and bad option lists are
# refused as qemu-img refuses them, in its words.  mimg info lists snapshots as qemu does.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/qcow2-lib.sh"

# snap_same IMG SNAPSHOT: both tools convert the snapshot to the same raw.
snap_same() {
	rm -f s.q.raw s.m.raw
	qemu-img convert -l "$2" -f qcow2 -O raw "$1" s.q.raw ||
		fail "qemu-img convert -l $2 $1"
	"$MIMG" convert -l "$2" -f qcow2 -O raw "$1" s.m.raw ||
		fail "mimg convert -l $2 $1"
	cmp s.q.raw s.m.raw >/dev/null ||
		fail "snapshot $2 of $1: mimg reads other data than qemu-img"
}

for opts in cluster_size=64k cluster_size=512 compat=0.10 \
	extended_l2=on,cluster_size=32k refcount_bits=4; do
	rm -f img.qcow2
	qemu-img create -q -f qcow2 -o "$opts" img.qcow2 2M
	qio img.qcow2 qcow2 "write -P 0x11 0 1M" "write -c -P 0x12 1M 64k"
	qemu-img snapshot -c first img.qcow2 || fail "qemu-img snapshot -c first ($opts)"
	qio img.qcow2 qcow2 "write -P 0x21 4k 9k" "write -z 512k 128k" \
		"discard 0 64k"
	qemu-img snapshot -c second img.qcow2 || fail "qemu-img snapshot -c second ($opts)"
	qio img.qcow2 qcow2 "write -P 0x31 1500k 100k"
	# The snapshot taken at 2 MiB keeps that size after a resize (v3
	# only: qemu cannot resize v2 images with snapshots).
	case $opts in
	compat=0.10) ;;
	*)
		qemu-img resize -q img.qcow2 3M
		qio img.qcow2 qcow2 "write -P 0x32 2900k 100k"
		;;
	esac
	qemu-img snapshot -c third img.qcow2 || fail "qemu-img snapshot -c third ($opts)"
	qio img.qcow2 qcow2 "write -P 0x41 0 4k"

	qemu_clean img.qcow2 "($opts)"
	snap_same img.qcow2 first
	snap_same img.qcow2 second
	snap_same img.qcow2 2
	snap_same img.qcow2 third
	snap_same img.qcow2 snapshot.id=2
	snap_same img.qcow2 snapshot.name=first
	snap_same img.qcow2 snapshot.id=3,snapshot.name=third
	same_content img.qcow2 qcow2 "(active layer, $opts)"
	same_info img.qcow2

	# Unknown names and ids fail on both sides.
	qemu-img convert -l nosuch -O raw img.qcow2 x.raw >/dev/null 2>&1 &&
		fail "oracle accepted an unknown snapshot"
	"$MIMG" convert -l nosuch -O raw img.qcow2 x.raw >/dev/null 2>&1 &&
		fail "mimg convert -l accepted an unknown snapshot"
	"$MIMG" convert -l 9 -O raw img.qcow2 x.raw >/dev/null 2>&1 &&
		fail "mimg convert -l accepted an unknown snapshot id"
done

# The -l option list as qemu-img reads it: a snapshot named "1" (id 4)
# beside the snapshot of id 1, the last of a key counting, and the
# refusals, with qemu-img's words.
qemu-img snapshot -c 1 img.qcow2
snap_same img.qcow2 1
for l in snapshot.name=1 snapshot.id=4,snapshot.name=1 \
	snapshot.id=1,snapshot.id=4; do
	snap_same img.qcow2 "$l"
	same_output -e "measure -l $l" measure -O qcow2 -l "$l" img.qcow2
done
for l in nosuch snapshot.id=9 snapshot.name=9 snapshot.id=1,snapshot.name=1 \
	snapshot.name= snapshot.foo=1 snapshot.id=1,foo=2; do
	same_output -e "convert -l $l" convert -O raw -l "$l" img.qcow2 x.raw
	same_output -e "measure -l $l" measure -O qcow2 -l "$l" img.qcow2
done

# A snapshot as the source of a qcow2 conversion.
"$MIMG" convert -l first -f qcow2 -O qcow2 img.qcow2 fromsnap.qcow2 ||
	fail "mimg convert -l to qcow2"
qemu_clean fromsnap.qcow2
qemu-img convert -l first -O raw img.qcow2 first.raw
qemu-img compare -q -f raw first.raw fromsnap.qcow2 ||
	fail "snapshot converted to qcow2 differs"
echo "ok: snapshots"
