# SPDX-License-Identifier: BSD-2-Clause
# Shared helpers for interop tests.  Source with: . "$TESTLIB"
# Provides: $MIMG, a fresh $T temp dir (removed on exit), need TOOL...,
# need_format FMT, fail MSG, check_eq A B MSG, same_output, json_get,
# json_eq, qio_fmt, qemu_img_luks, secret_refused, same_read,
# same_reading, same_dd, only_read, same_info_json, patched,
# expect_error, header_refused, read_refused, mixed_raw, backing_bases,
# qemu_clean_fmt and LUKS_COMBOS.
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

# Skip (exit 77) unless mimg was built with the driver for FMT.
need_format() {
	"$MIMG" --help | grep -q "^Formats:.*$1" || { echo "SKIP: no $1"; exit 77; }
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

check_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# same_output [-e] DESC ARGS...: qemu-img ARGS and mimg ARGS exit with the
# same status and print the same on stdout; with -e on stderr too, each
# tool's "name: " prefix set aside.
same_output() {
	_err=false
	[ "$1" = -e ] && { _err=true; shift; }
	_desc=$1
	shift
	qemu-img "$@" >q.out 2>q.err
	_qs=$?
	"$MIMG" "$@" >m.out 2>m.err
	_ms=$?
	check_eq "$_ms" "$_qs" "$_desc: exit status ($(head -1 m.err))"
	cmp -s q.out m.out ||
		{ diff q.out m.out >&2; fail "$_desc: output differs"; }
	[ "$_err" = true ] || return 0
	sed -i 's/^qemu-img: //' q.err
	sed -i 's/^mimg: //' m.err
	cmp -s q.err m.err ||
		{ diff q.err m.err >&2; fail "$_desc: stderr differs"; }
}

# patched SRC DST PYTHON [PRELUDE]: DST is SRC with its bytes changed by
# the Python statements PYTHON, which see them as b (a bytearray; struct,
# re and base64 are imported).  PRELUDE runs first: names PYTHON uses,
# such as where a table is.  Hostile-input tests break a good image so.
patched() {
	python3 - "$1" "$2" "$3" "${4:-}" <<'PY'
import base64, re, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
exec(sys.argv[4])
exec(sys.argv[3])
open(sys.argv[2], "wb").write(b)
PY
}

# expect_error WHAT CMD...: CMD fails, and what it prints on stderr holds
# WHAT (a grep pattern).
expect_error() {
	_what=$1
	shift
	if "$@" >/dev/null 2>err; then fail "$_what: $* succeeded"; fi
	grep -q -- "$_what" err || fail "$_what: $(cat err)"
}

# Extract a top-level numeric or string JSON value: json_get FILE KEY
json_get() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2"
}

# json_eq FILE WHAT KEY VALUE [KEY VALUE...]: each KEY of FILE (as
# json_get prints it) is VALUE, checked in one python3 run.
json_eq() {
	python3 - "$@" <<'PY' || fail "$2: JSON values differ"
import json, sys
d = json.load(open(sys.argv[1]))
bad = 0
for key, want in zip(sys.argv[3::2], sys.argv[4::2]):
    v = d
    for k in key.split("."):
        v = v[int(k)] if isinstance(v, list) else v[k]
    got = json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else str(v)
    if got != want:
        print("FAIL: %s: %s: expected '%s', got '%s'" % (sys.argv[2], key, want, got),
              file=sys.stderr)
        bad = 1
sys.exit(bad)
PY
}

# put_random FILE OFFSET_KIB LEN_KIB, put_zero FILE OFFSET_KIB LEN_KIB:
# write random bytes or zeroes into FILE at whole KiB, in place.
put_random() {
	dd if=/dev/urandom of="$1" bs=1k seek="$2" count="$3" conv=notrunc \
		status=none
}
put_zero() {
	dd if=/dev/zero of="$1" bs=1k seek="$2" count="$3" conv=notrunc \
		status=none
}

# mixed_raw FILE MIB SEED: a raw disk of MIB MiB whose 64 KiB pieces are
# random, text or zeroes in turns SEED picks: what compressed and sparse
# formats must each keep.
mixed_raw() {
	python3 - "$@" <<'PY'
import random, sys
r = random.Random(int(sys.argv[3]))
b = bytearray(int(sys.argv[2]) << 20)
for i in range(0, len(b), 65536):
    k = r.randrange(3)
    if k == 0:
        b[i:i + 65536] = r.randbytes(65536)
    elif k == 1:
        b[i:i + 65536] = b"a piece of a disk image " * 2730 + b"0123456789abcdef"
open(sys.argv[1], "wb").write(b)
PY
}

# header_refused FMT SRC WHAT PYTHON: the image PYTHON makes of SRC (see
# patched), bad.FMT, is refused when opened as FMT, with WHAT (a grep
# pattern) on stderr: what a hostile header does.
header_refused() {
	patched "$2" "bad.$1" "$4"
	expect_error "$3" "$MIMG" info -f "$1" "bad.$1"
}

# read_refused WHAT IMG: IMG opens, and reading it whole fails with WHAT
# (a grep pattern) on stderr: what a hostile table does to the read that
# reaches it.
read_refused() {
	"$MIMG" info "$2" >/dev/null || fail "$1: $2 not opened"
	expect_error "$1" "$MIMG" convert -O raw "$2" bad.raw
}

# backing_bases: base.raw (4 MiB of 0x11) and base.qcow2 (4 MiB, 0x12 in
# its second MiB), made by qemu-img: backing files of the two kinds, a
# named raw one and a probed one.
backing_bases() {
	qemu-img create -q -f raw base.raw 4M
	qemu-io -f raw -c 'write -P 0x11 0 4M' base.raw >/dev/null
	qemu-img create -q -f qcow2 base.qcow2 4M
	qemu-io -f qcow2 -c 'write -P 0x12 1M 1M' base.qcow2 >/dev/null
}

# qemu_clean_fmt FMT IMG [WHAT]: qemu-img check finds nothing at all.
qemu_clean_fmt() {
	qemu-img check -f "$1" "$2" >check.out 2>&1
	_st=$?
	[ $_st = 0 ] ||
		{ cat check.out >&2; fail "qemu-img check $2 (exit $_st) ${3:-}"; }
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
# benchmark gives up ("Unable to get accurate CPU usage": its first
# timed round read no thread CPU time). The thread CPU time getrusage()
# gives on Linux advances only at scheduler ticks and switches, so a
# round shorter than a tick, as it is on a processor with SHA
# instructions, reads zero unless a tick falls inside it: on a fast
# machine most tries fail. A failed try costs a few milliseconds, so it
# is tried for up to two minutes.
qemu_img_luks() {
	_until=$(($(date +%s) + 120))
	while :; do
		qemu-img "$@" 2>qerr.txt && return 0
		grep -q "accurate CPU usage" qerr.txt || break
		[ "$(date +%s)" -lt "$_until" ] || break
	done
	cat qerr.txt >&2
	return 1
}

# secret_refused IMG: reading IMG, an encrypted image, with a wrong
# passphrase fails with qemu-img's message, which does not show it; with
# no secret it fails with qemu-img's message (naming the format's
# key-secret option) and creates no target.
secret_refused() {
	"$MIMG" convert --object secret,id=x,data=WRONG "$1" bad.raw 2>err.txt &&
		fail "wrong passphrase accepted"
	grep -q "Invalid password, cannot unlock any keyslot" err.txt ||
		fail "wrong passphrase message: $(cat err.txt)"
	grep -q WRONG err.txt && fail "the passphrase was printed"
	rm -f none.raw
	"$MIMG" convert "$1" none.raw 2>err.txt && fail "read without a secret"
	[ -e none.raw ] && fail "convert without a secret created its target"
	qemu-img convert "$1" none.raw 2>qerr.txt
	rm -f none.raw
	check_eq "$(sed 's/^mimg: //' err.txt)" \
		"$(sed 's/^qemu-img: //' qerr.txt)" "no-secret message"
	return 0
}

# same_read FMT IMG [what]: mimg reads IMG, an image of FMT (through its
# backing chain), as the same bytes as qemu-img does.
same_read() {
	rm -f same.q.raw same.m.raw
	qemu-img convert -f "$1" -O raw "$2" same.q.raw ||
		fail "qemu-img convert $2 ${3:-}"
	"$MIMG" convert -f "$1" -O raw "$2" same.m.raw ||
		fail "mimg convert $2 to raw ${3:-}"
	cmp same.q.raw same.m.raw >/dev/null ||
		fail "mimg reads $2 differently from qemu-img: $(cmp same.q.raw same.m.raw 2>&1 | head -1) ${3:-}"
}

# same_reading FMT IMG DESC: IMG, an image of FMT that qemu-img only
# reads, reads as the same bytes in both (left in same.q.raw), and info,
# map, check, measure and compare print the same; adds the outputs
# compared to $n.
same_reading() {
	same_read "$1" "$2" "$3"
	for _cmd in "info" "info --output=json" "map --output=json" "map" \
		"check" "measure -O qcow2"; do
		# shellcheck disable=SC2086 # the command's words
		same_output -e "$3 $_cmd" $_cmd "$2"
	done
	same_output -e "$3 compare" compare -f "$1" -F raw "$2" same.q.raw
	n=$((n + 8))
}

# same_dd FMT IMG: reads of IMG, an image of FMT, that start and end
# inside its sectors and blocks (qemu-img dd, blocks of 1000 bytes) give
# the same bytes in both; adds them to $n.
same_dd() {
	for _skip in 0 1 7 63; do
		qemu-img dd -f "$1" -O raw bs=1000 skip=$_skip count=300 \
			if="$2" of=dd.q.raw 2>/dev/null ||
			fail "qemu-img dd $2 skip=$_skip"
		"$MIMG" dd -f "$1" -O raw bs=1000 skip=$_skip count=300 \
			if="$2" of=dd.m.raw || fail "mimg dd $2 skip=$_skip"
		cmp -s dd.q.raw dd.m.raw ||
			fail "dd $2 skip=$_skip reads other bytes"
		n=$((n + 1))
	done
}

# only_read FMT IMG RAW: IMG, an image of FMT that qemu-img only reads,
# cannot be opened for writing (converting RAW into it; mimg's message
# names FMT) nor such an image created, as in qemu-img; adds 2 to $n.
only_read() {
	same_output "$1 opened for writing" convert -n -O "$1" "$3" "$2"
	grep -q "$1: Image is read-only" m.err || fail "$1 rw: $(cat m.err)"
	same_output -e "$1 create" create -f "$1" "new.$1" 1M
	n=$((n + 2))
}

# info_both IMG [info args]: info.q.json and info.m.json, what qemu-img
# info and mimg info print of IMG as JSON.
info_both() {
	_img=$1
	shift
	qemu-img info --output=json "$@" "$_img" >info.q.json ||
		fail "qemu-img info $_img"
	"$MIMG" info --output json "$@" "$_img" >info.m.json ||
		fail "mimg info $_img"
}

# same_info_json IMG [info args]: mimg info --output json prints what
# qemu-img info does, with the same keys in the same order (actual-size
# aside: it is sampled at another moment).
same_info_json() {
	_img=$1
	info_both "$@"
	python3 - info.q.json info.m.json <<'PY' || fail "info JSON of $_img differs"
import json, sys
q = json.load(open(sys.argv[1]))
m = json.load(open(sys.argv[2]))
for d in (q, m):
    d.pop('actual-size', None)
if q != m or list(q) != list(m):
    print('qemu:', json.dumps(q, indent=1))
    print('mimg:', json.dumps(m, indent=1))
    sys.exit(1)
PY
}

# The AES cipher, mode, IV generator and hash combinations qemu-img
# creates, as LUKS create options (prefix "encrypt." for qcow2).
LUKS_COMBOS="cipher-alg=aes-256
cipher-alg=aes-128
cipher-alg=aes-192
cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=plain64
cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=plain
cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv
cipher-alg=aes-128,cipher-mode=xts,ivgen-alg=essiv,ivgen-hash-alg=sha256
cipher-alg=aes-256,ivgen-alg=plain,hash-alg=sha1
cipher-alg=aes-256,hash-alg=sha512"

# streams ARCHIVE RAW MIB [qcow2 options]: mimg converts ARCHIVE to raw
# and to qcow2 (with the options) with $TMPDIR missing, so streamed with
# no temporary file; both read as RAW, and the raw output allocates MIB
# MiB: data is written as data, zero runs stay holes.
streams() {
	_a=$1 _raw=$2 _mib=$3
	shift 3
	rm -f out.raw out.qcow2
	TMPDIR=$T/missing "$MIMG" convert -O raw "$_a" out.raw ||
		fail "convert $_a without a temporary directory"
	qemu-img compare -q -f raw -F raw "$_raw" out.raw ||
		fail "$_a: streamed content differs from $_raw"
	check_eq "$(($(stat -c %b out.raw) * 512 / 1048576))" "$_mib" \
		"$_a: allocated MiB of the raw output"
	TMPDIR=$T/missing "$MIMG" convert -O qcow2 "$@" "$_a" out.qcow2 ||
		fail "convert -O qcow2 $* $_a"
	qemu-img compare -q -f raw -F qcow2 "$_raw" out.qcow2 ||
		fail "$_a: streamed qcow2 differs from $_raw"
}
