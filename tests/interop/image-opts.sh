#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# --image-opts (the image named as driver=FMT,file.filename=PATH) on the
# commands that take it as qemu-img 7.2 does: check, map, measure,
# compare and snapshot print what qemu-img prints and exit as it does;
# bench runs; resize, commit and rebase leave images qemu-img reads as it
# reads the ones qemu-img leaves.
. "$TESTLIB"
need qemu-img qemu-io
need_format qcow2

opts() { echo "driver=qcow2,file.filename=$1"; }

qemu-img create -q -f qcow2 base.qcow2 4M
qio_fmt qcow2 base.qcow2 'write -P 0x11 0 1M' 'write -z 2M 64k'
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qio_fmt qcow2 top.qcow2 'write -P 0x22 512k 1M'
cp top.qcow2 same.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 other.qcow2
qio_fmt qcow2 other.qcow2 'write -P 0x33 3M 4k'

for out in human json; do
	same_output "check --output=$out" \
		check --output=$out --image-opts "$(opts top.qcow2)"
	same_output "map --output=$out" \
		map --output=$out --image-opts "$(opts top.qcow2)"
	same_output "measure --output=$out" measure --output=$out \
		-O qcow2 --image-opts "$(opts top.qcow2)"
done
same_output "map --start-offset" map -s 1M -l 1M \
	--image-opts "$(opts top.qcow2)"
same_output "measure -O raw" measure -O raw --image-opts "$(opts top.qcow2)"
same_output "compare: identical" \
	compare --image-opts "$(opts top.qcow2)" "$(opts same.qcow2)"
same_output "compare: different" \
	compare --image-opts "$(opts top.qcow2)" "$(opts other.qcow2)"
same_output "compare: driver=raw" compare --image-opts \
	"driver=raw,file.filename=top.qcow2" "driver=raw,file.filename=same.qcow2"
same_output "compare -s" \
	compare -s --image-opts "$(opts top.qcow2)" "$(opts same.qcow2)"
same_output "check: missing file" check --image-opts "$(opts none.qcow2)"

# encrypted images: each option string names its own secret
if "$MIMG" --help | grep -q '^Formats:.* luks'; then
	for n in 1 2; do
		qemu_img_luks create -q -f qcow2 \
			--object secret,id=s$n,data=pass$n -o encrypt.format=luks \
			-o encrypt.key-secret=s$n,encrypt.iter-time=10 e$n.qcow2 1M ||
			fail "create e$n.qcow2"
	done
	sec="--object secret,id=s1,data=pass1 --object secret,id=s2,data=pass2"
	e1="$(opts e1.qcow2),encrypt.key-secret=s1"
	e2="$(opts e2.qcow2),encrypt.key-secret=s2"
	# shellcheck disable=SC2086 # the --object options
	same_output "compare: two secrets" compare $sec --image-opts "$e1" "$e2"
	# shellcheck disable=SC2086
	same_output "compare: the wrong secret" compare $sec --image-opts \
		"$e1" "$(opts e2.qcow2),encrypt.key-secret=s1"
	# shellcheck disable=SC2086
	same_output "check: encrypted" check $sec --image-opts "$e2"
	# named "json:{...}", with the secret's id
	# shellcheck disable=SC2086
	same_output "info: encrypted" info $sec --image-opts "$e2"
	# shellcheck disable=SC2086
	same_output "info --output=json: encrypted" info --output=json $sec \
		--image-opts "$e2"
	# shellcheck disable=SC2086
	same_output "map: encrypted" map --output=json $sec --image-opts "$e2"
fi

qemu-img snapshot -c snap same.qcow2 || fail "qemu-img snapshot -c"
# qemu's "file" protocol options that name what mimg does anyway
same_output "file.driver=file" map --output=json --image-opts \
	"driver=qcow2,file.driver=file,file.filename=top.qcow2"
same_output "file.locking and file.aio" check --image-opts \
	"driver=qcow2,file.driver=file,file.locking=off,file.aio=threads,file.filename=top.qcow2"
same_output "host_device on a plain file" check --image-opts \
	"driver=qcow2,file.driver=host_device,file.filename=top.qcow2"
same_output "file.driver=file on a device node" info --image-opts \
	"driver=raw,file.driver=file,file.filename=/dev/null"
same_output "file.driver=nbd" check --image-opts \
	"driver=qcow2,file.driver=nbd,file.filename=top.qcow2"
same_output "file.aio=native without cache.direct" check --image-opts \
	"driver=qcow2,file.aio=native,file.filename=top.qcow2"
"$MIMG" check --image-opts \
	"driver=qcow2,file.driver=host_device,file.filename=top.qcow2" \
	2>m.err && fail "host_device accepted a plain file"
grep -q "'host_device' driver requires 'top.qcow2' to be either a character or block device" \
	m.err || fail "host_device on a plain file: $(cat m.err)"
same_output "snapshot -l" snapshot -l --image-opts "$(opts same.qcow2)"
same_output "snapshot -U -c" snapshot -U -c x --image-opts "$(opts same.qcow2)"
grep -q "Could not open '$(opts same.qcow2)'" m.err ||
	fail "snapshot -U -c: $(cat m.err)"

"$MIMG" bench -q -c 8 --image-opts "$(opts top.qcow2)" ||
	fail "bench --image-opts"
# writing through driver=raw
"$MIMG" bench -q -c 8 -w --image-opts "driver=raw,file.filename=raw.img" \
	2>/dev/null && fail "bench --image-opts on a missing file"
truncate -s 64k raw.img
"$MIMG" bench -q -c 8 -w --pattern=0x44 \
	--image-opts "driver=raw,file.filename=raw.img" ||
	fail "bench -w --image-opts"
qio_fmt raw raw.img 'read -P 0x44 0 4k'

# resize: the same virtual size as qemu-img's resize of a copy
for to in 8M +1M; do
	cp base.qcow2 q.qcow2
	cp base.qcow2 m.qcow2
	qemu-img resize -q --image-opts "$(opts q.qcow2)" $to ||
		fail "qemu-img resize $to"
	"$MIMG" resize -q --image-opts "$(opts m.qcow2)" $to ||
		fail "mimg resize --image-opts $to"
	check_eq "$(qemu-img info m.qcow2 | grep '^virtual size')" \
		"$(qemu-img info q.qcow2 | grep '^virtual size')" "resize $to"
	qemu-img check -q m.qcow2 || fail "resize $to: check"
done

# commit: the base then reads as the overlay did
mkdir q m
for d in q m; do cp base.qcow2 top.qcow2 $d/; done
qemu-img commit -q --image-opts "$(opts q/top.qcow2)" || fail "qemu-img commit"
"$MIMG" commit -q --image-opts "$(opts m/top.qcow2)" ||
	fail "mimg commit --image-opts"
qemu-img compare -q -f qcow2 -F qcow2 m/base.qcow2 top.qcow2 ||
	fail "commit: the base does not read as the overlay did"
qemu-img compare -q -f qcow2 -F qcow2 m/base.qcow2 q/base.qcow2 ||
	fail "commit: mimg's base differs from qemu-img's"
qemu-img check -q m/base.qcow2 || fail "commit: check"

# rebase: -b is a file name (relative to the image's directory), not an
# option string
rm -rf q m
mkdir q m
for d in q m; do
	cp base.qcow2 top.qcow2 $d/
	qemu-img create -q -f qcow2 $d/new.qcow2 4M
done
qemu-img rebase -q -b new.qcow2 -F qcow2 --image-opts "$(opts q/top.qcow2)" ||
	fail "qemu-img rebase"
"$MIMG" rebase -q -b new.qcow2 -F qcow2 --image-opts "$(opts m/top.qcow2)" ||
	fail "mimg rebase --image-opts"
check_eq "$(cd m && qemu-img info top.qcow2 | grep '^backing')" \
	"$(cd q && qemu-img info top.qcow2 | grep '^backing')" \
	"rebase: backing file"
qemu-img compare -q m/top.qcow2 top.qcow2 ||
	fail "rebase: the image reads differently"
same_output "rebase: -b as an option string" rebase -q \
	-b "$(opts new.qcow2)" -F qcow2 --image-opts "$(opts top.qcow2)"
# qemu's generic block options: the same exit status and message as
# qemu-img for every command that opens the image, reading or writing
# (read-only=on refused by a write, force-share=on needing a read-only
# image, on/off parsing, node names).  Each run gets a fresh copy.
same_error() {
	desc=$1
	shift
	cp base.qcow2 g.qcow2
	qemu-img "$@" >/dev/null 2>q.err
	qs=$?
	cp base.qcow2 g.qcow2
	"$MIMG" "$@" >/dev/null 2>m.err
	ms=$?
	check_eq "$ms" "$qs" "$desc: exit status ($(head -1 m.err))"
	check_eq "$(sed 's/^mimg: //' m.err)" "$(sed 's/^qemu-img: //' q.err)" \
		"$desc: message"
}
g=driver=qcow2,file.filename=g.qcow2
for o in read-only=on read-only=yes read-only=off force-share=on \
	force-share=on,read-only=on force-share=on,read-only=off \
	cache.direct=on cache.no-flush=on auto-read-only=on node-name=n-1.x_ \
	node-name=1x node-name=abcdefghijabcdefghijabcdefghijab read-only=2 \
	cache.direct=maybe discard=ignore detect-zeroes=off; do
	same_error "info $o" info --image-opts "$g,$o"
	same_error "check $o" check --image-opts "$g,$o"
	same_error "map $o" map --image-opts "$g,$o"
	same_error "convert $o" convert -O raw --image-opts "$g,$o" g.raw
	same_error "resize $o" resize --image-opts "$g,$o" 8M
	same_error "amend $o" amend -o compat=1.1 --image-opts "$g,$o"
	same_error "rebase $o" rebase -u -b "" --image-opts "$g,$o"
	same_error "snapshot -c $o" snapshot -c s --image-opts "$g,$o"
done
same_error "-U with force-share=off" info -U --image-opts "$g,force-share=off"
same_error "-U with read-only=off" map -U --image-opts "$g,read-only=off"
same_error "-U with force-share=on" check -U --image-opts "$g,force-share=on"
# taken at qemu's defaults only: other values change what writes allocate
"$MIMG" info --image-opts "$g,discard=unmap" 2>m.err &&
	fail "discard=unmap accepted"
grep -q "unsupported value 'unmap' for 'discard'" m.err ||
	fail "discard=unmap: $(cat m.err)"
# cache.direct=on reads and writes what the image holds
cp base.qcow2 g.qcow2
"$MIMG" convert -O raw --image-opts "$g,cache.direct=on" g.raw ||
	fail "convert from cache.direct=on"
qemu-img compare -q -f qcow2 -F raw base.qcow2 g.raw ||
	fail "cache.direct=on: the copy differs"
# convert --target-image-opts: the target named by an option string (an
# existing one: -n), its secret its own
for args in "--target-is-zero" "-o compat=1.1" "-n -o compat=1.1" "-C -c" \
	"-n -O raw" "-n -c" ""; do
	# shellcheck disable=SC2086
	same_error "convert --target-image-opts $args" convert \
		--target-image-opts $args g.qcow2 driver=raw,file.filename=t.raw
done
truncate -s 4M t.raw
same_error "convert --target-image-opts read-only=on" convert -n \
	--target-image-opts g.qcow2 driver=raw,file.filename=t.raw,read-only=on
"$MIMG" convert -n --target-image-opts base.qcow2 \
	driver=raw,file.filename=t.raw || fail "convert --target-image-opts"
qemu-img compare -q -f qcow2 -F raw base.qcow2 t.raw ||
	fail "convert --target-image-opts: the target differs"
if "$MIMG" --help | grep -q '^Formats:.* luks'; then
	sec="--object secret,id=s1,data=pass1 --object secret,id=s2,data=pass2"
	"$MIMG" create --object secret,id=s2,data=pass2 -q -f luks \
		-o key-secret=s2,iter-time=10 t.luks 1M || fail "create t.luks"
	# shellcheck disable=SC2086
	"$MIMG" convert $sec -n --image-opts --target-image-opts \
		"$(opts e1.qcow2),encrypt.key-secret=s1" \
		driver=luks,file.filename=t.luks,key-secret=s2 ||
		fail "convert into a luks target by its option string"
	# shellcheck disable=SC2086
	qemu-img compare -q $sec --image-opts \
		"$(opts e1.qcow2),encrypt.key-secret=s1" \
		driver=luks,file.filename=t.luks,key-secret=s2 ||
		fail "convert --target-image-opts: the luks target differs"
	# shellcheck disable=SC2086
	"$MIMG" convert $sec -n --target-image-opts base.qcow2 \
		driver=luks,file.filename=t.luks 2>m.err &&
		fail "a luks target opened without its secret"
	grep -q "Could not open 'driver=luks,file.filename=t.luks': .*Parameter 'key-secret' is required" \
		m.err || fail "a luks target without its secret: $(cat m.err)"
fi
echo "ok"
