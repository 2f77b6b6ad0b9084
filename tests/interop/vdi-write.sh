#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# VDIs made by mimg (create, convert -O vdi, dynamic and static) pass
# qemu-img check and read in qemu as the source did, with qemu-img's
# virtual size and map; created files are qemu-img's byte for byte except
# the two random UUIDs.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
FMT=vdi
. "$here/vpc-lib.sh"

for size in 512 1000001 1M 130M 5G 1T; do
	for opts in static=off static=on; do
		case $opts:$size in static=on:[0-9]*[GT]) continue ;; esac
		created_alike "$opts" "$size"
		qemu_clean m.vdi "($opts $size)"
		same_info m.vdi
	done
done

make_raw src.raw 20480
for opts in static=off static=on; do
	converted_alike "$opts"
	qemu_clean m.vdi "($opts)"
	# qemu keeps writing into it: the header count and map mimg left are
	# ones qemu's allocation continues from.
	qemu_writes_on m.vdi "($opts after qemu-io)"
	qemu_clean m.vdi "($opts after qemu-io)"
done
converted_size_alike

# mimg converts into qemu's existing image (-n); VDI blocks are 1 MiB.
into_qemus_image 1048576
qemu_clean q.vdi "(mimg writes into qemu's image)"

# Too large for the format, as in qemu-img.
"$MIMG" create -q -f vdi m2.vdi 1025T 2>err && fail "1025T accepted"
grep -q "Unsupported VDI image size" err || fail "1025T: $(cat err)"
echo ok
