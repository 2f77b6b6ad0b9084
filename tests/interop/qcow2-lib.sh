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

# qemu_clean IMG: qemu-img check must find nothing at all.
qemu_clean() {
	qemu-img check -f qcow2 "$1" >check.out 2>&1
	_st=$?
	[ $_st = 0 ] || { cat check.out >&2; fail "qemu-img check $1 (exit $_st) ${2:-}"; }
}

# same_content IMG [FMT [what]]: mimg reads IMG (through its backing
# chain) as the same bytes as qemu-img does.
same_content() {
	same_read "${2:-qcow2}" "$1" "${3:-}"
}

# same_info IMG [extra args]: every key qemu-img info prints (JSON) is
# printed by mimg info with the same value; actual-size may differ by less
# than a page (it is sampled at a different moment).
same_info() {
	_img=$1
	info_both "$@"
	shift
	python3 - info.q.json info.m.json "$_img $*" <<'PY' || fail "info JSON of $_img differs"
import json, sys
q = json.load(open(sys.argv[1]))
m = json.load(open(sys.argv[2]))
what = sys.argv[3]
bad = []
def cmp(a, b, path):
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
                cmp(a[k], b[k], path + '.' + k)
    elif isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            bad.append('%s: qemu %r, mimg %r' % (path, a, b)); return
        for i, (x, y) in enumerate(zip(a, b)):
            cmp(x, y, '%s[%d]' % (path, i))
    elif a != b or type(a) != type(b):
        bad.append('%s: qemu %r, mimg %r' % (path, a, b))
cmp(q, m, '')
for b in bad:
    print('info %s: %s' % (what, b), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# same_check IMG: mimg check gives qemu-img check's exit status and JSON.
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
	python3 - check.q.json check.m.json <<'PY' || fail "check JSON of $1 differs ${2:-}"
import json, sys
q = json.load(open(sys.argv[1])); m = json.load(open(sys.argv[2]))
bad = [(k, q[k], m.get(k)) for k in q if q[k] != m.get(k)]
bad += [(k, None, m[k]) for k in m if k not in q]
for k, a, b in bad:
    print('check key %s: qemu %r, mimg %r' % (k, a, b), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
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
