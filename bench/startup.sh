#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# What one short command costs, start-up included, as tools that run one
# command per image see it: `info` (human and JSON) and `check` of a small
# qcow2, each run -n times in a row by mimg and by qemu-img, alternating,
# best of -r rounds.  Prints milliseconds per command (wall and CPU, user
# + system), the ratio mimg / qemu-img (below 1.00: mimg faster), and the
# shared objects each program loads for `info`.
#   bench/startup.sh [-r runs] [-n count] [WORKDIR]
set -eu

. "$(dirname "$0")/lib.sh"
runs=3 count=100
bench_options "[-r runs] [-n count]" r=runs n=count -- "$@"
bench_need qemu-img /usr/bin/time
bench_enter "$BENCH_DIR" mimg-bench-startup

[ -f small.qcow2 ] || qemu-img create -q -f qcow2 small.qcow2 1G

# per_call PROGRAM ARGS...: wall and CPU milliseconds per call of
# PROGRAM ARGS in one round (sets _w and _c).
per_call() {
	bench_time sh -c 'n=$1; shift; i=0
		while [ $i -lt "$n" ]; do "$@" >/dev/null; i=$((i + 1)); done' \
		sh "$count" "$@"
	_w=$(awk -v t="$w" -v n="$count" 'BEGIN { printf "%.2f", t * 1000 / n }')
	_c=$(awk -v t="$c" -v n="$count" 'BEGIN { printf "%.2f", t * 1000 / n }')
}

printf "%-18s %9s %9s %9s %9s %6s %6s\n" command "mimg ms" "cpu ms" \
	"qemu ms" "cpu ms" wall cpu
for cmd in "info" "info --output=json" "check"; do
	mw= mc= qw= qc=
	i=0
	while [ $i -lt "$runs" ]; do
		# shellcheck disable=SC2086 # the command's words
		per_call "$MIMG" $cmd small.qcow2
		mw=$(bench_min "$_w" "$mw") mc=$(bench_min "$_c" "$mc")
		# shellcheck disable=SC2086
		per_call qemu-img $cmd small.qcow2
		qw=$(bench_min "$_w" "$qw") qc=$(bench_min "$_c" "$qc")
		i=$((i + 1))
	done
	printf "%-18s %9s %9s %9s %9s %6s %6s\n" "$cmd" "$mw" "$mc" "$qw" "$qc" \
		"$(bench_ratio "$mw" "$qw")" "$(bench_ratio "$mc" "$qc")"
done
for p in "$MIMG" qemu-img; do
	n=$(LD_DEBUG=files "$p" info small.qcow2 2>&1 >/dev/null |
		grep -c 'needed by')
	echo "shared objects loaded by $(basename "$p") info: $n"
done
