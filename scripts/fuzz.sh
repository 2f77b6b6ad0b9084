#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# Build the libFuzzer targets (clang; libmimg instrumented for coverage,
# with ASan and UBSan) and run each for SECONDS in fork mode, then merge
# what is new into fuzz/corpus/<target>/ (minimised) and print, per
# target, the executions and the edges covered by the committed corpus
# before and after.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default 60, every target)
# Environment: FUZZ_JOBS (parallel jobs, default: the number of cores),
# BUILD_DIR (default build-fuzz).  Crashes, leaks, timeouts and running
# out of memory are left as crash-*, leak-*, timeout-* and oom-* files in
# the work directory and make the script exit 1, as does a corpus that
# fails when replayed.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-fuzz}
secs=${1:-60}
[ $# -gt 0 ] && shift
jobs=${FUZZ_JOBS:-$(nproc)}
command -v clang >/dev/null || { echo "fuzz: clang is needed" >&2; exit 1; }

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
	CC=clang meson setup "$BUILD_DIR" "$ROOT" -Dfuzzers=true \
		-Dtests=false -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$BUILD_DIR" >/dev/null
# Absolute: each target runs in a work directory of its own.
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)

# Every target has a corpus directory of its own.
targets=${*:-$(ls "$ROOT/fuzz/corpus")}
work=$(mktemp -d "${TMPDIR:-/tmp}/mimg-fuzz.XXXXXX")
status=0
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# edges EXE DIR: coverage of the inputs in DIR ("cov:" of libFuzzer's
# INITED line).
edges() {
	(cd "$work" && "$1" -runs=0 "$2" 2>&1) |
		sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' | tail -1
}

printf "%-12s %12s %10s %10s %8s\n" target executions "edges was" "edges now" "new"
for t in $targets; do
	exe=$BUILD_DIR/fuzz/fuzz_$t
	corpus=$ROOT/fuzz/corpus/$t
	[ -x "$exe" ] || { echo "fuzz: no target $t" >&2; status=1; continue; }
	mkdir -p "$corpus" "$work/$t/new"
	before=$(edges "$exe" "$corpus")
	(cd "$work/$t" && "$exe" -fork="$jobs" -max_total_time="$secs" \
		-ignore_crashes=1 -max_len=1048576 -rss_limit_mb=2048 \
		new "$corpus" >log 2>&1) || true
	execs=$(sed -n 's/.*#\([0-9]*\).*cov:.*/\1/p' "$work/$t/log" | tail -1)
	if [ -z "$execs" ]; then
		echo "fuzz: $t did not run; its log is $work/$t/log" >&2
		status=1
	fi
	# Any artifact counts, leaks and running out of memory too.
	for a in crash leak oom timeout; do
		ls "$work/$t/$a"-* >/dev/null 2>&1 || continue
		echo "fuzz: $t found a $a in $work/$t" >&2
		status=1
	done
	# Keep only inputs that add coverage, named by content.
	n0=$(ls "$corpus" | wc -l)
	mkdir -p "$work/$t/merged"
	# (in the work directory: inputs that crash are written there)
	(cd "$work/$t" && "$exe" -merge=1 merged "$corpus" new \
		>merge.log 2>&1) || true
	# Only what the committed corpus does not already hold, named by
	# content.
	(cd "$corpus" && sha1sum -- * 2>/dev/null | cut -c1-40) | sort \
		>"$work/$t/have"
	for f in "$work/$t/merged"/*; do
		[ -f "$f" ] || continue
		h=$(sha1sum "$f" | cut -c1-40)
		grep -qx "$h" "$work/$t/have" ||
			cp "$f" "$corpus/fuzzed-$(echo "$h" | cut -c1-12)"
	done
	after=$(edges "$exe" "$corpus")
	# No count: the corpus itself fails (a crash or leak replaying it).
	if [ -z "$before" ] || [ -z "$after" ]; then
		echo "fuzz: $t: replaying the corpus failed" >&2
		status=1
	fi
	printf "%-12s %12s %10s %10s %8s\n" "$t" "${execs:-?}" "${before:-?}" \
		"${after:-?}" "$(( $(ls "$corpus" | wc -l) - n0 ))"
done
[ "$status" -eq 0 ] && rm -rf "$work"
exit $status
