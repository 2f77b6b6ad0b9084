#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg bench: runs reads and writes on raw and qcow2, reports as qemu-img
# bench does, and what it writes is what qemu-io reads back.
. "$TESTLIB"
need qemu-img qemu-io

qemu-img create -q -f qcow2 t.qcow2 1M || fail "qemu-img create"
out=$("$MIMG" bench -w --pattern=0x41 -c 32 -d 4 -s 4k -S 64k -f qcow2 t.qcow2) ||
	fail "mimg bench -w failed: $out"
echo "$out" | head -n1 | grep -qx "Sending 32 write requests, 4096 bytes each, 4 in parallel (starting at offset 0, step size 65536)" ||
	fail "unexpected header: $out"
echo "$out" | tail -n1 | grep -q "^Run completed in [0-9]*\.[0-9][0-9][0-9] seconds\.$" ||
	fail "unexpected summary: $out"
# 32 requests with a 64 KiB step wrap at 1 MiB - 4 KiB: every cluster's
# first 4 KiB holds the pattern, the rest reads as zeroes.
for c in 0 1 7 15; do
	qemu-io -f qcow2 -c "read -P 0x41 $((c * 65536)) 4k" t.qcow2 | grep -q "^read 4096" ||
		fail "cluster $c does not hold the pattern"
	qemu-io -f qcow2 -c "read -P 0 $((c * 65536 + 4096)) 60k" t.qcow2 | grep -q "^read 61440" ||
		fail "cluster $c was written past the request"
done
qemu-img check -q t.qcow2 || fail "qemu-img check after mimg bench"

# The header names the depth asked, also above the count (as qemu-img).
for args in "-c 10" "-c 0 -d 3" "-c 5 -s 512 -S 1k -o 2048"; do
	# shellcheck disable=SC2086 # the options' words
	q=$(qemu-img bench $args t.qcow2 | head -n1)
	# shellcheck disable=SC2086
	m=$("$MIMG" bench $args t.qcow2 | head -n1)
	[ "$q" = "$m" ] || fail "bench $args: '$m', qemu-img: '$q'"
done

# Requests that cross the end of the image fail, as qemu-img's do.
for w in "" -w; do
	cp t.qcow2 e.qcow2
	# shellcheck disable=SC2086 # -w or nothing
	qemu-img bench $w -o 1000 -c 300 e.qcow2 >/dev/null 2>&1 &&
		fail "qemu-img bench $w past the end succeeded"
	cp t.qcow2 e.qcow2
	# shellcheck disable=SC2086
	"$MIMG" bench $w -o 1000 -c 300 e.qcow2 >/dev/null 2>err &&
		fail "bench $w past the end succeeded"
	grep -q "past the end of the image" err || fail "bench $w: $(cat err)"
done

# Reads, with a flush interval refused for them, and -q.
out=$("$MIMG" bench -q -c 100 -d 8 t.qcow2) || fail "mimg bench read failed"
[ -z "$out" ] || fail "-q printed: $out"
"$MIMG" bench -c 10 --flush-interval=2 t.qcow2 2>/dev/null &&
	fail "--flush-interval accepted for reads"
out=$("$MIMG" bench -w -c 20 -d 2 --flush-interval=4 -f raw t.raw 2>&1) &&
	fail "missing file accepted"
qemu-img create -q -f raw t.raw 64k
out=$("$MIMG" bench -w -c 20 -d 2 --flush-interval=4 -f raw -t writethrough t.raw) ||
	fail "raw write with flushes failed: $out"
echo "$out" | grep -qx "Sending flush every 4 requests" || fail "no flush line: $out"
"$MIMG" bench -o 1M t.raw 2>/dev/null && fail "offset past the end accepted"
exit 0
