#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# DMG (UDIF) images against qemu-img 7.2: images written by dmg-make.py as
# the format is documented (property list or resource fork, zlib, raw,
# zero and ignored chunks, comments, several partitions, chunks of odd
# sizes) read the same bytes and the same info in both; each is read
# only; hostile trailers, tables and chunks are refused with the field
# in the message.  qemu-img has no block status for DMG (its map shows
# all data), so maps are not compared; mimg's shows the zero chunks.
. "$TESTLIB"
need qemu-img python3
need_format dmg
MAKE="python3 $(dirname "$TESTLIB")/dmg-make.py"

mixed_raw d.raw 6 7
n=0
for args in "" "--rsrc" "--plan zr0ic --chunk 300" "--parts 3 --plan rz" \
	"--rsrc --parts 2 --plan zzi --chunk 4096" "--chunk 1"; do
	$MAKE d.raw t.dmg $args || fail "dmg-make.py $args"
	qemu-img convert -f dmg -O raw t.dmg q.raw 2>/dev/null ||
		fail "[$args]: qemu-img cannot read it"
	"$MIMG" convert -f dmg -O raw t.dmg m.raw || fail "[$args]: mimg convert"
	cmp -s q.raw m.raw || fail "[$args]: mimg reads other bytes than qemu-img"
	cmp -s d.raw m.raw || fail "[$args]: not the bytes written"
	# probed by its name, as qemu-img probes it
	same_output "[$args] info" info --output=json t.dmg
	same_output "[$args] info" info t.dmg
	same_output "[$args] check" check t.dmg
	"$MIMG" compare -q d.raw t.dmg || fail "[$args]: compare"
	n=$((n + 1))
done

# Zero chunks show in mimg's map; conversions keep them sparse.
$MAKE d.raw t.dmg --plan 0 --chunk 128
zeros=$("$MIMG" map --output=json t.dmg | python3 -c 'import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e["zero"]))')
[ "$zeros" -gt 0 ] || fail "no zero chunk in the map"

# Read only, as in qemu-img.
"$MIMG" convert -n -f raw -O dmg d.raw t.dmg 2>err &&
	fail "a dmg image was opened for writing"
grep -q "dmg: Image is read-only" err || fail "read-only: $(cat err)"

# bzip2 chunks (UDBZ images): qemu-img reads them only with an optional
# module that Debian does not ship, so dmg2img, another reader, is the
# oracle (for one partition: it lays several out its own way).  A build
# without libbz2 fails the reads that reach them, by name.
for args in "--bzip2" "--bzip2 --plan zr0ic --chunk 300" \
	"--bzip2 --rsrc --chunk 64"; do
	$MAKE d.raw bz.dmg $args || fail "dmg-make.py $args"
	"$MIMG" info bz.dmg >/dev/null || fail "[$args]: info"
	if [ -z "${MIMG_HAVE_BZIP2:-}" ]; then
		"$MIMG" convert -O raw bz.dmg bz.raw 2>err &&
			fail "a bzip2 chunk was read without libbz2"
		grep -q "is in a bzip2-compressed chunk, which cannot be read" \
			err || fail "bzip2: $(cat err)"
		continue
	fi
	"$MIMG" convert -O raw bz.dmg bz.raw || fail "[$args]: mimg convert"
	cmp -s d.raw bz.raw || fail "[$args]: not the bytes written"
	if command -v dmg2img >/dev/null 2>&1 && [ "${args#*--rsrc}" = "$args" ]
	then
		rm -f o.raw
		dmg2img bz.dmg o.raw >/dev/null 2>&1 || fail "[$args]: dmg2img"
		cmp -s o.raw bz.raw || fail "[$args]: dmg2img reads other bytes"
	fi
	n=$((n + 1))
done
# Its data fork starts with a bzip2 stream: still a DMG, not a .bz2 file,
# also under another name when asked for as DMG.
cp bz.dmg bz.img
"$MIMG" info -f dmg bz.img | grep -q "^file format: dmg" ||
	fail "a bzip2 DMG named bz.img was taken for another format"
if [ -n "${MIMG_HAVE_BZIP2:-}" ]; then
	# a byte inside the first chunk's stream
	patched bz.dmg bad.dmg 'b[60] ^= 0xff'
	expect_error "bzip2 chunk at sector [0-9]* does not decode to its" \
		"$MIMG" convert -O raw bad.dmg bad.raw
fi

# Hostile images: each field broken in a good one.
$MAKE d.raw good.dmg --chunk 512
refused() { # refused WHAT PYTHON: the image PYTHON makes of good.dmg
	patched good.dmg bad.dmg "$2" 'k = len(b) - 512
def xml_mish(f):
    """Apply F to the first mish block of the property list."""
    global b
    xo, xl = struct.unpack_from(">QQ", b, k + 0xd8)
    xml = bytes(b[xo:xo + xl])
    m = re.search(rb"<data>(.*?)</data>", xml, re.S)
    mish = bytearray(base64.b64decode(m.group(1)))
    f(mish)
    new = xml[:m.start(1)] + base64.b64encode(bytes(mish)) + xml[m.end(1):]
    b = b[:xo] + new + b[xo + xl:k] + b[k:]
    struct.pack_into(">Q", b, len(b) - 512 + 0xe0, len(new) + xl - len(xml))'
	expect_error "$1" "$MIMG" info bad.dmg
	n=$((n + 1))
}
refused "Could not locate UDIF trailer" 'b[k:k + 4] = b"kolx"'
refused "data fork offset" 'struct.pack_into(">Q", b, k + 0x18, k + 1)'
refused "property list (" 'struct.pack_into(">Q", b, k + 0xd8, k)'
refused "sector count 18446744073709551615 is too large" \
	'struct.pack_into(">Q", b, k + 0x1ec, 2**64 - 1)'
refused "neither a resource fork nor a property list" \
	'struct.pack_into(">Q", b, k + 0xe0, 0)'
refused "property list of 16777217 bytes" \
	'b[k:k] = bytes(2**24 + 1); k += 2**24 + 1; struct.pack_into(">QQ", b, k + 0xd8, 0, 2**24 + 1)'
refused "is larger than max (131072)" \
	'xml_mish(lambda m: struct.pack_into(">Q", m, 204 + 0x10, 131073))'
refused "are outside the file" \
	'xml_mish(lambda m: struct.pack_into(">Q", m, 204 + 0x18, 2**40))'
refused "larger than max (67108864)" \
	'xml_mish(lambda m: struct.pack_into(">Q", m, 204 + 0x20, 2**26 + 1))'
refused "overlap" \
	'xml_mish(lambda m: struct.pack_into(">Q", m, 204 + 40 + 8, 0))'
refused "is past any disk" \
	'xml_mish(lambda m: struct.pack_into(">Q", m, 8, 2**64 - 2))'
refused "is not closed" \
	'i = b.index(b"</data>"); b[i:i + 7] = b"</dat_>"'
refused "at least 512 bytes long" 'b = b[:100]'
# A raw chunk storing less than its sectors (qemu-img fills the rest
# from whatever its buffer last held).
$MAKE d.raw good.dmg --plan r --chunk 512
refused "stores 1000 bytes for its 512 sectors" \
	'xml_mish(lambda m: struct.pack_into(">Q", m, 204 + 0x20, 1000))'
# A resource fork whose one resource is larger than 16 MiB.
$MAKE d.raw good.dmg --rsrc --chunk 512
refused "larger than 16777216 bytes" '
fo, fl = struct.unpack_from(">QQ", b, k + 0x28)
big = 2**24 + 1
fork = struct.pack(">IIII", 256, 256 + 4 + big, 4 + big, 0).ljust(256, b"\0")
fork += struct.pack(">I", big) + bytes(big)
b = b[:fo] + fork + b[k:]
struct.pack_into(">QQ", b, len(b) - 512 + 0x28, fo, len(fork))'
# A chunk that does not decode to its sectors fails the read.
patched good.dmg bad.dmg 'b[40] ^= 0xff' # inside the first chunk's stream
expect_error "zlib chunk at sector [0-9]* does not decode to its" \
	"$MIMG" convert -O raw bad.dmg bad.raw
echo "dmg: $n images and refusals as expected"
