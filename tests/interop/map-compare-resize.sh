#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg map / compare / resize against qemu-img on the same files.
. "$TESTLIB"
need qemu-img qemu-io python3

# A sparse raw image with data, an explicit zero block and holes.
python3 - a.raw <<'PY'
import os, sys
with open(sys.argv[1], "wb") as f:
    f.truncate(64 << 20)
    f.seek(4 << 20); f.write(os.urandom(3 << 20))
    f.seek(20 << 20); f.write(bytes(1 << 20))
    f.seek(63 << 20); f.write(os.urandom(1 << 20))
PY

# map --output=json must list the same runs.
qemu-img map -f raw --output=json a.raw > q.json
"$MIMG" map -f raw --output=json a.raw > m.json
python3 - q.json m.json <<'PY' || fail "map JSON differs from qemu-img's"
import json, sys
q, m = (json.load(open(p)) for p in sys.argv[1:3])
assert q == m, (q, m)
PY
qemu-img map -f raw a.raw > q.txt
"$MIMG" map -f raw a.raw > m.txt
cmp -s q.txt m.txt || fail "map human output differs: $(diff q.txt m.txt)"

# Both outputs, byte for byte, and the exit status: same_map FILE
# [map options].
same_map() {
	f=$1
	shift
	for o in json human; do
		qemu-img map --output=$o "$@" "$f" >q.map 2>q.err
		qs=$?
		"$MIMG" map --output=$o "$@" "$f" >m.map 2>m.err
		ms=$?
		check_eq "$ms" "$qs" "map --output=$o $* $f: status"
		cmp -s q.map m.map ||
			fail "map --output=$o $* $f: $(diff q.map m.map)"
		check_eq "$(sed 's/^mimg: //' m.err)" \
			"$(sed 's/^qemu-img: //' q.err)" \
			"map --output=$o $* $f: message"
	done
}
if "$MIMG" --help | grep -q '^Formats:.*qcow2'; then
	qemu-img create -q -f qcow2 base.qcow2 4M
	qemu-io -c 'write -P 1 0 64k' -c 'write -z 128k 64k' \
		-c 'write -c -P 3 256k 64k' base.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
	qemu-io -c 'write -P 2 64k 64k' top.qcow2 >/dev/null
	qemu-img map --output=json top.qcow2 > q2.json
	"$MIMG" map --output=json top.qcow2 > m2.json
	python3 - q2.json m2.json <<'PY' || fail "qcow2 chain map differs"
import json, sys
q, m = (json.load(open(p)) for p in sys.argv[1:3])
assert q == m, (q, m)
PY

	# A zero cluster that keeps its host cluster shows its offset.
	qemu-img create -q -f qcow2 za.qcow2 1M
	qemu-io -c 'write -P 1 0 192k' -c 'write -z 64k 64k' za.qcow2 \
		>/dev/null
	same_map za.qcow2
	# The same in subclusters.
	qemu-img create -q -f qcow2 -o extended_l2=on za2.qcow2 1M
	qemu-io -c 'write -P 1 0 64k' -c 'write -z 4k 8k' za2.qcow2 >/dev/null
	same_map za2.qcow2
	# Preallocated metadata: the data clusters' holes in the host file
	# read as zeroes (zero and data both true), fresh and written to;
	# preallocation=falloc and full are data.
	for p in metadata falloc full; do
		qemu-img create -q -f qcow2 -o preallocation=$p pre-$p.qcow2 1M
		same_map pre-$p.qcow2
	done
	qemu-io -c 'write -P 1 128k 64k' -c 'write -z 320k 64k' \
		pre-metadata.qcow2 >/dev/null
	same_map pre-metadata.qcow2
	# A hole punched into a data cluster of a small image (whose
	# refcounts then claim more than its file holds).
	qemu-img create -q -f qcow2 punched.qcow2 1M
	qemu-io -c 'write -P 1 0 256k' punched.qcow2 >/dev/null
	if fallocate -p -o $((0x60000)) -l 64k punched.qcow2 2>/dev/null; then
		same_map punched.qcow2
	fi
	# Human output cannot place compressed data: qemu-img's error.
	qemu-img create -q -f qcow2 comp.qcow2 1M
	qemu-io -c 'write -c -P 1 0 64k' comp.qcow2 >/dev/null
	same_map comp.qcow2
	# Nothing to map: one empty entry at the start.
	qemu-img create -q -f qcow2 empty.qcow2 0
	same_map empty.qcow2
	same_map za.qcow2 -s 2M
	same_map za.qcow2 -s 512k -l 0
	# Human output names the file holding the data: an external data
	# file (named from the image's own directory, where qemu 7.2 and
	# mimg find it alike).
	qemu-img create -q -f qcow2 -o data_file=ext.raw ext.qcow2 1M
	qemu-io -c 'write -P 1 64k 128k' ext.qcow2 >/dev/null
	same_map ext.qcow2
fi
if "$MIMG" --help | grep -q '^Formats:.*vmdk'; then
	# ... and the extents of a VMDK, flat and split.
	mkdir vd
	qemu-img create -q -f vmdk -o subformat=monolithicFlat vd/flat.vmdk 4M
	qemu-io -f vmdk -c 'write -P 1 0 1M' vd/flat.vmdk >/dev/null
	qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse \
		vd/split.vmdk 3G
	qemu-io -f vmdk -c 'write -P 1 0 1M' -c 'write -P 2 2100M 1M' \
		vd/split.vmdk >/dev/null
	for v in flat split; do
		same_map vd/$v.vmdk
	done
fi

# compare: identical, different (offset), size mismatch with zero tail.
cp a.raw b.raw
"$MIMG" compare a.raw b.raw > out || fail "identical images: exit $?"
check_eq "$(cat out)" "Images are identical." "compare output"
printf 'x' | dd of=b.raw bs=1 seek=5000000 conv=notrunc 2>/dev/null
qemu-img compare a.raw b.raw > q.out; qs=$?
"$MIMG" compare a.raw b.raw > m.out; ms=$?
check_eq "$ms" "$qs" "compare exit status on different images"
check_eq "$(cat m.out)" "$(cat q.out)" "compare mismatch message"
cp a.raw c.raw && truncate -s 70M c.raw
"$MIMG" compare -q a.raw c.raw || fail "zero tail should compare equal"
"$MIMG" compare -q -s a.raw c.raw && fail "strict mode must see the size"
"$MIMG" compare -q a.raw missing.raw 2>/dev/null; check_eq $? 2 "compare error status"
# sizes differ: the warning only once the shared part matched
for pair in "a.raw c.raw" "b.raw c.raw"; do
	# shellcheck disable=SC2086 # two file names
	qemu-img compare $pair > q.out; qs=$?
	# shellcheck disable=SC2086
	"$MIMG" compare $pair > m.out; ms=$?
	check_eq "$ms" "$qs" "compare $pair: exit status"
	check_eq "$(cat m.out)" "$(cat q.out)" "compare $pair: output"
done

# resize: grow, shrink needs --shrink, relative sizes.
qemu-img create -q -f raw r.raw 1M
"$MIMG" resize -q -f raw r.raw +1M || fail "grow"
check_eq "$(stat -c %s r.raw)" 2097152 "size after +1M"
"$MIMG" resize -q -f raw r.raw 1M 2>/dev/null && fail "shrink without --shrink"
"$MIMG" resize -q -f raw --shrink r.raw -512k || fail "shrink"
check_eq "$(stat -c %s r.raw)" 1572864 "size after -512k"
"$MIMG" resize -q -f raw --preallocation=full r.raw 4M || fail "full"
[ "$(du -k r.raw | cut -f1)" -ge 2048 ] || fail "preallocation=full left holes"
echo "map, compare and resize agree with qemu-img"
