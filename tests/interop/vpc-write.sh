#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# VHDs made by mimg (create, convert -O vpc, every subformat and option)
# read in qemu as the source did, with the same virtual size and map as
# qemu-img's; created files are qemu-img's byte for byte except the
# timestamp, the random UUID and the checksum that covers them.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
FMT=vpc
. "$here/vpc-lib.sh"

# same_layout Q M: equal apart from footer timestamp, UUID and checksum.
same_layout() {
	python3 - "$1" "$2" <<'PY' || fail "mimg's $2 differs from qemu-img's $1"
import os, sys
def norm(path):
    # headers and BAT (at most 8 MiB even for 2040 GiB) and the footer;
    # a fixed image's data area is a hole in both
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        head = bytearray(f.read(min(size, 8 << 20)))
        f.seek(size - 512)
        tail = bytearray(f.read(512))
    for d in (head, tail):
        if d[:8] == b'conectix':
            for off, n in ((24, 4), (64, 4), (68, 16)):
                d[off:off + n] = bytes(n)
    if size <= 8 << 20:
        head[-512:] = tail
    return size, bytes(head), bytes(tail)
if norm(sys.argv[1]) != norm(sys.argv[2]):
    sys.exit(1)
PY
}

vsize() {
	qemu-img info -f vpc "$1" | sed -n 's/^virtual size: .*(\([0-9]*\) bytes)$/\1/p'
}

for size in 512 1000001 130M 127G 2040G; do
	for opts in subformat=dynamic subformat=fixed \
		    subformat=dynamic,force_size=on \
		    subformat=fixed,force_size=on; do
		case $opts:$size in
		*fixed*:[0-9]*G) continue ;;
		esac
		rm -f q.vhd m.vhd
		qemu-img create -q -f vpc -o "$opts" q.vhd "$size"
		"$MIMG" create -q -f vpc -o "$opts" m.vhd "$size" ||
			fail "mimg create $opts $size"
		same_layout q.vhd m.vhd
		check_eq "$(vsize m.vhd)" "$(vsize q.vhd)" \
			"virtual size of $opts $size"
	done
done

# Too large for the format, as in qemu-img.
"$MIMG" create -q -f vpc m2.vhd 2041G 2>err && fail "2041G accepted"
grep -q "too large" err || fail "2041G: $(cat err)"

# convert: qemu reads what mimg wrote as the source.
make_raw src.raw 20480
for opts in subformat=dynamic subformat=fixed subformat=dynamic,force_size=on \
	    subformat=fixed,force_size=on; do
	rm -f m.vhd
	"$MIMG" convert -O vpc -o "$opts" src.raw m.vhd ||
		fail "mimg convert -o $opts"
	qemu_reads m.vhd src.raw "($opts)"
	same_map m.vhd "($opts)"
	same_info m.vhd
	"$MIMG" check -f vpc m.vhd >check.out 2>&1 ||
		{ cat check.out >&2; fail "mimg check after convert ($opts)"; }
	# qemu-img keeps writing to it: the footer and BAT mimg left are
	# ones qemu's allocation continues from.
	qio m.vhd "write -P 0x77 18M 2M" "write -P 0x78 1k 1k"
	qemu-img convert -f vpc -O raw m.vhd back.raw
	same_content m.vhd "($opts after qemu-io)"
done
# And the same size: the dynamic result is what qemu-img convert makes.
rm -f q.vhd m.vhd
qemu-img convert -O vpc src.raw q.vhd
"$MIMG" convert -O vpc src.raw m.vhd
same_map m.vhd
check_eq "$(stat -c %s m.vhd)" "$(stat -c %s q.vhd)" "dynamic file size"

# mimg converts into qemu's existing image (-n): its allocation continues
# qemu's BAT and footer.
rm -f q.vhd
qemu-img create -q -f vpc q.vhd 9M
qio q.vhd "write -P 0x41 5M 4k"
qemu-img convert -f vpc -O raw q.vhd ref.raw
python3 - <<'PY'
f = open('ref.raw', 'r+b')
for off, n, v in ((4096, 8192, 1), (2 * 1048576 - 700, 1400, 2),
                  (6 * 1048576, 2 * 1048576, 3)):
    f.seek(off)
    f.write(bytes([v]) * n)
PY
"$MIMG" convert -n -f raw -O vpc ref.raw q.vhd ||
	fail "mimg convert -n into qemu's VHD"
qemu_reads q.vhd ref.raw "(mimg writes into qemu's image)"
same_map q.vhd
echo ok
