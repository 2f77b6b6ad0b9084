#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Bochs growing images against qemu-img 7.2, which reads them but cannot
# make them: images written by bochs-make.py as Bochs lays them out
# (header versions 1 and 2, extents of 512 bytes to 8 MiB, unallocated
# extents, sectors whose bitmap bit is clear over junk, larger bitmaps,
# extents stored out of order, disks that are not whole extents or
# sectors, a spare catalog) read the same bytes and give the same info,
# map, check, compare and measure output in both; they are read only;
# hostile headers are refused and bad catalog entries fail the reads
# that reach them, each naming the field.
. "$TESTLIB"
need qemu-img python3
need_format bochs
MAKE="python3 $(dirname "$TESTLIB")/bochs-make.py"

python3 - <<'PY'
import random
r = random.Random(11)
b = bytearray(3 << 20)
for i in range(0, len(b), 4096):
    k = r.randrange(4)
    if k == 0:
        b[i:i + 4096] = r.randbytes(4096)
    elif k == 1:
        b[i:i + 4096] = b"bochs   " * 512
    elif k == 2:  # one sector of data among zero sectors
        b[i + 1024:i + 1536] = r.randbytes(512)
# a long run of zeroes: whole extents left unallocated
b[1 << 20:(1 << 20) + 300000] = bytes(300000)
open("d.raw", "wb").write(b)
PY

n=0
for args in "" "--version 1" "--plan as --extent 4096" \
	"--version 1 --plan z --extent 512" "--plan cs --extent 8388608" \
	"--plan s --disk 3500000" "--disk 1000001 --reverse" \
	"--catalog 200 --bitmap 1536 --plan csa" "--version 1 --disk 0"; do
	# shellcheck disable=SC2086 # the options' words
	$MAKE d.raw t.bochs $args || fail "bochs-make.py $args"
	same_reading bochs t.bochs "[$args]"
done
# What was written is what is read (qemu-img agreeing is not enough), in
# whole and in reads that start and end inside sectors and extents.
$MAKE d.raw t.bochs --plan csa --extent 65536
"$MIMG" compare -q -f bochs -F raw t.bochs d.raw || fail "not the bytes written"
same_dd bochs t.bochs

# Read only, as in qemu-img; no creation.
only_read bochs t.bochs d.raw

# Hostile headers: each field broken in a good image.  QEMU: qemu-img
# refuses it too (exit status and stdout compared).
$MAKE d.raw good.bochs --extent 65536 --plan z
refused() { # refused WHAT PYTHON [QEMU]
	header_refused bochs good.bochs "$1" "$2"
	[ $# -lt 3 ] || same_output "$1" info -f bochs bad.bochs
	n=$((n + 1))
}
refused "Image not in Bochs format" 'b[0] = 0x63' QEMU
refused "Image not in Bochs format" 'b[39] = 0x78' QEMU
refused "Image not in Bochs format" 'struct.pack_into("<I", b, 64, 0x30000)' QEMU
refused "Catalog size is too large (1048577 entries" \
	'struct.pack_into("<I", b, 72, 0x100001)' QEMU
refused "Extent size must be at least 512 (not 256)" \
	'struct.pack_into("<I", b, 80, 256)' QEMU
refused "Extent size 12288 is not a power of two" \
	'struct.pack_into("<I", b, 80, 12288)' QEMU
refused "Extent size 16777216 is too large" \
	'struct.pack_into("<I", b, 80, 2**24)' QEMU
refused "Catalog size is too small for this disk size (48 entries" \
	'struct.pack_into("<Q", b, 88, 2**40)' QEMU
# Beyond qemu-img's checks: a catalog the file does not hold (qemu-img
# reads zeroes for it), or whose extents would start past 4 GiB.
refused "catalog of 48 entries at 2147483648 is past the end of the file" \
	'struct.pack_into("<I", b, 68, 2**31)'
refused "catalog of 48 entries at 4294967040 is past the end" \
	'struct.pack_into("<I", b, 68, 2**32 - 256)'
refused "catalog of 1000000 entries at 512 is past the end of the file" \
	'struct.pack_into("<I", b, 72, 1000000)'
# The file cut inside the header: zeroes, as qemu-img reads them.
refused "Image not in Bochs format" 'b[:] = b[:40]' QEMU

# Catalog entries the file does not hold fail the reads that reach them,
# naming the entry; the image still opens, as in qemu-img.
read_fails() { # read_fails WHAT PYTHON
	patched good.bochs bad.bochs "$2"
	same_output "$1: info" info bad.bochs
	read_refused "$1" bad.bochs
	n=$((n + 2))
}
read_fails "entry 1 names stored extent 100000, whose bitmap is past the" \
	'struct.pack_into("<I", b, 512 + 4, 100000)'
read_fails "entry 0 names stored extent 4294967294, whose bitmap is past" \
	'struct.pack_into("<I", b, 512, 2**32 - 2)'
read_fails "entry 47 names stored extent 47, whose sector 127 is past the" \
	'b[:] = b[:-1]'
echo "bochs: $n outputs and refusals as expected"
