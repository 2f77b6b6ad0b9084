#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg dd against qemu-img dd on the same inputs: output size, format and
# content (qemu-img compare), for bs/count/skip combinations (qemu-img's
# count-then-skip arithmetic included), qcow2 and VMDK inputs and outputs;
# then the messages and exit codes of bad operands.
. "$TESTLIB"
need qemu-img qemu-io

formats=$("$MIMG" --help | sed -n 's/^Formats://p')
has() { case " $formats " in *" $1 "*) return 0 ;; esac; return 1; }

qemu-img create -q -f raw in.raw 5M
qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x22 1M 1M' \
	-c 'write -P 0x33 3M 700k' -c 'write -P 0x44 5119k 1k' in.raw \
	>/dev/null || fail "qemu-io"
qemu-img convert -f raw -O qcow2 in.raw in.qcow2 || fail "qemu-img convert"
qemu-img convert -f raw -O vmdk in.raw in.vmdk || fail "qemu-img convert"

n=0
for ops in "" "bs=1M" "bs=1M count=2" "bs=1M count=2 skip=1" \
	   "bs=1M skip=3" "bs=3000 count=5" "bs=1.5k count=7 skip=2" \
	   "bs=64k count=1k" "count=0" "bs=512 skip=9999" "bs=4k count=3"; do
	# every operand set raw to raw; image formats on a few
	pairs="in.raw:raw"
	case $ops in
	""|"bs=1M count=2 skip=1"|"bs=3000 count=5")
		pairs="$pairs in.raw:qcow2 in.qcow2:raw in.vmdk:vmdk" ;;
	"bs=512 skip=9999") # an empty VMDK is not created by either
		pairs="$pairs in.raw:qcow2 in.vmdk:raw" ;;
	esac
	for pair in $pairs; do
		src=${pair%:*} ofmt=${pair#*:}
		sfmt=${src#in.}
		{
			has "$ofmt" || continue
			n=$((n + 1))
			rm -f m.img q.img
			# shellcheck disable=SC2086
			"$MIMG" dd -f "$sfmt" -O "$ofmt" $ops if="$src" \
				of=m.img 2>m.err
			mrc=$?
			# shellcheck disable=SC2086
			qemu-img dd -f "$sfmt" -O "$ofmt" $ops if="$src" \
				of=q.img 2>q.err
			check_eq "$mrc" "$?" "exit code of dd $ops $src -O $ofmt"
			check_eq "$(sed 's/^[a-z-]*: //' m.err)" \
				"$(sed 's/^[a-z-]*: //' q.err)" \
				"message of dd $ops $src -O $ofmt"
			msize=$(qemu-img info -f "$ofmt" m.img |
				sed -n 's/^virtual size: .*(\([0-9]*\) bytes)/\1/p')
			qsize=$(qemu-img info -f "$ofmt" q.img |
				sed -n 's/^virtual size: .*(\([0-9]*\) bytes)/\1/p')
			check_eq "$msize" "$qsize" "size of dd $ops $src -O $ofmt"
			qemu-img compare -q -f "$ofmt" -F "$ofmt" m.img q.img ||
				fail "content of dd $ops $src -O $ofmt"
			[ "$ofmt" = raw ] || qemu-img check -q -f "$ofmt" m.img ||
				fail "check of dd $ops $src -O $ofmt"
		}
	done
done
echo "$n dd runs matched qemu-img"

# Bad operands: the same message (after the program name) and exit code.
for ops in "if=in.raw" "of=x.img" "if=in.raw of=x.img bs=0" \
	   "if=in.raw of=x.img bs=abc" "if=in.raw of=x.img count=abc" \
	   "if=in.raw of=x.img skip=-1" "if=in.raw of=x.img foo=1" \
	   "if=in.raw of=x.img bogus" "if=in.raw of=x.img bs=3G" \
	   "-O nosuchfmt if=in.raw of=x.img"; do
	# shellcheck disable=SC2086
	"$MIMG" dd $ops 2>m.err
	mrc=$?
	# shellcheck disable=SC2086
	qemu-img dd $ops 2>q.err
	check_eq "$mrc" "$?" "exit code of dd $ops"
	check_eq "$(sed 's/^[a-z-]*: //' m.err)" "$(sed 's/^[a-z-]*: //' q.err)" \
		"message of dd $ops"
done
echo PASS
