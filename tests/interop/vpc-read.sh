#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# VHDs made and written by qemu-img/qemu-io read in mimg as in qemu: the
# same virtual size for every geometry rule (CHS rounding, force_size,
# fixed), the same bytes, the same map and info.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
FMT=vpc
. "$here/vpc-lib.sh"

# Sizes around the CHS rules: tiny, not a geometry multiple, each
# sectors-per-track regime, 127 GiB (the CHS limit) and 2040 GiB.
for size in 512 1000001 130M 1G 127G 2040G; do
	for opts in subformat=dynamic subformat=fixed \
		    subformat=dynamic,force_size=on \
		    subformat=fixed,force_size=on; do
		case $opts:$size in
		*fixed*:[0-9]*G) [ "$size" = 1G ] || continue ;;
		esac
		rm -f q.vhd
		qemu-img create -q -f vpc -o "$opts" q.vhd "$size" ||
			fail "qemu-img create $opts $size"
		same_info q.vhd
	done
done

# Data written through qemu-io, dynamic and fixed.
for sub in dynamic fixed; do
	rm -f q.vhd
	qemu-img create -q -f vpc -o subformat=$sub q.vhd 9M
	qio q.vhd "write -P 0xab 100k 64k" "write -P 0xcd 3M 1M" \
		"write -P 0x11 4095k 2k" "write -z 8M 512k" \
		"write -P 0xee 9216k 1k"
	same_content q.vhd "($sub)"
	same_map q.vhd "($sub)"
	same_info q.vhd
	"$MIMG" compare -f vpc -F vpc q.vhd q.vhd >/dev/null ||
		fail "mimg compare ($sub)"
done

# qemu-img convert of a raw file with holes and zero runs, dynamic and
# fixed; the fixed one also probes as raw, as in qemu-img.
make_raw src.raw 20480
for sub in dynamic fixed; do
	rm -f q.vhd
	qemu-img convert -O vpc -o subformat=$sub src.raw q.vhd ||
		fail "qemu-img convert ($sub)"
	same_content q.vhd "($sub)"
	same_map q.vhd "($sub)"
	"$MIMG" check -f vpc q.vhd >check.out 2>&1 ||
		{ cat check.out >&2; fail "mimg check of qemu's $sub image"; }
done
check_eq "$("$MIMG" info q.vhd | sed -n 's/^file format: //p')" raw \
	"a fixed VHD probes as"
"$MIMG" info q.vhd | grep -q '^file format: raw' || fail "fixed probe"
echo ok
