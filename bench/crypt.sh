#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Encrypted conversion and checksum throughput, mimg against the reference
# tools on the same files in the same run:
#   - raw -> LUKS qcow2 (aes-256-xts-plain64) and LUKS qcow2 -> raw,
#     mimg against qemu-img (ratio mimg / qemu-img; below 1.00 = faster);
#   - mimg checksum of the raw file and of the LUKS qcow2 against
#     sha256sum of the raw file (GB/s of guest data).
#   bench/crypt.sh [-d MiB] [-r runs] [WORKDIR]
# The source is a sparse 2 GiB raw disk holding (default) 1024 MiB of
# random data in 4 MiB pieces.  Each step runs RUNS times per tool,
# alternating, and the best time counts.  iter-time is 10 ms for both
# (PBKDF2 is not what is measured).
set -eu

. "$(dirname "$0")/lib.sh"
data_mib=1024 runs=2
bench_options "[-d MiB] [-r runs]" d=data_mib r=runs -- "$@"
bench_need qemu-img sha256sum bc /usr/bin/time
bench_enter "$BENCH_DIR" mimg-bench-crypt

if [ ! -f src.raw ] || [ "$(du -m src.raw | cut -f1)" -lt "$data_mib" ]; then
	echo "bench: writing src.raw (2 GiB, $data_mib MiB of data)"
	python3 - src.raw "$data_mib" <<'PY'
import os, sys
path, mib = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.truncate(2 << 30)
    pieces = mib // 4
    stride = (2 << 30) // pieces
    for i in range(pieces):
        f.seek(i * stride)
        f.write(os.urandom(4 << 20))
PY
fi

OBJ="--object secret,id=s,data=bench-passphrase"
QOPTS="encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10"
# enc_m, enc_q, dec_m, dec_q: print the seconds each tool takes to
# encrypt and to decrypt.
enc_m() {
	rm -f m.qcow2
	bench_elapsed "$MIMG" convert $OBJ -O qcow2 -o "$QOPTS" src.raw m.qcow2
}
# qemu-img's PBKDF2 benchmark gives up on a busy machine: try again.
enc_q() {
	for _t in 1 2 3 4 5; do
		rm -f q.qcow2
		(bench_elapsed qemu-img convert $OBJ -O qcow2 -o "$QOPTS" \
			src.raw q.qcow2) 2>qerr.txt && return 0
		grep -q "accurate CPU usage" bench.out || break
	done
	cat qerr.txt >&2
	return 1
}
dec_m() { bench_elapsed "$MIMG" convert $OBJ -O raw m.qcow2 m.raw; }
dec_q() {
	bench_elapsed qemu-img convert $OBJ --image-opts \
		"driver=qcow2,file.filename=q.qcow2,encrypt.key-secret=s" \
		-O raw q.raw
}

tm1= tq1= tm2= tq2=
i=0
while [ $i -lt "$runs" ]; do
	tm1=$(bench_min "$(enc_m)" "$tm1"); tq1=$(bench_min "$(enc_q)" "$tq1")
	tm2=$(bench_min "$(dec_m)" "$tm2"); tq2=$(bench_min "$(dec_q)" "$tq2")
	i=$((i + 1))
done
cmp m.raw q.raw || { echo "bench: the decrypted images differ" >&2; exit 1; }
cmp src.raw m.raw || { echo "bench: the round trip changed the data" >&2; exit 1; }

ts=; tc=; te=
i=0
while [ $i -lt "$runs" ]; do
	ts=$(bench_min "$(bench_elapsed sha256sum src.raw)" "$ts")
	tc=$(bench_min "$(bench_elapsed "$MIMG" checksum src.raw)" "$tc")
	te=$(bench_min "$(bench_elapsed "$MIMG" checksum $OBJ m.qcow2)" "$te")
	i=$((i + 1))
done
gbs() { printf '%.2f' "$(echo "$1 / $2 / 1000000000" | bc -l)"; }
virt=$((2 << 30)) data=$((data_mib << 20))
printf '%-34s %9s %9s %7s\n' step mimg qemu-img ratio
printf '%-34s %8.2fs %8.2fs %7.2f\n' "raw -> LUKS qcow2 ($data_mib MiB data)" \
	"$tm1" "$tq1" "$(bench_ratio "$tm1" "$tq1")"
printf '%-34s %8.2fs %8.2fs %7.2f\n' "LUKS qcow2 -> raw" \
	"$tm2" "$tq2" "$(bench_ratio "$tm2" "$tq2")"
echo
printf '%-34s %8.2fs  %s GB/s of guest data (%s GB/s of data)\n' \
	"sha256sum src.raw (2 GiB)" "$ts" "$(gbs $virt "$ts")" "$(gbs $data "$ts")"
printf '%-34s %8.2fs  %s GB/s of guest data (%s GB/s of data)\n' \
	"mimg checksum src.raw" "$tc" "$(gbs $virt "$tc")" "$(gbs $data "$tc")"
printf '%-34s %8.2fs  %s GB/s of guest data (%s GB/s of data)\n' \
	"mimg checksum LUKS qcow2" "$te" "$(gbs $virt "$te")" "$(gbs $data "$te")"
