# SPDX-License-Identifier: BSD-2-Clause
# Setup shared by the host-level benchmarks: their options, where mimg is,
# what they need, the working directory they keep their images in between
# runs, and how they time a command.  Sourced by bench/*.sh first.

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIMG=${MIMG:-$ROOT/build/mimg/mimg}

# bench_options USAGE L=VAR... -- ARGS...: parse ARGS, where each -L VALUE
# sets VAR (defaulted by the caller), and leave the one operand, the
# working directory, in BENCH_DIR (empty when not given).  USAGE is the
# options' synopsis for the message a bad option gets.
bench_options() {
	_usage=$1
	shift
	_map='' _spec=''
	while [ "$1" != -- ]; do
		_map="$_map $1" _spec="$_spec${1%%=*}:"
		shift
	done
	shift
	OPTIND=1
	while getopts "$_spec" _o; do
		_var=
		for _m in $_map; do
			[ "${_m%%=*}" = "$_o" ] && _var=${_m#*=}
		done
		[ -n "$_var" ] ||
			{ echo "usage: $0 $_usage [WORKDIR]" >&2; exit 2; }
		eval "$_var=\$OPTARG"
	done
	shift $((OPTIND - 1))
	BENCH_DIR=${1:-}
}

# bench_need PROG...: stop unless each PROG and the built mimg are there.
bench_need() {
	for p in "$@"; do
		command -v "$p" >/dev/null ||
			{ echo "bench: $p is needed" >&2; exit 1; }
	done
	[ -x "$MIMG" ] || { echo "bench: build mimg first ($MIMG)" >&2; exit 1; }
}

# bench_enter DIR NAME: work in DIR, or in $TMPDIR/NAME when DIR is empty;
# WORK is its absolute path.
bench_enter() {
	WORK=${1:-${TMPDIR:-/tmp}/$2}
	mkdir -p "$WORK"
	cd "$WORK"
	WORK=$(pwd)
}

# bench_source PATH GIB MIB SEED: unless PATH already is a raw disk of
# GIB GiB, make it one (sparse) and put MIB MiB of data in it with the
# Python code on stdin, which finds the file open in f, its size in size,
# MIB in mib and a random.Random(SEED) in rng.  True when PATH was
# written (what was made from it before is stale).
bench_source() {
	if [ -f "$1" ] && [ "$(stat -c %s "$1")" -eq $(($2 << 30)) ]; then
		return 1
	fi
	echo "bench: writing $1 ($2 GiB, $3 MiB of data)"
	python3 -c 'import os, random, sys
path, gib, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(int(sys.argv[4]))
size = gib << 30
with open(path, "wb") as f:
    f.truncate(size)
    exec(sys.stdin.read())' "$@" ||
		{ echo "bench: cannot write $1" >&2; exit 1; }
}

# bench_time CMD...: run CMD, its output in bench.out, and stop the bench
# when it fails.  Sets w (wall seconds), c (user + system CPU seconds of
# CMD and its children, steadier than wall time on a shared machine) and
# r (peak RSS, KiB).
bench_time() {
	_t0=$(date +%s.%N)
	/usr/bin/time -f '%U %S %M' -o bench.time "$@" >bench.out 2>&1 || {
		echo "bench: failed: $*" >&2
		cat bench.out >&2
		exit 1
	}
	_t1=$(date +%s.%N)
	read -r _u _s r <bench.time
	w=$(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.3f\n", b - a }')
	c=$(awk -v u="$_u" -v s="$_s" 'BEGIN { print u + s }')
	rm -f bench.time
}

# bench_elapsed CMD...: print the wall seconds bench_time measures.
bench_elapsed() {
	bench_time "$@"
	echo "$w"
}

# bench_min A B, bench_max A B: the smaller, the larger number (B may be
# empty: A).
bench_min() {
	awk -v a="$1" -v b="$2" 'BEGIN { print ((b == "" || a + 0 < b + 0) ? a : b) }'
}
bench_max() {
	awk -v a="$1" -v b="$2" 'BEGIN { print ((b == "" || a + 0 > b + 0) ? a : b) }'
}

# bench_ratio A B: A / B with two decimals (0 when B is 0).
bench_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }'
}
