#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg amend against qemu-img amend on copies of the same qcow2 images:
# the same exit status and message, then (on success) an image that
# checks clean, holds the same guest content (snapshots too) and that
# qemu-img info describes the same way.
. "$TESTLIB"
need qemu-img qemu-io
need_format qcow2

io() { qemu-io -f qcow2 "$@" > /dev/null || fail "qemu-io $*"; }
cases=0

qemu-img create -q -f qcow2 base.qcow2 4M
io -c 'write -P 9 0 4M' base.qcow2

# img OPTS...: a.qcow2 with data, zero (plain and allocated),
# compressed and discarded clusters.
img() {
	rm -f a.qcow2 b.qcow2
	qemu-img create -q -f qcow2 "$@" a.qcow2 4M || fail "create $*"
	io -c 'write -P 0x11 0 128k' -c 'write -z 256k 128k' \
		-c 'write -P 0x22 1M 64k' -c 'write -z 1M 64k' \
		-c 'write -P 0x44 3M 100k' -c 'discard 3M 64k' a.qcow2
	case "$*" in
	*data_file*) ;; # no compressed clusters with a data file
	*) io -c 'write -c -P 0x33 2M 64k' a.qcow2 ;;
	esac
}

# info without the lines that name the file or its allocation
info() { qemu-img info "$1" | sed 1d | grep -v '^disk size'; }

# same OPTS: amend a copy with each tool and compare.
same() {
	cases=$((cases + 1))
	cp a.qcow2 b.qcow2
	qemu-img amend -o "$1" a.qcow2 > q.out 2>&1
	qs=$?
	"$MIMG" amend -o "$1" b.qcow2 > m.out 2>&1
	ms=$?
	check_eq "$ms" "$qs" "amend -o $1: exit status"
	sed 's/^qemu-img: //' q.out > q.msg
	sed 's/^mimg: //' m.out > m.msg
	cmp -s q.msg m.msg || fail "amend -o $1: message: $(cat m.msg)" \
		"(qemu-img: $(cat q.msg))"
	qemu-img check -q b.qcow2 || fail "amend -o $1: check"
	qemu-img compare -q a.qcow2 b.qcow2 || fail "amend -o $1: content"
	info a.qcow2 > qi.txt
	info b.qcow2 > mi.txt
	cmp -s qi.txt mi.txt || fail "amend -o $1: info differs:
$(diff qi.txt mi.txt)"
	for s in $(qemu-img snapshot -l a.qcow2 | awk 'NR>2 {print $2}'); do
		qemu-img snapshot -a "$s" a.qcow2 &&
			qemu-img snapshot -a "$s" b.qcow2 ||
			fail "snapshot -a $s"
		qemu-img compare -q a.qcow2 b.qcow2 ||
			fail "amend -o $1: snapshot $s content"
	done
}

# Changes qemu makes.
for o in compat=0.10 compat=v2 compat=1.1 lazy_refcounts=on \
	refcount_bits=1 refcount_bits=2 refcount_bits=8 refcount_bits=64 \
	size=8M size=4M lazy_refcounts=on,refcount_bits=4; do
	img
	same "$o"
done
img -o lazy_refcounts=on
same lazy_refcounts=off
same compat=0.10
img -o compat=0.10
same compat=1.1
same compat=v3,lazy_refcounts=on,refcount_bits=32
same refcount_bits=16
img -o cluster_size=512
same refcount_bits=1
same compat=0.10
img -b base.qcow2 -F qcow2
same compat=0.10
same backing_file=base.qcow2,backing_fmt=qcow2
img -o compression_type=zstd
io -c 'discard 2M 64k' a.qcow2
same compat=0.10
img -o data_file=a.data
same data_file=a.data
same data_file_raw=off
# Snapshots share L2 tables and clusters with the image.
img -b base.qcow2 -F qcow2
qemu-img snapshot -c s1 a.qcow2
io -c 'write -z 512k 64k' -c 'write -P 0x55 0 64k' a.qcow2
same compat=0.10
img
qemu-img snapshot -c s1 a.qcow2
same refcount_bits=4
same compat=0.10
# A dirty image (lazy refcounts, killed writer) is repaired first.
img -o lazy_refcounts=on
qemu-io -c 'write -P 0x66 1536k 64k' -c 'sigraise 9' a.qcow2 > /dev/null 2>&1
qemu-img info --output=json a.qcow2 | grep -q '"dirty-flag": true' ||
	fail "could not make a dirty image"
cp a.qcow2 b.qcow2
"$MIMG" amend -o lazy_refcounts=off b.qcow2 || fail "amend dirty image"
qemu-img check -q b.qcow2 || fail "dirty image: check after amend"
qemu-img info b.qcow2 | grep -q 'lazy refcounts: false' ||
	fail "dirty image: lazy refcounts still on"
qemu-img compare -q base.qcow2 b.qcow2 2>/dev/null
cp a.qcow2 c.qcow2
qemu-img check -q -r all c.qcow2 > /dev/null 2>&1
qemu-img compare -q c.qcow2 b.qcow2 || fail "dirty image: content"

# Refusals, with qemu-img's words and status.
img
for o in cluster_size=4k compression_type=zstd extended_l2=on \
	preallocation=full encryption=on foo=1 compat=0.9 compat= \
	refcount_bits=3 refcount_bits=0 refcount_bits=x size=abc \
	lazy_refcounts=maybe data_file=x.data data_file_raw=on \
	backing_file=base.qcow2 backing_fmt=qcow2 encrypt.keyslot=1 \
	encrypt.new-secret=s encrypt.state=active \
	compat=0.10,lazy_refcounts=on; do
	same "$o"
done
img -o extended_l2=on
same compat=0.10
img -o refcount_bits=8
same compat=0.10
same compat=0.10,refcount_bits=8
img -o compat=0.10
same lazy_refcounts=on
same refcount_bits=8
img -o compression_type=zstd
same compat=0.10
img -o data_file=a.data
same compat=0.10
img
qemu-img snapshot -c s1 a.qcow2
io -c 'write -P 0x77 0 64k' a.qcow2
same refcount_bits=1
img -b base.qcow2 -F qcow2
same backing_file=other.qcow2,backing_fmt=qcow2
same backing_fmt=raw

# A damaged image is not restructured (mimg refuses where qemu-img would
# rewrite refcounts around the damage): the L1 table's refcount is zeroed.
qemu-img create -q -f qcow2 d.qcow2 1M
io -c 'write -P 1 0 64k' d.qcow2
printf '\000\000' | dd of=d.qcow2 bs=1 seek=$((0x20006)) conv=notrunc \
	2>/dev/null
qemu-img check -q d.qcow2 > /dev/null 2>&1 && fail "could not damage d.qcow2"
cp d.qcow2 d0.qcow2
for o in refcount_bits=8 compat=0.10; do
	"$MIMG" amend -o $o d.qcow2 2> err.txt && fail "damaged image: $o"
	grep -q "errors; repair it" err.txt || fail "damaged: $(cat err.txt)"
	cmp -s d.qcow2 d0.qcow2 || fail "damaged image written ($o)"
done

# An encrypted image keeps the pointer to its LUKS header: the same
# image as qemu-img's, which checks clean, and the data still decrypts.
sec="--object secret,id=s0,data=pw"
enc="driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s0"
# shellcheck disable=SC2086
qemu_img_luks create -q -f qcow2 $sec -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 e.qcow2 16M
# shellcheck disable=SC2086
qemu-io $sec --image-opts -c 'write -P 0x33 0 64k' "$enc" >/dev/null ||
	fail "write into the encrypted image"
cp e.qcow2 eq.qcow2
for o in lazy_refcounts=on compat=1.1 refcount_bits=32; do
	# shellcheck disable=SC2086
	"$MIMG" amend $sec --image-opts -o "$o" "$enc" || fail "encrypted: mimg amend -o $o"
	# shellcheck disable=SC2086
	qemu-img amend $sec --image-opts -o "$o" \
		"driver=qcow2,file.filename=eq.qcow2,encrypt.key-secret=s0" ||
		fail "encrypted: qemu-img amend -o $o"
	# rewritten refcount structures may lie elsewhere; a header update
	# is the same bytes
	[ "$o" = refcount_bits=32 ] || cmp -s e.qcow2 eq.qcow2 ||
		fail "encrypted: amend -o $o differs from qemu-img's"
	check_eq "$(info e.qcow2)" "$(info eq.qcow2)" "encrypted: info after amend -o $o"
	# shellcheck disable=SC2086
	qemu-img check -q $sec --image-opts "$enc" || fail "encrypted: check after amend -o $o"
	# shellcheck disable=SC2086
	qemu-io $sec --image-opts -c 'read -P 0x33 0 64k' "$enc" | grep -q '^read 65536' ||
		fail "encrypted: data lost after amend -o $o"
	cases=$((cases + 1))
done

# Command line as qemu-img's.
qemu-img amend a.qcow2 > /dev/null 2>&1
qs=$?
"$MIMG" amend a.qcow2 2> err.txt
check_eq "$?" "$qs" "amend without -o"
grep -q "Must specify options (-o)" err.txt || fail "no -o: $(cat err.txt)"
qemu-img create -q -f vmdk v.vmdk 1M
"$MIMG" amend -o compat6=on v.vmdk 2> err.txt && fail "vmdk amended"
grep -q "Format driver 'vmdk' does not support option amendment" err.txt ||
	fail "vmdk: $(cat err.txt)"
"$MIMG" amend -q -p -t writeback -f qcow2 -o size=6M a.qcow2 ||
	fail "amend -q -p -t -f"
check_eq "$(qemu-img info --output=json a.qcow2 | grep -c '"virtual-size": 6291456')" 1 \
	"size after amend -f qcow2"
"$MIMG" amend -f raw -o size=6M a.qcow2 2> err.txt && fail "amend -f raw"
echo "ok: $cases amend cases as qemu-img"
