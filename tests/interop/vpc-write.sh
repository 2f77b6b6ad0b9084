#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# VHDs made by mimg (create, convert -O vpc, every subformat and option)
# read in qemu as the source did, with the same virtual size and map as
# qemu-img's; created files are qemu-img's byte for byte except the
# timestamp, the random UUID and the checksum that covers them.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
FMT=vpc
. "$here/vpc-lib.sh"

vsize() {
	qemu-img info -f vpc "$1" | sed -n 's/^virtual size: .*(\([0-9]*\) bytes)$/\1/p'
}

for size in 512 1000001 130M 127G 2040G; do
	for opts in subformat=dynamic subformat=fixed \
		    subformat=dynamic,force_size=on \
		    subformat=fixed,force_size=on; do
		case $opts:$size in
		*fixed*:[0-9]*G) continue ;;
		esac
		created_alike "$opts" "$size"
		check_eq "$(vsize m.vhd)" "$(vsize q.vhd)" \
			"virtual size of $opts $size"
	done
done

# Too large for the format, as in qemu-img.
"$MIMG" create -q -f vpc m2.vhd 2041G 2>err && fail "2041G accepted"
grep -q "too large" err || fail "2041G: $(cat err)"

# convert: qemu reads what mimg wrote as the source.
make_raw src.raw 20480
for opts in subformat=dynamic subformat=fixed subformat=dynamic,force_size=on \
	    subformat=fixed,force_size=on; do
	converted_alike "$opts"
	"$MIMG" check -f vpc m.vhd >check.out 2>&1 ||
		{ cat check.out >&2; fail "mimg check after convert ($opts)"; }
	# qemu-img keeps writing to it: the footer and BAT mimg left are
	# ones qemu's allocation continues from.
	qemu_writes_on m.vhd "($opts after qemu-io)"
done
# And the same size: the dynamic result is what qemu-img convert makes.
converted_size_alike

# mimg converts into qemu's existing image (-n): its allocation continues
# qemu's BAT and footer, of 2 MiB blocks.
into_qemus_image 2097152
echo ok
