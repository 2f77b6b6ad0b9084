#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# A window of a raw file as the disk (--image-opts driver=raw with offset=
# and size=, a partition of a whole-disk image), as qemu-img 7.2 takes it:
# convert, dd, compare and map read the bytes qemu-img reads and info
# names and sizes the disk as qemu-img does; convert -n into a window
# leaves the file qemu-img leaves, nothing outside the window changed;
# resize and the refusals of a window outside the file exit and print as
# qemu-img does.
. "$TESTLIB"
need qemu-img python3

# 16 MiB: random data, a hole, text, an unaligned tail
mixed_raw disk.img 8 2
truncate -s 12M disk.img
head -c 3M /dev/urandom >>disk.img
printf 'tail' >>disk.img
win() { echo "driver=raw,file.filename=$1,$2"; }

# Reads: the same bytes as qemu-img, through every copy path (-C copies
# between the files, a raw target shares the source's blocks).
for w in offset=3M,size=8M offset=1M size=4M offset=12M,size=0; do
	for how in "-O raw" "-O qcow2" "-C -O raw"; do
		# shellcheck disable=SC2086 # the options' words
		qemu-img convert $how --image-opts "$(win disk.img $w)" q.out ||
			fail "qemu-img convert $how $w"
		# shellcheck disable=SC2086
		"$MIMG" convert $how --image-opts "$(win disk.img $w)" m.out ||
			fail "mimg convert $how $w"
		qemu-img compare -q m.out q.out ||
			fail "$w ($how): mimg read other bytes than qemu-img"
		rm -f q.out m.out
	done
	same_output "map $w" map --output=json --image-opts "$(win disk.img $w)"
	same_output "compare $w" compare --image-opts \
		"$(win disk.img $w)" "$(win disk.img $w)"
	same_output "dd $w" dd --image-opts if="$(win disk.img $w)" of=dd.raw \
		bs=64k count=3
	# named as qemu-img names it: "json:{...}" with the options
	same_output "info $w" info --image-opts "$(win disk.img $w)"
	same_output "info --output=json $w" info --output=json \
		--image-opts "$(win disk.img $w)"
done

# a name JSON must escape, in the json: name as qemu-img escapes it
cp disk.img 'd é"x.img'
same_output "info: escaped name" info --output=json \
	--image-opts 'driver=raw,file.filename=d é"x.img,offset=1M'

# A window that starts inside a sector: qemu-img 7.2 reads zeroes for
# data past a hole there (and its map asserts), so the file's own bytes
# are the reference; the disk is as long as qemu-img says.
for how in "-O raw" "-C -O raw"; do
	# shellcheck disable=SC2086
	"$MIMG" convert $how --image-opts "$(win disk.img offset=100)" m.out ||
		fail "mimg convert $how offset=100"
	python3 - disk.img m.out <<'PY' || fail "offset=100 ($how): not the file's bytes"
import sys
d = open(sys.argv[1], "rb").read()[100:]
m = open(sys.argv[2], "rb").read()
sys.exit(m[:len(d)] != d or m[len(d):].count(0) != len(m) - len(d))
PY
	rm -f m.out
done
qemu-img info --image-opts "$(win disk.img offset=100)" | grep '^virtual' >q.out
"$MIMG" info --image-opts "$(win disk.img offset=100)" | grep '^virtual' >m.out
cmp -s q.out m.out || fail "offset=100: info says $(cat m.out)"

# Writes: the file qemu-img leaves, from data and from zeroes (written as
# zero ranges), plainly and with -C.
mixed_raw part.raw 1 1
truncate -s 2M zero.raw
for src in part.raw zero.raw; do
	for how in "" "-C"; do
		cp disk.img q.img
		cp disk.img m.img
		# shellcheck disable=SC2086
		qemu-img convert -n $how -f raw $src --target-image-opts \
			"$(win q.img offset=5M,size=2M)" || fail "qemu-img into a window"
		# shellcheck disable=SC2086
		"$MIMG" convert -n $how -f raw $src --target-image-opts \
			"$(win m.img offset=5M,size=2M)" ||
			fail "mimg convert -n $how $src into a window"
		cmp -s q.img m.img ||
			fail "$src $how: mimg left another file than qemu-img"
	done
done
cmp -s -n 5M disk.img m.img || fail "the window's writes reached before it"

# resize: the file follows the window's end; a window given a size is fixed
for w in offset=1M offset=1M,size=4M; do
	cp disk.img q.img
	cp disk.img m.img
	qemu-img resize --image-opts "$(win q.img $w)" 20M >q.out 2>q.err
	qs=$?
	"$MIMG" resize --image-opts "$(win m.img $w)" 20M >m.out 2>m.err
	check_eq "$?" "$qs" "resize $w: exit status ($(cat m.err))"
	check_eq "$(sed 's/^mimg: //' m.err)" "$(sed 's/^qemu-img: //' q.err)" \
		"resize $w: message"
	check_eq "$(wc -c <m.img)" "$(wc -c <q.img)" "resize $w: file size"
done

# Windows outside the file, sizes not whole sectors, values that do not
# parse, options of another format: qemu-img's words.
for w in offset=17M size=1000 offset=8M,size=9M offset=1M,size=16777000 \
	offset=-1 size=abc offset=16M; do
	same_output -e "info $w" info --image-opts "$(win disk.img $w)"
done
qemu-img create -q -f qcow2 img.qcow2 1M
same_output -e "qcow2 offset" info --image-opts \
	"driver=qcow2,file.filename=img.qcow2,offset=1M"
same_output -e "probed qcow2 with offset" check --image-opts \
	"file.filename=img.qcow2,offset=512"
# one file named with two windows: the opens of the file could not tell
# them apart
"$MIMG" compare --image-opts "$(win disk.img offset=1M,size=1M)" \
	"$(win disk.img offset=2M,size=1M)" 2>m.err &&
	fail "one file with two windows accepted"
grep -q "'disk.img' is named twice with different format options" m.err ||
	fail "two windows: $(cat m.err)"
echo "ok"
