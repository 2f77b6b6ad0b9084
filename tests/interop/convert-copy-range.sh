#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Conversions to raw that copy the data runs host file to host file
# (copy_file_range) give what qemu-img convert gives: the same content
# (qemu-img compare) and the same holes and data (qemu-img map), for raw
# and qcow2 sources, qcow2 with compressed clusters and a backing chain,
# zero blocks written inside data runs, and an unaligned tail.  The same
# where the copy cannot or must not be made: a target on another file
# system (when /dev/shm is one), a source that is no plain file (gzip)
# and a qcow2 whose data lies in an external data file.  With
# strace, the copy is seen to be tried.
. "$TESTLIB"
need qemu-img qemu-io dd gzip python3
need_format qcow2

# 48 MiB + 1.5 KiB virtual: random data from byte 0 (qemu-img writes a
# raw target's first block anyway), a written 4 KiB zero block inside a
# data run, a 64 KiB one, holes, and data in the unaligned tail.
size=$((48 * 1048576 + 1536))
truncate -s "$size" src.raw
put_random src.raw 0 3072
put_zero src.raw 1028 4
put_zero src.raw 2048 64
put_random src.raw 9220 4
put_random src.raw 20480 4096
put_zero src.raw 22528 4
put_random src.raw 49151 1

# -S 0: the zero blocks are stored as data clusters in the qcow2.
qemu-img convert -q -S 0 -f raw -O qcow2 src.raw src.qcow2 ||
	fail "qemu-img convert to qcow2"
# A compressed cluster among plain ones, and a backing chain whose top
# overwrites part of the base.
qemu-img convert -q -f raw -O qcow2 src.raw comp.qcow2 ||
	fail "qemu-img convert to comp.qcow2"
qio_fmt qcow2 comp.qcow2 "write -c -P 0x5a 12M 64k"
qemu-img create -q -f qcow2 -b src.qcow2 -F qcow2 top.qcow2 ||
	fail "qemu-img create top.qcow2"
qio_fmt qcow2 top.qcow2 "write -P 0x33 2M 192k" "write -z 21M 128k"
# Data in an external data file: host offsets are offsets in that file.
qemu-img create -q -f qcow2 -o data_file=ext.data ext.qcow2 "$size" ||
	fail "qemu-img create ext.qcow2"
qio_fmt qcow2 ext.qcow2 "write -P 0x44 1M 1M" "write -P 0x45 0 64k"

map() { qemu-img map --output=json -f raw "$1"; }

# strace, where it is there and may trace (containers may forbid it).
traced=false
strace -qq -o /dev/null true >/dev/null 2>&1 && traced=true

# same FMT SRC [MIMG_SRC] DIR: mimg and qemu-img convert SRC to raw in
# DIR; the outputs read and map the same (mimg may read MIMG_SRC).
same() {
	fmt=$1 src=$2 msrc=${3:-$2} dir=$4
	rm -f "$dir/m.raw" "$dir/q.raw"
	if [ "$traced" = true ]; then
		# (a sanitized build's leak check cannot run under ptrace)
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
			strace -f -qq -o trace -e trace=copy_file_range \
			"$MIMG" convert -f "$fmt" -O raw "$msrc" "$dir/m.raw" ||
			fail "mimg convert $msrc to $dir"
	else
		"$MIMG" convert -f "$fmt" -O raw "$msrc" "$dir/m.raw" ||
			fail "mimg convert $msrc to $dir"
	fi
	qemu-img convert -f "$fmt" -O raw "$src" "$dir/q.raw" ||
		fail "qemu-img convert $src"
	qemu-img compare -q -f raw -F raw "$dir/q.raw" "$dir/m.raw" ||
		fail "$msrc to $dir: content differs from qemu-img's"
	map "$dir/q.raw" >q.map
	map "$dir/m.raw" >m.map
	cmp -s q.map m.map ||
		{ diff q.map m.map >&2; fail "$msrc to $dir: map differs"; }
}

# tried: mimg asked for a copy (when strace is there to tell).
tried() {
	[ -f trace ] || return 0
	grep -q copy_file_range trace ||
		fail "$*: no copy_file_range was tried"
}

not_tried() {
	if [ -f trace ] && grep -q copy_file_range trace; then
		fail "$*: a copy was tried"
	fi
}

for s in raw:src.raw qcow2:src.qcow2 qcow2:comp.qcow2 qcow2:top.qcow2; do
	same "${s%%:*}" "${s#*:}" "" "$T"
	tried "${s#*:}"
done

# -S 0 writes the source's holes out as zeroes: no shared copy there.
for f in raw qcow2; do
	"$MIMG" convert -S 0 -f $f -O raw src.$f m0.raw || fail "mimg -S 0"
	qemu-img convert -S 0 -f $f -O raw src.$f q0.raw || fail "qemu-img -S 0"
	qemu-img compare -q -f raw -F raw q0.raw m0.raw ||
		fail "-S 0 from $f: content differs"
	map q0.raw >q.map
	map m0.raw >m.map
	cmp -s q.map m.map ||
		{ diff q.map m.map >&2; fail "-S 0 from $f: map differs"; }
	rm -f m0.raw q0.raw
done

# Nothing is copied from a qcow2 image's own file when its data lies in
# a data file.
same qcow2 ext.qcow2 "" "$T"
not_tried ext.qcow2

# Another file system: the copy fails (EXDEV) and the data is written.
if [ -d /dev/shm ] && [ -w /dev/shm ] &&
	[ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$T")" ]; then
	shm=$(mktemp -d /dev/shm/mimg-copy-XXXXXX)
	trap 'rm -rf "$T" "$shm"' EXIT
	same qcow2 src.qcow2 "" "$shm"
	same raw src.raw "" "$shm"
	rm -rf "$shm"
fi

# A gzip stream is no host file to copy from.
gzip -c src.raw >src.raw.gz
same raw src.raw src.raw.gz "$T"
not_tried "a gzip stream"
exit 0
