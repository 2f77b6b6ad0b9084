#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Install what is missing, build with warnings as errors, run every test
# (unit, fuzz corpus replay, interop against qemu-img, end-to-end) and
# print the totals as "N passed, N failed, N skipped".
#   scripts/test.sh [--sanitize | --tsan] [meson test args...]
# --sanitize builds with ASan+UBSan and runs everything; --tsan builds with
# ThreadSanitizer and runs the tests of concurrent I/O (suite "threads").
set -eu
. "$(dirname "$0")/setup.sh"

opts="-Dwerror=true -Dtests=true"
if [ "${1:-}" = "--sanitize" ]; then
	shift
	BUILD_DIR=$ROOT/build-sanitize
	opts="$opts -Db_sanitize=address,undefined -Db_lundef=false"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
elif [ "${1:-}" = "--tsan" ]; then
	shift
	BUILD_DIR=$ROOT/build-tsan
	# The virtqueue's fences order accesses to memory shared with another
	# process, which ThreadSanitizer does not model: GCC warns about them.
	opts="$opts -Db_sanitize=thread -Db_lundef=false -Dc_args=-Wno-tsan"
	export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
	set -- --suite threads "$@"
fi

install_packages
# shellcheck disable=SC2086
build $opts

status=0
meson test -C "$BUILD_DIR" --num-processes 2 --print-errorlogs "$@" ||
	status=$?

python3 - "$BUILD_DIR/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
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
