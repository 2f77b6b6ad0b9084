# SPDX-License-Identifier: BSD-2-Clause
# Helpers shared by the VMDK interop tests (sourced after lib.sh; not a
# test itself).  qemu-img/qemu-io 7.2 are the oracle.

need qemu-img qemu-io python3 cmp

# qio IMG CMD...: qemu-io commands on a VMDK in one process.
qio() {
	_img=$1
	shift
	qio_fmt vmdk "$_img" "$@"
}

# same_content IMG [what]: mimg reads IMG (through its delta links) as the
# same bytes as qemu-img.
same_content() {
	rm -f same.q.raw same.m.raw
	qemu-img convert -f vmdk -O raw "$1" same.q.raw ||
		fail "qemu-img convert $1 ${2:-}"
	"$MIMG" convert -f vmdk -O raw "$1" same.m.raw ||
		fail "mimg convert $1 to raw ${2:-}"
	cmp same.q.raw same.m.raw >/dev/null ||
		fail "mimg reads $1 differently from qemu-img: $(cmp same.q.raw same.m.raw 2>&1 | head -1) ${2:-}"
}

# qemu_accepts IMG REF [what]: qemu-img check finds nothing and qemu reads
# IMG as the raw file REF.
qemu_accepts() {
	qemu-img check -f vmdk "$1" >check.out 2>&1 ||
		{ cat check.out >&2; fail "qemu-img check $1 ${3:-}"; }
	qemu-img compare -f vmdk -F raw "$1" "$2" >cmp.out 2>&1 ||
		{ cat cmp.out >&2; fail "qemu-img compare $1 $2 ${3:-}"; }
}

# same_info IMG: mimg info --output json prints what qemu-img info does,
# with the same keys in the same order (actual-size may differ by a few
# blocks: it is sampled at another moment).
same_info() {
	qemu-img info --output=json "$1" >info.q.json || fail "qemu-img info $1"
	"$MIMG" info --output json "$1" >info.m.json || fail "mimg info $1"
	python3 - info.q.json info.m.json "$1" <<'PY' || fail "info JSON of $1 differs"
import json, sys
q = json.load(open(sys.argv[1]))
m = json.load(open(sys.argv[2]))
for d in (q, m):
    d.pop('actual-size', None)
if q != m or list(q) != list(m):
    print('qemu:', json.dumps(q, indent=1))
    print('mimg:', json.dumps(m, indent=1))
    sys.exit(1)
PY
}

# make_raw FILE SIZE_MIB: data, zero runs and compressible runs.
make_raw() {
	python3 - "$1" "$2" <<'PY'
import random, sys
random.seed(7)
mib = int(sys.argv[2])
b = bytearray(mib << 20)
for off in range(0, len(b), 65536):
    k = (off >> 16) % 7
    if k == 0:
        continue
    if k in (1, 2):
        b[off:off + 65536] = bytes([k * 17]) * 65536
    else:
        b[off:off + 4096] = random.randbytes(4096)
        b[off + 60000:off + 60100] = random.randbytes(100)
b[-1] = 0x5a
open(sys.argv[1], 'wb').write(b)
PY
}

# same_map IMG: mimg map --output json prints what qemu-img map does.
same_map() {
	qemu-img map --output=json "$1" >map.q.json || fail "qemu-img map $1"
	"$MIMG" map --output json "$1" >map.m.json || fail "mimg map $1"
	cmp map.q.json map.m.json >/dev/null ||
		{ diff map.q.json map.m.json >&2; fail "map of $1 differs ${2:-}"; }
}
