#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Host-level I/O benchmark: run `qemu-img bench` and `mimg bench` on the same
# images, alternating, and print the ratios (mimg / qemu-img; below 1.00 =
# mimg faster) of the best wall time and of the best CPU time (user+sys).
#   bench/io.sh [-r runs] [-d depth] [-t cache] [WORKDIR]
# Workloads:
#   alloc-write   4 KiB writes into a fresh qcow2, each into a cluster not
#                 yet allocated (stride 1 MiB + 64 KiB, wrapping)
#   backing-read  4 KiB reads from an empty qcow2 overlay whose data is in a
#                 qcow2 backing file (same stride)
#   overwrite     4 KiB writes into allocated clusters of a qcow2 (same
#                 stride; the guest's random-overwrite case)
#   seq-write     1 MiB sequential writes into a fresh qcow2
#   seq-read      1 MiB sequential reads from that fully written qcow2
# CPU time matters most on a loaded machine: wall time is noisy there.
set -eu

. "$(dirname "$0")/lib.sh"
runs=3 depth=16 cache=writeback
bench_options "[-r runs] [-d depth] [-t cache]" r=runs d=depth t=cache \
	-- "$@"
bench_need qemu-img qemu-io /usr/bin/time
bench_enter "$BENCH_DIR" mimg-bench-io

size=1G
stride=$(( (1 << 20) + (64 << 10) ))

# The backing file: 1 GiB of qcow2 fully written with a pattern, made once.
if [ ! -f base.qcow2 ]; then
	echo "bench: writing base.qcow2 (1 GiB)"
	qemu-img create -q -f qcow2 base.qcow2.tmp $size
	qemu-io -f qcow2 -c "write -P 0x5a 0 $size" base.qcow2.tmp >/dev/null
	mv base.qcow2.tmp base.qcow2
fi
if [ ! -f full.qcow2 ]; then
	qemu-img create -q -f qcow2 full.qcow2 $size
	qemu-io -f qcow2 -c "write -P 0x33 0 $size" full.qcow2 >/dev/null
fi

# prepare WORKLOAD: recreate the image the workload starts from.
prepare() {
	case $1 in
	alloc-write|seq-write) rm -f t.qcow2; qemu-img create -q -f qcow2 t.qcow2 $size ;;
	backing-read) rm -f t.qcow2
		qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 t.qcow2 ;;
	esac
}

# args WORKLOAD: bench options and image (the same for both tools).
args() {
	case $1 in
	alloc-write) echo "-w -c 12000 -s 4k -S $stride -d $depth t.qcow2" ;;
	backing-read) echo "-c 40000 -s 4k -S $stride -d $depth t.qcow2" ;;
	overwrite) echo "-w -c 40000 -s 4k -S $stride -d $depth full.qcow2" ;;
	seq-write) echo "-w -c 1024 -s 1M -d $depth t.qcow2" ;;
	seq-read) echo "-c 2048 -s 1M -d $depth full.qcow2" ;;
	esac
}

# run TOOL WORKLOAD: prints "WALL CPU" (seconds) of one run.
run() {
	prepare "$2"
	# shellcheck disable=SC2046
	bench_time "$1" bench -f qcow2 -t "$cache" $(args "$2")
	wall=$(sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p' bench.out)
	[ -n "$wall" ] || { echo "bench: $1 printed no result:" >&2; cat bench.out >&2; exit 1; }
	echo "$wall $c"
}

printf "%-13s %9s %9s %6s   %8s %8s %6s\n" workload "qemu s" "mimg s" ratio \
	"qemu cpu" "mimg cpu" ratio
for w in alloc-write backing-read overwrite seq-write seq-read; do
	qw= mw= qc= mc=
	i=0
	while [ $i -lt "$runs" ]; do
		set -- $(run qemu-img $w); qw=$(bench_min "$1" "$qw"); qc=$(bench_min "$2" "$qc")
		set -- $(run "$MIMG" $w); mw=$(bench_min "$1" "$mw"); mc=$(bench_min "$2" "$mc")
		i=$((i + 1))
	done
	awk -v w=$w -v qw="$qw" -v mw="$mw" -v qc="$qc" -v mc="$mc" 'BEGIN {
		printf "%-13s %9.3f %9.3f %6.2f   %8.2f %8.2f %6.2f\n", w, qw, mw,
			(qw > 0 ? mw / qw : 0), qc, mc, (qc > 0 ? mc / qc : 0) }'
done
rm -f t.qcow2 bench.out
