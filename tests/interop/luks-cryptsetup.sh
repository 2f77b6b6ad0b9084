#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# LUKS images made by mimg are accepted by cryptsetup: luksDump reads the
# header as mimg wrote it, the passphrase opens key slot 0
# (luksOpen --test-passphrase), a wrong one does not, and the master key
# cryptsetup recovers decrypts the payload as mimg wrote it (AES-XTS
# plain64, checked with python3-cryptography).
. "$TESTLIB"
need cryptsetup python3
CS=$(command -v cryptsetup)

for combo in "cipher-alg=aes-256" "cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv" \
	"cipher-alg=aes-256,hash-alg=sha1"; do
	rm -f m.luks
	"$MIMG" create -q -f luks --object secret,id=s,data=PASS \
		-o "key-secret=s,iter-time=10,$combo" m.luks 4M ||
		fail "mimg create $combo"
	"$CS" luksDump m.luks >dump.txt || fail "luksDump $combo"
	grep -q "^Version:.*1" dump.txt || fail "luksDump version"
	grep -q "^Key Slot 0: ENABLED" dump.txt || fail "slot 0 $combo"
	grep -q "^Key Slot 1: DISABLED" dump.txt || fail "slot 1 $combo"
	"$MIMG" info --output=json m.luks >info.json
	uuid=$(json_get info.json format-specific.data.uuid)
	grep -q "UUID:.*$uuid" dump.txt || fail "uuid $uuid not in luksDump"
	printf PASS | "$CS" luksOpen --test-passphrase --key-file=- m.luks ||
		fail "cryptsetup refuses the passphrase for $combo"
	printf WRONG | "$CS" luksOpen --test-passphrase --key-file=- m.luks \
		2>/dev/null && fail "cryptsetup accepts a wrong passphrase"
done

# Payload: write data with mimg, recover the master key with cryptsetup
# and decrypt one sector independently of mimg.
python3 -c 'import cryptography' 2>/dev/null ||
	{ echo "SKIP: python3-cryptography not installed (payload check)"; exit 77; }
rm -f m.luks
"$MIMG" create -q -f luks --object secret,id=s,data=PASS \
	-o key-secret=s,iter-time=10 m.luks 4M
head -c 1048576 /dev/urandom >data.raw
truncate -s 4M data.raw
"$MIMG" convert -n --object secret,id=s,data=PASS -O luks data.raw m.luks ||
	fail "mimg convert -n into luks"
printf PASS | "$CS" luksDump --dump-master-key --batch-mode --key-file=- \
	m.luks >mk.txt || fail "cryptsetup --dump-master-key"
python3 - <<'PY' || fail "payload does not decrypt with cryptsetup's master key"
import re
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
txt = open("mk.txt").read()
hexs = re.search(r"MK dump:\s*((?:[0-9a-f]{2}\s*)+)", txt).group(1)
mk = bytes.fromhex("".join(hexs.split()))
payload = int(re.search(r"Payload offset:\s*(\d+)", txt).group(1)) * 512
img = open("m.luks", "rb").read()
data = open("data.raw", "rb").read()
for sector in (0, 1, 777, 2047):
    iv = sector.to_bytes(16, "little")
    d = Cipher(algorithms.AES(mk), modes.XTS(iv)).decryptor()
    ct = img[payload + sector * 512: payload + sector * 512 + 512]
    assert d.update(ct) + d.finalize() == data[sector * 512: sector * 512 + 512], sector
PY
echo "luks cryptsetup: OK"
