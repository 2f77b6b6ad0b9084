#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# qcow2 images made by mimg, with every creation option, are what qemu-img
# makes: qemu-img check finds them clean, qemu-img info reports the same
# options and size, the file has the same length; data written by mimg
# convert (new target, and -n into a qemu-made target) compares identical
# with qemu-img compare.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/qcow2-lib.sh"

make_pattern_raw pat.raw 4M

# same_format_specific A B WHAT: qemu-img info of both agrees on
# everything but the file name and allocation (compared by json_checks).
same_format_specific() {
	qemu-img info --output=json "$1" >fs.a.json || fail "qemu-img info $1"
	qemu-img info --output=json "$2" >fs.b.json || fail "qemu-img info $2"
	json_queue fs fs.b.json fs.a.json "$3 ($1 and $2)"
}

n=0
for opts in "" $QCOW2_VARIANTS refcount_bits=64 preallocation=off \
	cluster_size=512,preallocation=metadata
do
	n=$((n + 1))
	rm -f m.qcow2 q.qcow2 c.qcow2 t.qcow2 m.data q.data c.data t.data
	mopts=$(echo "$opts" | sed 's/@DATA@/m.data/')
	qopts=$(echo "$opts" | sed 's/@DATA@/q.data/')
	copts=$(echo "$opts" | sed 's/@DATA@/c.data/')
	topts=$(echo "$opts" | sed 's/@DATA@/t.data/')
	size=4M
	case $opts in *2M*) size=16M ;; esac

	# Creation: same image as qemu's.
	"$MIMG" create -f qcow2 ${mopts:+-o "$mopts"} m.qcow2 $size ||
		fail "mimg create -o $mopts"
	qemu-img create -q -f qcow2 ${qopts:+-o "$qopts"} q.qcow2 $size ||
		fail "qemu-img create -o $qopts"
	qemu_clean m.qcow2 "(mimg create -o $opts)"
	same_format_specific m.qcow2 q.qcow2 "create -o $opts"
	[ "$(stat -c %s m.qcow2)" = "$(stat -c %s q.qcow2)" ] ||
		fail "create -o $opts: mimg made $(stat -c %s m.qcow2) bytes, qemu-img $(stat -c %s q.qcow2)"
	# A raw data file is a raw image of the whole disk.
	case $opts in
	*data_file_raw=on*)
		[ "$(stat -c %s m.data)" = "$(stat -c %s q.data)" ] ||
			fail "create -o $opts: data file of $(stat -c %s m.data) bytes, qemu's $(stat -c %s q.data)"
		;;
	esac
	qemu-img compare -q -f qcow2 -F qcow2 m.qcow2 q.qcow2 ||
		fail "create -o $opts: fresh image does not read as zeroes"

	# Convert into a new image.
	"$MIMG" convert -f raw -O qcow2 ${copts:+-o "$copts"} pat.raw c.qcow2 ||
		fail "mimg convert -o $copts"
	qemu-img compare -f raw -F qcow2 pat.raw c.qcow2 >cmp.out 2>&1 ||
		{ cat cmp.out >&2; fail "convert -o $opts: content differs"; }
	# qemu-img reads pat.raw from it: so must mimg.
	rm -f c.raw
	"$MIMG" convert -f qcow2 -O raw c.qcow2 c.raw ||
		fail "mimg convert c.qcow2 (-o $opts) to raw"
	cmp pat.raw c.raw >/dev/null ||
		fail "mimg reads c.qcow2 (-o $opts) differently from qemu-img"
	same_info c.qcow2
	# qemu-img check finds it clean (the same run as mimg check's oracle)
	same_check c.qcow2 "(mimg convert -o $opts)"
	[ "$_qs" = 0 ] || { cat check.q.json >&2
		fail "qemu-img check c.qcow2 (exit $_qs) (mimg convert -o $opts)"; }

	# Convert into an existing image qemu made (-n).
	qemu-img create -q -f qcow2 ${topts:+-o "$topts"} t.qcow2 $size ||
		fail "qemu-img create -o $topts"
	"$MIMG" convert -n -f raw -O qcow2 pat.raw t.qcow2 ||
		fail "mimg convert -n into -o $opts"
	qemu_clean t.qcow2 "(mimg convert -n, -o $opts)"
	qemu-img compare -f raw -F qcow2 pat.raw t.qcow2 >cmp.out 2>&1 ||
		{ cat cmp.out >&2; fail "convert -n into -o $opts: content differs"; }
done

# Sizes that are not cluster multiples, and the smallest image.
for size in 1 512 65537 1000000; do
	rm -f m.qcow2 q.qcow2
	"$MIMG" create -f qcow2 m.qcow2 $size || fail "mimg create size $size"
	qemu-img create -q -f qcow2 q.qcow2 $size
	qemu_clean m.qcow2 "(size $size)"
	same_format_specific m.qcow2 q.qcow2 "size $size"
done
# Option sets qemu-img refuses are refused too.
for opts in compat=0.10,refcount_bits=8 extended_l2=on,cluster_size=4k \
	data_file_raw=on cluster_size=65537 cluster_size=4M cluster_size=256 \
	refcount_bits=3 refcount_bits=128 compat=0.10,lazy_refcounts=on \
	compat=0.10,extended_l2=on compat=0.9 preallocation=bogus \
	compression_type=lz4 compat=0.10,compression_type=zstd nosuchopt=1 \
	compat=0.10,data_file=bad.data
do
	qemu-img create -q -f qcow2 -o "$opts" q.qcow2 1M >/dev/null 2>&1 &&
		fail "oracle: qemu-img accepts -o $opts"
	"$MIMG" create -f qcow2 -o "$opts" bad.qcow2 1M >/dev/null 2>&1 &&
		fail "mimg create accepts -o $opts, qemu-img refuses it"
done
json_checks
echo "ok: $n option sets created and written like qemu-img"
