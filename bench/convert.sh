#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Time mimg and qemu-img on the same conversions of the same files, in the
# same run, and print the ratios (mimg / qemu-img; below 1.00 = mimg faster)
# of wall and CPU (user + system) time, the output sizes (allocated
# MiB) and mimg's peak RSS; then mimg's times with 1, 2, 4, 8, 16 workers (as many as exist).
#   bench/convert.sh [-s GiB] [-d MiB] [-r runs] [-o OUTDIR] [-t TEXT] [-S 1] [WORKDIR]
# The source is a sparse raw disk (default 4 GiB) holding (default) 768 MiB
# of data: one third random, one third text, one third explicit zeroes,
# in 1-8 MiB pieces spread over the disk.  Each conversion runs RUNS times
# per tool, alternating between the tools, and the best time counts.
# On a busy machine compare the CPU columns: wall time follows the load.
# -o OUTDIR puts the outputs there instead of WORKDIR: on a tmpfs
# (-o /dev/shm) the rows writing raw images time the conversion, not the
# page-cache writeback of the disk under WORKDIR, which dominates them
# otherwise and follows what other processes write.  -t TEXT runs only
# the conversions whose name contains TEXT (and skips the scaling part
# unless -S is given).  -S 1 runs the scaling part alone, with sources
# made by mimg, so that it needs no qemu-img (a many-core machine without
# it; bench/bundle.sh carries mimg there).
set -eu

. "$(dirname "$0")/lib.sh"
size_gib=4 data_mib=768 runs=2 outdir="" only="" scaling_only=""
bench_options "[-s GiB] [-d MiB] [-r runs] [-o OUTDIR] [-t TEXT] [-S 1]" \
	s=size_gib d=data_mib r=runs o=outdir t=only S=scaling_only -- "$@"
[ -z "$outdir" ] || outdir=$(cd "$outdir" && pwd) ||
	{ echo "bench: no directory $outdir" >&2; exit 1; }
# The reference that makes the sources and is timed beside mimg.
REF=qemu-img
[ -z "$scaling_only" ] || REF=$MIMG
bench_need "$REF" bc /usr/bin/time
bench_enter "$BENCH_DIR" mimg-bench

# The images made from src.raw are kept for the next run while it stays.
stale=false
bench_source src.raw "$size_gib" "$data_mib" 42 <<'PY' && stale=true
words = b"the quick brown fox jumps over lazy dogs while mimg converts disk images".split()
text = b" ".join(rng.choice(words) for _ in range(300000))[: 1 << 20]
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

# made OUT ARGS...: OUT made from src.raw by qemu-img convert ARGS (mimg
# with -S), unless it is there from a run on the same src.raw.
made() {
	out=$1
	shift
	[ "$stale" = false ] && [ -f "$out" ] && return 0
	"$REF" convert "$@" src.raw "$out.tmp"
	mv "$out.tmp" "$out"
}

have() { "$MIMG" --help | sed -n 's/^Formats: //p' | tr ' ' '\n' | grep -qx "$1"; }

mib() { echo "$(stat -c '%b * %B' "$1") / 1048576" | bc -l; } # allocated

[ -n "$scaling_only" ] || printf '%-30s %8s %8s %6s %7s %7s %6s %9s %9s %7s\n' conversion qemu-img mimg ratio \
	"q-cpu" "m-cpu" "ratio" "q-MiB" "m-MiB" "m-RSS"
bench() { # bench NAME SRC_FMT SRC DST_FMT [convert options...]
	name=$1 sfmt=$2 src=$3 dfmt=$4
	shift 4
	case $name in *"$only"*) ;; *) return 0 ;; esac
	[ -z "$scaling_only" ] || return 0
	q=${outdir:-.}/out-q.$dfmt m=${outdir:-.}/out-m.$dfmt
	tq="" tm="" cq="" cm="" rm=""
	i=0
	# Alternate the tools so that both meet the same machine state
	# (page cache, writeback); each starts from a missing output file.
	# The best of RUNS counts, for wall and CPU time each.
	while [ $i -lt "$runs" ]; do
		rm -f "$q" "$m"
		bench_time qemu-img convert -f "$sfmt" -O "$dfmt" "$@" "$src" "$q"
		tq=$(bench_min "$w" "$tq") cq=$(bench_min "$c" "$cq")
		bench_time "$MIMG" convert -f "$sfmt" -O "$dfmt" "$@" "$src" "$m"
		tm=$(bench_min "$w" "$tm") cm=$(bench_min "$c" "$cm") rm=$(bench_max "$r" "$rm")
		i=$((i + 1))
	done
	if ! qemu-img compare -q -f "$dfmt" -F "$dfmt" "$q" "$m"; then
		echo "bench: $name: outputs differ" >&2
		exit 1
	fi
	printf '%-30s %7.2fs %7.2fs %6.2f %6.2fs %6.2fs %6.2f %9.1f %9.1f %6dM\n' \
		"$name" "$tq" "$tm" "$(bench_ratio "$tm" "$tq")" "$cq" "$cm" \
		"$(bench_ratio "$cm" "$cq")" "$(mib "$q")" \
		"$(mib "$m")" $((rm / 1024))
	rm -f "$q" "$m"
}

# scaling NAME SRC_FMT SRC DST_FMT [convert options...]: mimg alone with
# 1, 2, 4, 8, 16 workers, as many as this machine has CPUs.
scaling() {
	name=$1 sfmt=$2 src=$3 dfmt=$4
	shift 4
	case $name in *"$only"*) ;; *) return 0 ;; esac
	cpus=$(getconf _NPROCESSORS_ONLN)
	t1="" out=${outdir:-.}/out-m.$dfmt
	for m in 1 2 4 8 16; do
		[ "$m" -le "$cpus" ] || break
		t="" tc="" i=0
		while [ $i -lt "$runs" ]; do
			rm -f "$out"
			bench_time "$MIMG" convert -m "$m" -f "$sfmt" -O "$dfmt" "$@" "$src" "$out"
			[ -n "$t" ] && [ "$(bench_min "$w" "$t")" = "$t" ] || tc=$c
			t=$(bench_min "$w" "$t")
			i=$((i + 1))
		done
		[ -n "$t1" ] || t1=$t
		# CPU of the fastest run over its wall time: the cores it kept busy.
		printf '%-30s -m %-3d %7.2fs  speedup %5.2f  (linear %d, %.2f of it)  cpu %7.2fs  busy %5.2f\n' \
			"$name" "$m" "$t" "$(bench_ratio "$t1" "$t")" "$m" \
			"$(bench_ratio "$(bench_ratio "$t1" "$t")" "$m")" "$tc" "$(bench_ratio "$tc" "$t")"
	done
	rm -f "$out"
}

bench "raw -> raw" raw src.raw raw
if have qcow2; then
	made src.qcow2 -O qcow2
	made src-zlib.qcow2 -c -O qcow2
	made src-zstd.qcow2 -c -O qcow2 -o compression_type=zstd
	# preallocated with metadata: data clusters over holes of the file
	made src-prealloc.qcow2 -O qcow2 -o preallocation=metadata
	bench "raw -> qcow2" raw src.raw qcow2
	bench "qcow2 -> raw" qcow2 src.qcow2 raw
	bench "qcow2 -c zlib -> raw" qcow2 src-zlib.qcow2 raw
	bench "qcow2 -c zstd -> raw" qcow2 src-zstd.qcow2 raw
	bench "qcow2 prealloc=metadata -> raw" qcow2 src-prealloc.qcow2 raw
	bench "raw -> qcow2 -c (zlib)" raw src.raw qcow2 -c
	bench "raw -> qcow2 -c (zstd)" raw src.raw qcow2 -c -o compression_type=zstd
fi
if have vmdk; then
	made src.vmdk -O vmdk
	made src-stream.vmdk -O vmdk -o subformat=streamOptimized
	bench "raw -> vmdk" raw src.raw vmdk
	bench "vmdk -> raw" vmdk src.vmdk raw
	have qcow2 && bench "vmdk -> qcow2" vmdk src.vmdk qcow2
	bench "raw -> vmdk streamOptimized" raw src.raw vmdk -o subformat=streamOptimized
	bench "streamOptimized -> raw" vmdk src-stream.vmdk raw
fi
if have vhdx; then
	made src.vhdx -O vhdx
	bench "raw -> vhdx" raw src.raw vhdx
	bench "vhdx -> raw" vhdx src.vhdx raw
	have qcow2 && bench "vhdx -> qcow2" vhdx src.vhdx qcow2
fi
if have parallels; then
	made src.hdd -O parallels
	bench "raw -> parallels" raw src.raw parallels
	bench "parallels -> raw" parallels src.hdd raw
fi
if have dmg; then
	# qemu-img cannot write DMG: the tests' writer makes it (zlib chunks
	# of 1 MiB, zero chunks for the holes).
	if [ "$stale" = true ] || [ ! -f src.dmg ]; then
		python3 "$ROOT/tests/interop/dmg-make.py" src.raw src.dmg.tmp
		mv src.dmg.tmp src.dmg
	fi
	bench "dmg -> raw" dmg src.dmg raw
fi
if [ -z "$only" ] || [ -n "$scaling_only" ]; then
	[ -n "$scaling_only" ] || echo
	echo "mimg with N workers ($(getconf _NPROCESSORS_ONLN) CPUs online):"
	# The floor of the rows writing raw: the data copied, no format.
	scaling "raw -> raw" raw src.raw raw
	if have qcow2; then
		scaling "qcow2 -c zlib -> raw" qcow2 src-zlib.qcow2 raw
		scaling "qcow2 -c zstd -> raw" qcow2 src-zstd.qcow2 raw
		scaling "raw -> qcow2 -c (zlib)" raw src.raw qcow2 -c
		scaling "raw -> qcow2 -c (zstd)" raw src.raw qcow2 -c -o compression_type=zstd
	fi
	if have vmdk; then
		scaling "raw -> vmdk streamOptimized" raw src.raw vmdk -o subformat=streamOptimized
		scaling "streamOptimized -> raw" vmdk src-stream.vmdk raw
	fi
fi
rm -f bench.out
