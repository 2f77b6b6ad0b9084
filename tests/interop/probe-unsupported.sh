#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Every format qemu-img 7.2 probes is recognised: an image in it is either
# opened as that format or refused by name with a non-zero exit, never
# read as raw.  Images come from qemu-img create where it can make them,
# minimal headers otherwise; qemu-img info confirms what each one is.
. "$TESTLIB"
need qemu-img python3

qemu-img create -q -f vhdx a.vhdx 1M || fail "qemu-img create vhdx"
qemu-img create -q -f qed a.qed 1M || fail "qemu-img create qed"
qemu-img create -q -f vdi a.vdi 1M || fail "qemu-img create vdi"
qemu-img create -q -f vpc a.vpc 1M || fail "qemu-img create vpc"
qemu-img create -q -f parallels a.parallels 1M || fail "create parallels"
qemu-img create -q -f qcow a.qcow 1M || fail "qemu-img create qcow"
qemu_img_luks create -q -f luks --object secret,id=s0,data=pw \
	-o key-secret=s0,iter-time=10 a.luks 1M || fail "create luks"

# Headers qemu-img cannot create, each the smallest file it accepts as
# that format, and short ones (qemu-img pads what it probes with zeroes).
python3 - <<'PY'
import struct, zlib
def put(name, data, size=None):
    if size is not None:
        data = data.ljust(size, b"\0")
    open(name, "wb").write(data)
h = bytearray(512)
h[0:22] = b"Bochs Virtual HD Image"
h[32:39] = b"Redolog"
h[48:55] = b"Growing"
h[64:68] = struct.pack("<I", 0x00020000)
h[68:72] = struct.pack("<I", 512)
h[72:76] = struct.pack("<I", 1)            # catalog entries
h[76:80] = struct.pack("<I", 512)          # bitmap size
h[80:84] = struct.pack("<I", 4096)         # extent size
h[88:96] = struct.pack("<Q", 4096)         # disk size
put("a.bochs", bytes(h) + struct.pack("<I", 0xffffffff), 1024)
pre = (b"#!/bin/sh\n#V2.0 Format\n"
       b"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n")
# block size 512, one block: offsets 152 and 166, a zlib stream of zeroes
block = zlib.compress(bytes(512))
put("a.cloop", pre.ljust(128, b"\0") + struct.pack(">II", 512, 1) +
    struct.pack(">QQ", 152, 152 + len(block)) + block)
put("short.vhdx", b"vhdxfile")
put("short.qed", b"QED\0")
put("short.qcow", b"QFI\xfb\0\0\0\1")
put("a.dmg", b"not really a disk image", 4096)
PY

for f in a.vhdx a.qed a.vdi a.vpc a.parallels a.qcow a.luks a.bochs \
	 a.cloop short.vhdx short.qed short.qcow a.dmg; do
	want=${f#*.}
	case $f in
	short.*|*.dmg) ;; # qemu-img probes these, then its driver refuses them
	*) check_eq "$(qemu-img info "$f" | sed -n 's/^file format: //p')" \
		"$want" "$f: qemu-img format" ;;
	esac
	if out=$("$MIMG" info --output=json "$f" 2>err); then
		got=$(printf '%s' "$out" | python3 -c \
			'import json,sys; print(json.load(sys.stdin)["format"])')
		check_eq "$got" "$want" "$f: mimg format"
	else
		# Unsupported, or refused by its own driver (a short file).
		grep -q -e "image is in $want format, which is not supported" \
			-e "': $want: " err ||
			fail "$f: mimg error does not name $want: $(cat err)"
		if "$MIMG" convert -O raw "$f" out.raw 2>err; then
			fail "$f: convert of an unsupported format succeeded"
		fi
		grep -q -e "$want format" -e "': $want: " err ||
			fail "$f: convert error: $(cat err)"
	fi
done

# Only qemu-img's own rules count: a LUKS2 header, an empty .dmg file and
# a fixed VHD (footer at the end only) all probe as raw there.
printf 'LUKS\272\276\000\002' > luks2.img
: > empty.dmg
qemu-img create -q -f vpc -o subformat=fixed fixed.vhd 1M
for f in luks2.img empty.dmg fixed.vhd; do
	check_eq "$(qemu-img info "$f" | sed -n 's/^file format: //p')" raw \
		"$f: qemu-img format"
	"$MIMG" info "$f" > out || fail "$f: mimg info"
	grep -q '^file format: raw' out || fail "$f: mimg does not say raw"
done
echo ok
