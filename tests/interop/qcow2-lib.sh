# SPDX-License-Identifier: BSD-2-Clause
# Helpers shared by the qcow2 interop tests (sourced after lib.sh; not a
# test itself).  qemu-img/qemu-io 7.2 are the oracle throughout.

need qemu-img qemu-io python3 cmp

# The creation options (qemu-img create -o) the qcow2 tests cover: each
# version, cluster size, refcount width, compression type, extended L2,
# an external data file (@DATA@: its name) and each preallocation.
QCOW2_VARIANTS="compat=0.10 compat=1.1 compat=0.10,cluster_size=512
cluster_size=512 cluster_size=4k cluster_size=2M refcount_bits=1 refcount_bits=2
refcount_bits=4 refcount_bits=8 refcount_bits=32
refcount_bits=64,cluster_size=512 lazy_refcounts=on
compression_type=zlib compression_type=zstd extended_l2=on
extended_l2=on,cluster_size=16k extended_l2=on,cluster_size=2M
data_file=@DATA@ data_file=@DATA@,data_file_raw=on
preallocation=metadata preallocation=falloc preallocation=full
extended_l2=on,preallocation=metadata"

# qio IMG FMT CMD...: run qemu-io commands on IMG in one process.
qio() {
	_img=$1 _fmt=$2
	shift 2
	qio_fmt "$_fmt" "$_img" "$@"
}

# qemu_clean IMG [WHAT]: qemu-img check must find nothing at all.
qemu_clean() {
	qemu_clean_fmt qcow2 "$@"
}

# same_content IMG [FMT [what]]: mimg reads IMG (through its backing
# chain) as the same bytes as qemu-img does.
same_content() {
	same_read "${2:-qcow2}" "$1" "${3:-}"
}

# The JSON comparisons of same_info and same_check are queued, with
# copies of both sides, and made together in one python3 run (its start
# costs several qemu-img runs): by json_checks, which a test calls before
# it reports success, or else when it exits with status 0.  A difference
# fails the test then, naming the image and the key.
JSON_QUEUE=$T/json.queue
: >"$JSON_QUEUE"
_json_n=0
trap 'json_checks_at_exit' EXIT

# json_queue KIND QEMU_JSON MIMG_JSON WHAT: compare the two later.
json_queue() {
	_json_n=$((_json_n + 1))
	cp "$2" "$T/json.$_json_n.q" && cp "$3" "$T/json.$_json_n.m" ||
		fail "json_queue $2 $3"
	printf '%s\t%s\t%s\t%s\n' "$1" "$T/json.$_json_n.q" \
		"$T/json.$_json_n.m" "$4" >>"$JSON_QUEUE"
}

# json_checks: make the queued comparisons; fail on any difference.
#   info: every key qemu-img info prints is printed by mimg info with the
#         same value; actual-size may differ by less than a page (it is
#         sampled at a different moment).
#   check: mimg check's JSON has exactly qemu-img check's keys and values.
#   fs: two qemu-img info outputs agree on everything but the file name,
#       the allocation and the data file's name.
json_checks() {
	[ -s "$JSON_QUEUE" ] || return 0
	python3 - "$JSON_QUEUE" <<'PY' || fail "JSON of mimg and qemu-img differs"
import json, sys
def cmp_info(a, b, path, bad):
    if isinstance(a, dict):
        if not isinstance(b, dict):
            bad.append('%s: qemu has an object, mimg %r' % (path, b)); return
        for k in a:
            if k not in b:
                bad.append('%s.%s missing in mimg (qemu: %r)' % (path, k, a[k]))
            elif k == 'actual-size':
                if abs(a[k] - b[k]) >= 4096:
                    bad.append('%s.actual-size: qemu %r, mimg %r' % (path, a[k], b[k]))
            else:
                cmp_info(a[k], b[k], path + '.' + k, bad)
    elif isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            bad.append('%s: qemu %r, mimg %r' % (path, a, b)); return
        for i, (x, y) in enumerate(zip(a, b)):
            cmp_info(x, y, '%s[%d]' % (path, i), bad)
    elif a != b or type(a) != type(b):
        bad.append('%s: qemu %r, mimg %r' % (path, a, b))
def cmp_check(q, m, bad):
    bad += ['check key %s: qemu %r, mimg %r' % (k, q[k], m.get(k))
            for k in q if q[k] != m.get(k)]
    bad += ['check key %s: qemu None, mimg %r' % (k, m[k])
            for k in m if k not in q]
def cmp_fs(a, b, bad):
    for d in (a, b):
        for k in ('filename', 'actual-size'):
            d.pop(k, None)
        fs = d.get('format-specific', {}).get('data', {})
        if 'data-file' in fs:
            fs['data-file'] = 'DATA'
    if a != b:
        bad.append('mimg: %s\nqemu: %s' % (json.dumps(a, sort_keys=True),
                                           json.dumps(b, sort_keys=True)))
failed = 0
for line in open(sys.argv[1]):
    kind, qf, mf, what = line.rstrip('\n').split('\t')
    q, m = json.load(open(qf)), json.load(open(mf))
    bad = []
    if kind == 'info':
        cmp_info(q, m, '', bad)
    elif kind == 'check':
        cmp_check(q, m, bad)
    else:
        cmp_fs(m, q, bad)
    for b in bad:
        print('%s %s: %s' % (kind, what, b), file=sys.stderr)
    failed += bool(bad)
sys.exit(1 if failed else 0)
PY
	: >"$JSON_QUEUE"
}

# At exit, a test that passed so far still makes its queued comparisons.
json_checks_at_exit() {
	_st=$?
	if [ "$_st" = 0 ]; then
		(json_checks) || _st=1
	fi
	rm -rf "$T"
	exit "$_st"
}

# same_info IMG [extra args]: every key qemu-img info prints (JSON) is
# printed by mimg info with the same value (queued for json_checks).
same_info() {
	_img=$1
	info_both "$@"
	shift
	json_queue info info.q.json info.m.json "$_img $*"
}

# same_check IMG: mimg check gives qemu-img check's exit status and JSON
# (the JSON compared by json_checks).
same_check() {
	qemu-img check -f qcow2 --output=json "$1" >check.q.json 2>check.q.err
	_qs=$?
	"$MIMG" check -f qcow2 --output json "$1" >check.m.json 2>check.m.err
	_ms=$?
	[ "$_qs" = "$_ms" ] || {
		cat check.q.json check.m.json check.m.err >&2
		fail "check $1: qemu-img exits $_qs, mimg $_ms ${2:-}"
	}
	[ "$_qs" = 1 ] && return 0
	json_queue check check.q.json check.m.json "$1 ${2:-}"
}

# A 4 MiB raw file with data, zero runs and holes, for writing tests.
make_pattern_raw() {
	qemu-img create -q -f raw "$1" 4M
	qio "$1" raw "write -P 0x11 0 64k" "write -P 0x22 100k 3k" \
		"write -P 0x33 1M 512" "write -P 0x44 2M 512k" \
		"write -P 0 2200k 64k" "write -P 0x55 3M 100k"
	# Some incompressible bytes too.
	python3 -c 'import random, sys
random.seed(7)
with open(sys.argv[1], "r+b") as f:
    f.seek(50 * 65536)
    f.write(bytes(random.getrandbits(8) for _ in range(65536)))' "$1"
}
