#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg create -f raw against qemu-img create -f raw: the same file size
# for every size spelling (rounded up to 512 bytes as qemu-img does) and
# the same allocation class for each preallocation mode.
. "$TESTLIB"
need qemu-img du

for size in 0 1 511 512 513 1000 1k 1K 1.5k 1.4k 3.3M 1M 1.5G 0x1000 \
	64M 2T; do
	qemu-img create -q -f raw q.img "$size" || fail "qemu-img $size"
	"$MIMG" create -q -f raw m.img "$size" || fail "mimg create $size"
	check_eq "$(stat -c %s m.img)" "$(stat -c %s q.img)" "size $size"
	check_eq "$(du -k m.img | cut -f1)" "0" "size $size: sparse"
	rm -f q.img m.img
done

# the default format is raw, and the output line is qemu-img's
qemu-img create q.img 1M >q.out
"$MIMG" create m.img 1M >m.out
check_eq "$(sed 's/m.img/X/' m.out)" "$(sed 's/q.img/X/' q.out)" \
	"create output"
check_eq "$(stat -c %s m.img)" "1048576" "default format raw"

# the size given as an option, and the output line with options
for args in "-o size=2M" "-o size=1M,size=3M" "-o preallocation=off,size=1M" \
	"-o preallocation=full 64k"; do
	# shellcheck disable=SC2086
	qemu-img create -f raw q.img $args >q.out || fail "qemu-img $args"
	# shellcheck disable=SC2086
	"$MIMG" create -f raw m.img $args >m.out || fail "mimg create $args"
	check_eq "$(stat -c %s m.img)" "$(stat -c %s q.img)" "size of $args"
	check_eq "$(sed 's/m.img/X/' m.out)" "$(sed 's/q.img/X/' q.out)" \
		"create output with $args"
	rm -f q.img m.img
done

# preallocation: off stays sparse, falloc and full allocate everything
for mode in off falloc full; do
	qemu-img create -q -f raw -o preallocation=$mode q.img 5M ||
		fail "qemu-img preallocation=$mode"
	"$MIMG" create -q -f raw -o preallocation=$mode m.img 5M ||
		fail "mimg preallocation=$mode"
	check_eq "$(stat -c %s m.img)" "$(stat -c %s q.img)" \
		"preallocation=$mode size"
	qa=$(du -k q.img | cut -f1)
	ma=$(du -k m.img | cut -f1)
	case $mode in
	off) check_eq "$ma" 0 "preallocation=off allocation" ;;
	*) [ "$ma" -ge 5120 ] && [ "$qa" -ge 5120 ] ||
		fail "preallocation=$mode: mimg ${ma}k, qemu-img ${qa}k" ;;
	esac
	rm -f q.img m.img
done

# creating over an existing file truncates it, as qemu-img does
head -c 100000 /dev/urandom >m.img
"$MIMG" create -q m.img 4k || fail "create over a file"
check_eq "$(stat -c %s m.img)" 4096 "recreated size"
cmp -s -n 4096 m.img /dev/zero || fail "recreated content is not zero"

# mistakes both tools refuse with exit status 1; mimg says so in as many
# lines as qemu-img
bad_create() { # DESCRIPTION ARGS...
	desc=$1
	shift
	qemu-img create -q -f raw e.img "$@" >/dev/null 2>q.err
	check_eq "$?" 1 "qemu-img create $desc: exit status"
	rm -f e.img
	"$MIMG" create -q -f raw e.img "$@" 2>err.txt
	check_eq "$?" 1 "mimg create $desc: exit status"
	check_eq "$(wc -l <err.txt)" "$(wc -l <q.err)" \
		"mimg create $desc: error lines"
	grep -q '^mimg: ' err.txt || fail "mimg create $desc: message prefix"
	rm -f e.img
}
bad_create "size 1x" 1x
bad_create "empty size" ""
bad_create "size 8E" 8E
bad_create "size 1.5 (fractional bytes)" 1.5
bad_create "no size"
bad_create "preallocation=metadata" -o preallocation=metadata 1M
bad_create "preallocation=bogus" -o preallocation=bogus 1M
bad_create "unknown option" -o nosuch=1 1M
bad_create "trailing comma in options" -o preallocation=off, 1M
bad_create "empty option list" -o , 1M
bad_create "backing file for raw" -o backing_file=x.img 1M
bad_create "size twice" -o size=1M 1M
# a bad -o size is worded as qemu-img words it, hint lines included
qemu-img create -q -f raw e.img -o size=1x 2>&1 | sed 's/^qemu-img: //' >q.txt
"$MIMG" create -q -f raw e.img -o size=1x 2>&1 | sed 's/^mimg: //' >m.txt
cmp -s q.txt m.txt || fail "bad size option: $(cat m.txt)"
[ -e e.img ] && fail "bad size option: e.img created"
echo "create-raw: ok"
