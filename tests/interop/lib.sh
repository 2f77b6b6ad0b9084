# SPDX-License-Identifier: BSD-2-Clause
# Shared helpers for interop tests.  Source with: . "$TESTLIB"
# Provides: $MIMG, a fresh $T temp dir (removed on exit), need TOOL...,
# fail MSG, check_eq A B MSG, qemu_img.
set -u
: "${MIMG:?MIMG must point to the mimg binary}"
T=$(mktemp -d "${TMPDIR:-/tmp}/mimg-interop-XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

# Skip (exit 77) unless every named program exists.
need() {
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || { echo "SKIP: $p not installed"; exit 77; }
	done
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

check_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# Extract a top-level numeric or string JSON value: json_get FILE KEY
json_get() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2"
}

# qio_fmt FMT IMG CMD...: run qemu-io commands on IMG, an image of FMT, in
# one process; fail unless all of them succeed.
qio_fmt() {
	_fmt=$1 _img=$2
	shift 2
	_args=
	for _c in "$@"; do
		_args="$_args -c \"$_c\""
	done
	eval "qemu-io -f $_fmt $_args \"$_img\"" >qio.out 2>&1 ||
		{ cat qio.out >&2; fail "qemu-io on $_img: $*"; }
	! grep -qi 'error\|failed' qio.out ||
		{ cat qio.out >&2; fail "qemu-io on $_img reported an error: $*"; }
}

# qemu_img_luks ARGS...: qemu-img with ARGS, tried again when its PBKDF2
# benchmark gives up on a busy machine ("Unable to get accurate CPU
# usage"), which small iter-time values make likely.
qemu_img_luks() {
	for _try in 1 2 3 4 5; do
		qemu-img "$@" 2>qerr.txt && return 0
		grep -q "accurate CPU usage" qerr.txt || break
	done
	cat qerr.txt >&2
	return 1
}
