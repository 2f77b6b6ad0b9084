#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# One timed, coverage-guided run of a libFuzzer target from its committed
# corpus (which it only reads; new inputs go to a temporary directory):
#   fuzz-run.sh FUZZER CORPUS_DIR CRASH_DIR      (FUZZ_SECONDS, default 30)
# Prints the executions and the edges covered before and after.  A crash,
# a leak, an input slower than 30 s or one needing more than 2 GiB fails
# the run; the input is kept in CRASH_DIR and printed in hex.
set -eu
fuzzer=$1 corpus=$2 crashes=$3
secs=${FUZZ_SECONDS:-30}
name=$(basename "$fuzzer")
work=$(mktemp -d "${TMPDIR:-/tmp}/mimg-fuzz-run.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/new" "$crashes"
# Hostile sizes must fail an allocation, not abort the run.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1"

st=0
"$fuzzer" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
	-max_len=1048576 -print_final_stats=1 -artifact_prefix="$crashes/" \
	"$work/new" "$corpus" >"$work/log" 2>&1 || st=$?

# libFuzzer's status lines: "#N INITED cov: E ..." once the corpus is
# loaded, then "#N DONE cov: E ..." (or the last "#N ... cov:" line).
inited=$(sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' "$work/log" | tail -1)
last=$(grep '^#[0-9]*.*cov: ' "$work/log" | tail -1)
execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
edges=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
new=$(ls "$work/new" | wc -l)
echo "$name: ${execs:-?} executions in $secs s, edges ${inited:-?} -> ${edges:-?}, $new new inputs"
if [ "$st" -ne 0 ] || [ -z "$edges" ]; then
	tail -60 "$work/log"
	for f in "$crashes"/*; do
		[ -f "$f" ] || continue
		echo "input $f:"
		od -A x -t x1z "$f" | head -64
	done
	exit 1
fi
