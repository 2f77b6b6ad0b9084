#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg resize of qcow2 images against qemu-img resize on copies of the
# same image: shrinking drops the clusters and L2 tables past the new end
# and cuts the file exactly as qemu-img does (the files come out the same
# byte for byte), snapshots keep what they had, and the refusals (no
# --shrink, preallocation, sizes that are not sectors) read the same.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/qcow2-lib.sh"
need_format qcow2


# same OPTS ARGS...: resize copies of one image with both tools.
same() {
	opts=$1
	shift
	cp img.qcow2 q.qcow2
	cp img.qcow2 m.qcow2
	qemu-img resize q.qcow2 "$@" > q.out 2>&1 || fail "qemu-img resize $* ($opts)"
	"$MIMG" resize m.qcow2 "$@" > m.out 2>&1 || fail "mimg resize $* ($opts): $(cat m.out)"
	check_eq "$(cat m.out)" "$(cat q.out)" "output of resize $* ($opts)"
	qemu-img check -q m.qcow2 || fail "check after resize $* ($opts)"
	qemu-img compare -q q.qcow2 m.qcow2 ||
		fail "content after resize $* ($opts) differs from qemu-img's"
	check_eq "$(qemu-img info m.qcow2 | grep '^virtual size')" \
		"$(qemu-img info q.qcow2 | grep '^virtual size')" "size ($opts)"
	# (With 512-byte clusters, not tested here for qemu's slowness, qemu
	# grows its refcount table on the way and its file ends up larger.)
	cmp -s q.qcow2 m.qcow2 ||
		fail "resize $* ($opts) differs from qemu-img's bytes"
}

for opts in cluster_size=64k compat=0.10 cluster_size=4k refcount_bits=1 \
	extended_l2=on lazy_refcounts=on; do
	rm -f img.qcow2
	qemu-img create -q -f qcow2 -o "$opts" img.qcow2 256M
	qio img.qcow2 qcow2 "write -P 1 0 1M" "write -P 2 60M 64k" \
		"write -P 3 63M 1536k" "write -c -P 4 150M 64k" \
		"write -P 5 252M 4M"
	same "$opts" --shrink 64M
	same "$opts" --shrink -- -100M
	same "$opts" --shrink 512
	# Grown again after a shrink, the tail reads as zeroes.
	cp img.qcow2 q.qcow2
	cp img.qcow2 m.qcow2
	qemu-img resize -q --shrink q.qcow2 62M
	"$MIMG" resize -q --shrink m.qcow2 62M || fail "shrink to 62M ($opts)"
	qemu-img resize -q q.qcow2 256M
	"$MIMG" resize -q m.qcow2 256M || fail "grow after shrink ($opts)"
	qemu-img compare -q q.qcow2 m.qcow2 || fail "grow after shrink ($opts)"
	qemu-img check -q m.qcow2 || fail "check grow after shrink ($opts)"
done

# A snapshot keeps the clusters the active image drops.
rm -f img.qcow2
qemu-img create -q -f qcow2 img.qcow2 256M
qio img.qcow2 qcow2 "write -P 1 0 1M" "write -P 2 200M 1M"
qemu-img snapshot -c s img.qcow2
qemu-img convert -O raw img.qcow2 s.raw
same snapshot --shrink 100M
# (convert -l gives the image's current size: the first 100 MiB.)
qemu-img convert -l s -O raw m.qcow2 m.raw
cmp -s -n 104857600 s.raw m.raw || fail "shrinking changed the snapshot"
"$MIMG" snapshot -a s m.qcow2 || fail "apply after shrink"
qemu-img compare -q -f raw s.raw m.qcow2 || fail "content after apply"

# A backing file shows through the dropped range, as with qemu-img.
rm -f base.qcow2 img.qcow2
qemu-img create -q -f qcow2 base.qcow2 8M
qio base.qcow2 qcow2 "write -P 7 0 8M"
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 img.qcow2
qio img.qcow2 qcow2 "write -P 8 0 8M"
same backing --shrink 3M
same backing --shrink 3200k

# An external data file is cut too.
rm -f img.qcow2 img.raw q.raw m.raw
qemu-img create -q -f qcow2 -o data_file=img.raw img.qcow2 16M
qio img.qcow2 qcow2 "write -P 9 0 16M"
cp img.raw q.raw
cp img.raw m.raw
cp img.qcow2 q.qcow2
cp img.qcow2 m.qcow2
qemu-img amend -q -o data_file=q.raw q.qcow2 ||
	fail "qemu-img amend data_file"
qemu-img amend -q -o data_file=m.raw m.qcow2 ||
	fail "qemu-img amend data_file"
qemu-img resize -q --shrink q.qcow2 4M
"$MIMG" resize -q --shrink m.qcow2 4M || fail "shrink with a data file"
check_eq "$(stat -c %s m.raw)" "$(stat -c %s q.raw)" "data file size"
qemu-img compare -q q.qcow2 m.qcow2 || fail "content with a data file"
qemu-img check -q m.qcow2 || fail "check with a data file"

# Refusals: exit status and message as qemu-img's.
rm -f img.qcow2
qemu-img create -q -f qcow2 img.qcow2 16M
for args in "img.qcow2 8M" "img.qcow2 -- -1M" "--shrink img.qcow2 1000" \
	    "--preallocation=full img.qcow2 8M" \
	    "--preallocation=full --shrink img.qcow2 16M" \
	    "--shrink img.qcow2 -- -20M" "--shrink img.qcow2 0"; do
	cp img.qcow2 q.qcow2
	cp img.qcow2 m.qcow2
	# shellcheck disable=SC2086
	qemu-img resize $(echo "$args" | sed 's/img/q/') > q.out 2> q.err; qs=$?
	# shellcheck disable=SC2086
	"$MIMG" resize $(echo "$args" | sed 's/img/m/') > m.out 2> m.err; ms=$?
	check_eq "$ms" "$qs" "exit status of resize $args"
	check_eq "$(sed 's/^mimg: //' m.err)" "$(sed 's/^qemu-img: //' q.err)" \
		"messages of resize $args"
	cmp -s img.qcow2 m.qcow2 || fail "a refused resize $args wrote"
done
# qemu cannot resize version 2 images with snapshots.
rm -f img.qcow2
qemu-img create -q -f qcow2 -o compat=0.10 img.qcow2 16M
qemu-img snapshot -c s img.qcow2
"$MIMG" resize -q --shrink img.qcow2 8M 2> m.err &&
	fail "shrinking a v2 image with snapshots"
grep -q "Can't resize a v2 image which has snapshots" m.err ||
	fail "message for a v2 image with snapshots: $(cat m.err)"
exit 0
