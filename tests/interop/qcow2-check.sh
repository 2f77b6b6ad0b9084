#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg check against qemu-img check: exit status (0 clean, 1 could not
# check, 2 corruptions, 3 leaks only, 63 format without checks) and every
# JSON key, on clean images and on images with leaks and corruptions made
# by editing refcounts and L2 entries; repairs with -r leaks and -r all
# leave images that qemu-img check finds clean, with unchanged content.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/qcow2-lib.sh"

# qedit IMG ACTION GUEST_CLUSTER [VALUE]: edit qcow2 metadata in place.
#   drop-l2        clear the L2 entry: the data cluster leaks
#   refcount N     set the refcount of the guest cluster's host cluster
#   l2-refcount N  set the refcount of the L2 table holding the entry
#   reftable V     set refcount table entry 0 (GUEST_CLUSTER unused) to V
#   alias G        make the entry name guest cluster G's host cluster
#   l2-or V, l2-add V, l2-set V   change the L2 entry itself
#   l1-or V, l1-add V             change the L1 entry holding it
qedit() {
	python3 - "$@" <<'PY' || fail "qedit $*"
import struct, sys
path, action, gc = sys.argv[1], sys.argv[2], int(sys.argv[3])
val = int(sys.argv[4], 0) if len(sys.argv) > 4 else 0
f = open(path, 'r+b')
h = f.read(104)
cb = struct.unpack('>I', h[20:24])[0]
cs = 1 << cb
l1_off = struct.unpack('>Q', h[40:48])[0]
rt_off = struct.unpack('>Q', h[48:56])[0]
version = struct.unpack('>I', h[4:8])[0]
order = struct.unpack('>I', h[96:100])[0] if version >= 3 else 4
bits = 1 << order
mask = 0x00fffffffffffe00
l2_entries = cs // 8
def rd(off):
    f.seek(off); return struct.unpack('>Q', f.read(8))[0]
def wr(off, v):
    f.seek(off); f.write(struct.pack('>Q', v))
l2_off = rd(l1_off + 8 * (gc // l2_entries)) & mask
entry_at = l2_off + 8 * (gc % l2_entries)
host = rd(entry_at) & mask
def set_refcount(off, v):
    assert bits == 16, 'qedit sets 16-bit refcounts only'
    c = off // cs
    per_block = cs * 8 // bits
    blk = rd(rt_off + 8 * (c // per_block)) & ~(cs - 1)
    f.seek(blk + 2 * (c % per_block)); f.write(struct.pack('>H', v))
if action == 'drop-l2':
    wr(entry_at, 0)
elif action == 'refcount':
    set_refcount(host, val)
elif action == 'l2-refcount':
    set_refcount(l2_off, val)
elif action == 'reftable':
    wr(rt_off, val)
elif action == 'alias':
    wr(entry_at, rd(l2_off + 8 * (val % l2_entries)))
elif action in ('l2-or', 'l2-add', 'l2-set'):
    e = rd(entry_at)
    wr(entry_at, {'l2-or': e | val, 'l2-add': e + val, 'l2-set': val}[action])
elif action in ('l1-or', 'l1-add'):
    at = l1_off + 8 * (gc // l2_entries)
    e = rd(at)
    wr(at, e | val if action == 'l1-or' else e + val)
else:
    sys.exit('unknown action')
PY
}

fresh() {
	rm -f "$1"
	qemu-img create -q -f qcow2 -o cluster_size=4k "$1" 1M
	qio "$1" qcow2 "write -P 0x11 0 64k" "write -P 0x22 256k 8k"
}

# Exit statuses and JSON on every kind of damage.
fresh clean.qcow2
same_check clean.qcow2 "(clean)"

fresh leak.qcow2
qedit leak.qcow2 drop-l2 3
same_check leak.qcow2 "(one leaked cluster)"
check_eq "$(qemu-img check leak.qcow2 >/dev/null 2>&1; echo $?)" 3 "oracle: leak"

fresh leak2.qcow2
qedit leak2.qcow2 refcount 5 2
same_check leak2.qcow2 "(refcount too high)"

fresh corrupt.qcow2
qedit corrupt.qcow2 refcount 2 0
same_check corrupt.qcow2 "(refcount zero for a used cluster)"
check_eq "$(qemu-img check corrupt.qcow2 >/dev/null 2>&1; echo $?)" 2 "oracle: corruption"

fresh corrupt2.qcow2
qedit corrupt2.qcow2 l2-refcount 0 0
qedit corrupt2.qcow2 drop-l2 9
same_check corrupt2.qcow2 "(L2 table refcount zero, and a leak)"

# An L2 table cut by the end of the file: a corruption of the image, as
# qemu-img counts it (status 2), not a failure of the check (status 1).
qemu-img create -q -f qcow2 -o cluster_size=4k cut.qcow2 1M
qemu-io -c 'write -P 1 0 4k' cut.qcow2 >/dev/null
truncate -s 18432 cut.qcow2 # header, tables, half the L2 table
qemu-img check cut.qcow2 >/dev/null 2>&1
qs=$?
"$MIMG" check cut.qcow2 >/dev/null 2>&1
check_eq "$?" "$qs" "check of an L2 table cut by the end of the file: status"

# mimg check on what mimg itself wrote.
make_pattern_raw pat.raw
"$MIMG" convert -O qcow2 -o cluster_size=512 pat.raw m.qcow2 || fail "convert"
same_check m.qcow2 "(written by mimg)"
"$MIMG" check m.qcow2 >/dev/null || fail "mimg check without -f on a clean image"

# Repairs: leaks only.
cp leak.qcow2 r1.qcow2
qemu-img convert -O raw leak.qcow2 before.raw
"$MIMG" check -f qcow2 -r leaks r1.qcow2 >repair.out 2>&1
st=$?
cp leak.qcow2 r1q.qcow2
qemu-img check -r leaks r1q.qcow2 >repair.q.out 2>&1
check_eq "$st" "$?" "check -r leaks exit status (mimg vs qemu-img)"
# qemu-img's whole report: what the check found, what it repaired, and
# the check of the repaired image (its end offset), in both formats.
check_eq "$(sed 's/^mimg: //' repair.out)" \
	"$(sed 's/^qemu-img: //' repair.q.out)" "check -r leaks report"
for r in leaks all; do
	cp leak.qcow2 rj.qcow2
	qemu-img check --output=json -r $r rj.qcow2 >q.json 2>q.err
	cp leak.qcow2 rj.qcow2
	"$MIMG" check --output=json -r $r rj.qcow2 >m.json 2>m.err
	cmp -s q.json m.json || fail "check --output=json -r $r: $(diff q.json m.json)"
	check_eq "$(cat m.err)" "$(cat q.err)" "check --output=json -r $r messages"
done
qemu_clean r1.qcow2 "(after mimg check -r leaks)"
qemu-img compare -q -f raw before.raw r1.qcow2 || fail "-r leaks changed the content"

# Repairs: a refcount of 0 needs -r all; -r leaks fails (status 1, as
# qemu-img's).
cp corrupt.qcow2 r2.qcow2
qemu-img convert -O raw corrupt.qcow2 before2.raw
"$MIMG" check -f qcow2 -r leaks r2.qcow2 >/dev/null 2>&1
check_eq "$?" 1 "check -r leaks on a refcount of 0: status"
"$MIMG" check -f qcow2 -r all r2.qcow2 >repair.out 2>&1 ||
	{ cat repair.out >&2; fail "mimg check -r all"; }
qemu_clean r2.qcow2 "(after mimg check -r all)"
qemu-img compare -q -f raw before2.raw r2.qcow2 || fail "-r all changed the content"
cp corrupt2.qcow2 r3.qcow2
"$MIMG" check -f qcow2 -r all r3.qcow2 >/dev/null 2>&1 || fail "mimg check -r all (L2 table)"
qemu_clean r3.qcow2 "(after mimg check -r all, L2 table refcount)"

# A refcount table naming its first block wrongly: past the end of the
# file (qemu-img's report, word for word), with reserved bits, or not
# at a cluster.  The clusters that block counts read as free, a
# corruption (status 2); -r all rebuilds the refcounts (qemu-img instead
# grows the file to reach a block past its end, here to 256 MiB) and
# leaves an image qemu-img finds clean, with the same content.
# (qemu-img 7.2 cannot read refcounts through an unaligned entry and
# exits 1, an incomplete check, leaving it unrepaired.)
for bad in 0x10000000 0x3001 0x3200; do
	fresh rt.qcow2
	qedit rt.qcow2 reftable 0 $bad
	"$MIMG" check rt.qcow2 >rt.m.out 2>&1
	check_eq "$?" 2 "check of refcount table entry $bad: status"
	if [ $bad = 0x10000000 ]; then
		same_check rt.qcow2 "(refcount block past the end of the file)"
		qemu-img check rt.qcow2 >rt.q.out 2>&1
		check_eq "$(cat rt.m.out)" "$(cat rt.q.out)" \
			"check report of a refcount block past the end"
	fi
	"$MIMG" check -r leaks rt.qcow2 >rt.leaks.out 2>&1
	check_eq "$?" 1 "check -r leaks of refcount table entry $bad: status"
	grep -qx "ERROR need to rebuild refcount structures" rt.leaks.out ||
		fail "check -r leaks of entry $bad: $(cat rt.leaks.out)"
	"$MIMG" check -r all rt.qcow2 >rt.all.out 2>&1 ||
		{ cat rt.all.out >&2; fail "mimg check -r all (reftable $bad)"; }
	qemu_clean rt.qcow2 "(after mimg check -r all, reftable entry $bad)"
	fresh rt0.qcow2
	qemu-img compare -q rt0.qcow2 rt.qcow2 ||
		fail "-r all changed the content (reftable entry $bad)"
done

# Repairs in qemu-img's words and bytes: for each kind of damage, -r leaks
# and -r all print what qemu-img prints (what was found, what was
# repaired, the check of the repaired image; for a refcount of 0 under
# -r leaks, "Check failed"), exit with its status, and leave the same
# file: leaked clusters freed and punched, refcounts too small raised in
# place, a rebuilt structure with the old one freed.
fresh dup.qcow2
qedit dup.qcow2 alias 20 0 # cluster 0's data named twice
fresh snap.qcow2 # a cluster a snapshot shares, its refcount 1
qemu-img snapshot -c s snap.qcow2
qedit snap.qcow2 refcount 0 1
fresh mixed.qcow2 # a rebuild where leaks leave room for the structure
qedit mixed.qcow2 alias 20 0
qedit mixed.qcow2 drop-l2 3
qedit mixed.qcow2 refcount 64 0
# Damaged entries, judged as qemu-img judges them (reserved bits, a
# compressed cluster marked copied, clusters and tables off their
# alignment, a cluster past the end of the file; an unaligned zero
# cluster is the one -r all repairs), and a count past what 1-bit
# refcounts hold.
fresh_more() {
	fresh "$1"
	qio "$1" qcow2 "write -c -P 0x33 512k 4k" "write -P 1 128k 4k" \
		"write -z 128k 4k"
}
while read -r img edit gc value; do
	fresh_more $img.qcow2
	qedit $img.qcow2 $edit $gc $value
done <<'EDITS'
l2res l2-or 1 0x0100000000000000
ccopied l2-or 128 0x8000000000000000
unal l2-add 2 512
unalzero l2-add 32 512
l1res l1-or 0 0x0100000000000000
past l2-set 5 0x8000000000fff000
EDITS
rm -f ovf.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4k,refcount_bits=1 ovf.qcow2 1M
qio ovf.qcow2 qcow2 "write -P 0x11 0 64k"
python3 - ovf.qcow2 <<'PY' || fail "alias in ovf.qcow2"
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(48)
l1 = struct.unpack('>Q', h[40:48])[0]
f.seek(l1); l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2); e = f.read(8)
f.seek(l2 + 8 * 20); f.write(e)
PY
# Snapshot table entries of a version 3 image without the 16 bytes of
# extra data it requires (as older writers left them): -r all writes the
# table again, complete.
fresh snapinc.qcow2
qemu-img snapshot -c one snapinc.qcow2
qemu-img snapshot -c two snapinc.qcow2
python3 - snapinc.qcow2 <<'PY' || fail "strip snapshot extra data"
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(72)
n = struct.unpack('>I', h[60:64])[0]
off = struct.unpack('>Q', h[64:72])[0]
f.seek(off)
t = f.read(4096)
out, p = b'', 0
for i in range(n):
    p = (p + 7) & ~7
    e = t[p:p + 40]
    extra = struct.unpack('>I', e[36:40])[0]
    idl, nl = struct.unpack('>HH', e[12:16])
    names = t[p + 40 + extra:p + 40 + extra + idl + nl]
    out += bytes(((len(out) + 7) & ~7) - len(out))
    out += e[:36] + struct.pack('>I', 0) + names
    p += 40 + extra + idl + nl
f.seek(off)
f.write(out + bytes(len(t) - len(out)))
PY
for img in l2res ccopied unal unalzero l1res past ovf snapinc; do
	qemu-img check $img.qcow2 >dq.out 2>&1
	qs=$?
	"$MIMG" check $img.qcow2 >dm.out 2>&1
	check_eq "$?" "$qs" "check of $img.qcow2: status"
	check_eq "$(sed 's/^mimg: //' dm.out)" "$(sed 's/^qemu-img: //' dq.out)" \
		"check of $img.qcow2: report"
done

for img in leak leak2 corrupt corrupt2 dup snap mixed l2res ccopied unal \
	unalzero l1res past ovf snapinc; do
	for r in leaks all; do
		cp $img.qcow2 pm.qcow2
		cp $img.qcow2 pq.qcow2
		"$MIMG" check -r $r pm.qcow2 >pm.out 2>&1
		ms=$?
		qemu-img check -r $r pq.qcow2 >pq.out 2>&1
		check_eq "$ms" "$?" "check -r $r of $img.qcow2: status"
		check_eq "$(sed 's/^mimg: //' pm.out)" \
			"$(sed 's/^qemu-img: //' pq.out)" \
			"check -r $r of $img.qcow2: report"
		cmp -s pm.qcow2 pq.qcow2 ||
			fail "check -r $r of $img.qcow2: mimg left another file than qemu-img"
	done
done

# Not checkable: a raw image, and a file that does not open as qcow2.
qemu-img create -q -f raw plain.raw 1M
qemu-img check -f raw plain.raw >/dev/null 2>&1
qs=$?
"$MIMG" check -f raw plain.raw >/dev/null 2>&1
check_eq "$?" "$qs" "check on raw (qemu-img exits $qs)"
printf 'QFI\373garbage' >bad.qcow2
qemu-img check -f qcow2 bad.qcow2 >/dev/null 2>&1
qs=$?
"$MIMG" check -f qcow2 bad.qcow2 >/dev/null 2>&1
check_eq "$?" "$qs" "check on an unreadable qcow2 (qemu-img exits $qs)"
echo "ok: check"
