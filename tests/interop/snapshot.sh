#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg snapshot against qemu-img snapshot.  The same operations done by
# each tool give the same file but for the snapshots' dates; qemu-img
# reads, checks, applies and deletes what mimg writes and the reverse;
# writes after a snapshot leave it as it was; a snapshot's VM state stays
# intact (a crafted one always, one saved by qemu itself when
# qemu-system-x86_64 is there); options, messages and exit codes as
# qemu-img's.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/qcow2-lib.sh"
need_format qcow2


# nodate IMG: IMG.nd is IMG with every snapshot's date zeroed.
nodate() {
	python3 - "$1" <<'PY'
import struct, sys
p = sys.argv[1]
f = bytearray(open(p, "rb").read())
nb, off = struct.unpack(">IQ", f[60:72])
for _ in range(nb):
    il, nl = struct.unpack(">HH", f[off + 12:off + 16])
    ed = struct.unpack(">I", f[off + 36:off + 40])[0]
    f[off + 16:off + 24] = bytes(8)
    off = (off + 40 + ed + il + nl + 7) & ~7
open(p + ".nd", "wb").write(f)
PY
}

# vmstate IMG NAME: sha256 of the VM state of snapshot NAME, read through
# the snapshot's own L1 and L2 tables (no extended L2).
vmstate() {
	python3 - "$1" "$2" <<'PY'
import hashlib, struct, sys
f = open(sys.argv[1], "rb").read()
cb = struct.unpack(">I", f[20:24])[0]
cs, per = 1 << cb, 1 << (cb - 3)
nb, off = struct.unpack(">IQ", f[60:72])
for _ in range(nb):
    l1o, l1s, il, nl = struct.unpack(">QIHH", f[off:off + 16])
    ed = struct.unpack(">I", f[off + 36:off + 40])[0]
    vs, disk = struct.unpack(">QQ", f[off + 40:off + 56])
    name = f[off + 40 + ed + il:off + 40 + ed + il + nl].decode()
    off = (off + 40 + ed + il + nl + 7) & ~7
    if name != sys.argv[2]:
        continue
    span = cs * per
    pos = (disk + span - 1) // span * span
    h = hashlib.sha256()
    while vs > 0:
        i = pos // span
        l1e = struct.unpack(">Q", f[l1o + 8 * i:l1o + 8 * i + 8])[0] if i < l1s else 0
        l2 = l1e & 0x00fffffffffffe00
        e = struct.unpack(">Q", f[l2 + 8 * (pos // cs % per):][:8])[0] if l2 else 0
        host = e & 0x00fffffffffffe00
        n = min(vs, cs)
        h.update(f[host:host + n] if host else bytes(n))
        pos += cs
        vs -= n
    print(h.hexdigest())
    sys.exit(0)
sys.exit("no snapshot " + sys.argv[2])
PY
}

# ops TOOL IMG OPTS: a sequence of snapshot operations, TOOL doing them.
ops() {
	tool=$1 img=$2
	qemu-img create -q -f qcow2 -o "$3" "$img" 8M ||
		fail "create $3"
	qio "$img" qcow2 "write -P 1 0 1M" "write -c -P 2 4M 64k"
	"$tool" snapshot -c s1 "$img" || fail "$tool -c s1 ($3)"
	qio "$img" qcow2 "write -P 3 512k 1M" "write -z 6M 64k"
	"$tool" snapshot -c s2 "$img" || fail "$tool -c s2 ($3)"
	qio "$img" qcow2 "write -P 4 7M 64k" "discard 4M 64k"
	"$tool" snapshot -c s3 "$img" || fail "$tool -c s3 ($3)"
	"$tool" snapshot -a s1 "$img" || fail "$tool -a s1 ($3)"
	"$tool" snapshot -d s2 "$img" || fail "$tool -d s2 ($3)"
	qio "$img" qcow2 "write -P 5 0 64k"
	"$tool" snapshot -a 3 "$img" || fail "$tool -a 3 ($3)"
	"$tool" snapshot -d s1 "$img" || fail "$tool -d s1 ($3)"
	"$tool" snapshot -c "" "$img" || fail "$tool -c '' ($3)"
}

for opts in cluster_size=64k compat=0.10 cluster_size=512 refcount_bits=4 \
	extended_l2=on,cluster_size=32k; do
	rm -f q.qcow2 m.qcow2
	ops qemu-img q.qcow2 "$opts"
	ops "$MIMG" m.qcow2 "$opts"
	qemu-img check -q m.qcow2 || fail "check after mimg's snapshots ($opts)"
	nodate q.qcow2
	nodate m.qcow2
	cmp -s q.qcow2.nd m.qcow2.nd ||
		fail "mimg's snapshots differ from qemu-img's ($opts)"
	check_eq "$("$MIMG" snapshot -l m.qcow2)" \
		"$(qemu-img snapshot -l m.qcow2)" "snapshot -l ($opts)"
	check_eq "$("$MIMG" snapshot -q -U -l q.qcow2)" \
		"$(qemu-img snapshot -q -U -l q.qcow2)" "snapshot -q -U -l ($opts)"
	# Each tool takes the other's snapshots back.
	qemu-img snapshot -a 3 m.qcow2 || fail "qemu-img -a on mimg's ($opts)"
	"$MIMG" snapshot -a 3 q.qcow2 || fail "mimg -a on qemu-img's ($opts)"
	qemu-img compare -q q.qcow2 m.qcow2 || fail "content after -a ($opts)"
	qemu-img check -q q.qcow2 || fail "check after mimg -a ($opts)"
	qemu-img check -q m.qcow2 || fail "check after qemu-img -a ($opts)"
	"$MIMG" check -q m.qcow2 || fail "mimg check after qemu-img -a ($opts)"
done

# Writes by mimg after a snapshot copy the shared clusters first: whole
# clusters (convert -n) and parts of them (bench -w), into plain and
# compressed clusters.
rm -f w.qcow2
qemu-img create -q -f qcow2 w.qcow2 4M
qio w.qcow2 qcow2 "write -P 0x11 0 1M" "write -c -P 0x55 2M 64k" "write -P 9 3M 1M"
"$MIMG" snapshot -c before w.qcow2 || fail "snapshot before writes"
qemu-img convert -O raw w.qcow2 before.raw
cp w.qcow2 wq.qcow2
"$MIMG" bench -q -w -c 1 -o 4608 -s 3000 --pattern=0x33 -f qcow2 w.qcow2 ||
	fail "mimg partial write"
"$MIMG" bench -q -w -c 1 -o 2101248 -s 512 --pattern=0x44 -f qcow2 w.qcow2 ||
	fail "mimg partial write into a compressed cluster"
qio wq.qcow2 qcow2 "write -P 0x33 4608 3000" "write -P 0x44 2101248 512"
qemu-img compare -q wq.qcow2 w.qcow2 || fail "partial writes after a snapshot"
qemu-img convert -l before -O raw w.qcow2 snap.raw
cmp -s before.raw snap.raw || fail "partial writes changed the snapshot"
qemu-img create -q -f raw pat.raw 4M
qemu-io -f raw -c 'write -P 0x77 0 4M' pat.raw > /dev/null
"$MIMG" convert -n -f raw -O qcow2 pat.raw w.qcow2 || fail "mimg convert -n"
qemu-img compare -q -f raw pat.raw w.qcow2 || fail "content after convert -n"
qemu-img convert -l before -O raw w.qcow2 snap.raw
cmp -s before.raw snap.raw || fail "convert -n changed the snapshot"
qemu-img check -q w.qcow2 || fail "check after writes over a snapshot"
"$MIMG" snapshot -a before w.qcow2 || fail "apply after writes"
qemu-img compare -q -f raw before.raw w.qcow2 || fail "content after -a"
"$MIMG" snapshot -d before w.qcow2 || fail "delete after writes"
qemu-img check -q w.qcow2 || fail "check after delete"

# Applying a snapshot takes its size back, as qemu-img does.
for tool in qemu-img "$MIMG"; do
	rm -f z.qcow2
	qemu-img create -q -f qcow2 z.qcow2 8M
	qio z.qcow2 qcow2 "write -P 1 0 1M" "write -P 2 7M 1M"
	"$tool" snapshot -c small z.qcow2 || fail "$tool -c small"
	qemu-img resize -q z.qcow2 16M
	qio z.qcow2 qcow2 "write -P 3 12M 1M"
	"$tool" snapshot -a small z.qcow2 || fail "$tool -a after growing"
	qemu-img resize -q --shrink z.qcow2 4M
	"$tool" snapshot -a small z.qcow2 || fail "$tool -a after shrinking"
	qemu-img check -q z.qcow2 || fail "check after $tool -a with sizes"
	cp z.qcow2 "z.$(basename "$tool").qcow2"
done
qemu-img compare -q z.qemu-img.qcow2 "z.$(basename "$MIMG").qcow2" ||
	fail "content after applying a snapshot of another size"
check_eq "$(qemu-img info "z.$(basename "$MIMG").qcow2" | grep '^virtual size')" \
	"virtual size: 8 MiB (8388608 bytes)" "size after -a"

# A VM state, crafted: data written past the end of a 1 GiB image (where
# a 64 MiB image keeps its VM state) before a snapshot, the image shrunk
# to 64 MiB, and the snapshot's VM state size and disk size set.
rm -f v.qcow2
qemu-img create -q -f qcow2 v.qcow2 1G
qio v.qcow2 qcow2 "write -P 0x11 0 1M" "write -P 0x7e 512M 100k"
qemu-img snapshot -c vm v.qcow2
qemu-img resize -q --shrink v.qcow2 64M
python3 - v.qcow2 <<'PY'
import struct, sys
f = bytearray(open(sys.argv[1], "rb").read())
nb, off = struct.unpack(">IQ", f[60:72])
f[off + 32:off + 36] = struct.pack(">I", 102400)
f[off + 40:off + 56] = struct.pack(">QQ", 102400, 64 << 20)
open(sys.argv[1], "wb").write(f)
PY
qemu-img check -q v.qcow2 || fail "crafted VM state image"
qemu-img snapshot -l v.qcow2 | grep -q ' vm  *100 KiB ' ||
	fail "crafted VM state not listed"
want=$(vmstate v.qcow2 vm)
qio v.qcow2 qcow2 "write -P 0x22 0 64k"
"$MIMG" snapshot -c disk v.qcow2 || fail "-c next to a VM state"
"$MIMG" snapshot -a vm v.qcow2 || fail "-a of a snapshot with VM state"
qemu-img check -q v.qcow2 || fail "check after -a with VM state"
check_eq "$(vmstate v.qcow2 vm)" "$want" "VM state after -a"
"$MIMG" snapshot -d disk v.qcow2 || fail "-d next to a VM state"
check_eq "$(vmstate v.qcow2 vm)" "$want" "VM state after -d of another"
"$MIMG" snapshot -c again v.qcow2 || fail "-c after -a with VM state"
qemu-img check -q v.qcow2 || fail "check after -c with VM state"
check_eq "$(vmstate v.qcow2 vm)" "$want" "VM state after -c"
check_eq "$("$MIMG" snapshot -l v.qcow2)" "$(qemu-img snapshot -l v.qcow2)" \
	"snapshot -l with a VM state"
"$MIMG" snapshot -d vm v.qcow2 || fail "-d of a snapshot with VM state"
qemu-img check -q v.qcow2 || fail "check after -d of the VM state snapshot"

# A VM state saved by qemu itself, loaded by qemu after mimg's work.
qemu_vm() {
	printf '%s\nquit\n' "$2" | timeout 60 qemu-system-x86_64 -machine none \
		-nodefaults -display none -monitor stdio \
		-drive "file=$1,if=none,format=qcow2,id=d0" 2>&1 |
		tr -d '\033' > vm.out
	! grep -aq 'Error' vm.out
}
if command -v qemu-system-x86_64 > /dev/null 2>&1; then
	rm -f s.qcow2
	qemu-img create -q -f qcow2 s.qcow2 64M
	qio s.qcow2 qcow2 "write -P 1 0 1M"
	qemu_vm s.qcow2 "savevm vm1" || fail "qemu savevm: $(cat vm.out)"
	want=$(vmstate s.qcow2 vm1)
	"$MIMG" snapshot -c other s.qcow2 || fail "-c next to qemu's VM state"
	qio s.qcow2 qcow2 "write -P 2 0 64k"
	"$MIMG" snapshot -a vm1 s.qcow2 || fail "-a of qemu's savevm snapshot"
	"$MIMG" snapshot -d other s.qcow2 || fail "-d next to qemu's VM state"
	qemu-img check -q s.qcow2 || fail "check after mimg on a savevm image"
	check_eq "$(vmstate s.qcow2 vm1)" "$want" "qemu's VM state"
	qemu_vm s.qcow2 "loadvm vm1" ||
		fail "qemu loadvm after mimg's work: $(cat vm.out)"
	"$MIMG" snapshot -d vm1 s.qcow2 || fail "-d of qemu's savevm snapshot"
	qemu-img check -q s.qcow2 || fail "check after -d of a savevm snapshot"
else
	echo "qemu-system-x86_64 not installed: only the crafted VM state"
fi

# Options, messages and exit codes as qemu-img's.
qemu-img create -q -f qcow2 e.qcow2 1M
qemu-img create -q -f raw e.raw 1M
qemu-img snapshot -c one e.qcow2
for args in "-a nope e.qcow2" "-d nope e.qcow2" "-d 1 e.qcow2" \
	    "-c x -f raw e.raw" "-l -f raw e.raw" "-a x -f raw e.raw" \
	    "-d x -f raw e.raw" "-l -c x e.qcow2" "-c x -a y e.qcow2" "-l" \
	    "-l e.qcow2 extra" "-U -c x e.qcow2" "-U -a one e.qcow2" "-c" \
	    "-x e.qcow2" "-l nonexist.qcow2" "e.qcow2"; do
	# qemu-img has no -f here: it probes (and warns about raw).
	qargs=$(echo "$args" | sed 's/-f raw //')
	# shellcheck disable=SC2086
	qemu-img snapshot $qargs > q.out 2> q.err; qs=$?
	# shellcheck disable=SC2086
	"$MIMG" snapshot $args > m.out 2> m.err; ms=$?
	check_eq "$ms" "$qs" "exit status of snapshot $args"
	check_eq "$(cat m.out)" "$(cat q.out)" "output of snapshot $args"
	case $args in *nonexist*) continue ;; esac
	check_eq "$(grep -v '^ \|WARNING' m.err | head -n 1 | sed 's/^mimg: //')" \
		"$(grep -v '^ \|WARNING' q.err | head -n 1 | sed 's/^qemu-img: //')" \
		"message of snapshot $args"
done
qemu-img check -q e.qcow2 || fail "check after the error cases"
exit 0
