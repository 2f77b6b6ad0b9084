#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# QED images made and written by qemu-img 7.2 (cluster and table sizes,
# sizes not whole sectors, zero clusters, raw and qcow2 backing files, a
# grown image): mimg reads the same bytes and prints the same info, map
# and check output, also for images with leaked, shared and misplaced
# clusters; such images are read only in mimg; hostile headers and tables
# are refused or fail the read that reaches them, naming the field.
. "$TESTLIB"
need qemu-img qemu-io python3
need_format qed

backing_bases
mixed_raw mixed.raw 3 7

qemu-img create -q -f qed odd.qed 1000
qemu-img create -q -f qed empty.qed 0
qemu-img create -q -f qed plain.qed 8M
qemu-io -f qed -c 'write -P 0x21 0 64k' -c 'write -P 0x22 5M 3000' \
	-c 'write -z 6M 128k' -c 'write -P 0x23 7M 200k' plain.qed >/dev/null
# 4 KiB clusters, tables of two: data on both sides of an L2 table's end
qemu-img create -q -f qed -o cluster_size=4096,table_size=2 small.qed 16M
qemu-io -f qed -c 'write -P 0x31 4092k 8k' -c 'write -P 0x32 12M 4k' \
	-c 'write -z 13M 12k' small.qed >/dev/null
qemu-img create -q -f qed -o cluster_size=1M,table_size=16 big.qed 64M
qemu-io -f qed -c 'write -P 0x33 3M 2M' big.qed >/dev/null
qemu-img create -q -f qed -b base.raw -F raw over-raw.qed 4M
qemu-io -f qed -c 'write -P 0x41 64k 4k' -c 'write -z 1M 64k' \
	-c 'write -P 0x42 3M 100k' over-raw.qed >/dev/null
# a probed backing file, smaller than the overlay
qemu-img create -q -f qed -b base.qcow2 -F qcow2 over-qcow2.qed 6M
qemu-io -f qed -c 'write -P 0x43 512 512' -c 'write -P 0x44 5M 4k' \
	over-qcow2.qed >/dev/null
qemu-img convert -O qed mixed.raw full.qed
qemu-img create -q -f qed grown.qed 2M
qemu-io -f qed -c 'write -P 0x51 1M 1M' grown.qed >/dev/null
qemu-img resize -q grown.qed 5M
qemu-io -f qed -c 'write -P 0x52 4M 64k' grown.qed >/dev/null

# Broken by hand: a leaked cluster, two entries naming one cluster and
# an entry outside the file, an L1 entry naming another's L2 table.
tables() { # tables SRC DST PYTHON: edit SRC's tables (b, l1, l2) into DST
	patched "$1" "$2" "$3" 'l1 = struct.unpack_from("<Q", b, 40)[0]
l2 = struct.unpack_from("<Q", b, l1)[0]'
}
cp plain.qed leak.qed
truncate -s +64k leak.qed
tables plain.qed shared.qed 'e = struct.unpack_from("<Q", b, l2)[0]
struct.pack_into("<Q", b, l2 + 8, e); struct.pack_into("<Q", b, l2 + 16, 2**40)'
tables small.qed twice.qed 'struct.pack_into("<Q", b, l1 + 16, l2)'
tables small.qed badl1.qed 'struct.pack_into("<Q", b, l1 + 16, 4096 * 3 + 1)'

n=0
for f in odd empty plain small big over-raw over-qcow2 full grown; do
	qemu-img convert -O raw $f.qed q.raw || fail "qemu-img reads $f"
	"$MIMG" convert -O raw $f.qed m.raw || fail "mimg convert $f"
	cmp -s q.raw m.raw || fail "$f: mimg reads other bytes than qemu-img"
	for cmd in "info" "info --output=json" "info --backing-chain" \
		"map --output=json" "map" "check" "check --output=json" \
		"measure -O qcow2"; do
		# shellcheck disable=SC2086 # the command's words
		same_output -e "$cmd $f" $cmd $f.qed
		n=$((n + 1))
	done
	same_output "compare $f" compare -f qed -F raw $f.qed q.raw
done
"$MIMG" compare -q mixed.raw full.qed || fail "full.qed does not hold its source"
for f in leak shared twice badl1; do
	same_output -e "check $f" check $f.qed
	same_output -e "check --output=json $f" check --output=json $f.qed
	n=$((n + 2))
done

# Read only in mimg (qemu-img writes them): a clear refusal.
"$MIMG" convert -n -O qed mixed.raw full.qed 2>err &&
	fail "a QED image was opened for writing"
grep -q "qed: images are read only in mimg" err || fail "rw: $(cat err)"
"$MIMG" create -f qed new.qed 1M >out 2>err && fail "a QED image was created"
grep -q "new.qed: Format driver 'qed' does not support image creation" err ||
	fail "create: $(cat err)"
[ -s out ] && fail "create printed a Formatting line: $(cat out)"

# Hostile headers (little-endian fields of a good image).
refused() { # refused WHAT PYTHON SRC: opening the image PYTHON makes fails
	header_refused qed "$3" "$1" "$2"
	n=$((n + 1))
}
refused "Image not in QED format" 'b[0] = 0x52' plain.qed
refused "Unsupported QED features: 8" 'struct.pack_into("<Q", b, 16, 8)' plain.qed
refused "cluster size 2048 is not a power of 2" \
	'struct.pack_into("<I", b, 4, 2048)' plain.qed
refused "cluster size 98304 is not a power of 2" \
	'struct.pack_into("<I", b, 4, 98304)' plain.qed
refused "table size 32 is not a power of 2" \
	'struct.pack_into("<I", b, 8, 32)' plain.qed
refused "table size 0 is not a power of 2" \
	'struct.pack_into("<I", b, 8, 0)' plain.qed
refused "header of 1000 clusters does not fit the file" \
	'struct.pack_into("<I", b, 12, 1000)' plain.qed
refused "image size 1000 is not whole sectors" \
	'struct.pack_into("<Q", b, 48, 1000)' plain.qed
refused "or more than the tables map" \
	'struct.pack_into("<Q", b, 48, 2**62)' small.qed
refused "the L1 table at 1099511627776 is not a whole table" \
	'struct.pack_into("<Q", b, 40, 2**40)' plain.qed
refused "the L1 table at 65537 is not a whole table" \
	'struct.pack_into("<Q", b, 40, 65537)' plain.qed
refused "the L1 table at 0 is not a whole table" \
	'struct.pack_into("<Q", b, 40, 0)' plain.qed
refused "backing file name at 65530 of 8 bytes is not inside the header" \
	'struct.pack_into("<I", b, 56, 65530)' over-raw.qed
refused "backing file name at 64 of 5000 bytes is not inside the header" \
	'struct.pack_into("<I", b, 60, 5000)' over-raw.qed
refused "shorter than the header" 'b = b[:40]' plain.qed

# Tables and clusters at invalid offsets fail the reads that reach them.
read_fails() { # read_fails WHAT PYTHON SRC
	tables "$3" bad.qed "$2"
	read_refused "$1" bad.qed
	n=$((n + 1))
}
read_fails "L1 entry 0 gives the L2 table an invalid offset 1099511627776" \
	'struct.pack_into("<Q", b, l1, 2**40)' plain.qed
read_fails "L1 entry 0 gives the L2 table an invalid offset 4097" \
	'struct.pack_into("<Q", b, l1, 4097)' plain.qed
read_fails "is an invalid cluster offset 1099511627776" \
	'struct.pack_into("<Q", b, l2, 2**40)' plain.qed
read_fails "is an invalid cluster offset 2" \
	'struct.pack_into("<Q", b, l2, 2)' plain.qed
echo "qed: $n outputs and refusals as expected"
