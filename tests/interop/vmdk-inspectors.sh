#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The VMDKs mimg writes pass the image inspectors that OpenStack runs on
# uploads (the CVE-2024-32498 checks): detected as vmdk, with the right
# virtual size, safety checks passing, as qemu-img's own files do.  The
# inspectors are run unmodified: oslo.utils' format_inspector where it is
# installed, Debian 12's Nova and Glance copies (installed, or unpacked
# from their .deb into a cache with `apt-get download`), or a file named
# by $MIMG_FORMAT_INSPECTOR.  Skips when none can be had.
# The streamOptimized layout is also compared field by field with
# qemu-img's, and qemu-img checks, compares and describes mimg's files.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/vmdk-lib.sh"

# Debian's Python has the distribution's modules (oslo_log, oslo_utils).
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

cache=${MIMG_INSPECTOR_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mimg-inspectors}

# Unpack FILE (a path inside the package) of Debian package PKG into the
# cache; prints its path.
from_deb() {
	_pkg=$1 _file=$2
	if [ -s "$cache/$_pkg/$_file" ]; then
		echo "$cache/$_pkg/$_file"
		return 0
	fi
	command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 ||
		return 1
	mkdir -p "$cache" 2>/dev/null || return 1
	_dl=$(mktemp -d "$cache/dl-XXXXXX") || return 1
	chmod 777 "$_dl" 2>/dev/null	# apt downloads as _apt
	if (cd "$_dl" && apt-get -q download "$_pkg" >/dev/null 2>&1) &&
	   dpkg -x "$_dl"/*.deb "$_dl/x" 2>/dev/null &&
	   [ -s "$_dl/x/$_file" ]; then
		mkdir -p "$cache/$_pkg/$(dirname "$_file")" &&
			mv "$_dl/x/$_file" "$cache/$_pkg/$_file"
	fi
	rm -rf "$_dl"
	[ -s "$cache/$_pkg/$_file" ] && echo "$cache/$_pkg/$_file"
}

# Each inspector is a line "NAME SOURCE": SOURCE is a file path or the
# module name oslo_utils.imageutils.format_inspector.
: >inspectors.txt
add() {
	# Only an inspector whose imports resolve is usable.
	"$PY" - "$2" >/dev/null 2>&1 <<'PY' && echo "$1 $2" >>inspectors.txt
import importlib, importlib.util, sys
src = sys.argv[1]
if src.endswith('.py'):
    spec = importlib.util.spec_from_file_location('format_inspector', src)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
else:
    importlib.import_module(src)
PY
}
[ -n "${MIMG_FORMAT_INSPECTOR:-}" ] && add env "$MIMG_FORMAT_INSPECTOR"
add oslo.utils oslo_utils.imageutils.format_inspector
dp=/usr/lib/python3/dist-packages
for spec in "nova python3-nova nova/image/format_inspector.py" \
	    "glance python3-glance glance/common/format_inspector.py"; do
	set -- $spec
	if [ -s "$dp/$3" ]; then
		add "$1" "$dp/$3"
	elif f=$(from_deb "$2" "usr/lib/python3/dist-packages/$3"); then
		add "$1" "$f"
	fi
done
if [ ! -s inspectors.txt ]; then
	echo "SKIP: no OpenStack format inspector (oslo.utils, or Nova's or" \
	     "Glance's with oslo.log and oslo.utils)"
	exit 77
fi

# inspect SOURCE IMG...: one line per image: "FORMAT VIRTUAL_SIZE SAFE"
# or "FORMAT VIRTUAL_SIZE UNSAFE: reason".  Older inspectors return the
# safety verdict, newer ones raise.
cat >run_inspector.py <<'PY'
import importlib, importlib.util, logging, sys
logging.disable(logging.CRITICAL)
src = sys.argv[1]
if src.endswith('.py'):
    spec = importlib.util.spec_from_file_location('format_inspector', src)
    fi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fi)
else:
    fi = importlib.import_module(src)
for path in sys.argv[2:]:
    insp = fi.detect_file_format(path)
    name = getattr(insp, 'NAME', None) or str(insp)
    try:
        ok = insp.safety_check()
        verdict = 'SAFE' if ok is None or ok is True else 'UNSAFE: False'
    except Exception as e:
        verdict = 'UNSAFE: %s' % e
    print(name, insp.virtual_size, verdict)
PY

make_raw src.raw 5
size=$(stat -c %s src.raw)
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw q-stream.vmdk
qemu-img convert -f raw -O vmdk src.raw q-sparse.vmdk
"$MIMG" convert -f raw -O vmdk -o subformat=streamOptimized src.raw m-stream.vmdk ||
	fail "mimg convert to streamOptimized"
"$MIMG" convert -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic,hwversion=14 \
	src.raw m-stream2.vmdk || fail "mimg convert to streamOptimized (options)"
"$MIMG" convert -c -f raw -O vmdk -o subformat=streamOptimized src.raw m-stream3.vmdk ||
	fail "mimg convert -c to streamOptimized"
"$MIMG" convert -f raw -O vmdk src.raw m-sparse.vmdk || fail "mimg convert to vmdk"
"$MIMG" create -q -f vmdk -o subformat=streamOptimized m-empty.vmdk 1G ||
	fail "mimg create streamOptimized"
for f in m-stream.vmdk m-stream2.vmdk m-stream3.vmdk m-sparse.vmdk; do
	qemu_accepts "$f" src.raw "($f)"
done
qemu-img check -f vmdk m-empty.vmdk >/dev/null || fail "qemu-img check m-empty.vmdk"

n=0
while read -r name src_; do
	"$PY" run_inspector.py "$src_" q-stream.vmdk q-sparse.vmdk m-stream.vmdk \
		m-stream2.vmdk m-stream3.vmdk m-sparse.vmdk m-empty.vmdk \
		>verdicts.txt 2>inspect.err ||
		{ cat inspect.err >&2; fail "$name inspector failed to run"; }
	i=0
	for f in q-stream q-sparse m-stream m-stream2 m-stream3 m-sparse m-empty; do
		i=$((i + 1))
		want="vmdk $size SAFE"
		[ $f = m-empty ] && want="vmdk 1073741824 SAFE"
		got=$(sed -n "${i}p" verdicts.txt)
		[ "$got" = "$want" ] ||
			fail "$name inspector on $f.vmdk: '$got', expected '$want'"
	done
	n=$((n + 1))
	echo "$name: $(wc -l <verdicts.txt) images accepted as vmdk, safety checks pass"
done <inspectors.txt

# The stream's header against qemu-img's: the same fields, except that
# mimg (like VMware's open-vmdk) keeps no redundant directory.
"$PY" - q-stream.vmdk m-stream.vmdk <<'PY' || fail "stream header differs from qemu-img's"
import struct, sys
def hdr(path):
    d = open(path, 'rb').read()
    f = struct.unpack_from('<4sIIQQQQIQQQB4sH', d, 0)
    keys = ('magic', 'version', 'flags', 'capacity', 'grain', 'desc_offset',
            'desc_size', 'gtes', 'rgd', 'gd', 'overhead', 'unclean', 'nl',
            'compress')
    h = dict(zip(keys, f))
    # every directory entry points at a table before the first grain
    n = -(-h['capacity'] // (h['grain'] * h['gtes']))
    gd = struct.unpack_from('<%dI' % n, d, h['gd'] * 512)
    h['tables_before_grains'] = all(0 < e and e + h['gtes'] * 4 // 512
                                    <= h['overhead'] for e in gd)
    h['ends_with_eos'] = d[-512:] == bytes(512)
    return h
q, m = hdr(sys.argv[1]), hdr(sys.argv[2])
# qemu-img: flags 0x30003, a redundant directory at 21, GD at 26; no
# end-of-stream marker.  mimg: flags 0x30001, GD at 21, EOS marker.
assert q['flags'] == m['flags'] | 2 and m['flags'] == 0x30001, (q, m)
assert m['rgd'] == 0 and m['gd'] == 21, m
for k in ('magic', 'version', 'capacity', 'grain', 'desc_offset',
          'desc_size', 'gtes', 'overhead', 'unclean', 'nl', 'compress',
          'tables_before_grains'):
    assert q[k] == m[k], (k, q[k], m[k])
assert m['ends_with_eos'], 'no end-of-stream marker'
PY

# qemu-img info describes mimg's stream as it describes its own.
for f in q-stream m-stream; do
	qemu-img info --output=json $f.vmdk >$f.json || fail "qemu-img info $f"
done
for k in virtual-size format format-specific.data.create-type \
	 format-specific.data.extents.0.compressed \
	 format-specific.data.extents.0.cluster-size; do
	check_eq "$(json_get m-stream.json $k)" "$(json_get q-stream.json $k)" \
		"qemu-img info $k"
done
echo "ok: $n inspector(s) accept mimg's VMDKs; stream layout matches qemu-img's"
