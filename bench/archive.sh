#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg convert image.raw.xz -O qcow2, the same disk as image.raw.gz, and
# as a streamOptimized image.vmdk.xz and image.vmdk.gz (gzip declares no
# size: mimg streams them all the same, counting the raw one's data
# first), against what qemu-img needs for the
# same job, on the same file in the same run: a pipe from xz when
# qemu-img accepts one, else decompressing to a file first and
# converting that (timed together, the temporary file counted in "tmp").
# The two run in alternation ROUNDS times (default 3); prints the median
# wall seconds, CPU seconds (user + system, every process) and peak RSS
# (KiB, /usr/bin/time -f %M) of each, and the ratios mimg / qemu-img
# (below 1.00 = mimg faster).  On a shared, loaded machine compare CPU
# time: wall time there measures the other users.
#   bench/archive.sh [-s MiB] [-d MiB] [-n ROUNDS] [WORKDIR]
# The source is a raw disk of SIZE MiB (default 2048) holding DATA MiB
# (default 512) of half random, half text data in 4 MiB pieces, the rest
# zeroes, compressed with xz -T0 (independent blocks, as xz -T writes).
set -eu

. "$(dirname "$0")/lib.sh"
size_mib=2048 data_mib=512 rounds=3
bench_options "[-s MiB] [-d MiB] [-n ROUNDS]" s=size_mib d=data_mib \
	n=rounds -- "$@"
bench_need qemu-img xz gzip python3 /usr/bin/time
bench_enter "$BENCH_DIR" mimg-bench-archive

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

# run NAME CMD...: wall seconds, CPU seconds and peak RSS of CMD,
# appended to NAME.t
run() {
	name=$1
	shift
	bench_time "$@"
	echo "$w $c $r" >>"$name.t"
}

if [ ! -f src.vmdk.xz ]; then
	echo "bench: writing src.vmdk.xz (streamOptimized, the same disk)"
	xz -dc src.raw.xz > tmp.raw
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized tmp.raw \
		src.vmdk
	rm -f tmp.raw
	xz -T0 -3 src.vmdk
fi
if [ ! -f src.raw.gz ]; then
	echo "bench: writing src.raw.gz (the same disk)"
	xz -dc src.raw.xz | gzip > src.raw.gz
fi
if [ ! -f src.vmdk.gz ]; then
	echo "bench: writing src.vmdk.gz (the same streamOptimized image)"
	xz -dc src.vmdk.xz | gzip > src.vmdk.gz
fi

# median of column COL of FILE
median() {
	sort -n -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c }
		END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# row SRC QEMU-CMD TMP-BYTES HOW: mimg convert -O qcow2 SRC against
# QEMU-CMD (writing q.qcow2), ROUNDS times in alternation.
row() {
	src=$1 qemu=$2 tmp=$3 how=$4
	rm -f mimg.t qemu.t
	for i in $(seq "$rounds"); do
		rm -f m.qcow2 q.qcow2 tmp.raw tmp.vmdk
		run mimg "$MIMG" convert -O qcow2 "$src" m.qcow2
		run qemu sh -c "$qemu"
		rm -f tmp.raw tmp.vmdk
		qemu-img compare -q m.qcow2 q.qcow2 ||
			{ echo "bench: outputs differ" >&2; exit 1; }
	done
	echo
	echo "$src; qemu-img side: $how (temporary file: $tmp bytes);" \
		"$rounds rounds, medians"
	printf '%-10s %8s %8s %12s\n' tool wall-s cpu-s "peak RSS KiB"
	for t in mimg qemu; do
		printf '%-10s %8s %8s %12s\n' "$t" "$(median $t.t 1)" \
			"$(median $t.t 2)" "$(median $t.t 3)"
	done
	echo "ratio mimg/qemu-img:" \
		"wall $(bench_ratio "$(median mimg.t 1)" "$(median qemu.t 1)")," \
		"cpu $(bench_ratio "$(median mimg.t 2)" "$(median qemu.t 2)")"
}

# raw_row SRC DECOMPRESSOR: SRC against DECOMPRESSOR piped into qemu-img
# where it reads a pipe, else through a temporary file.
raw_row() {
	qemu_pipe="$2 -dc $1 | qemu-img convert -f raw -O qcow2 /dev/stdin q.qcow2"
	qemu_file="$2 -dc $1 > tmp.raw && qemu-img convert -f raw -O qcow2 tmp.raw q.qcow2"
	rm -f q.qcow2
	if sh -c "$qemu_pipe" 2>qerr.txt &&
		qemu-img info q.qcow2 2>/dev/null | grep -q "($unpacked bytes)"; then
		row "$1" "$qemu_pipe" 0 "$2 -dc | qemu-img convert /dev/stdin"
	else
		row "$1" "$qemu_file" "$unpacked" \
			"$2 -dc > tmp.raw; qemu-img convert tmp.raw"
	fi
}
unpacked=$(xz -l --robot src.raw.xz | awk '$1 == "totals" { print $5 }')
raw_row src.raw.xz xz
raw_row src.raw.gz gzip
# qemu-img reads VMDK with random access only: unpacked to a file first.
vunpacked=$(xz -l --robot src.vmdk.xz | awk '$1 == "totals" { print $5 }')
row src.vmdk.xz \
	'xz -dc src.vmdk.xz > tmp.vmdk && qemu-img convert -f vmdk -O qcow2 tmp.vmdk q.qcow2' \
	"$vunpacked" "xz -dc > tmp.vmdk; qemu-img convert tmp.vmdk"
row src.vmdk.gz \
	'gzip -dc src.vmdk.gz > tmp.vmdk && qemu-img convert -f vmdk -O qcow2 tmp.vmdk q.qcow2' \
	"$vunpacked" "gzip -dc > tmp.vmdk; qemu-img convert tmp.vmdk"
