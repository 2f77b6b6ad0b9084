#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg reads qcow2 images made by qemu-img with every creation option and
# written by qemu-io (data, unaligned writes, zeroes, discards, compressed
# clusters), and qemu overlays on top of each: byte for byte what qemu-img
# reads.  mimg info and check agree with qemu-img on each image.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/qcow2-lib.sh"

# The writes every image gets, in one qemu-io; sizes chosen so that with
# every cluster size some are partial clusters, some span clusters.
# image_writes IMG CLUSTER_SIZE COMPRESSED: with COMPRESSED=yes, compressed
# clusters first: qemu compresses only into clusters that are not
# allocated yet (and they need whole clusters).
image_writes() {
	_img=$1 _cs=$2 _compressed=$3
	set --
	[ "$_compressed" = yes ] && set -- "write -c -P 0x77 0 $_cs" \
		"write -c -P 0x78 $((_cs * 4)) $((_cs * 2))" \
		"write -P 0x79 $((_cs * 4 + 7)) 100"
	qio "$_img" qcow2 "$@" "write -P 0x11 0 64k" "write -P 0x22 100k 3k" \
		"write -P 0x33 1M 512" "write -z 1M 256k" \
		"write -P 0x44 2M 1M" "discard 2M 256k" \
		"write -z -u 3M 128k" "write -P 0x55 4095k 1k" \
		"write -P 0x66 511 1025"
}

n=0
for opts in $QCOW2_VARIANTS cluster_size=64k \
	compression_type=zstd,cluster_size=4k
do
	n=$((n + 1))
	opts=$(echo "$opts" | sed 's/@DATA@/data.bin/')
	rm -f img.qcow2 ov.qcow2 data.bin
	size=4M
	case $opts in *2M*) size=16M ;; esac
	qemu-img create -q -f qcow2 -o "$opts" img.qcow2 $size ||
		fail "qemu-img create -o $opts"
	cs=65536
	case $opts in
	*cluster_size=512*) cs=512 ;;
	*cluster_size=4k*) cs=4096 ;;
	*cluster_size=16k*) cs=16384 ;;
	*cluster_size=2M*) cs=2097152 ;;
	esac
	# qemu never compresses with a data file.
	case $opts in
	data_file* | *preallocation*) image_writes img.qcow2 "$cs" no ;;
	*) image_writes img.qcow2 "$cs" yes ;;
	esac
	same_content img.qcow2 qcow2 "($opts)"
	same_info img.qcow2
	same_check img.qcow2 "($opts)"

	# A qemu overlay on it, partly overwritten: reads go down the chain.
	qemu-img create -q -f qcow2 -b img.qcow2 -F qcow2 ov.qcow2 ||
		fail "overlay on $opts"
	qio ov.qcow2 qcow2 "write -P 0xa1 60k 8k" "write -z 2100k 4k" \
		"discard 0 4k" "write -P 0xa2 3000k 1"
	same_content ov.qcow2 qcow2 "(overlay on $opts)"
	same_info ov.qcow2
done
echo "ok: $n qemu-made image kinds read identically"
