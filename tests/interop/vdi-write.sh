#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# VDIs made by mimg (create, convert -O vdi, dynamic and static) pass
# qemu-img check and read in qemu as the source did, with qemu-img's
# virtual size and map; created files are qemu-img's byte for byte except
# the two random UUIDs.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
FMT=vdi
. "$here/vpc-lib.sh"

# same_layout Q M: equal apart from the image and snapshot UUIDs.
same_layout() {
	python3 - "$1" "$2" <<'PY' || fail "mimg's $2 differs from qemu-img's $1"
import os, sys
def norm(path):
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        d = bytearray(f.read(min(size, 8 << 20)))
    d[0x188:0x1a8] = bytes(32)
    return size, bytes(d)
if norm(sys.argv[1]) != norm(sys.argv[2]):
    sys.exit(1)
PY
}

# qemu_checks IMG: qemu-img check finds nothing.
qemu_checks() {
	qemu-img check -f vdi "$1" >check.out 2>&1 ||
		{ cat check.out >&2; fail "qemu-img check $1 ${2:-}"; }
}

for size in 512 1000001 1M 130M 5G 1T; do
	for opts in static=off static=on; do
		case $opts:$size in static=on:[0-9]*[GT]) continue ;; esac
		rm -f q.vdi m.vdi
		qemu-img create -q -f vdi -o "$opts" q.vdi "$size"
		"$MIMG" create -q -f vdi -o "$opts" m.vdi "$size" ||
			fail "mimg create $opts $size"
		same_layout q.vdi m.vdi
		qemu_checks m.vdi "($opts $size)"
		same_info m.vdi
	done
done

make_raw src.raw 20480
for opts in static=off static=on; do
	rm -f m.vdi
	"$MIMG" convert -O vdi -o $opts src.raw m.vdi ||
		fail "mimg convert -o $opts"
	qemu_reads m.vdi src.raw "($opts)"
	qemu_checks m.vdi "($opts)"
	same_map m.vdi "($opts)"
	same_info m.vdi
	# qemu keeps writing into it: the header count and map mimg left are
	# ones qemu's allocation continues from.
	qio m.vdi "write -P 0x77 18M 2M" "write -P 0x78 1k 1k"
	qemu_checks m.vdi "($opts after qemu-io)"
	same_content m.vdi "($opts after qemu-io)"
done
rm -f q.vdi m.vdi
qemu-img convert -O vdi src.raw q.vdi
"$MIMG" convert -O vdi src.raw m.vdi
check_eq "$(stat -c %s m.vdi)" "$(stat -c %s q.vdi)" "dynamic file size"

# mimg converts into qemu's existing image (-n).
rm -f q.vdi
qemu-img create -q -f vdi q.vdi 9M
qio q.vdi "write -P 0x41 5M 4k"
qemu-img convert -f vdi -O raw q.vdi ref.raw
python3 - <<'PY'
f = open('ref.raw', 'r+b')
for off, n, v in ((4096, 8192, 1), (1048576 - 700, 1400, 2),
                  (6 * 1048576, 2 * 1048576, 3)):
    f.seek(off)
    f.write(bytes([v]) * n)
PY
"$MIMG" convert -n -f raw -O vdi ref.raw q.vdi ||
	fail "mimg convert -n into qemu's VDI"
qemu_reads q.vdi ref.raw "(mimg writes into qemu's image)"
qemu_checks q.vdi "(mimg writes into qemu's image)"
same_map q.vdi

# Too large for the format, as in qemu-img.
"$MIMG" create -q -f vdi m2.vdi 1025T 2>err && fail "1025T accepted"
grep -q "Unsupported VDI image size" err || fail "1025T: $(cat err)"
echo ok
