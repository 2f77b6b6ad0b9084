#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Random 4 KiB reads of a fully allocated qcow2 through libmimg against
# plain pread(2) of the same data as a raw file: the cost of the format
# layer on a hypervisor's read path.  Both files are in the page cache
# (dropped from it and read once, in the same way, before the rounds),
# so the figure is CPU per request, not the disk.  Prints IOPS per thread count and the ratio to pread (1.00 =
# as fast as pread; higher is better), best of the rounds, then the CPU
# time per request (ns, user and system, least of the rounds), which
# other work on the machine disturbs less.
#   bench/randread.sh [-r rounds] [-s seconds] [-t "1 2 ..."] [WORKDIR]
# Also reads the raw file through libmimg (the raw driver's own cost).
set -eu

. "$(dirname "$0")/lib.sh"
rounds=3 secs=3 threads="1 $(nproc)"
bench_options "[-r rounds] [-s seconds] [-t threads]" r=rounds s=secs \
	t=threads -- "$@"
bench_need qemu-img qemu-io cc python3
bench_enter "$BENCH_DIR" mimg-bench-randread

# The guest load generator of bench/vmm-blk.sh, built here with its
# file: and mimg: targets.
lib=$(dirname "$MIMG")/..
cc -O2 -std=c11 -D_GNU_SOURCE -pthread -DWITH_LIBMIMG \
	-I"$ROOT/libmimg/include" -o iops "$ROOT/bench/vmm-blk-iops.c" \
	-L"$lib" -lmimg -Wl,-rpath,"$(cd "$lib" && pwd)" ||
	{ echo "bench: building vmm-blk-iops failed" >&2; exit 1; }

if [ ! -f full.qcow2 ]; then
	echo "bench: writing full.qcow2 (1 GiB, every cluster allocated)"
	qemu-img create -q -f qcow2 full.qcow2.tmp 1G
	qemu-io -f qcow2 -c "write -P 0x33 0 1G" full.qcow2.tmp >/dev/null
	mv full.qcow2.tmp full.qcow2
	rm -f full.raw
fi
[ -f full.raw ] || qemu-img convert -f qcow2 -O raw full.qcow2 full.raw
# Both files in the same page-cache state: how a file came into the
# cache (written in pieces, or read in long runs) decides the size of
# the pages (folios) caching it, and so the kernel's cost of a 4 KiB
# read.  The two are dropped from the cache and read back in the same
# way.
sync
python3 - full.qcow2 full.raw <<'PY'
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
cat full.qcow2 full.raw >/dev/null

# one TARGET THREADS: the IOPS and the CPU ns per request of one run on
# TARGET (a vmm-blk-iops DEV).
one() {
	out=$(./iops "$1" randread 4096 "$secs" 1G "$2") ||
		{ echo "bench: vmm-blk-iops $* failed" >&2; exit 1; }
	v=${out##*iops=}
	echo "${v%% *} ${out##*cpu_ns_per_op=}"
}

echo "random 4 KiB reads, page cache warm, ${secs}s x $rounds rounds" \
	"(alternating), best"
printf '%-8s %12s %12s %12s %10s %10s %9s %9s %9s\n' threads pread-raw \
	mimg-qcow2 mimg-raw qcow2/pread raw/pread ns-pread ns-qcow2 ns-raw
for t in $threads; do
	p=0 q=0 r=0 pc='' qc='' rc='' i=0
	while [ "$i" -lt "$rounds" ]; do
		set -- $(one file:full.raw "$t")
		p=$(bench_max "$1" "$p") pc=$(bench_min "$2" "$pc")
		set -- $(one mimg:qcow2:full.qcow2 "$t")
		q=$(bench_max "$1" "$q") qc=$(bench_min "$2" "$qc")
		set -- $(one mimg:raw:full.raw "$t")
		r=$(bench_max "$1" "$r") rc=$(bench_min "$2" "$rc")
		i=$((i + 1))
	done
	printf '%-8s %12s %12s %12s %10s %10s %9s %9s %9s\n' "$t" "$p" "$q" \
		"$r" "$(bench_ratio "$q" "$p")" "$(bench_ratio "$r" "$p")" \
		"$pc" "$qc" "$rc"
done
