# SPDX-License-Identifier: BSD-2-Clause
# Helpers shared by the VMDK interop tests (sourced after lib.sh; not a
# test itself).  qemu-img/qemu-io 7.2 are the oracle.

need qemu-img qemu-io python3 cmp

# The creation options (qemu-img create -o) the VMDK tests cover: each
# subformat qemu-img creates but streamOptimized, zeroed grains, version 6
# and the descriptor's hardware fields.
VMDK_VARIANTS="subformat=monolithicSparse subformat=monolithicFlat
subformat=twoGbMaxExtentSparse subformat=twoGbMaxExtentFlat zeroed_grain=on
compat6=on hwversion=7,adapter_type=lsilogic
adapter_type=buslogic,toolsversion=1234 adapter_type=legacyESX"

# qio IMG CMD...: qemu-io commands on a VMDK in one process.
qio() {
	_img=$1
	shift
	qio_fmt vmdk "$_img" "$@"
}

# same_content IMG [what]: mimg reads IMG (through its delta links) as the
# same bytes as qemu-img.
same_content() {
	same_read vmdk "$@"
}

# qemu_accepts IMG REF [what]: qemu-img check finds nothing and qemu reads
# IMG as the raw file REF.
qemu_accepts() {
	qemu-img check -f vmdk "$1" >check.out 2>&1 ||
		{ cat check.out >&2; fail "qemu-img check $1 ${3:-}"; }
	qemu-img compare -f vmdk -F raw "$1" "$2" >cmp.out 2>&1 ||
		{ cat cmp.out >&2; fail "qemu-img compare $1 $2 ${3:-}"; }
}

# same_info IMG: mimg info --output json prints what qemu-img info does.
same_info() {
	same_info_json "$1"
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
