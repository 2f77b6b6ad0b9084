#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Time mimg and qemu-img on the same conversions of the same files, in the
# same run, and print the ratios (mimg / qemu-img; below 1.00 = mimg faster).
#   bench/convert.sh [-s GiB] [-d MiB] [-r runs] [WORKDIR]
# The source is a sparse raw disk (default 4 GiB) holding (default) 768 MiB
# of data: one third random, one third text, one third explicit zeroes,
# in 1-8 MiB pieces spread over the disk.  Each conversion runs RUNS times
# per tool, alternating between the tools, and the best time counts.
set -eu

size_gib=4 data_mib=768 runs=2
while getopts s:d:r: o; do
	case $o in
	s) size_gib=$OPTARG ;;
	d) data_mib=$OPTARG ;;
	r) runs=$OPTARG ;;
	*) echo "usage: $0 [-s GiB] [-d MiB] [-r runs] [WORKDIR]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIMG=${MIMG:-$ROOT/build/mimg/mimg}
command -v qemu-img >/dev/null || { echo "bench: qemu-img is needed" >&2; exit 1; }
[ -x "$MIMG" ] || { echo "bench: build mimg first ($MIMG)" >&2; exit 1; }
WORK=${1:-${TMPDIR:-/tmp}/mimg-bench}
mkdir -p "$WORK"
cd "$WORK"

if [ ! -f src.raw ] || [ "$(stat -c %s src.raw)" -ne $((size_gib << 30)) ]; then
	echo "bench: writing src.raw ($size_gib GiB, $data_mib MiB of data)"
	python3 - src.raw "$size_gib" "$data_mib" <<'PY'
import os, random, sys
path, gib, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
size = gib << 30
words = b"the quick brown fox jumps over lazy dogs while mimg converts disk images".split()
text = b" ".join(rng.choice(words) for _ in range(300000))[: 1 << 20]
with open(path, "wb") as f:
    f.truncate(size)
    left = mib << 20
    kinds = ["random", "text", "zero"]
    slot = size // ((mib // 4) + 1)
    pos = 0
    i = 0
    while left > 0:
        n = min(left, rng.randint(1, 8) << 20)
        off = (pos + rng.randrange(0, max(1, slot - n))) & ~0xFFFF
        f.seek(off)
        kind = kinds[i % 3]
        for _ in range(n >> 20):
            if kind == "random":
                f.write(os.urandom(1 << 20))
            elif kind == "text":
                t = rng.randrange(1 << 20)
                f.write(text[t:] + text[:t])   # 1 MiB, rotated
            else:
                f.write(bytes(1 << 20))
        left -= n
        pos = min(off + n, size - (8 << 20))
        pos += slot // 2
        if pos >= size - (8 << 20):
            pos = 0
        i += 1
PY
fi

have() { "$MIMG" --help | sed -n 's/^Formats: //p' | tr ' ' '\n' | grep -qx "$1"; }

now() { date +%s.%N; }
elapsed() { # elapsed CMD... -> seconds taken
	t0=$(now)
	"$@" >/dev/null 2>&1 || { echo "bench: failed: $*" >&2; exit 1; }
	t1=$(now)
	echo "$t1 - $t0" | bc -l
}
min() { # min A B (B may be empty)
	if [ -z "$2" ] || [ "$(echo "$1 < $2" | bc -l)" = 1 ]; then echo "$1"; else echo "$2"; fi
}

printf '%-34s %9s %9s %7s\n' conversion qemu-img mimg ratio
bench() { # bench NAME SRC_FMT SRC DST_FMT [convert options...]
	name=$1 sfmt=$2 src=$3 dfmt=$4
	shift 4
	tq="" tm=""
	i=0
	# Alternate the tools so that both meet the same machine state
	# (page cache, writeback); each starts from a missing output file.
	while [ $i -lt "$runs" ]; do
		rm -f "out-q.$dfmt" "out-m.$dfmt"
		tq=$(min "$(elapsed qemu-img convert -f "$sfmt" -O "$dfmt" "$@" "$src" "out-q.$dfmt")" "$tq")
		rm -f "out-m.$dfmt"
		tm=$(min "$(elapsed "$MIMG" convert -f "$sfmt" -O "$dfmt" "$@" "$src" "out-m.$dfmt")" "$tm")
		i=$((i + 1))
	done
	if ! qemu-img compare -q -f "$dfmt" -F "$dfmt" "out-q.$dfmt" "out-m.$dfmt"; then
		echo "bench: $name: outputs differ" >&2
		exit 1
	fi
	printf '%-34s %8.2fs %8.2fs %7.2f\n' "$name" "$tq" "$tm" "$(echo "$tm / $tq" | bc -l)"
	rm -f "out-q.$dfmt" "out-m.$dfmt"
}

command -v bc >/dev/null || { echo "bench: bc is needed (apt-get install bc)" >&2; exit 1; }
bench "raw -> raw" raw src.raw raw
if have qcow2; then
	qemu-img convert -O qcow2 src.raw src.qcow2
	bench "raw -> qcow2" raw src.raw qcow2
	bench "qcow2 -> raw" qcow2 src.qcow2 raw
	bench "raw -> qcow2 -c (zlib)" raw src.raw qcow2 -c
	bench "raw -> qcow2 -c (zstd)" raw src.raw qcow2 -c -o compression_type=zstd
fi
if have vmdk; then
	qemu-img convert -O vmdk src.raw src.vmdk
	bench "raw -> vmdk" raw src.raw vmdk
	bench "vmdk -> raw" vmdk src.vmdk raw
	have qcow2 && bench "vmdk -> qcow2" vmdk src.vmdk qcow2
	bench "raw -> vmdk streamOptimized" raw src.raw vmdk -o subformat=streamOptimized
fi
