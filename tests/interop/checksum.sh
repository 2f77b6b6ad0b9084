#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg checksum: equal for an image and every conversion of it (raw,
# qcow2, compressed qcow2, VMDK flavours, LUKS qcow2, a backing chain),
# different when one byte differs, equal to an independent Python
# implementation of the construction documented in mimg(1), and fast on
# an empty terabyte.
. "$TESTLIB"
need qemu-img python3

cat >ref.py <<'PY'
import hashlib, sys
B, S = 65536, 64
alg = sys.argv[2] if len(sys.argv) > 2 else "sha256"
streams = [hashlib.new(alg) for _ in range(S)]
with open(sys.argv[1], "rb") as f:
    i = 0
    while True:
        b = f.read(B)
        if not b:
            break
        streams[i % S].update(hashlib.new(alg, b).digest())
        i += 1
root = hashlib.new(alg)
for s in streams:
    root.update(s.digest())
print(root.hexdigest())
PY
sum_of() { "$MIMG" checksum "$@" | cut -d' ' -f1; }

# 9 MiB + 4 KiB: data, zeroes written as data, holes, a short last block
truncate -s 9441280 src.raw
python3 - <<'PY'
import os
with open("src.raw", "r+b") as f:
    for off, n in ((0, 70000), (1 << 20, 3 << 20), (6 << 20, 512),
                   (9441280 - 4096, 4096)):
        f.seek(off); f.write(os.urandom(n))
    f.seek(5 << 20); f.write(bytes(1 << 20))
PY
want=$(python3 ref.py src.raw)
check_eq "$(sum_of -f raw src.raw)" "$want" "raw against the reference"
for a in sha1 sha512; do
	check_eq "$(sum_of -f raw -a $a src.raw)" "$(python3 ref.py src.raw $a)" \
		"$a against the reference"
done
for t in 1 2 16; do
	check_eq "$(sum_of -T $t src.raw)" "$want" "$t threads"
done

OBJ="--object secret,id=s,data=pw"
qemu-img convert -O qcow2 src.raw a.qcow2
qemu-img convert -c -O qcow2 src.raw c.qcow2
qemu-img convert -O qcow2 -o cluster_size=4k,compat=0.10 src.raw v2.qcow2
qemu-img convert -O vmdk src.raw m.vmdk
qemu-img convert -O vmdk -o subformat=streamOptimized src.raw s.vmdk
"$MIMG" convert $OBJ -O qcow2 \
	-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
	src.raw e.qcow2
# a chain: the first half in the base, the rest in the overlay
python3 - <<'PY'
d = open("src.raw", "rb").read()
h = len(d) // 2
open("half.raw", "wb").write(d[:h] + bytes(len(d) - h))
PY
qemu-img convert -O qcow2 half.raw base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
"$MIMG" convert -n -O qcow2 src.raw top.qcow2
for f in a.qcow2 c.qcow2 v2.qcow2 m.vmdk s.vmdk top.qcow2; do
	check_eq "$(sum_of "$f")" "$want" "$f"
done
check_eq "$(sum_of $OBJ e.qcow2)" "$want" "LUKS qcow2"

# one byte differs
cp src.raw one.raw
printf 'x' | dd of=one.raw bs=1 seek=7000000 conv=notrunc 2>/dev/null
[ "$(sum_of one.raw)" != "$want" ] || fail "one changed byte not seen"
qemu-img convert -O qcow2 one.raw one.qcow2
check_eq "$(sum_of one.qcow2)" "$(python3 ref.py one.raw)" "changed image"

# JSON
"$MIMG" checksum --output json a.qcow2 >s.json
check_eq "$(json_get s.json checksum)" "$want" "json checksum"
check_eq "$(json_get s.json algorithm)" "sha256" "json algorithm"

# An empty terabyte: block status, never read (CPU seconds, not wall
# clock: the machine may be busy).
qemu-img create -q -f qcow2 big.qcow2 1T
cpu=$(python3 - "$MIMG" <<'PY'
import os, subprocess, sys
subprocess.run([sys.argv[1], "checksum", "big.qcow2"], check=True,
               stdout=subprocess.DEVNULL)
t = os.times()
print("%.2f" % (t.children_user + t.children_system))
PY
) || fail "checksum of an empty 1 TiB image"
python3 -c "import sys; sys.exit(0 if float('$cpu') < 3 else 1)" ||
	fail "checksum of an empty 1 TiB image took $cpu CPU seconds"
"$MIMG" checksum -a nosuch src.raw 2>err.txt && fail "unknown algorithm"
grep -q "nosuch" err.txt || fail "$(cat err.txt)"
echo "checksum: OK"
