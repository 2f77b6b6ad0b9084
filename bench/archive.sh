#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg convert image.raw.xz -O qcow2 against what qemu-img needs for the
# same job, on the same file in the same run: a pipe from xz when
# qemu-img accepts one, else decompressing to a file first and
# converting that (timed together, the temporary file counted in "tmp").
# Prints seconds, peak RSS (KiB, /usr/bin/time -f %M) and the ratio
# mimg / qemu-img (below 1.00 = mimg faster).
#   bench/archive.sh [-s MiB] [-d MiB] [WORKDIR]
# The source is a raw disk of SIZE MiB (default 2048) holding DATA MiB
# (default 512) of half random, half text data in 4 MiB pieces, the rest
# zeroes, compressed with xz -T0.
set -eu

size_mib=2048 data_mib=512
while getopts s:d: o; do
	case $o in
	s) size_mib=$OPTARG ;;
	d) data_mib=$OPTARG ;;
	*) echo "usage: $0 [-s MiB] [-d MiB] [WORKDIR]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIMG=${MIMG:-$ROOT/build/mimg/mimg}
for t in qemu-img xz python3 /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "bench: $t is needed" >&2; exit 1; }
done
WORK=${1:-${TMPDIR:-/tmp}/mimg-bench-archive}
mkdir -p "$WORK"
cd "$WORK"

if [ ! -f src.raw.xz ]; then
	echo "bench: writing src.raw.xz ($size_mib MiB, $data_mib MiB of data)"
	python3 - src.raw "$size_mib" "$data_mib" <<'PY'
import random, sys
path, size, data = sys.argv[1], int(sys.argv[2]) << 20, int(sys.argv[3]) << 20
rng = random.Random(12)
words = b"bhyve guests boot from images that were downloaded compressed".split()
text = b" ".join(rng.choice(words) for _ in range(200000))[: 4 << 20]
with open(path, "wb") as f:
    f.truncate(size)
    pieces = data // (4 << 20)
    stride = size // pieces
    for i in range(pieces):
        f.seek(i * stride)
        f.write(rng.randbytes(4 << 20) if i % 2 else text)
PY
	xz -T0 -3 src.raw
fi

# run NAME CMD...: seconds and peak RSS of CMD into NAME.t
run() {
	name=$1
	shift
	/usr/bin/time -f "%e %M" -o "$name.t" "$@"
}

rm -f m.qcow2 q.qcow2 tmp.raw
run mimg "$MIMG" convert -O qcow2 src.raw.xz m.qcow2
if run qemu sh -c 'xz -dc src.raw.xz | qemu-img convert -f raw -O qcow2 /dev/stdin q.qcow2' 2>qerr.txt &&
	qemu-img compare -q q.qcow2 m.qcow2 2>/dev/null; then
	how="xz -dc | qemu-img convert /dev/stdin"
	tmp=0
else
	rm -f q.qcow2
	how="xz -dc > tmp.raw; qemu-img convert tmp.raw"
	run qemu sh -c 'xz -dc src.raw.xz > tmp.raw && qemu-img convert -f raw -O qcow2 tmp.raw q.qcow2'
	tmp=$(stat -c %s tmp.raw)
	rm -f tmp.raw
fi
qemu-img compare -q m.qcow2 q.qcow2 || { echo "bench: outputs differ" >&2; exit 1; }
read -r ms mk < mimg.t
read -r qs qk < qemu.t
echo "qemu-img side: $how (temporary file: $tmp bytes)"
printf '%-10s %8s %12s\n' tool seconds "peak RSS KiB"
printf '%-10s %8s %12s\n' mimg "$ms" "$mk" qemu-img "$qs" "$qk"
python3 -c 'import sys; m, q = map(float, sys.argv[1:]); print("ratio mimg/qemu-img: %.2f" % (m / q))' "$ms" "$qs"
