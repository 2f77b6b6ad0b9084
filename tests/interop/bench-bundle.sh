#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# bench/bundle.sh: the bundled mimg and qemu-img run with an empty
# environment and load their libraries from the bundle (the loader's own
# trace says from where); bench/convert.sh's scaling part (-S 1, -t) runs
# on the bundled mimg, and qemu-img (installed) reads what it converted.
. "$TESTLIB"
need qemu-img patchelf python3 bc /usr/bin/time
ROOT=$(cd "$(dirname "$TESTLIB")/../.." && pwd)

sh "$ROOT/bench/bundle.sh" "$T/pack" "$T/pack" "$MIMG" qemu-img bc ||
	fail "bundle.sh failed"
for p in mimg qemu-img bc; do
	[ -x "$T/pack/bin/$p" ] || fail "no $p in the bundle"
done
[ -f "$T/pack/lib/libmimg.so.0" ] || fail "libmimg.so.0 not bundled"

qemu-img create -q -f qcow2 src.qcow2 8M
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 4096)' >data
qemu-img dd -f raw -O qcow2 if=data of=src.qcow2 2>/dev/null ||
	fail "qemu-img dd"
env -i LD_DEBUG=libs "$T/pack/bin/mimg" convert -f qcow2 -O vmdk \
	src.qcow2 out.vmdk 2>trace || fail "bundled mimg: $(tail -3 trace)"
# Every library it opened came from the bundle (the loader's own
# "calling init" lines name each one).
grep 'calling init:' trace | grep -v "calling init: $T/pack/lib/" |
	grep -v 'linux-vdso' >outside && [ -s outside ] &&
	fail "libraries loaded from outside the bundle: $(cat outside)"
grep -q "calling init: $T/pack/lib/libmimg.so.0" trace ||
	fail "libmimg not loaded from the bundle"
qemu-img compare -q -f qcow2 -F vmdk src.qcow2 out.vmdk ||
	fail "qemu-img reads the bundled mimg's output differently"
ver=$(env -i "$T/pack/bin/qemu-img" --version | head -1)
case $ver in "qemu-img version"*) ;; *) fail "bundled qemu-img: $ver" ;; esac

# The scaling part alone, on the bundled mimg, one kind of row.
mkdir out
MIMG=$T/pack/bin/mimg sh "$ROOT/bench/convert.sh" -S 1 -r 1 -s 1 -d 24 \
	-t "zlib -> raw" -o "$T/out" "$T/bench" >bench.log 2>&1 ||
	fail "convert.sh -S 1: $(tail -5 bench.log)"
rows=$(grep -c '^qcow2 -c zlib -> raw  *-m ' bench.log)
cpus=$(getconf _NPROCESSORS_ONLN)
want=0
for m in 1 2 4 8 16; do [ "$m" -le "$cpus" ] && want=$((want + 1)); done
check_eq "$rows" "$want" "scaling rows for $cpus CPUs"
grep -q -- '-> qcow2' bench.log && fail "-t did not select the rows: $(cat bench.log)"
exit 0
