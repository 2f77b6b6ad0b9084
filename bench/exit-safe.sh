#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# What exit-safe writes cost (MIMG_OPEN_EXIT_SAFE, the mode vmm-blk and
# blockif open images in): allocating writes into a fresh qcow2 and into
# an overlay whose backing file holds data (copy-on-write), 4 KiB and
# 64 KiB, at queue depth 1 and 4.  Each row runs qemu-img bench (its L2
# updates stay in its cache until a flush), mimg bench as the library's
# default (the same), and mimg bench --exit-safe (every completed write is
# in the file), alternating, best of -r runs, and prints IOPS and the
# ratio exit-safe / qemu-img (>= 1.00: exit-safe is as fast).
#   bench/exit-safe.sh [-r runs] [-c count] [WORKDIR]
set -eu

. "$(dirname "$0")/lib.sh"
runs=3 count=1500
bench_options "[-r runs] [-c count]" r=runs c=count -- "$@"
bench_need qemu-img qemu-io /usr/bin/time
bench_enter "$BENCH_DIR" mimg-bench-exit-safe

size=2G
# Each request lands in a cluster not yet allocated (count * stride must
# stay below the size, or offsets wrap).
stride=$(( (1 << 20) + (64 << 10) ))
if [ ! -f base.qcow2 ]; then
	echo "bench: writing base.qcow2 ($size of data)"
	qemu-img create -q -f qcow2 base.qcow2.tmp $size
	qemu-io -f qcow2 -c "write -P 0x5a 0 1G" -c "write -P 0x5a 1G 1G" \
		base.qcow2.tmp >/dev/null
	mv base.qcow2.tmp base.qcow2
fi

# iops TOOL EXTRA LAYOUT BS DEPTH: one run, prints requests per second.
iops() {
	rm -f t.qcow2 bench.out
	case $3 in
	fresh) qemu-img create -q -f qcow2 t.qcow2 $size ;;
	cow) qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 t.qcow2 ;;
	esac
	# shellcheck disable=SC2086
	bench_time "$1" bench $2 -w -f qcow2 -c "$count" -s "$4" -S $stride \
		-d "$5" t.qcow2
	s=$(sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p' bench.out)
	[ -n "$s" ] || { echo "bench: $1 printed no result" >&2; exit 1; }
	awk -v c="$count" -v s="$s" 'BEGIN { printf "%.0f\n", c / s }'
}

printf "%-6s %5s %3s %10s %10s %12s %6s\n" layout bs qd "qemu-img" "mimg" \
	"mimg exit" ratio
for layout in fresh cow; do
	for bs in 4k 64k; do
		for qd in 1 4; do
			q= m= e= i=0
			while [ $i -lt "$runs" ]; do
				q=$(bench_max "$(iops qemu-img "" $layout $bs $qd)" "$q")
				m=$(bench_max "$(iops "$MIMG" "" $layout $bs $qd)" "$m")
				e=$(bench_max "$(iops "$MIMG" --exit-safe $layout $bs $qd)" "$e")
				i=$((i + 1))
			done
			awk -v l=$layout -v b=$bs -v d=$qd -v q="$q" -v m="$m" \
				-v e="$e" 'BEGIN { printf "%-6s %5s %3s %10d %10d %12d %6.2f\n",
				l, b, d, q, m, e, (q > 0 ? e / q : 0) }'
		done
	done
done
rm -f t.qcow2 bench.out
