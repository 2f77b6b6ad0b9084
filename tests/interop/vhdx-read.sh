#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# VHDX images made and written by qemu-img/qemu-io (dynamic and fixed,
# block sizes from 1 to 256 MiB, blocks in the ZERO state or not) read
# in mimg as in qemu: the same bytes, the same info; mimg's map reports
# blocks without data as zeroes (qemu-img reports the whole disk as
# data); damaged or crafted images are refused with a message, as
# qemu-img refuses them, or read from the intact copy of the header or
# region table; updates left in the log are read as replayed.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
FMT=vhdx
. "$here/vpc-lib.sh"
edit() {
	python3 "$here/vhdx-edit.py" "$@" || fail "vhdx-edit $*"
}

for size in 1M 100M; do
	for opts in "" block_size=1M block_size=32M block_size=256M \
		block_state_zero=off subformat=fixed; do
		rm -f q.vhdx
		qemu-img create -q -f vhdx ${opts:+-o $opts} q.vhdx "$size" ||
			fail "qemu-img create $opts $size"
		same_info q.vhdx
		same_content q.vhdx "($opts $size, empty)"
		last=$(( $(qemu-img info --output=json q.vhdx |
			sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p') - 4096 ))
		qio q.vhdx "write -P 0xab 100k 64k" "write -P 0xcd 700k 200k" \
			"write -z 300k 64k" "write -P 0xef $last 4k"
		same_content q.vhdx "($opts $size)"
		same_info q.vhdx
		"$MIMG" check q.vhdx >check.out 2>&1 ||
			{ cat check.out >&2; fail "mimg check ($opts $size)"; }
	done
done

# Past 4 GiB in 1 MiB blocks the BAT holds a sector-bitmap entry after
# every 4096 block entries.
rm -f q.vhdx
qemu-img create -q -f vhdx -o block_size=1M q.vhdx 9G
qio q.vhdx "write -P 0x31 4095M 2M" "write -P 0x32 8191M 1M" \
	"write -P 0x33 4G 4k"
"$MIMG" convert -O raw q.vhdx big.raw || fail "mimg convert of 9 GiB"
qemu-img compare -f vhdx -F raw q.vhdx big.raw >/dev/null ||
	fail "mimg reads the 9 GiB image differently"
rm -f big.raw

# Conversions qemu-img makes, compared with their source.
make_raw src.raw 20480
for opts in "" subformat=fixed block_size=1M; do
	rm -f q.vhdx
	qemu-img convert -O vhdx ${opts:+-o $opts} src.raw q.vhdx ||
		fail "qemu-img convert ($opts)"
	same_content q.vhdx "($opts)"
	"$MIMG" compare src.raw q.vhdx >/dev/null || fail "mimg compare ($opts)"
done

# Blocks without data are zeroes to block status: of a 100 MiB image
# with one 1 MiB block written, map shows 1 MiB of data.
rm -f q.vhdx
qemu-img create -q -f vhdx -o block_size=1M q.vhdx 100M
qio q.vhdx "write -P 0x11 5M 4k"
"$MIMG" map --output json q.vhdx >map.json || fail "mimg map"
check_eq "$(python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))
print(sum(e["length"] for e in m if e["data"]),
      sum(e["length"] for e in m if e["zero"]))' map.json)" \
	"1048576 103809024" "data and zeroes in the map of a sparse image"

# Resizing is refused, as qemu-img refuses it.
if "$MIMG" resize q.vhdx 200M 2>err; then fail "resize of a VHDX"; fi
grep -qx "mimg: Image format driver does not support resize" err || fail "resize error: $(cat err)"

# A damaged first header or region table: the other copy is read (qemu
# reads the second header too); both headers damaged: refused by both.
cp q.vhdx h1.vhdx
edit h1.vhdx header-crc 1
same_content h1.vhdx "(first header damaged)"
edit h1.vhdx header-crc 2
if qemu-img info h1.vhdx >/dev/null 2>&1; then fail "qemu-img read h1.vhdx"; fi
if "$MIMG" info h1.vhdx 2>err; then fail "mimg read two bad headers"; fi
grep -q "vhdx: no valid header" err || fail "header error: $(cat err)"
cp q.vhdx r1.vhdx
edit r1.vhdx region1-crc
"$MIMG" convert -O raw r1.vhdx r1.raw || fail "read with region table 2"
qemu-img compare -f vhdx -F raw q.vhdx r1.raw >/dev/null || fail "r1.vhdx content"

# Crafted entries and items: each refused, naming what is wrong.
refused() { # FILE WHAT-GREP
	if "$MIMG" convert -O raw "$1" out.raw 2>err; then
		fail "$1 was read"
	fi
	grep -q "$2" err || fail "$1: $(cat err)"
}
cp q.vhdx past.vhdx
edit past.vhdx bat 7 $(( (1 << 40) | 6 ))
refused past.vhdx "past the end of the file"
cp q.vhdx over.vhdx
edit over.vhdx bat 7 $(( (2 << 20) | 6 )) # the BAT region
refused over.vhdx "inside the headers, log, BAT or metadata"
cp q.vhdx part.vhdx
edit part.vhdx bat 9 $(( (8 << 20) | 7 ))
refused part.vhdx "partially present"
cp q.vhdx state.vhdx
edit state.vhdx bat 9 4
refused state.vhdx "unknown state 4"
cp q.vhdx parent.vhdx
edit parent.vhdx param-flags 2
refused parent.vhdx "differencing images"
cp q.vhdx bs.vhdx
edit bs.vhdx block-size $(( 3 << 20 ))
refused bs.vhdx "block size 3145728"
for f in past over part parent bs; do
	if qemu-img convert -O raw $f.vhdx out.raw 2>/dev/null; then
		fail "qemu-img read $f.vhdx"
	fi
done
# Two blocks in the same place: mimg check finds it (qemu-img does not
# look).
cp q.vhdx twice.vhdx
edit twice.vhdx bat 1 $(python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))
print(next(e["offset"] for e in m if e["data"]) | 6)' map.json)
"$MIMG" check twice.vhdx >check.out 2>&1
check_eq $? 2 "check of two blocks in one place"
grep -q "ERROR: block 5 at 0x.* overlaps block 1" check.out ||
	fail "check output: $(cat check.out)"

# Updates left in the log by a writer that did not close the image:
# qemu-img refuses to read such an image until check -r all has replayed
# them into it; mimg reads it as replayed, without writing the file, and
# its check -r all replays them as qemu-img's does.
# The updates (vhdx-edit.py): a BAT sector rewritten to give block 20 a
# new block of 0x5c bytes; that sector cleared (block 5 goes); two
# entries across the end of the log, the second undoing the first and
# dropping block 5; an older sequence after the active one, ignored.
byte_at() { # RAW OFFSET
	od -An -tx1 -j "$2" -N1 "$1" | tr -d ' '
}
for sc in data:5c:11 zero:00:00 wrap:00:00 stale:5c:11; do
	name=${sc%%:*} rest=${sc#*:}
	cp q.vhdx log.vhdx
	edit log.vhdx log "$name" 20
	sum=$(cksum <log.vhdx)
	if qemu-img convert -O raw log.vhdx out.raw 2>/dev/null; then
		fail "qemu-img read log.vhdx ($name) without replaying it"
	fi
	"$MIMG" convert -O raw log.vhdx m.raw 2>err ||
		fail "mimg convert ($name): $(cat err)"
	check_eq "$(cksum <log.vhdx)" "$sum" "the file after reading ($name)"
	cp log.vhdx replayed.vhdx
	qemu-img check -q -r all replayed.vhdx || fail "qemu-img check -r all"
	qemu-img convert -O raw replayed.vhdx q.raw
	cmp q.raw m.raw >/dev/null ||
		fail "mimg reads the log's updates ($name) differently"
	check_eq "$(byte_at m.raw $((20 << 20))) $(byte_at m.raw $((5 << 20)))" \
		"${rest%%:*} ${rest#*:}" "blocks 20 and 5 after the log ($name)"
	# check finds the updates missing from the file; -r all writes them
	# as qemu-img check -r all does, with its report.
	"$MIMG" check log.vhdx >check.out 2>&1
	check_eq "$?" 2 "check of a log image ($name)"
	grep -qx "ERROR the log holds updates not yet made in the file" \
		check.out || fail "check of a log image: $(cat check.out)"
	cp log.vhdx q-repair.vhdx
	qemu-img check -r all q-repair.vhdx >q.out 2>&1
	"$MIMG" check -r all log.vhdx >m.out 2>&1 || fail "mimg check -r all"
	check_eq "$(cat m.out)" "$(cat q.out)" "check -r all report ($name)"
	qemu-img check log.vhdx >check.out 2>&1 ||
		fail "qemu-img check after mimg check -r all: $(cat check.out)"
	qemu-img compare -q log.vhdx q-repair.vhdx ||
		fail "mimg check -r all left other content ($name)"
done
# A log written for a longer file than there is: refused.
cp q.vhdx log.vhdx
edit log.vhdx log cut 20
refused log.vhdx "the log was written for a file of .* it was cut"
# A log entry with a wrong checksum is no entry; one without updates
# changes nothing.
for kind in bad valid; do
	cp q.vhdx log.vhdx
	edit log.vhdx log-entry $kind
	"$MIMG" convert -O raw log.vhdx m.raw || fail "mimg convert ($kind)"
	qemu-img compare -q -f vhdx -F raw q.vhdx m.raw ||
		fail "a log entry ($kind) changed the content"
done
echo ok
