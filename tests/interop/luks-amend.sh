#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Key slots through mimg amend, as qemu-img amend takes them: a slot added
# with encrypt.state=active and erased with encrypt.state=inactive, on a
# LUKS qcow2 and a raw LUKS image that qemu-img made; qemu-io, qemu-img
# check and cryptsetup read the result.
. "$TESTLIB"
need qemu-img qemu-io

OLD="--object secret,id=s0,data=old-pass"
NEW="--object secret,id=s1,data=new-pass"
qio() { # qemu-io with the secret ID: can it read the image?
	qemu-io --object "secret,id=$2,data=$3" --image-opts \
		"driver=$1,file.filename=$4,$5=$2" -c 'read -P 0x5a 0 64k' \
		>qio.out 2>&1
}

# qcow2 with LUKS
qemu_img_luks create -q -f qcow2 $OLD \
	-o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 e.qcow2 16M
qemu-io --object secret,id=s0,data=old-pass --image-opts \
	driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s0 \
	-c 'write -P 0x5a 0 64k' >/dev/null
"$MIMG" amend $OLD $NEW --image-opts \
	-o encrypt.state=active,encrypt.new-secret=s1,encrypt.iter-time=10 \
	driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s0 ||
	fail "qcow2: adding a key slot"
qio qcow2 s1 new-pass e.qcow2 encrypt.key-secret || fail "qcow2: new passphrase: $(cat qio.out)"
qio qcow2 s0 old-pass e.qcow2 encrypt.key-secret || fail "qcow2: old passphrase lost"
"$MIMG" amend $OLD $NEW --image-opts -o encrypt.state=inactive,encrypt.old-secret=s0 \
	driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s1 ||
	fail "qcow2: erasing the old slot"
qio qcow2 s0 old-pass e.qcow2 encrypt.key-secret && fail "qcow2: old passphrase still opens"
grep -q "Invalid password" qio.out || fail "qcow2: $(cat qio.out)"
qio qcow2 s1 new-pass e.qcow2 encrypt.key-secret || fail "qcow2: new passphrase after erase"
qemu-img check -q $NEW --image-opts driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s1 ||
	fail "qcow2: qemu-img check"
# The last slot goes only with --force, as qemu-img says.
"$MIMG" amend $NEW --image-opts -o encrypt.state=inactive,encrypt.keyslot=1 \
	driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s1 2>/dev/null &&
	fail "qcow2: erased the last key slot without --force"
# Secrets are named by id: an unknown one is refused.
"$MIMG" amend $OLD --image-opts -o encrypt.state=active,encrypt.new-secret=nope \
	driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s1 2>err.txt &&
	fail "qcow2: unknown secret id accepted"

# raw LUKS
qemu_img_luks create -q -f luks $OLD -o key-secret=s0,iter-time=10 r.luks 16M
"$MIMG" amend $OLD $NEW --image-opts -o state=active,new-secret=s1,iter-time=10 \
	driver=luks,file.filename=r.luks,key-secret=s0 || fail "luks: adding a key slot"
qemu-io --object secret,id=s1,data=new-pass --image-opts \
	driver=luks,file.filename=r.luks,key-secret=s1 -c 'read 0 4k' >/dev/null ||
	fail "luks: qemu-io with the new passphrase"
if command -v cryptsetup >/dev/null; then
	printf new-pass | cryptsetup luksOpen --test-passphrase --key-file=- r.luks ||
		fail "luks: cryptsetup refuses the new passphrase"
fi
"$MIMG" amend $OLD $NEW --image-opts -o state=inactive,keyslot=0 \
	driver=luks,file.filename=r.luks,key-secret=s1 || fail "luks: erasing slot 0"
qemu-io --object secret,id=s0,data=old-pass --image-opts \
	driver=luks,file.filename=r.luks,key-secret=s0 -c 'read 0 4k' >/dev/null 2>&1 &&
	fail "luks: old passphrase still opens"
# Every command that opens an image takes the secret with --object.
"$MIMG" resize $NEW e.qcow2 32M >/dev/null || fail "resize --object"
check_eq "$(qemu-img info --output=json $NEW --image-opts \
	driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s1 |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" \
	33554432 "size after resize --object"
"$MIMG" measure $NEW -O raw e.qcow2 >/dev/null || fail "measure --object"
"$MIMG" bench -q -c 16 $NEW e.qcow2 || fail "bench --object"
"$MIMG" rebase -u -b "" $NEW e.qcow2 || fail "rebase --object"
qemu-img check -q $NEW --image-opts driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=s1 ||
	fail "qemu-img check after resize/rebase"
echo "key slots added and erased on qcow2 and raw LUKS; --object on every command"
