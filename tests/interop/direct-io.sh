#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Direct I/O (O_DIRECT) on a disk-backed directory: mimg convert with every
# cache mode of the output (-t) and the source (-T none), for every output
# format, from raw, qcow2 (with compressed clusters) and VMDK sources made
# by qemu-img with data at unaligned offsets.  qemu-img compare checks the
# content, qemu-img check the metadata.  Then the argument lists Nova and
# ironic build for qemu-img convert, replayed with mimg.
TMPDIR=${BUILD_ROOT:-${TMPDIR:-/var/tmp}}
export TMPDIR
. "$TESTLIB"
need qemu-img qemu-io python3

fstype=$(stat -f -c %T "$T")
case $fstype in
tmpfs|ramfs) echo "SKIP: $T is on $fstype, not a disk"; exit 77 ;;
esac
python3 -c 'import os,sys
try:
    os.close(os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_DIRECT))
except OSError:
    sys.exit(1)' odirect.probe ||
	{ echo "SKIP: $fstype refuses O_DIRECT"; exit 77; }

formats=$("$MIMG" --help | sed -n 's/^Formats://p')
has() { case " $formats " in *" $1 "*) return 0 ;; esac; return 1; }

# Sources: data at unaligned offsets, a zeroed range, a tail that does not
# fill a sector of the last cluster.
qemu-img create -q -f raw src.raw 12M
qemu-io -f raw -c 'write -P 0x5a 1000 70000' -c 'write -P 0x33 3M 1M' \
	-c 'write -P 0x71 7340031 4097' -c 'write -z 3200k 64k' \
	-c 'write -P 0x19 12582400 512' src.raw >/dev/null ||
	fail "qemu-io writing the raw source"
qemu-img convert -f raw -O qcow2 -c src.raw src.qcow2 ||
	fail "qemu-img making the compressed qcow2 source"
qemu-io -f qcow2 -c 'write -P 0x44 5M 12345' src.qcow2 >/dev/null ||
	fail "qemu-io writing the qcow2 source"
qemu-img convert -f qcow2 -O vmdk src.qcow2 src.vmdk ||
	fail "qemu-img making the vmdk source"

check_out() { # FMT FILE WHAT
	qemu-img compare -q -f raw -F "$1" ref.raw "$2" ||
		fail "$3: content differs"
	case $1 in
	qcow2|vmdk|vdi)
		qemu-img check -q -f "$1" "$2" || fail "$3: qemu-img check" ;;
	esac
}

for src in src.raw src.qcow2 src.vmdk; do
	sfmt=${src#src.}
	qemu-img convert -f "$sfmt" -O raw "$src" ref.raw ||
		fail "qemu-img convert $src"
	for ofmt in raw qcow2 vmdk vpc vdi; do
		has "$ofmt" || continue
		caches="none directsync"
		[ "$src" = src.raw ] &&
			caches="$caches writeback writethrough unsafe"
		for cache in $caches; do
			rm -f out.img
			"$MIMG" convert -T none -t "$cache" -f "$sfmt" \
				-O "$ofmt" "$src" out.img ||
				fail "convert -T none -t $cache $src -O $ofmt"
			check_out "$ofmt" out.img "$src -t $cache -O $ofmt"
		done
	done
	# compressed and streamOptimized outputs write at byte granularity
	rm -f out.img
	"$MIMG" convert -t none -c -f "$sfmt" -O qcow2 "$src" out.img ||
		fail "convert -t none -c $src"
	check_out qcow2 out.img "$src -t none -c -O qcow2"
	rm -f out.img
	"$MIMG" convert -t none -f "$sfmt" -O vmdk \
		-o subformat=streamOptimized "$src" out.img ||
		fail "convert -t none to streamOptimized"
	check_out vmdk out.img "$src -t none streamOptimized"
	# split VMDK: the descriptor keeps its exact size
	rm -f out.img split*.vmdk
	"$MIMG" convert -t none -f "$sfmt" -O vmdk \
		-o subformat=twoGbMaxExtentSparse "$src" split.vmdk ||
		fail "convert -t none to twoGbMaxExtentSparse"
	check_out vmdk split.vmdk "$src -t none twoGbMaxExtentSparse"
	mkdir -p cached
	"$MIMG" convert -f "$sfmt" -O vmdk \
		-o subformat=twoGbMaxExtentSparse "$src" cached/split.vmdk ||
		fail "cached convert to twoGbMaxExtentSparse"
	check_eq "$(stat -c %s split.vmdk)" "$(stat -c %s cached/split.vmdk)" \
		"direct descriptor size"
	rm -rf split*.vmdk cached
done

# -n into an existing image opened with O_DIRECT
qemu-img convert -f raw -O raw src.raw ref.raw
qemu-img create -q -f qcow2 exist.qcow2 12M
"$MIMG" convert -n -t none -T none -f raw -O qcow2 src.raw exist.qcow2 ||
	fail "convert -n -t none"
check_out qcow2 exist.qcow2 "-n -t none"

# Nova (nova/virt/images.py _convert_image) with an instance directory
# that supports O_DIRECT: -t none -O fmt [-f fmt] [-c] SRC DST, run through
# a link named qemu-img as Nova would find it.
mkdir -p bin
ln -s "$MIMG" bin/qemu-img
for args in "-t none -O raw -f qcow2 src.qcow2 nova.img" \
	    "-t none -O qcow2 -f raw src.raw nova.img" \
	    "-t none -O qcow2 -f qcow2 -c src.qcow2 nova.img" \
	    "-t none -O raw -f vmdk src.vmdk nova.img" \
	    "-t none -O raw src.qcow2 nova.img"; do
	rm -f nova.img
	# shellcheck disable=SC2086
	bin/qemu-img convert $args || fail "nova: convert $args"
	# shellcheck disable=SC2086
	set -- $args
	src=$(echo "$args" | sed 's/.* \(src\.[a-z0-9]*\) .*/\1/')
	qemu-img compare -q -F "$4" "$src" nova.img ||
		fail "nova: $args: content differs"
done
# ironic (ironic_lib qemu_img.convert_image from the agent):
# -O raw -t directsync -S 0 -W -f fmt SRC DST, DST a device or file.
rm -f ironic.img
"$MIMG" convert -O raw -t directsync -S 0 -W -f qcow2 src.qcow2 ironic.img ||
	fail "ironic: convert -t directsync -S 0 -W"
qemu-img compare -q -f qcow2 -F raw src.qcow2 ironic.img ||
	fail "ironic: -t directsync -S 0 -W: content differs"
echo PASS
