#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# Guest-visible throughput and IOPS of vmm-blk versus qemu-storage-daemon
# (--export type=vhost-user-blk), both serving a fresh qcow2 overlay of
# the same size, on the same qcow2 base, to the same QEMU guest in the same
# run.  The base holds data over the whole span.  The guest runs
# bench/vmm-blk-iops.c (static, O_DIRECT):
#   bread      sequential 1 MiB reads served by the backing file
#   fill       one sequential 1 MiB write pass over the span (allocating)
#   write      sequential 1 MiB overwrites for BENCH_SECS
#   read       sequential 1 MiB reads for BENCH_SECS
#   randread1  4 KiB random reads, queue depth 1
#   randread   4 KiB random reads, queue depth BENCH_QD
#   randwrite  4 KiB random overwrites, queue depth BENCH_QD
# and the script prints each backend's best result over the rounds and
# the ratio vmm-blk / qemu-storage-daemon (>= 1.00 means vmm-blk is at
# least as fast).
#
# Usage: bench/vmm-blk.sh [BUILDDIR]     (default: build)
# Environment: VMM_BLK (default BUILDDIR/vmm-blk/vmm-blk), BENCH_BACKENDS
# ("qsd vmm-blk"), BENCH_ROUNDS (1), BENCH_SECS (10), BENCH_SPAN (256M),
# BENCH_SIZE (1G, the virtual disk size), BENCH_QD (4), BENCH_FLUSH (0),
# E2E_SMP (2), E2E_ACCEL (tcg; kvm where nested KVM works), BENCH_BASE (the
# path of another vmm-blk build, run as a third backend "base" in the same
# rounds, so a change is measured against the build before it under the
# same load).
# Under TCG the guest's CPU is slow, so absolute numbers are low; the ratio
# is what is compared.
#
# Write caches: vmm-blk offers a write-back cache and honours FLUSH;
# qemu-storage-daemon's vhost-user-blk export presents a write-through
# device, so its guest never flushes (while the daemon still writes
# through the host page cache).  To compare the same request streams the
# guest sets its cache mode to "write through" for both (no FLUSH sent);
# BENCH_FLUSH=1 keeps each device's own mode, so vmm-blk's numbers then
# include the flushes that make its data durable.

set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
builddir=${1:-$top/build}
VMM_BLK=${VMM_BLK:-$builddir/vmm-blk/vmm-blk}
backends=${BENCH_BACKENDS:-qsd vmm-blk}
base=${BENCH_BASE:-}
if [ -n "$base" ]; then
	[ -x "$base" ] || { echo "BENCH_BASE $base is not executable" >&2; exit 1; }
	backends="$backends base"
fi
rounds=${BENCH_ROUNDS:-1}
secs=${BENCH_SECS:-10}
span=${BENCH_SPAN:-256M}
size=${BENCH_SIZE:-1G}
qd=${BENCH_QD:-4}
flush=${BENCH_FLUSH:-0}
E2E_SMP=${E2E_SMP:-2}
export E2E_SMP

case " $backends " in
*" vmm-blk "*)
	[ -x "$VMM_BLK" ] || {
		echo "vmm-blk not found at $VMM_BLK (build it, pass BUILDDIR, or set VMM_BLK)" >&2
		exit 1
	}
	;;
esac

. "$top/scripts/e2e-guest-deps.sh"
e2e_deps cc || { echo "cannot set up QEMU, busybox, gcc or the guest kernel" >&2; exit 1; }
E2E_LIB_DIR=$top/tests/e2e
. "$E2E_LIB_DIR/guest-lib.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/mimg-bench-XXXXXX")
trap 'e2e_cleanup; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

gcc -static -O2 -std=c11 -D_GNU_SOURCE -pthread -o "$T/vmm-blk-iops" \
	"$here/vmm-blk-iops.c" || { echo "building vmm-blk-iops failed" >&2; exit 1; }

cat >"$T/init" <<EOF
#!/bin/busybox sh
. /lib/prelude.sh
run() {
	out=\$(/bin/vmm-blk-iops /dev/vda "\$@") || guest_fail "vmm-blk-iops \$*"
	echo "\$out"
}
wc=/sys/block/vda/queue/write_cache
echo "BENCH-CACHE device=\$(cat \$wc | tr ' ' _)"
# How the guest cuts large requests for this device.
qdir=/sys/block/vda/queue
echo "BENCH-QUEUE max_segments=\$(cat \$qdir/max_segments)" \
	"max_segment_size=\$(cat \$qdir/max_segment_size)" \
	"max_sectors_kb=\$(cat \$qdir/max_sectors_kb)" \
	"nr_hw_queues=\$(ls /sys/block/vda/mq | wc -l)"
# Same requests to both backends: see BENCH_FLUSH above.
[ "$flush" = 1 ] || echo "write through" >\$wc || guest_fail "setting \$wc"
run read 1M $secs $span 1 | sed 's/mode=read/mode=bread/'
run fill 1M 1 $span 1
run write 1M $secs $span 1
run read 1M $secs $span 1
run randread 4k $secs $span 1 | sed 's/mode=randread/mode=randread1/'
run randread 4k $secs $span $qd
run randwrite 4k $secs $span $qd
echo E2E-DONE
guest_poweroff
EOF
e2e_mkinitrd "$T/initrd" "$T/init" "$T/vmm-blk-iops" bin/vmm-blk-iops ||
	{ echo "building the initramfs failed" >&2; exit 1; }

# Each run's guest does a fill pass plus six timed tests.
E2E_TIMEOUT=${E2E_TIMEOUT:-$((240 + 7 * secs))}
export E2E_TIMEOUT

# run_one BACKEND ROUND: appends "BACKEND MODE IOPS MBPS" lines to results.
run_one() {
	d=$T/$1-$2
	mkdir -p "$d"
	qemu-img create -q -f qcow2 -b "$T/base.qcow2" -F qcow2 "$d/disk.qcow2" "$size" ||
		exit 1
	kind=$1 saved=$VMM_BLK
	[ "$1" = base ] && kind=vmm-blk VMM_BLK=$base
	e2e_backend_start "$kind" "$d/sock" qcow2 "$d/disk.qcow2" "$qd" "$d/backend.log" ||
		exit 1
	VMM_BLK=$saved
	e2e_boot "$d/console.log" "$T/initrd" "$d/sock" "$qd"
	rc=$?
	e2e_backend_stop || rc=1
	if [ "$rc" != 0 ] || ! grep -aq '^E2E-DONE' "$d/console.log"; then
		echo "$1 round $2 failed; console:" >&2
		tail -n 20 "$d/console.log" >&2
		exit 1
	fi
	echo "  $1: $(grep -a '^BENCH-CACHE' "$d/console.log" | tr -d '\r' | sed 's/^BENCH-CACHE //')"
	echo "  $1: $(grep -a '^BENCH-QUEUE' "$d/console.log" | tr -d '\r' | sed 's/^BENCH-QUEUE //')"
	grep -a '^BENCH ' "$d/console.log" | tr -d '\r' | sed "s/^BENCH /$1 /" >"$d/bench"
	sed 's/^/  /' "$d/bench"
	cat "$d/bench" >>"$T/results"
	qemu-img check -q "$d/disk.qcow2" || { echo "$1: image check failed" >&2; exit 1; }
	rm -f "$d/disk.qcow2"
}

# The base: non-zero data over the whole span, shared by every run.
qemu-img create -q -f qcow2 "$T/base.qcow2" "$size" &&
	qemu-io -f qcow2 -c "write -P 0xa5 0 $span" "$T/base.qcow2" >/dev/null ||
	{ echo "creating the base image failed" >&2; exit 1; }

echo "vmm-blk bench: qcow2 overlay $size, span $span, ${secs}s per test, QD $qd," \
	"${E2E_SMP} vCPU(s), accel ${E2E_ACCEL:-tcg}, $rounds round(s)," \
	"guest flushes $([ "$flush" = 1 ] && echo "as each device asks" || echo "off")"
: >"$T/results"
r=1
reversed=$(echo "$backends" | tr ' ' '\n' | sed '1!G;h;$!d' | tr '\n' ' ')
while [ "$r" -le "$rounds" ]; do
	# Alternate the order so neither backend always runs first.
	order=$backends
	[ $((r % 2)) = 0 ] && order=$reversed
	for b in $order; do
		echo "round $r: $b"
		run_one "$b" "$r"
	done
	r=$((r + 1))
done

python3 - "$T/results" <<'EOF'
import sys
best = {}
for line in open(sys.argv[1]):
    f = line.split()
    kv = dict(x.split("=", 1) for x in f[1:])
    key = (f[0], kv["mode"])
    val = (float(kv["iops"]), float(kv["MBps"]))
    if key not in best or val[0] > best[key][0]:
        best[key] = val
modes = ["bread", "fill", "write", "read", "randread1", "randread", "randwrite"]
seq = {"bread", "fill", "write", "read"}
has_base = any(k[0] == "base" for k in best)
head = ("test", "unit", "qsd", "vmm-blk", "ratio")
if has_base:
    head += ("base", "ratio")
print(("%-10s %-6s %12s %12s %7s" + " %12s %7s" * has_base) % head)
for m in modes:
    unit = "MB/s" if m in seq else "IOPS"
    i = 1 if m in seq else 0
    q = best.get(("qsd", m))
    fmt = lambda x: "-" if x is None else "%.1f" % x[i]
    ratio = lambda v: "%.2f" % (v[i] / q[i]) if q and v and q[i] > 0 else "-"
    row = (m, unit, fmt(q))
    for b in ("vmm-blk", "base")[:1 + has_base]:
        v = best.get((b, m))
        row += (fmt(v), ratio(v))
    print(("%-10s %-6s %12s %12s %7s" + " %12s %7s" * has_base) % row)
EOF
