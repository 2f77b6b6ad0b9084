# SPDX-License-Identifier: BSD-2-Clause
# Helpers shared by the VHD (vpc) and VDI interop tests (sourced after
# lib.sh with FMT set to the format; not a test itself).  qemu-img and
# qemu-io 7.2 are the oracle.

need qemu-img qemu-io python3 cmp
: "${FMT:?FMT must name the format}"

# qio IMG CMD...: qemu-io commands on an image of FMT in one process.
qio() {
	_img=$1
	shift
	qio_fmt "$FMT" "$_img" "$@"
}

# make_raw FILE SIZE_KIB: random data, zero runs written as data, holes,
# and a last byte, so every kind of block shows up.
make_raw() {
	python3 - "$1" "$2" <<'PY'
import random, sys
random.seed(11)
size = int(sys.argv[2]) << 10
with open(sys.argv[1], 'wb') as f:
    f.truncate(size)
    off = 0
    while off < size:
        k = random.randrange(5)
        n = min(random.choice((512, 4096, 65536, 1 << 20, 3 << 20)), size - off)
        if k < 2:
            f.seek(off)
            f.write(random.randbytes(n))
        elif k == 2:
            f.seek(off)
            f.write(bytes([0x33]) * n)
        off += n + random.choice((0, 0, 512, 1 << 20, 5 << 20))
    f.seek(size - 1)
    f.write(b'\x5a')
PY
}

# qemu_clean IMG [WHAT]: qemu-img check finds nothing wrong.
qemu_clean() {
	qemu_clean_fmt "$FMT" "$@"
}

# same_content IMG [what]: mimg reads IMG as the same bytes as qemu-img.
same_content() {
	same_read "$FMT" "$@"
}

# qemu_reads IMG REF [what]: qemu reads IMG as the raw file REF.
qemu_reads() {
	qemu-img compare -f "$FMT" -F raw "$1" "$2" >cmp.out 2>&1 ||
		{ cat cmp.out >&2; fail "qemu-img compare $1 $2 ${3:-}"; }
}

# same_info IMG: mimg info --output json prints what qemu-img info does.
same_info() {
	same_info_json "$1" -f "$FMT"
}

# same_map IMG [what]: mimg map --output json prints what qemu-img map does.
same_map() {
	qemu-img map -f "$FMT" --output=json "$1" >map.q.json ||
		fail "qemu-img map $1"
	"$MIMG" map -f "$FMT" --output json "$1" >map.m.json ||
		fail "mimg map $1"
	cmp map.q.json map.m.json >/dev/null ||
		{ diff map.q.json map.m.json >&2; fail "map of $1 differs ${2:-}"; }
}

# Images mimg makes: q.EXT is qemu-img's, m.EXT mimg's.
case $FMT in
vpc) EXT=vhd ;;
*) EXT=$FMT ;;
esac

# same_layout Q M: the files qemu-img and mimg made are the same but for
# what is random or a time: VDI's image and snapshot UUIDs; VHD's footer
# timestamp, UUID and checksum (in the copy that starts a dynamic image
# too).
same_layout() {
	python3 - "$FMT" "$1" "$2" <<'PY' || fail "mimg's $2 differs from qemu-img's $1"
import os, sys
def norm(fmt, path):
    # headers and tables (at most 8 MiB even for the largest images) and
    # the last sector; a fixed image's data area is a hole in both
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        head = bytearray(f.read(min(size, 8 << 20)))
        f.seek(max(0, size - 512))
        tail = bytearray(f.read(512))
    if fmt == 'vdi':
        head[0x188:0x1a8] = bytes(32)
        return size, bytes(head)
    for d in (head, tail):
        if d[:8] == b'conectix':
            for off, n in ((24, 4), (64, 4), (68, 16)):
                d[off:off + n] = bytes(n)
    if size <= 8 << 20:
        head[-512:] = tail
    return size, bytes(head), bytes(tail)
if norm(sys.argv[1], sys.argv[2]) != norm(sys.argv[1], sys.argv[3]):
    sys.exit(1)
PY
}

# created_alike OPTS SIZE: qemu-img and mimg create q.EXT and m.EXT of
# SIZE with -o OPTS, and the files are the same (same_layout).
created_alike() {
	rm -f "q.$EXT" "m.$EXT"
	qemu-img create -q -f "$FMT" -o "$1" "q.$EXT" "$2"
	"$MIMG" create -q -f "$FMT" -o "$1" "m.$EXT" "$2" ||
		fail "mimg create $1 $2"
	same_layout "q.$EXT" "m.$EXT"
}

# converted_alike OPTS: mimg converts src.raw into m.EXT with -o OPTS;
# qemu reads it as src.raw, and its map and info are qemu-img's.
converted_alike() {
	rm -f "m.$EXT"
	"$MIMG" convert -O "$FMT" -o "$1" src.raw "m.$EXT" ||
		fail "mimg convert -o $1"
	qemu_reads "m.$EXT" src.raw "($1)"
	same_map "m.$EXT" "($1)"
	same_info "m.$EXT"
}

# qemu_writes_on IMG [what]: qemu-io writes into IMG, which mimg made
# (qemu's allocation continues from the map mimg left), and mimg reads
# the result as qemu does.
qemu_writes_on() {
	qio "$1" "write -P 0x77 18M 2M" "write -P 0x78 1k 1k"
	same_content "$1" "${2:-}"
}

# converted_size_alike: with the default options, mimg's conversion of
# src.raw maps as qemu-img's and has its size.
converted_size_alike() {
	rm -f "q.$EXT" "m.$EXT"
	qemu-img convert -O "$FMT" src.raw "q.$EXT"
	"$MIMG" convert -O "$FMT" src.raw "m.$EXT" || fail "mimg convert"
	same_map "m.$EXT"
	check_eq "$(stat -c %s "m.$EXT")" "$(stat -c %s "q.$EXT")" \
		"dynamic file size"
}

# into_qemus_image BLOCK: mimg converts (-n) into q.EXT, an image qemu-img
# made and qemu-io wrote to, whose blocks are BLOCK bytes: runs in the
# first block, across the end of it, and in blocks qemu did not allocate
# (its allocation continues qemu's); qemu reads the result as the source.
into_qemus_image() {
	rm -f "q.$EXT"
	qemu-img create -q -f "$FMT" "q.$EXT" 9M
	qio "q.$EXT" "write -P 0x41 5M 4k"
	qemu-img convert -f "$FMT" -O raw "q.$EXT" ref.raw
	python3 - "$1" <<'PY'
import sys
block = int(sys.argv[1])
f = open('ref.raw', 'r+b')
for off, n, v in ((4096, 8192, 1), (block - 700, 1400, 2),
                  (6 * 1048576, 2 * 1048576, 3)):
    f.seek(off)
    f.write(bytes([v]) * n)
PY
	"$MIMG" convert -n -f raw -O "$FMT" ref.raw "q.$EXT" ||
		fail "mimg convert -n into qemu's image"
	qemu_reads "q.$EXT" ref.raw "(mimg writes into qemu's image)"
	same_map "q.$EXT"
}
