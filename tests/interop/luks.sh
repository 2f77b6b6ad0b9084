#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# LUKS images against qemu-img/qemu-io, for every cipher-mode/IV
# generator combination qemu-img creates with AES:
#  - qemu-img creates, qemu-io writes patterns, mimg reads (convert to
#    raw, compared with qemu-img's own conversion);
#  - mimg creates and writes (convert -O luks), qemu-img reads it back;
#  - mimg info equals qemu-img info (human and JSON) without a secret;
#  - a wrong passphrase fails as qemu-img does; --object file= and
#    format=base64; --image-opts key-secret=.
. "$TESTLIB"
need qemu-img qemu-io python3 cmp base64

OBJ="--object secret,id=sec0,data=PASS"
qimg_opts() { echo "driver=luks,file.filename=$1,key-secret=sec0"; }
qcreate() { # OPTIONS FILE SIZE
	# shellcheck disable=SC2086
	qemu_img_luks create -q -f luks $OBJ -o "key-secret=sec0,$1" "$2" "$3"
}

# A raw source with data at a few places, partial sectors included.
truncate -s 8M src.raw
python3 - <<'PY'
import os
with open("src.raw", "r+b") as f:
    for off, n in ((0, 65536), (700, 3000), (3 << 20, 1 << 20),
                   ((8 << 20) - 1536, 1536)):
        f.seek(off); f.write(os.urandom(n))
PY

# shellcheck disable=SC2086 # one combination a line
for combo in $LUKS_COMBOS; do
	# qemu-img writes, mimg reads
	rm -f q.luks q.raw m.raw
	qcreate "iter-time=10,$combo" q.luks 8M || fail "qemu-img create $combo"
	qemu-img convert -n $OBJ --target-image-opts src.raw "$(qimg_opts q.luks)" ||
		fail "qemu-img convert into $combo"
	qemu-io $OBJ --image-opts "$(qimg_opts q.luks)" \
		-c 'write -P 0x5a 1M 1M' -c 'write -P 0x33 5000 7000' >/dev/null ||
		fail "qemu-io write $combo"
	qemu-img convert $OBJ --image-opts "$(qimg_opts q.luks)" -O raw q.raw
	"$MIMG" convert $OBJ q.luks m.raw || fail "mimg convert $combo"
	cmp q.raw m.raw || fail "mimg reads qemu's $combo differently"
	"$MIMG" compare $OBJ q.luks q.raw >/dev/null ||
		fail "mimg compare $combo"

	# mimg writes, qemu-img reads
	rm -f w.luks w.raw
	"$MIMG" convert $OBJ -O luks -o "key-secret=sec0,iter-time=10,$combo" \
		q.raw w.luks || fail "mimg convert -O luks $combo"
	qemu-img convert $OBJ --image-opts "$(qimg_opts w.luks)" -O raw w.raw ||
		fail "qemu-img cannot read mimg's $combo"
	cmp q.raw w.raw || fail "qemu reads mimg's $combo differently"

	# info without the secret, as qemu-img prints it
	qemu-img info w.luks >q.info
	"$MIMG" info w.luks >m.info || fail "mimg info $combo"
	cmp q.info m.info || { diff q.info m.info; fail "info $combo"; }
	qemu-img info --output=json w.luks >q.json
	"$MIMG" info --output=json w.luks >m.json
	cmp q.json m.json || { diff q.json m.json; fail "info json $combo"; }
done

# Wrong passphrase: the message qemu-img gives, exit 1.  No secret: info
# works, reading does not.
secret_refused q.luks

# Secrets from a file, raw and base64; --image-opts naming one of two.
printf PASS >pass.txt
printf PASS | base64 >pass.b64
"$MIMG" compare --object secret,id=f,file=pass.txt q.luks q.raw >/dev/null ||
	fail "secret from a file"
"$MIMG" compare --object secret,id=b,file=pass.b64,format=base64 \
	q.luks q.raw >/dev/null || fail "secret from a base64 file"
"$MIMG" convert --object secret,id=a,data=WRONG $OBJ \
	--image-opts "$(qimg_opts q.luks)" io.raw || fail "--image-opts"
cmp io.raw q.raw || fail "--image-opts content"
"$MIMG" create -f luks -o key-secret=nosuch,iter-time=10 x.luks 1M \
	2>err.txt && fail "unknown key-secret accepted"
grep -q "No secret with id 'nosuch'" err.txt || fail "$(cat err.txt)"

# The PBKDF2 iteration cap is the caller's.
"$MIMG" convert --object secret,id=x,data=PASS,max-pbkdf2-iters=999 q.luks \
	cap.raw 2>err.txt && fail "iteration cap not applied"
grep -q "above the limit of 999" err.txt || fail "cap message: $(cat err.txt)"

# Ciphers qemu-img knows but mimg does not serve are refused by name.
"$MIMG" create -f luks $OBJ -o key-secret=sec0,cipher-alg=serpent-256 \
	s.luks 1M 2>err.txt && fail "serpent accepted"
grep -q serpent err.txt || fail "serpent message: $(cat err.txt)"
qcreate iter-time=10,cipher-alg=twofish-256 t.luks 1M && {
	"$MIMG" info t.luks 2>err.txt && fail "twofish image opened"
	grep -q twofish err.txt || fail "twofish message: $(cat err.txt)"
}
echo "luks interop: OK"
