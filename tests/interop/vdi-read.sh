#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# VDIs made and written by qemu-img/qemu-io, dynamic and static, read in
# mimg as in qemu: the same bytes, map, info; mimg check agrees with
# qemu-img check on them.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
FMT=vdi
. "$here/vpc-lib.sh"

for size in 512 1000001 1M 130M 5G; do
	for opts in static=off static=on; do
		case $opts:$size in static=on:5G) continue ;; esac
		rm -f q.vdi
		qemu-img create -q -f vdi -o "$opts" q.vdi "$size" ||
			fail "qemu-img create $opts $size"
		same_info q.vdi
		same_map q.vdi "($opts $size)"
	done
done

for opts in static=off static=on; do
	rm -f q.vdi
	qemu-img create -q -f vdi -o $opts q.vdi 9M
	qio q.vdi "write -P 0xab 100k 64k" "write -P 0xcd 3M 1M" \
		"write -P 0x11 4095k 2k" "write -z 8M 512k" \
		"write -P 0xee 9215k 1k"
	same_content q.vdi "($opts)"
	same_map q.vdi "($opts)"
	same_info q.vdi
	"$MIMG" check q.vdi >check.out 2>&1 ||
		{ cat check.out >&2; fail "mimg check ($opts)"; }
done

make_raw src.raw 20480
for opts in static=off static=on; do
	rm -f q.vdi
	qemu-img convert -O vdi -o $opts src.raw q.vdi ||
		fail "qemu-img convert ($opts)"
	same_content q.vdi "($opts)"
	same_map q.vdi "($opts)"
	"$MIMG" compare src.raw q.vdi >/dev/null || fail "mimg compare ($opts)"
done
# A block used twice: both tools find the corruption (exit status 2).
rm -f q.vdi
qemu-img create -q -f vdi q.vdi 3M
qio q.vdi "write -P 0x21 0 4k"
python3 - <<'PY'
import struct
with open('q.vdi', 'r+b') as f:
    f.seek(512 + 4)
    f.write(struct.pack('<I', 0))
PY
qemu-img check -f vdi q.vdi >q.out 2>&1
check_eq $? 2 "qemu-img check exit status for a block used twice"
"$MIMG" check -f vdi q.vdi >m.out 2>&1
check_eq $? 2 "mimg check exit status for a block used twice"
for out in q.out m.out; do
	grep -q "ERROR: block index .* also used by" $out || fail "$(cat $out)"
	grep -q "ERROR: allocated blocks mismatch, is 2, should be 1" $out ||
		fail "$(cat $out)"
done
check_eq "$(cat m.out)" "$(cat q.out)" "check report of a block used twice"
# A header counting more blocks than the map holds (an allocation cut
# short): qemu-img's report, but a leak (status 3) where qemu-img says a
# corruption (2), since a crash may leave it (a crash never corrupts).
qemu-img create -q -f vdi q.vdi 3M
qio q.vdi "write -P 0x21 0 4k"
python3 - <<'PY'
import struct
with open('q.vdi', 'r+b') as f:
    f.seek(0x184)
    f.write(struct.pack('<I', 3))
PY
qemu-img check -f vdi q.vdi >q.out 2>&1
check_eq $? 2 "qemu-img check status of a header counting too many blocks"
"$MIMG" check -f vdi q.vdi >m.out 2>&1
check_eq $? 3 "check status of a header counting too many blocks"
check_eq "$(sed 's/^Leak:/ERROR:/; s/leaked clusters were/errors were/' m.out |
	grep -v 'disk space\|may be corrupted')" \
	"$(grep -v 'may be corrupted\|disk space' q.out)" \
	"check report of a header counting too many blocks"
echo ok
