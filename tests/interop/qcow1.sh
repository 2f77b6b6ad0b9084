#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# qcow version 1 images made and written by qemu-img 7.2 (sizes not whole
# sectors, raw and qcow2 backing files, compressed conversions): mimg
# reads the same bytes and prints the same info, map and check output;
# such images are read only in mimg; hostile headers and tables are
# refused or fail the read that reaches them, naming the field.
. "$TESTLIB"
need qemu-img qemu-io python3
need_format qcow

backing_bases
mixed_raw mixed.raw 3 7 # text first: a compressed first cluster

qemu-img create -q -f qcow odd.qcow 1000
qemu-img create -q -f qcow plain.qcow 8M
qemu-io -f qcow -c 'write -P 0x21 0 64k' -c 'write -P 0x22 5M 3000' \
	-c 'write -z 6M 64k' plain.qcow >/dev/null
qemu-img create -q -f qcow -b base.raw -F raw over-raw.qcow 4M
qemu-io -f qcow -c 'write -P 0x23 64k 4k' -c 'write -P 0x24 3M 100k' \
	over-raw.qcow >/dev/null
qemu-img create -q -f qcow -b base.qcow2 -F qcow2 over-qcow2.qcow 6M
qemu-io -f qcow -c 'write -P 0x25 512 512' over-qcow2.qcow >/dev/null
qemu-img convert -c -O qcow mixed.raw comp.qcow
qemu-img convert -O qcow mixed.raw full.qcow

n=0
for f in odd plain over-raw over-qcow2 comp full; do
	qemu-img convert -O raw $f.qcow q.raw || fail "qemu-img reads $f"
	"$MIMG" convert -O raw $f.qcow m.raw || fail "mimg convert $f"
	cmp -s q.raw m.raw || fail "$f: mimg reads other bytes than qemu-img"
	for cmd in "info" "info --output=json" "info --backing-chain" \
		"map --output=json" "map" "check" "measure -O qcow2"; do
		# shellcheck disable=SC2086 # the command's words
		same_output -e "$cmd $f" $cmd $f.qcow
		n=$((n + 1))
	done
	same_output "compare $f" compare -f qcow -F raw $f.qcow q.raw
done
"$MIMG" compare -q mixed.raw comp.qcow ||
	fail "the compressed image does not hold its source"

# Read only in mimg (qemu-img writes them): a clear refusal.
"$MIMG" convert -n -O qcow mixed.raw full.qcow 2>err &&
	fail "a qcow image was opened for writing"
grep -q "version 1 images are read only in mimg" err || fail "rw: $(cat err)"

# Hostile headers (big-endian fields of a good image).
refused() { # refused WHAT PYTHON SRC: opening the image PYTHON makes fails
	header_refused qcow "$3" "$1" "$2"
	n=$((n + 1))
}
refused "does not support qcow version 2" 'struct.pack_into(">I", b, 4, 2)' plain.qcow
refused "Image size is too small" 'struct.pack_into(">Q", b, 24, 1)' plain.qcow
refused "Cluster size must be between 512 and 64k" 'b[32] = 17' plain.qcow
refused "Cluster size must be between 512 and 64k" 'b[32] = 8' plain.qcow
refused "L2 table size must be between 512 and 64k" 'b[33] = 14' plain.qcow
refused "AES-encrypted images are not supported" \
	'struct.pack_into(">I", b, 36, 1)' plain.qcow
refused "invalid encryption method" 'struct.pack_into(">I", b, 36, 2)' plain.qcow
refused "Image too large" 'struct.pack_into(">Q", b, 24, 2**64 - 1)' plain.qcow
refused "L1 table of 4 entries at 1099511627776 is outside the file" \
	'struct.pack_into(">Q", b, 40, 2**40)' plain.qcow
refused "Backing file name too long" 'struct.pack_into(">I", b, 16, 1024)' \
	over-raw.qcow
refused "backing file name at 4294967296 of 8 bytes is outside the file" \
	'struct.pack_into(">Q", b, 8, 2**32)' over-raw.qcow
refused "shorter than the header" 'b = b[:40]' plain.qcow

# Tables and clusters outside the file fail the reads that reach them.
read_fails() { # read_fails WHAT PYTHON SRC (b, l1 and l2 known)
	patched "$3" bad.qcow "$2" 'l1 = struct.unpack_from(">Q", b, 40)[0]
l2 = struct.unpack_from(">Q", b, l1)[0]'
	read_refused "$1" bad.qcow
	n=$((n + 1))
}
read_fails "places its L2 table at 1099511627776, outside the file" \
	'struct.pack_into(">Q", b, l1, 2**40)' plain.qcow
read_fails "is at 1099511627776, outside the file" \
	'struct.pack_into(">Q", b, l2, 2**40)' plain.qcow
read_fails "compressed cluster at 1099511627776 of" \
	'e = struct.unpack_from(">Q", b, l2)[0]; struct.pack_into(">Q", b, l2, (e & ~(2**51 - 1)) | 2**40)' \
	comp.qcow
read_fails "does not inflate to a cluster" \
	'e = struct.unpack_from(">Q", b, l2)[0]; o = e & (2**51 - 1); b[o:o + 8] = bytes([0xff] * 8)' \
	comp.qcow
echo "qcow1: $n outputs and refusals as expected"
