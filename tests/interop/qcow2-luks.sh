#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Encrypted qcow2 (encrypt.format=luks) against qemu-img/qemu-io, for
# every cipher-mode/IV generator combination qemu-img creates with AES:
#  - qemu-img creates, qemu-io writes patterns, mimg reads;
#  - mimg writes into qemu's image (partial clusters: copy-on-write with
#    re-encryption), qemu-img reads and checks it;
#  - mimg creates (convert -O qcow2 -o encrypt.*), qemu-img reads and
#    checks it, qemu-io writes into it and mimg reads that back;
#  - info without a secret equals qemu-img's (human and JSON);
#  - an encrypted overlay on a plain backing file, both ways;
#  - legacy AES-CBC (encrypt.format=aes) images read and converted out;
#  - --image-opts encrypt.key-secret, wrong and missing secrets.
. "$TESTLIB"
need qemu-img qemu-io python3 cmp

OBJ="--object secret,id=sec0,data=PASS"
qio() { echo "driver=qcow2,file.filename=$1,encrypt.key-secret=sec0"; }
# qemu-img compare A.raw ENCRYPTED.qcow2
qcmp() {
	qemu-img compare $OBJ --image-opts "driver=raw,file.filename=$1" \
		"$(qio "$2")" >/dev/null
}
qcreate() { # OPTIONS FILE SIZE [more qemu-img args]
	_o=$1 _f=$2 _s=$3
	shift 3
	# shellcheck disable=SC2086
	qemu_img_luks create -q -f qcow2 $OBJ "$@" \
		-o "encrypt.format=luks,encrypt.key-secret=sec0,$_o" "$_f" "$_s"
}

# A raw source with data at a few places, partial clusters included.
truncate -s 8M src.raw
python3 - <<'PY'
import os
with open("src.raw", "r+b") as f:
    for off, n in ((0, 65536), (4096, 3072), (3 << 20, 1 << 20),
                   (5 << 20 | 512, 1024), ((8 << 20) - 1536, 1536)):
        f.seek(off); f.write(os.urandom(n))
PY

# shellcheck disable=SC2086 # one combination a line
for combo in $LUKS_COMBOS; do
	e=$(echo "$combo" | sed 's/\([a-z-]*=\)/encrypt.\1/g')
	# qemu-img writes, mimg reads
	rm -f q.qcow2 q.raw m.raw
	qcreate "encrypt.iter-time=10,$e" q.qcow2 8M ||
		fail "qemu-img create $combo"
	qemu-io $OBJ --image-opts "$(qio q.qcow2)" \
		-c 'write -P 0x5a 1M 1M' -c 'write -P 0x33 70000 7000' \
		-c 'write -P 0x44 6M 512' >/dev/null || fail "qemu-io $combo"
	qemu-img convert $OBJ --image-opts "$(qio q.qcow2)" -O raw q.raw
	"$MIMG" convert $OBJ q.qcow2 m.raw || fail "mimg convert $combo"
	cmp q.raw m.raw || fail "mimg reads qemu's $combo differently"

	# mimg writes into qemu's image: every cluster of src.raw, zeroes
	# and partial data alike (copy-on-write inside touched clusters)
	"$MIMG" convert -n $OBJ -O qcow2 src.raw q.qcow2 ||
		fail "mimg writes into qemu's $combo"
	qcmp src.raw q.qcow2 || fail "qemu reads mimg's writes ($combo)"
	qemu-img check -q $OBJ --image-opts "$(qio q.qcow2)" ||
		fail "qemu-img check after mimg's writes ($combo)"

	# mimg creates, qemu reads; qemu writes, mimg reads
	rm -f w.qcow2 w.raw
	"$MIMG" convert $OBJ -O qcow2 \
		-o "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,$e" \
		src.raw w.qcow2 || fail "mimg convert -O qcow2 $combo"
	qcmp src.raw w.qcow2 || fail "qemu-img reads mimg's $combo differently"
	qemu-img check -q $OBJ --image-opts "$(qio w.qcow2)" ||
		fail "qemu-img check of mimg's $combo"
	qemu-io $OBJ --image-opts "$(qio w.qcow2)" \
		-c 'write -P 0x77 100k 3k' -c 'write -P 0x78 7M 64k' >/dev/null ||
		fail "qemu-io into mimg's $combo"
	qemu-img convert $OBJ --image-opts "$(qio w.qcow2)" -O raw w.raw
	"$MIMG" compare $OBJ w.qcow2 w.raw >/dev/null ||
		fail "mimg reads qemu's writes into its $combo"

	# info without the secret, as qemu-img prints it
	for f in q.qcow2 w.qcow2; do
		qemu-img info $f >q.info
		"$MIMG" info $f >m.info || fail "mimg info $combo"
		cmp q.info m.info || { diff q.info m.info; fail "info $combo"; }
		qemu-img info --output=json $f >q.json
		"$MIMG" info --output=json $f >m.json
		cmp q.json m.json ||
			{ diff q.json m.json; fail "info json $combo"; }
	done
done

# mimg's check counts the encryption header's clusters.
"$MIMG" check $OBJ w.qcow2 >/dev/null || fail "mimg check of its image"

# An encrypted overlay over a plain base: partial-cluster writes copy
# the base's data into the new cluster, encrypted.  mimg writes them by
# committing a plain overlay into it; qemu-io writes the same into a copy.
qemu-img convert -O qcow2 src.raw base.qcow2
qcreate encrypt.iter-time=10 top.qcow2 8M -b base.qcow2 -F qcow2 ||
	fail "qemu-img create overlay"
cp top.qcow2 topq.qcow2
qemu-img create -q -f qcow2 -u -b top.qcow2 -F qcow2 patch.qcow2 8M
qwrites() {
	qemu-io $OBJ --image-opts "$1" -c 'write -P 0x11 512 1024' \
		-c 'write -P 0x12 3149824 1000' -c 'write -P 0x13 7M 1024' \
		-c 'write -P 0x14 5M 64k' >/dev/null
}
qwrites "driver=qcow2,file.filename=patch.qcow2,backing.encrypt.key-secret=sec0" ||
	fail "qemu-io into the plain overlay"
qwrites "$(qio topq.qcow2)" || fail "qemu-io into the encrypted overlay"
"$MIMG" commit -q $OBJ -d patch.qcow2 || fail "mimg commit into luks"
qemu-img compare -q $OBJ --image-opts "$(qio top.qcow2)" "$(qio topq.qcow2)" ||
	fail "copy-on-write into the encrypted overlay"
qemu-img check -q $OBJ --image-opts "$(qio top.qcow2)" ||
	fail "qemu-img check of the overlay"
"$MIMG" compare $OBJ top.qcow2 topq.qcow2 >/dev/null ||
	fail "mimg reads the overlays differently"

# Legacy AES-CBC: qemu-img 7.2 still creates and writes them.
qemu-img create -q -f qcow2 $OBJ -o encrypt.format=aes,encrypt.key-secret=sec0 \
	a.qcow2 8M || fail "qemu-img create aes"
qemu-io $OBJ --image-opts "$(qio a.qcow2)" -c 'write -P 0x61 64k 200k' \
	-c 'write -P 0x62 5M 4k' >/dev/null || fail "qemu-io aes"
qemu-img convert $OBJ --image-opts "$(qio a.qcow2)" -O raw a.raw
"$MIMG" convert $OBJ a.qcow2 ma.raw || fail "mimg reads aes"
cmp a.raw ma.raw || fail "mimg reads aes differently"
qemu-img info a.qcow2 >q.info
"$MIMG" info a.qcow2 >m.info
cmp q.info m.info || { diff q.info m.info; fail "aes info"; }
qemu-img info --output=json a.qcow2 >q.json
"$MIMG" info --output=json a.qcow2 >m.json
cmp q.json m.json || { diff q.json m.json; fail "aes info json"; }
"$MIMG" convert $OBJ -O qcow2 \
	-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 \
	a.qcow2 al.qcow2 || fail "aes to luks"
qcmp a.raw al.qcow2 || fail "aes to luks content"
"$MIMG" create -f qcow2 $OBJ -o encrypt.format=aes,encrypt.key-secret=sec0 \
	x.qcow2 1M 2>err.txt && fail "aes created"
grep -q "encrypt.format=luks" err.txt || fail "aes create: $(cat err.txt)"

# --image-opts, wrong and missing secrets.
"$MIMG" convert --object secret,id=a,data=WRONG $OBJ \
	--image-opts "$(qio w.qcow2)" io.raw || fail "--image-opts"
cmp io.raw w.raw || fail "--image-opts content"
secret_refused w.qcow2
"$MIMG" create -f qcow2 -o encrypt.format=luks x.qcow2 1M 2>err.txt &&
	fail "luks without a secret"
grep -q "encrypt.key-secret" err.txt || fail "$(cat err.txt)"
"$MIMG" convert -c $OBJ -O qcow2 \
	-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 \
	src.raw c.qcow2 2>err.txt && fail "compressed encrypted image"
echo "qcow2 luks interop: OK"
