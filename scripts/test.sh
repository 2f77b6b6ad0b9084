#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Install what is missing, build with warnings as errors, run every test
# and print the totals as "N passed, N failed, N skipped".
#   scripts/test.sh [--plain | --sanitize | --tsan] [meson test args...]
# With no argument (what CI runs; --full says the same) it makes two
# builds: the plain one runs the interop tests against qemu-img, the
# end-to-end and install tests and the tests of suite "plain" (CPU
# budgets, and the long tests in full); a clang build with ASan+UBSan and
# libFuzzer coverage (-Dfuzzers=true) runs every unit test (the long ones
# at MIMG_TEST_SCALE=25 percent of their iterations) and the fuzz corpus
# replay, then each fuzz target for 30 s, two at a time: a fuzz run that
# finds a crash is a failed test.  The work overlaps so that two cores
# stay busy: the plain build makes only what its tests need; the
# sanitized build is made at the lowest priority while the plain one is
# made and tested, and its tests, then the fuzz runs, run at a low
# priority as soon as it is built, in the CPU the plain tests leave idle
# while they wait (on qemu-img, fsync, the guest).
# --plain makes one plain build and runs every test there: unit,
# interop, end-to-end, install and the fuzz corpus replay (no clang
# needed).  --sanitize builds with ASan+UBSan and runs everything; --tsan
# builds with ThreadSanitizer and runs the tests of concurrent I/O (suite
# "threads").
# Other arguments go to `meson test` on the plain build, which then runs
# alone.
set -eu
. "$(dirname "$0")/setup.sh"

opts="-Dwerror=true -Dtests=true"
sanitizer_env() {
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
}
full=1
case ${1:-} in
--full) shift ;;
--plain)
	shift
	full=
	;;
--sanitize)
	shift
	full=
	BUILD_DIR=$ROOT/build-sanitize
	opts="$opts -Db_sanitize=address,undefined -Db_lundef=false"
	sanitizer_env
	;;
--tsan)
	shift
	full=
	BUILD_DIR=$ROOT/build-tsan
	# The virtqueue's fences order accesses to memory shared with another
	# process, which ThreadSanitizer does not model: GCC warns about them.
	opts="$opts -Db_sanitize=thread -Db_lundef=false -Dc_args=-Wno-tsan"
	export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
	set -- --suite threads "$@"
	;;
esac
# Tests named on the command line run alone, in the plain build.
[ $# -eq 0 ] || full=

# the sanitized fuzzing build is clang's
[ -z "$full" ] || PACKAGES="$PACKAGES $SANITIZER_PACKAGES"
install_packages

# asan_build [meson options...]: configure and build $asan with clang at
# the lowest CPU priority.  Run in the background: it ends by becoming
# ninja, which its process id then stops.
asan_build() {
	if [ -f "$asan/build.ninja" ]; then
		nice -n 19 meson configure "$asan" "$@"
	else
		CC=clang nice -n 19 meson setup "$asan" "$ROOT" "$@"
	fi && exec nice -n 19 ninja -C "$asan"
}

# Background jobs do not outlive the script when it stops early, also
# on an interrupt (sh runs the EXIT trap only on an exit; background
# jobs ignore SIGINT).
jobs_left=
trap '[ -z "$jobs_left" ] || kill $jobs_left 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
asan=$ROOT/build-asan
if [ -n "$full" ]; then
	# The sanitized build is made at the lowest priority from the start:
	# it takes the CPU that the plain build and tests leave idle (linking,
	# waiting on qemu-img, the serial guest test).
	mkdir -p "$BUILD_DIR"
	# shellcheck disable=SC2086
	asan_build $opts -Dfuzzers=true -Db_sanitize=address,undefined \
		-Db_lundef=false >"$BUILD_DIR/asan-build.log" 2>&1 &
	asan_pid=$!
	jobs_left=$asan_pid
fi
# plain_targets SUITE...: what the plain build needs for the tests of
# these suites, its programs and libraries, one file a line: the unit
# tests and fuzz replays of other suites are left to the sanitized build.
plain_targets() {
	meson introspect --targets --tests "$BUILD_DIR" |
		python3 -c '
import json, os, sys
info = json.load(sys.stdin)
root, build, suites = sys.argv[1], sys.argv[2], set(sys.argv[3:])
own = ("tests/unit/", "fuzz/")
want = {t["id"] for t in info["targets"] if t["build_by_default"] and
        not os.path.relpath(t["defined_in"], root).startswith(own)}
for t in info["tests"]:
    if suites & {s.split(":")[-1] for s in t["suite"]}:
        want.update(t["depends"])
for t in info["targets"]:
    if t["id"] in want:
        for f in t["filename"]:
            print(os.path.relpath(f, build))
' "$ROOT" "$BUILD_DIR" "$@"
}
plain_suites="interop e2e install plain"

if [ -n "$full" ]; then
	# shellcheck disable=SC2086
	configure $opts
	# shellcheck disable=SC2046,SC2086
	ninja -C "$BUILD_DIR" $(plain_targets $plain_suites) >/dev/null
else
	# shellcheck disable=SC2086
	build $opts
fi
# The interop tests start python3 hundreds of times: the interpreter
# itself comes first in PATH, not a version manager's shim (pyenv's shell
# scripts cost ten times the interpreter's own start).  It is Debian's,
# the one python3-cryptography and the other packages above are
# installed for, where there is one: another in PATH may load more
# modules at each start.
py=/usr/bin/python3
[ -x "$py" ] || py=$(python3 -c 'import sys; print(sys.executable)')
mkdir -p "$BUILD_DIR/python3-bin"
ln -sf "$py" "$BUILD_DIR/python3-bin/python3"
PATH=$BUILD_DIR/python3-bin:$PATH
export PATH

# asan_test NICE [meson test args...]: run tests of the sanitized build
# at CPU priority NICE, as a background job that is meson itself (it
# execs, so stopping the job stops meson).  Everything is slower under
# the sanitizers, and slower again at a low priority beside the plain
# tests: Check's and meson's timeouts, which only catch hangs, are
# multiplied by 4.
asan_test() {
	sanitizer_env
	export MIMG_TEST_SCALE=25
	export CK_TIMEOUT_MULTIPLIER=4
	_nice=$1
	shift
	exec nice -n "$_nice" meson test -C "$asan" --no-rebuild \
		--num-processes 2 --timeout-multiplier 4 \
		--print-errorlogs "$@"
}

status=0
logs=$BUILD_DIR/meson-logs/testlog.json
if [ -n "$full" ]; then
	plain=$BUILD_DIR
	# shellcheck disable=SC2046,SC2086
	meson test -C "$plain" --no-rebuild --num-processes 2 \
		--print-errorlogs $(printf -- '--suite %s ' $plain_suites) &
	plain_pid=$!
	jobs_left="$asan_pid $plain_pid"
	# The unit tests and the corpus replay under the sanitizers start as
	# soon as their build is done, at a lower priority than the plain
	# tests, whose CPU they fill in.
	asan_ok=1
	if wait "$asan_pid"; then
		(
			# Stopping this job stops the meson it waits for.
			meson_pid=
			trap '[ -z "$meson_pid" ] || kill $meson_pid 2>/dev/null; exit 143' TERM
			_s=0
			asan_test 10 --logbase testlog-unit --suite unit \
				--suite fuzz &
			meson_pid=$!
			wait $meson_pid || _s=$?
			# The fuzz runs last 30 s each whatever CPU they get.
			asan_test 10 --setup fuzz --suite fuzz-run &
			meson_pid=$!
			wait $meson_pid || _s=$?
			exit $_s
		) >"$asan/unit-tests.log" 2>&1 &
		unit_pid=$!
		jobs_left="$plain_pid $unit_pid"
	else
		asan_ok=
	fi
	wait "$plain_pid" || status=$?
	if [ -n "$asan_ok" ]; then
		wait "$unit_pid" || status=$?
		cat "$asan/unit-tests.log"
		grep -h '^fuzz_.*executions' \
			"$asan/meson-logs/testlog-fuzz.txt" || true
		logs="$logs $asan/meson-logs/testlog-unit.json"
		logs="$logs $asan/meson-logs/testlog-fuzz.json"
	else
		cat "$plain/asan-build.log" >&2
		echo "test: the sanitized build failed" >&2
		status=1
	fi
	jobs_left=
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
