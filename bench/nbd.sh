#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# NBD in both directions, against qemu's tools on the same files in the
# same run:
#  1. mimg convert from an nbdkit export (nbdkit file, on a Unix socket)
#     into a local qcow2, against qemu-img convert from the same export:
#     ratio mimg / qemu-img (below 1.00 = mimg faster).
#  2. Read throughput of nbdkit-mimg-plugin serving a qcow2, against
#     qemu-nbd serving the same file, with nbdcopy as the client (copying
#     to null:): ratio qemu-nbd time / plugin time (above 1.00 = the
#     plugin faster).
#   bench/nbd.sh [-s GiB] [-d MiB] [-r runs] [WORKDIR]
# The source is a sparse raw disk (default 1 GiB) with (default) 256 MiB
# of random data in 1-4 MiB pieces; each measurement runs RUNS times per
# tool, alternating, and the best time counts.
set -eu

. "$(dirname "$0")/lib.sh"
size_gib=1 data_mib=256 runs=2
bench_options "[-s GiB] [-d MiB] [-r runs]" s=size_gib d=data_mib r=runs \
	-- "$@"
PLUGIN=${NBDKIT_MIMG_PLUGIN:-$ROOT/build/vmm-blk/nbdkit/nbdkit-mimg-plugin.so}
bench_need qemu-img qemu-nbd nbdkit nbdcopy python3 /usr/bin/time
[ -f "$PLUGIN" ] || { echo "bench: build nbdkit-mimg-plugin first ($PLUGIN)" >&2; exit 1; }
bench_enter "$BENCH_DIR" mimg-bench-nbd

servers=
cleanup() {
	for p in $servers; do
		kill "$p" 2>/dev/null || :
	done
}
trap cleanup EXIT

if bench_source src.raw "$size_gib" "$data_mib" 7 <<'PY'; then
left, pieces = mib, []
while left > 0:
    n = min(left, rng.randint(1, 4))
    pieces.append(n)
    left -= n
slot = size // len(pieces)
for i, n in enumerate(pieces):
    f.seek(i * slot + rng.randrange(0, slot - (n << 20) + 1) // 65536 * 65536)
    for _ in range(n):
        f.write(os.urandom(1 << 20))
PY
	rm -f src.qcow2
fi
[ -f src.qcow2 ] || qemu-img convert -f raw -O qcow2 src.raw src.qcow2

# serve NAME CMD...: start a server on $WORK/NAME.sock; sets URI.
serve() {
	name=$1
	shift
	rm -f "$name.sock" "$name.pid"
	"$@" >/dev/null 2>&1 || { echo "bench: cannot start: $*" >&2; exit 1; }
	i=0
	while [ ! -s "$name.pid" ]; do
		i=$((i + 1))
		[ $i -gt 400 ] && { echo "bench: $name did not start" >&2; exit 1; }
		sleep 0.05
	done
	servers="$servers $(cat "$name.pid")"
	URI="nbd+unix:///?socket=$WORK/$name.sock"
}
unserve() {
	kill "$(cat "$1.pid")" 2>/dev/null || :
	rm -f "$1.pid"
}

printf '%-44s %9s %9s %7s\n' "convert from an nbdkit export" qemu-img mimg ratio
bench_convert() { # NAME FILE FMT
	serve src nbdkit -U "$WORK/src.sock" --pidfile "$WORK/src.pid" file "$2"
	tq="" tm=""
	i=0
	while [ $i -lt "$runs" ]; do
		rm -f out-q.qcow2 out-m.qcow2
		tq=$(bench_min "$(bench_elapsed qemu-img convert -f "$3" -O qcow2 "$URI" out-q.qcow2)" "$tq")
		tm=$(bench_min "$(bench_elapsed "$MIMG" convert -f "$3" -O qcow2 "$URI" out-m.qcow2)" "$tm")
		i=$((i + 1))
	done
	unserve src
	qemu-img compare -q out-q.qcow2 out-m.qcow2 ||
		{ echo "bench: $1: outputs differ" >&2; exit 1; }
	printf '%-44s %8.2fs %8.2fs %7.2f\n' "$1" "$tq" "$tm" "$(bench_ratio "$tm" "$tq")"
	rm -f out-q.qcow2 out-m.qcow2
}
bench_convert "raw export -> local qcow2" src.raw raw
bench_convert "qcow2 inside the export -> local qcow2" src.qcow2 qcow2

printf '\n%-44s %9s %9s %7s\n' "nbdcopy reading src.qcow2 (to null:)" qemu-nbd plugin ratio
tq="" tm=""
i=0
while [ $i -lt "$runs" ]; do
	serve q qemu-nbd --fork -r -e 16 -f qcow2 -k "$WORK/q.sock" \
		--pid-file "$WORK/q.pid" "$WORK/src.qcow2"
	tq=$(bench_min "$(bench_elapsed nbdcopy "$URI" null:)" "$tq")
	unserve q
	serve m nbdkit -U "$WORK/m.sock" --pidfile "$WORK/m.pid" "$PLUGIN" \
		file="$WORK/src.qcow2" readonly=true
	tm=$(bench_min "$(bench_elapsed nbdcopy "$URI" null:)" "$tm")
	unserve m
	i=$((i + 1))
done
printf '%-44s %8.2fs %8.2fs %7.2f\n' "$data_mib MiB of data in $size_gib GiB" "$tq" "$tm" "$(bench_ratio "$tq" "$tm")"
