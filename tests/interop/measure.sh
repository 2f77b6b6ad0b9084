#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg measure must print the same numbers, keys and messages as
# qemu-img measure, for sizes and for images of every kind: empty, partly
# and fully written, compressed, sparse raw, a chain, preallocated
# metadata, persistent bitmaps; and encrypted targets (luks, qcow2 with
# encrypt.format=luks) with their LUKS headers.
. "$TESTLIB"
need qemu-img qemu-io python3
need_format qcow2

io() { qemu-io -f qcow2 "$@" > /dev/null || fail "qemu-io $*"; }

qemu-img create -q -f qcow2 empty.qcow2 20M
qemu-img create -q -f qcow2 part.qcow2 64M
io -c 'write -P 1 0 1M' -c 'write -P 2 10M 100k' -c 'write -z 20M 1M' \
	-c 'write -c -P 3 30M 64k' -c 'write -P 4 40001k 3k' part.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4k full.qcow2 2M
io -c 'write -P 5 0 2M' full.qcow2
python3 - sparse.raw <<'PY'
import os, sys
with open(sys.argv[1], "wb") as f:
    f.truncate(50 << 20)
    f.seek(1 << 20); f.write(os.urandom(300000))
    f.seek(7 << 20); f.write(bytes(1 << 20))
    f.seek((50 << 20) - 100); f.write(b"x" * 100)
PY
qemu-img convert -c -O qcow2 sparse.raw comp.qcow2
qemu-img create -q -f qcow2 -b part.qcow2 -F qcow2 top.qcow2 80M
io -c 'write -P 6 50M 1M' top.qcow2
qemu-img create -q -f qcow2 -o preallocation=metadata,compat=0.10 pm.qcow2 10M
qemu-img create -q -f qcow2 bm.qcow2 8M
io -c 'write -P 7 0 3M' bm.qcow2
qemu-img bitmap --add bm.qcow2 b1
qemu-img bitmap --add -g 512 bm.qcow2 a-longer-bitmap-name

same() {
	# shellcheck disable=SC2068
	qemu-img measure $@ > q.out 2>&1; qs=$?
	# shellcheck disable=SC2068
	"$MIMG" measure $@ > m.out 2>&1; ms=$?
	sed -i 's/^mimg: /qemu-img: /' m.out
	check_eq "$ms" "$qs" "exit status of measure $*"
	cmp -s q.out m.out || fail "measure $*: $(diff q.out m.out)"
}

for f in empty.qcow2 part.qcow2 full.qcow2 sparse.raw comp.qcow2 \
	 top.qcow2 pm.qcow2 bm.qcow2; do
	same -O qcow2 "$f"
	same --output=json -O qcow2 "$f"
	same -O raw "$f"
	same -O qcow2 -o cluster_size=4k "$f"
done
same --output=json -O qcow2 -o cluster_size=2M,compat=0.10 part.qcow2
same -O qcow2 -o cluster_size=512 part.qcow2
same -O qcow2 -o backing_file=x part.qcow2
same -O qcow2 -o preallocation=full part.qcow2
same -f raw -O qcow2 sparse.raw
# An internal snapshot's content (-l).
cp part.qcow2 snap.qcow2
qemu-img snapshot -c s1 snap.qcow2
io -c 'write -P 8 4M 2M' snap.qcow2
same -O qcow2 -l s1 snap.qcow2
same -O qcow2 -l snapshot.name=s1 snap.qcow2
same -O qcow2 snap.qcow2

for s in 1G 12345 0 100T; do
	same --size "$s" -O qcow2
	same --output=json --size "$s"
done
for o in extended_l2=on refcount_bits=1 refcount_bits=64 \
	 cluster_size=512 preallocation=metadata preallocation=falloc \
	 compat=0.10; do
	same -O qcow2 -o "$o" --size 3G
done

# Errors.
same -O qcow2 -o extended_l2=on,cluster_size=4k --size 1G
same -O qcow2 -o cluster_size=1000 --size 1G
same -O qcow2 -o compat=0.10,refcount_bits=8 --size 1G
same -O qcow2 -o refcount_bits=3 --size 1G
for o in compat=2 cluster_size=abc refcount_bits=abc extended_l2=maybe \
	 encryption=on lazy_refcounts=on; do
	same -O qcow2 -o "$o" --size 1G
done
# on/off values as qemu parses them (yes/y/no/n/true/false too)
for v in yes y no n true false; do
	same -O qcow2 -o extended_l2=$v,lazy_refcounts=$v --size 1G
done
same -O qcow2 -o preallocation=bogus --size 1G
same -O qcow2 -o cluster_size=512 --size 1P
same -O qcow2 --size 1x
same -O qcow2 -o foo=bar --size 1G
same -O vmdk part.qcow2
same -O nosuchformat --size 1G
same --size 1G part.qcow2
same -O qcow2
same -O qcow2 part.qcow2 part.qcow2
# Encrypted targets.  qemu-img lays out a real LUKS header to measure
# one, timing PBKDF2 first, and on a busy machine gives up with "Unable
# to get accurate CPU usage": it is asked again until it answers.
same_luks() {
	_until=$(($(date +%s) + 120))
	while :; do
		# shellcheck disable=SC2068
		qemu-img measure $@ > q.out 2>&1; qs=$?
		grep -q "accurate CPU usage" q.out || break
		[ "$(date +%s)" -lt "$_until" ] || fail "qemu-img measure $*: $(cat q.out)"
	done
	# shellcheck disable=SC2068
	"$MIMG" measure $@ > m.out 2>&1; ms=$?
	sed -i 's/^mimg: /qemu-img: /' m.out
	check_eq "$ms" "$qs" "exit status of measure $*"
	cmp -s q.out m.out || fail "measure $*: $(diff q.out m.out)"
}
if "$MIMG" --help | grep -q '^Formats:.* luks'; then
	sec="--object secret,id=s,data=pw"
	# (not aes-192 with cbc: qemu-img 7.2 aborts on its 96000-byte key
	# material, not a whole number of sectors)
	for o in "" ,cipher-alg=aes-128 ,cipher-alg=aes-192 \
		,cipher-mode=cbc,ivgen-alg=essiv ,hash-alg=sha1; do
		same_luks $sec -O luks -o "key-secret=s,iter-time=100$o" --size 1G
		same_luks $sec --output=json -O qcow2 -o \
			"encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=100$(echo "$o" | sed 's/,/,encrypt./g')" part.qcow2
	done
	same_luks $sec -O luks -o key-secret=s,iter-time=100 --size 1000
	same_luks $sec --output=json -O luks -o key-secret=s,iter-time=100 part.qcow2
	same_luks $sec -O qcow2 -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=100,cluster_size=4k --size 1G
	same_luks $sec -O qcow2 -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=100,cluster_size=2M,preallocation=full --size 1G
	# what mimg then writes fits the measure
	"$MIMG" convert $sec -O qcow2 -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
		part.qcow2 enc.qcow2 || fail "convert to an encrypted qcow2"
	req=$("$MIMG" measure $sec -O qcow2 -o encrypt.format=luks,encrypt.key-secret=s part.qcow2 | sed -n 's/^required size: //p')
	[ "$(stat -c %s enc.qcow2)" -le "$req" ] ||
		fail "encrypted qcow2 of $(stat -c %s enc.qcow2) bytes, measured $req"
	# errors: no secret named, an unknown secret, an option luks lacks
	same_luks $sec -O luks --size 1G
	same_luks $sec -O luks -o key-secret=nope --size 1G
	same_luks $sec -O luks -o key-secret=s,bogus=1 --size 1G
	same_luks $sec -O qcow2 -o encrypt.format=luks --size 1G
	same_luks -O qcow2 -o encrypt.format=luks,encrypt.key-secret=s --size 1G
	# qemu-img measures these as unencrypted
	same $sec -O qcow2 -o encrypt.format=aes --size 1G
	same $sec -O qcow2 -o encrypt.key-secret=s --size 1G
fi
exit 0
