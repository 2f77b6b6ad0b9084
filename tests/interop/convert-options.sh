#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# convert's further options against qemu-img convert on the same inputs:
# several sources concatenated, -B/-F (an overlay holding what the
# source's top layer defines: same map as qemu-img's), -C (copy offloading,
# copy_file_range seen with strace when present), --salvage (a damaged
# compressed cluster: same output and warnings), --bitmaps, -r (the rate
# of reading the source's data), and the messages and exit codes of
# refused combinations.
. "$TESTLIB"
need qemu-img qemu-io python3

formats=$("$MIMG" --help | sed -n 's/^Formats://p')
has() { case " $formats " in *" $1 "*) return 0 ;; esac; return 1; }
strip() { sed 's/^[a-z-]*: //' "$1"; }

qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -c 'write -P 1 0 2M' base.qcow2 >/dev/null || fail "qemu-io base"
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2
qemu-io -c 'write -P 2 1M 64k' -c 'write -z 3M 64k' -c 'write -P 5 1536k 4k' \
	ov.qcow2 >/dev/null || fail "qemu-io overlay"
qemu-img create -q -f raw a.raw 1000k
qemu-io -f raw -c 'write -P 9 0 1000k' a.raw >/dev/null || fail "qemu-io raw"

# Several sources, one after the other.
for ofmt in raw qcow2 vmdk; do
	has "$ofmt" || continue
	rm -f m.img q.img
	"$MIMG" convert -O "$ofmt" a.raw ov.qcow2 a.raw m.img ||
		fail "mimg convert of three sources to $ofmt"
	qemu-img convert -O "$ofmt" a.raw ov.qcow2 a.raw q.img ||
		fail "qemu-img convert of three sources to $ofmt"
	check_eq "$(qemu-img info --output=json m.img | grep '"virtual-size"')" \
		"$(qemu-img info --output=json q.img | grep '"virtual-size"')" \
		"virtual size of three sources to $ofmt"
	qemu-img compare -q -f "$ofmt" -F "$ofmt" m.img q.img ||
		fail "content of three sources to $ofmt"
	[ "$ofmt" = raw ] || qemu-img check -q m.img ||
		fail "check of three sources to $ofmt"
done

# -B: only what the overlay's top layer defines, zeroes as zero clusters.
for extra in "" "-c"; do
	rm -f m.qcow2 q.qcow2
	# shellcheck disable=SC2086
	"$MIMG" convert $extra -B base.qcow2 -F qcow2 -O qcow2 ov.qcow2 \
		m.qcow2 || fail "mimg convert $extra -B"
	# shellcheck disable=SC2086
	qemu-img convert $extra -B base.qcow2 -F qcow2 -O qcow2 ov.qcow2 \
		q.qcow2 || fail "qemu-img convert $extra -B"
	qemu-img check -q m.qcow2 || fail "check of $extra -B output"
	qemu-img compare -q m.qcow2 ov.qcow2 || fail "content of $extra -B"
	check_eq "$(qemu-img info m.qcow2 | grep '^backing file')" \
		"$(qemu-img info q.qcow2 | grep '^backing file')" \
		"backing file of $extra -B output"
	qemu-img map --output=json m.qcow2 | sed 's/, "offset": [0-9]*//' >m.map
	qemu-img map --output=json q.qcow2 | sed 's/, "offset": [0-9]*//' >q.map
	diff q.map m.map >&2 || fail "map of $extra -B output"
done
# a source without a backing file: everything it holds, zeroes included
rm -f m.qcow2 q.qcow2
"$MIMG" convert -f raw -B base.qcow2 -F qcow2 -O qcow2 a.raw m.qcow2 ||
	fail "mimg convert -B of a raw source"
qemu-img convert -f raw -B base.qcow2 -F qcow2 -O qcow2 a.raw q.qcow2
qemu-img compare -q -f qcow2 -F raw m.qcow2 a.raw ||
	fail "content of -B of a raw source"
qemu-img map --output=json m.qcow2 | sed 's/, "offset": [0-9]*//' >m.map
qemu-img map --output=json q.qcow2 | sed 's/, "offset": [0-9]*//' >q.map
diff q.map m.map >&2 || fail "map of -B of a raw source"

# -C: same content; copy_file_range between raw files.
qemu-img create -q -f raw big.raw 8M
qemu-io -f raw -c 'write -P 3 1M 3M' big.raw >/dev/null
"$MIMG" convert -C -f raw -O raw big.raw c.raw || fail "convert -C"
cmp big.raw c.raw || fail "convert -C content"
if command -v strace >/dev/null 2>&1; then
	rm -f c.raw
	# (a sanitized build's leak check cannot run under ptrace)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		strace -f -e trace=copy_file_range -o trace.txt \
		"$MIMG" convert -C -f raw -O raw big.raw c.raw ||
		fail "convert -C under strace"
	grep -q 'copy_file_range(.*= [1-9]' trace.txt ||
		fail "convert -C made no copy_file_range call"
	cmp big.raw c.raw || fail "convert -C content under strace"
fi
rm -f c.qcow2
"$MIMG" convert -C -O qcow2 ov.qcow2 c.qcow2 || fail "convert -C to qcow2"
qemu-img compare -q ov.qcow2 c.qcow2 || fail "convert -C to qcow2 content"

# --salvage: a compressed cluster whose data does not inflate.
qemu-img create -q -f raw s.raw 1M
qemu-io -f raw -c 'write -P 0x61 0 1M' s.raw >/dev/null
qemu-img convert -c -f raw -O qcow2 s.raw s.qcow2
python3 - s.qcow2 <<'PY' || fail "damaging the compressed cluster"
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    h = f.read(104)
    bits = struct.unpack('>I', h[20:24])[0]
    l1 = struct.unpack('>Q', h[40:48])[0]
    f.seek(l1)
    l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
    f.seek(l2 + 8 * 8)
    e = struct.unpack('>Q', f.read(8))[0]
    assert e & (1 << 62), "cluster 8 is not compressed"
    off = e & ((1 << (62 - (bits - 8))) - 1)
    f.seek(off)
    f.write(b'\xff' * 64)
PY
"$MIMG" convert --salvage -O raw s.qcow2 m.raw 2>m.err || fail "--salvage"
qemu-img convert --salvage -O raw s.qcow2 q.raw 2>q.err
cmp m.raw q.raw || fail "--salvage output differs from qemu-img's"
check_eq "$(strip m.err)" "$(strip q.err)" "--salvage warnings"
[ -s m.err ] || fail "--salvage printed no warning"
"$MIMG" convert -q --salvage -O raw s.qcow2 m2.raw 2>m.err ||
	fail "--salvage -q"
[ -s m.err ] && fail "--salvage -q printed warnings"
"$MIMG" convert -O raw s.qcow2 m3.raw 2>/dev/null &&
	fail "a damaged cluster converted without --salvage"

# --bitmaps: a source without bitmaps converts; one with bitmaps gets
# them copied (tests/interop/bitmap.sh compares them with qemu's).
rm -f m.qcow2
"$MIMG" convert --bitmaps -O qcow2 ov.qcow2 m.qcow2 ||
	fail "--bitmaps without bitmaps"
qemu-img create -q -f qcow2 bm.qcow2 4M
qemu-img bitmap --add bm.qcow2 b0 || fail "qemu-img bitmap --add"
"$MIMG" convert --bitmaps -O qcow2 bm.qcow2 m2.qcow2 ||
	fail "--bitmaps with a bitmap in the source"
qemu-img info m2.qcow2 | grep -q 'name: b0' || fail "--bitmaps lost b0"

# -r: 8 MiB of data read at 4 MiB/s take at least 1.5 s (the first 2 MiB
# window goes at once, as qemu-img lets its first slice go); zeroes need
# no read and do not count.  Only the lower bound is checked.
qemu-img create -q -f qcow2 r8.qcow2 16M
qemu-io -c 'write -P 3 0 8M' -c 'write -z 8M 8M' r8.qcow2 >/dev/null ||
	fail "qemu-io r8"
t0=$(date +%s%N)
"$MIMG" convert -r 4M -O raw r8.qcow2 r.raw || fail "convert -r 4M"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -ge 1450 ] || fail "convert -r 4M of 8 MiB took $ms ms"
qemu-img compare -q -f qcow2 -F raw r8.qcow2 r.raw || fail "convert -r: content"
qemu-img create -q -f qcow2 z.qcow2 1G
qemu-io -c 'write -z 0 1G' z.qcow2 >/dev/null || fail "qemu-io z"
timeout 60 "$MIMG" convert -r 1k -O raw z.qcow2 z.raw ||
	fail "convert -r 1k of zeroes did not finish at once"

# Refused combinations: qemu-img's message and exit code.
while read -r args; do
	rm -f x.img
	# shellcheck disable=SC2086
	"$MIMG" convert $args 2>m.err
	mrc=$?
	rm -f x.img
	# shellcheck disable=SC2086
	qemu-img convert $args 2>q.err
	check_eq "$mrc" "$?" "exit code of convert $args"
	check_eq "$(strip m.err)" "$(strip q.err)" "message of convert $args"
done <<'EOF2'
-l foo -O raw a.raw ov.qcow2 x.img
-C -c -O qcow2 ov.qcow2 x.img
-C -S 4k -O raw ov.qcow2 x.img
-C --salvage -O raw ov.qcow2 x.img
--bitmaps -O raw ov.qcow2 x.img
--bitmaps -O qcow2 a.raw ov.qcow2 x.img
-B base.qcow2 -F qcow2 -O qcow2 a.raw ov.qcow2 x.img
-B base.qcow2 -O qcow2 ov.qcow2 x.img
-F qcow2 -O qcow2 ov.qcow2 x.img
-r abc -O raw a.raw x.img
-r -1 -O raw a.raw x.img
EOF2
echo PASS
