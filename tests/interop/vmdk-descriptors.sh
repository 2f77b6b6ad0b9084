#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Handwritten descriptors (tests/data/vmdk) covering the syntax variants
# VMware writes: CRLF line ends, quoted file names with spaces, extra
# blanks and tabs, FLAT extents with offsets, VMFS extents (vmfsThin),
# multiple sparse extents, ESX 3 VMFSSPARSE extents, ZERO extents and
# every access mode.  mimg reads
# each as the bytes the extents define (and as qemu-img does where qemu
# implements the same thing); bad descriptors fail with clear messages.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/vmdk-lib.sh"
data="$here/../data/vmdk"
cp "$data"/*.vmdk .

# Extent files: two flat parts, a thin VMFS file, two sparse parts.
python3 - <<'PY'
import random
random.seed(3)
for name, mib in (("disk part 1.img", 1), ("disk part 2.img", 1.25),
                  ("vmfs-thin-flat.vmdk", 2)):
    open(name, "wb").write(random.randbytes(int(mib * 1048576)))
PY
qemu-img create -q -f vmdk "sparse part-s001.vmdk" 1M
qemu-img create -q -f vmdk "sparse part-s002.vmdk" 2M
qio "sparse part-s001.vmdk" "write -P 0x31 1000 70000"
qio "sparse part-s002.vmdk" "write -P 0x32 1M 5" "write -P 0x33 2047k 1k"

# expect NAME: mimg's reading of NAME equals the raw file expected.raw.
expect() {
	"$MIMG" convert -O raw "$1" got.raw || fail "mimg convert $1"
	cmp got.raw expected.raw >/dev/null ||
		fail "$1 reads wrong: $(cmp got.raw expected.raw 2>&1)"
}

# FLAT parts: [part1 0..1M) then [part2 256k..1.25M).
python3 - <<'PY'
a = open("disk part 1.img", "rb").read()
b = open("disk part 2.img", "rb").read()
open("expected.raw", "wb").write(a[:1048576] + b[262144:262144 + 1048576])
PY
expect crlf-spaces.vmdk
same_content crlf-spaces.vmdk "(CRLF, spaces)"
"$MIMG" info --output json crlf-spaces.vmdk >i.json || fail "info crlf"
[ "$(json_get i.json format-specific.data.cid)" = 195939070 ] &&
[ "$(json_get i.json format-specific.data.extents.1.filename)" = "disk part 2.img" ] ||
	fail "info of crlf-spaces.vmdk: $(cat i.json)"

cp vmfs-thin-flat.vmdk expected.raw
expect vmfs-thin.vmdk

qemu-img convert -O raw "sparse part-s001.vmdk" e1.raw
qemu-img convert -O raw "sparse part-s002.vmdk" e2.raw
cat e1.raw e2.raw >expected.raw
expect sparse-extents.vmdk
same_content sparse-extents.vmdk "(two sparse extents)"
same_info sparse-extents.vmdk

# RDONLY reads, ZERO and NOACCESS read as zeroes (qemu 7.2 skips every
# extent that is not RW, so it is no oracle here).
python3 - <<'PY'
a = open("disk part 1.img", "rb").read()
b = open("disk part 2.img", "rb").read()
z = bytes(512 * 1024)
open("expected.raw", "wb").write(a[512 * 1024:1048576] + z + z +
                                 b[512 * 1024:1048576])
PY
expect zero-rdonly.vmdk
"$MIMG" convert -n -f raw -O vmdk expected.raw zero-rdonly.vmdk 2>err.txt &&
	fail "writes into RDONLY/ZERO/NOACCESS extents accepted"

# vmfsSparse: an ESX 3 "COWD" sparse extent (4096-entry grain tables).
python3 - <<'PY'
import struct
S, cap, grain = 512, 4096, 16
img = bytearray(struct.pack('<4sIIIIIII', b'COWD', 1, 3, cap, grain, 4, 1, 0))
img += bytes(5 * S - len(img))
img[4 * S:4 * S + 4] = struct.pack('<I', 5)
img += bytes(35 * S)
gt = [0] * 4096
for g, v in ((0, 0x11), (3, 0x22), (200, 0x33)):
    gt[g] = len(img) // S
    img += bytes([v]) * (grain * S)
img[5 * S:5 * S + 4096 * 4] = struct.pack('<4096I', *gt)
open('esx3-sparse.vmdk', 'wb').write(img)
open('esx3.vmdk', 'w').write('# Disk DescriptorFile\nversion=1\nCID=fffffffe\n'
    'parentCID=ffffffff\ncreateType="vmfsSparse"\n\n# Extent description\n'
    'RW 4096 VMFSSPARSE "esx3-sparse.vmdk"\n')
PY
same_content esx3.vmdk "(vmfsSparse)"
same_info esx3.vmdk
"$MIMG" convert -n -f raw -O vmdk expected.raw esx3.vmdk 2>/dev/null &&
	fail "writes into a VMFSSPARSE extent accepted"

# Refused descriptors.
refused() {
	_f=$1 _what=$2
	shift 2
	"$MIMG" convert -O raw "$@" "$_f" out.raw >out.txt 2>err.txt &&
		fail "$_f accepted"
	grep -q "$_what" err.txt || fail "$_f: message lacks '$_what': $(cat err.txt)"
}
touch escape-target.img
refused escape.vmdk outside
refused absolute.vmdk outside
refused loop-a.vmdk loop
refused absurd-size.vmdk "invalid extent size"
refused absurd-total.vmdk "too large"
refused sparse-extents.vmdk untrusted --untrusted
# Another format's image taken for a descriptor: qemu-img's words.
qemu-img create -q -f qcow2 other.qcow2 1M
same_output -e "qcow2 as vmdk" info -f vmdk other.qcow2
echo "ok: handwritten descriptors read as defined"
