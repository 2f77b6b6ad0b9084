#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# cloop images against qemu-img 7.2, which reads them but cannot make
# them: images written by cloop-make.py as create_compressed_fs lays
# them out (blocks of 512 bytes to 1 MiB, deflate levels 0 to 9, junk
# after a stream, a disk padded to whole blocks, no blocks at all) read
# the same bytes and give the same info, map, check, compare and measure
# output in both; they are read only; hostile headers and offsets are
# refused, and blocks that cannot be read fail the reads that reach
# them, each naming the field or the block.
. "$TESTLIB"
need qemu-img python3
need_format cloop
MAKE="python3 $(dirname "$TESTLIB")/cloop-make.py"

# A disk of random, text and zero pieces, not whole blocks.
mixed_raw d.raw 3 13
head -c 5000 d.raw >tail.raw
cat tail.raw >>d.raw
: >e.raw

n=0
for args in "" "--block 512 --plan z0t1" "--block 16384 --plan 0" \
	"--block 1048576 --plan t" "--block 4096 --plan 1z" "e.raw"; do
	src=d.raw
	[ "$args" = e.raw ] && { src=e.raw; args=; }
	# shellcheck disable=SC2086 # the options' words
	$MAKE $src t.cloop $args || fail "cloop-make.py $args"
	same_reading cloop t.cloop "[$args]"
done
# What was written is what is read, the disk padded to whole blocks, in
# whole and in reads that start and end inside sectors and blocks.
$MAKE d.raw t.cloop --block 65536 --plan z0t
cp d.raw p.raw
truncate -s 3211264 p.raw
"$MIMG" compare -q -f cloop -F raw t.cloop p.raw || fail "not the bytes written"
same_dd cloop t.cloop

# Read only, as in qemu-img; no creation.
only_read cloop t.cloop d.raw

# Hostile headers and offsets, each broken in a good image (big-endian
# fields: the block size at 128, the count at 132, offsets from 136).
# QEMU: qemu-img refuses it too, with the same words.
$MAKE d.raw good.cloop --block 65536
# off(i) and set_off(i, v): offset I of the table.
OFFSETS='import zlib
def off(i):
    return struct.unpack_from(">Q", b, 136 + 8 * i)[0]
def set_off(i, v):
    struct.pack_into(">Q", b, 136 + 8 * i, v)'
refused() { # refused WHAT PYTHON [QEMU]
	patched good.cloop bad.cloop "$2" "$OFFSETS"
	expect_error "$1" "$MIMG" info bad.cloop
	[ $# -lt 3 ] || same_output "$1" info bad.cloop
	[ $# -lt 3 ] || grep -q "$1" q.err || fail "$1: qemu-img: $(cat q.err)"
	n=$((n + 1))
}
refused "block_size 1000 must be a multiple of 512" \
	'struct.pack_into(">I", b, 128, 1000)' QEMU
refused "block_size cannot be zero" 'struct.pack_into(">I", b, 128, 0)' QEMU
refused "block_size 67109376 must be 64 MB or less" \
	'struct.pack_into(">I", b, 128, 2**26 + 512)' QEMU
refused "n_blocks 536870912 must be 536870911 or less" \
	'struct.pack_into(">I", b, 132, 2**29)' QEMU
refused "image requires too many offsets, try increasing block size" \
	'struct.pack_into(">I", b, 132, 2**26)' QEMU
refused "offsets not monotonically increasing at index 3, image file is" \
	'set_off(3, off(2) - 1)' QEMU
refused "invalid compressed block size at index 1, image file is corrupt" \
	'set_off(0, 0); set_off(1, 2**27 + 1); set_off(2, 2**27 + 2)' QEMU
# Beyond qemu-img's checks: an offsets table the file does not hold
# (qemu-img reads zeroes for it).
refused "offsets table of 1000001 entries at 136 is past the end of the" \
	'struct.pack_into(">I", b, 132, 1000000)'
refused "block_size cannot be zero" 'b[:] = b[:128]' QEMU

# Blocks that cannot be read fail the reads that reach them, naming the
# block; the image still opens, as in qemu-img.  QEMU: qemu-img's read
# fails too.
read_fails() { # read_fails WHAT PYTHON [QEMU]
	patched good.cloop bad.cloop "$2" "$OFFSETS"
	same_output "$1: info" info bad.cloop
	read_refused "$1" bad.cloop
	if [ $# -ge 3 ] && qemu-img convert -O raw bad.cloop bad.raw 2>/dev/null
	then
		fail "$1: qemu-img reads it"
	fi
	n=$((n + 2))
}
read_fails "block 2 (.* bytes at .*) does not inflate to a block of 65536" \
	'b[off(2) + 10] ^= 0xff' QEMU
# The last block inflates short of a whole block (a cloop image whose
# last block was stored short).
read_fails "block 48 (.* bytes at .*) does not inflate to a block of 65536" \
	'b[:] = b[:off(48)] + zlib.compress(bytes(range(256)) * 40); set_off(49, len(b))' \
	QEMU
read_fails "block 1 of 5 bytes is too short to inflate to 65536 bytes" \
	'set_off(1, off(2) - 5)' QEMU
read_fails "block 48 (.* bytes at .*) is past the end of the file" \
	'b[:] = b[:-1]'
echo "cloop: $n outputs and refusals as expected"
