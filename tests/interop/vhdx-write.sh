#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# VHDX images mimg makes and writes, judged by qemu-img: created with
# each option (the same file size and info as qemu-img's, a clean
# check), written into by qemu-io (both read the same), converted to
# from raw (qemu-img reads the same bytes), and written into when
# qemu-img made them (qemu-img reads what was written; the header's
# write GUIDs are new and both headers valid).  Updates left in the log
# are written into the file first.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
FMT=vhdx
. "$here/vpc-lib.sh"

for size in 0 1000 1M 100M 3G; do
	for opts in "" subformat=fixed block_size=1M block_size=256M \
		block_state_zero=off log_size=3M block_size=512M \
		block_size=1000 block_size=2000000 block_size=300M; do
		case $opts:$size in
		subformat=fixed:3G) continue ;;
		?*:0) continue ;; # qemu-img fails on some: an empty disk once
		esac
		rm -f q.vhdx m.vhdx
		qemu-img create -q -f vhdx ${opts:+-o $opts} q.vhdx $size ||
			fail "qemu-img create $opts $size"
		"$MIMG" create -q -f vhdx ${opts:+-o $opts} m.vhdx $size ||
			fail "mimg create $opts $size"
		check_eq "$(stat -c %s m.vhdx)" "$(stat -c %s q.vhdx)" \
			"file size ($opts $size)"
		qemu-img info --output=json q.vhdx | grep -v actual-size |
			sed 's/q\.vhdx/X/' >q.json
		qemu-img info --output=json m.vhdx | grep -v actual-size |
			sed 's/m\.vhdx/X/' >m.json
		cmp -s q.json m.json ||
			fail "qemu-img info of mimg's image ($opts $size): $(diff q.json m.json)"
		qemu_clean m.vhdx "($opts $size)"
	done
done
for bad in block_size=3M subformat=foo; do
	qemu-img create -q -f vhdx -o $bad q.vhdx 1G 2>q.err
	check_eq "$?" 1 "qemu-img create -o $bad"
	"$MIMG" create -q -f vhdx -o $bad m.vhdx 1G 2>m.err
	check_eq "$?" 1 "mimg create -o $bad"
	check_eq "$(sed 's/^mimg: m.vhdx/X/' m.err)" \
		"$(sed 's/^qemu-img: q.vhdx/X/' q.err)" "error for -o $bad"
done

# qemu-io writes into images mimg made (dynamic and fixed): both read
# the result the same, and both checks pass.
for opts in "" subformat=fixed; do
	rm -f m.vhdx
	"$MIMG" create -q -f vhdx -o block_size=1M${opts:+,$opts} m.vhdx 20M ||
		fail "mimg create ($opts)"
	qio m.vhdx "write -P 0x61 0 4k" "write -P 0x62 3M 1536k" \
		"write -P 0x63 19M 1M"
	same_content m.vhdx "(qemu-io wrote into mimg's image, $opts)"
	qemu_clean m.vhdx "(qemu-io wrote into mimg's image, $opts)"
	"$MIMG" check m.vhdx >check.out 2>&1 ||
		{ cat check.out >&2; fail "mimg check after qemu-io ($opts)"; }
done

# Conversions from raw: qemu-img reads back what was converted.
make_raw src.raw 40960
for opts in "" subformat=fixed block_size=1M block_state_zero=off; do
	rm -f m.vhdx
	"$MIMG" convert -O vhdx ${opts:+-o $opts} src.raw m.vhdx ||
		fail "mimg convert -o $opts"
	qemu_reads m.vhdx src.raw "(convert $opts)"
	qemu_clean m.vhdx "(convert $opts)"
	same_content m.vhdx "(convert $opts)"
done

# Writing into images qemu-img made: dynamic (blocks in the ZERO or
# NOT_PRESENT state, one already written) and fixed.
for opts in "" block_state_zero=off subformat=fixed; do
	rm -f q.vhdx
	qemu-img create -q -f vhdx -o block_size=1M${opts:+,$opts} q.vhdx 40M
	qio q.vhdx "write -P 0x77 3M 2M"
	guid=$(od -An -tx1 -j $((0x10010)) -N16 q.vhdx)
	"$MIMG" convert -n -O vhdx src.raw q.vhdx || fail "convert -n ($opts)"
	qemu_reads q.vhdx src.raw "(written into, $opts)"
	qemu_clean q.vhdx "(written into, $opts)"
	[ "$(od -An -tx1 -j $((0x10010)) -N16 q.vhdx)" != "$guid" ] ||
		fail "the file write GUID did not change ($opts)"
	check_eq "$(od -An -tx1 -j $((0x10010)) -N16 q.vhdx)" \
		"$(od -An -tx1 -j $((0x20010)) -N16 q.vhdx)" \
		"both headers name the new GUID ($opts)"
done

# Updates left in the log are written into the file before anything
# else when the image is opened for writing (as qemu-img does), and the
# log is dropped from the header: qemu-img then reads the image.
rm -f q.vhdx
qemu-img create -q -f vhdx -o block_size=1M q.vhdx 100M
qio q.vhdx "write -P 0x11 5M 4k"
python3 "$here/vhdx-edit.py" q.vhdx log data 20 || fail "vhdx-edit"
"$MIMG" convert -n -O vhdx src.raw q.vhdx || fail "convert into a log image"
qemu_clean q.vhdx "(after writing into a log image)"
truncate -s 100M src100.raw
dd if=src.raw of=src100.raw conv=notrunc status=none
qemu-img compare -q -f vhdx -F raw q.vhdx src100.raw ||
	fail "writing into a log image"
echo ok
