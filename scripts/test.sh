#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Install what is missing, build with warnings as errors, run every test
# and print the totals as "N passed, N failed, N skipped".
#   scripts/test.sh [--full | --plain | --sanitize | --tsan] [meson test args...]
# With no argument (what CI runs), one plain build runs every test: unit,
# interop against qemu-img, end-to-end, install and the fuzz corpus replay.
# --full makes two builds: the plain one runs the interop tests, the
# end-to-end and install tests and the tests of suite "plain" (CPU
# budgets, and the long tests in full); a clang build with ASan+UBSan and
# libFuzzer coverage (-Dfuzzers=true), made while the plain tests run,
# runs every unit test (the long ones at MIMG_TEST_SCALE=25 percent of
# their iterations) and the fuzz corpus replay, then each fuzz target for
# 30 s, two at a time: a fuzz run that finds a crash is a failed test.
# It takes about 19 minutes on two idle cores, the plain run about 12.
# --plain is the default run by name; --sanitize builds with ASan+UBSan and
# runs everything; --tsan builds with ThreadSanitizer and runs the tests of
# concurrent I/O (suite "threads").
# Other arguments go to `meson test` on the plain build, which then runs
# alone.
set -eu
. "$(dirname "$0")/setup.sh"

opts="-Dwerror=true -Dtests=true"
sanitizer_env() {
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
}
full=
if [ "${1:-}" = "--plain" ] || [ "${1:-}" = "--full" ]; then
	[ "$1" = "--full" ] && full=1
	shift
elif [ "${1:-}" = "--sanitize" ]; then
	shift
	BUILD_DIR=$ROOT/build-sanitize
	opts="$opts -Db_sanitize=address,undefined -Db_lundef=false"
	sanitizer_env
elif [ "${1:-}" = "--tsan" ]; then
	shift
	BUILD_DIR=$ROOT/build-tsan
	# The virtqueue's fences order accesses to memory shared with another
	# process, which ThreadSanitizer does not model: GCC warns about them.
	opts="$opts -Db_sanitize=thread -Db_lundef=false -Dc_args=-Wno-tsan"
	export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
	set -- --suite threads "$@"
fi

# the sanitized fuzzing build is clang's
[ -z "$full" ] || PACKAGES="$PACKAGES $SANITIZER_PACKAGES"
install_packages
# shellcheck disable=SC2086
build $opts
# The interop tests start python3 hundreds of times: the interpreter
# itself comes first in PATH, not a version manager's shim (pyenv's shell
# scripts cost ten times the interpreter's own start).
mkdir -p "$BUILD_DIR/python3-bin"
ln -sf "$(python3 -c 'import sys; print(sys.executable)')" \
	"$BUILD_DIR/python3-bin/python3"
PATH=$BUILD_DIR/python3-bin:$PATH
export PATH

# asan_build [meson options...]: configure and build $asan with clang at
# the lowest CPU priority.
asan_build() {
	if [ -f "$asan/build.ninja" ]; then
		nice -n 19 meson configure "$asan" "$@"
	else
		CC=clang nice -n 19 meson setup "$asan" "$ROOT" "$@"
	fi && nice -n 19 ninja -C "$asan"
}

status=0
logs=$BUILD_DIR/meson-logs/testlog.json
if [ -n "$full" ]; then
	plain=$BUILD_DIR
	asan=$ROOT/build-asan
	# The sanitized build is made at the lowest priority while the plain
	# tests run: it takes the CPU they leave idle (waiting on qemu-img,
	# the serial guest test, the last long test).
	# shellcheck disable=SC2086
	asan_build $opts -Dfuzzers=true -Db_sanitize=address,undefined \
		-Db_lundef=false >"$plain/asan-build.log" 2>&1 &
	asan_pid=$!
	meson test -C "$plain" --num-processes 2 --print-errorlogs \
		--suite interop --suite e2e --suite install --suite plain ||
		status=$?
	if wait "$asan_pid"; then
		(
			sanitizer_env
			export MIMG_TEST_SCALE=25
			# Everything is slower under the sanitizers: Check's
			# and meson's timeouts are doubled.
			export CK_TIMEOUT_MULTIPLIER=2
			meson test -C "$asan" --setup fuzz --num-processes 2 \
				--timeout-multiplier 2 --print-errorlogs \
				--suite unit --suite fuzz --suite fuzz-run
		) || status=$?
		logs="$logs $asan/meson-logs/testlog-fuzz.json"
		grep -h '^fuzz_.*executions' \
			"$asan/meson-logs/testlog-fuzz.txt" || true
	else
		cat "$plain/asan-build.log" >&2
		echo "test: the sanitized build failed" >&2
		status=1
	fi
else
	meson test -C "$BUILD_DIR" --num-processes 2 --print-errorlogs "$@" ||
		status=$?
fi

# shellcheck disable=SC2086
python3 - $logs <<'PY'
import json, sys
passed = failed = skipped = 0
for log in sys.argv[1:]:
    for line in open(log):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
