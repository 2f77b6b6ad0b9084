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
. "$here/inspector-lib.sh"
find_inspectors
if [ ! -s inspectors.txt ]; then
	echo "SKIP: no OpenStack format inspector (oslo.utils, or Nova's or" \
	     "Glance's with oslo.log and oslo.utils)"
	exit 77
fi

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
