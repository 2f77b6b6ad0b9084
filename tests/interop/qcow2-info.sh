#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg info --output json prints every key qemu-img info prints for qcow2
# images, with the same values: plain images of each creation option,
# backing chains (--backing-chain), external data files, snapshots,
# persistent bitmaps, a dirty lazy-refcounts image, an image marked
# corrupt, images given with and without -f.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/qcow2-lib.sh"

# set_incompat IMG BIT: set an incompatible feature bit in the header
# (0 dirty, 1 corrupt), as a crash or a detected corruption leaves it.
set_incompat() {
	python3 -c 'import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(72)
    v = struct.unpack(">Q", f.read(8))[0] | (1 << int(sys.argv[2]))
    f.seek(72)
    f.write(struct.pack(">Q", v))' "$1" "$2"
}

n=0
for opts in "" compat=0.10 cluster_size=512 cluster_size=2M \
	refcount_bits=1 refcount_bits=64 lazy_refcounts=on \
	compression_type=zstd extended_l2=on preallocation=metadata \
	preallocation=full data_file=d.bin data_file=d.bin,data_file_raw=on
do
	n=$((n + 1))
	rm -f i.qcow2 d.bin
	qemu-img create -q -f qcow2 ${opts:+-o "$opts"} i.qcow2 3M ||
		fail "create -o $opts"
	qio i.qcow2 qcow2 "write -P 1 0 100k"
	same_info i.qcow2
	same_info i.qcow2 -f qcow2
done

# Sizes that are not cluster multiples.
for size in 512 1000000 1G; do
	qemu-img create -q -f qcow2 s.qcow2 $size
	same_info s.qcow2
done

# Chains, including a raw base and a relative name in a subdirectory.
qemu-img create -q -f raw base.raw 2M
qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 3M
mkdir sub
qemu-img create -q -f qcow2 -b ../mid.qcow2 -F qcow2 sub/top.qcow2
same_info mid.qcow2 --backing-chain
same_info sub/top.qcow2
same_info sub/top.qcow2 --backing-chain

# Snapshots (names, ids, sizes, dates and VM clock come from the file).
qemu-img create -q -f qcow2 sn.qcow2 1M
qio sn.qcow2 qcow2 "write -P 2 0 64k"
qemu-img snapshot -c one sn.qcow2
qio sn.qcow2 qcow2 "write -P 3 0 64k"
qemu-img snapshot -c "two words" sn.qcow2
same_info sn.qcow2

# Persistent dirty bitmaps are listed in format-specific data.
qemu-img create -q -f qcow2 bm.qcow2 1M
qemu-img bitmap --add bm.qcow2 b0
qemu-img bitmap --add --disable -g 128k bm.qcow2 b1
same_info bm.qcow2

# Header flags.
qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 1M
set_incompat dirty.qcow2 0
same_info dirty.qcow2
qemu-img create -q -f qcow2 corrupt.qcow2 1M
set_incompat corrupt.qcow2 1
same_info corrupt.qcow2
echo "ok: info JSON for $n option sets and special images"
