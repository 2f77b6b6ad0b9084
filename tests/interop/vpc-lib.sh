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
