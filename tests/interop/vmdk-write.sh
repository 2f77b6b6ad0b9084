#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# VMDKs made by mimg (create, convert -O vmdk with every subformat and
# option) pass qemu-img check and read in qemu as the source did; created
# images are byte for byte what qemu-img creates, except the random CIDs,
# and so are the descriptors convert writes (padded to a sector when the
# first write renews the CID).
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/vmdk-lib.sh"

make_raw src.raw 4

# same_vmdk WHAT QEMU_FILE MIMG_FILE: equal except for the random CID and
# the image's own name (m.vmdk for q.vmdk) in the descriptor.  WHAT is
# "file": the whole file; or "desc": the descriptor (the header and the
# embedded descriptor, or a descriptor file and its size: NUL padding).
same_vmdk() {
	python3 - "$@" <<'PY'
import re, sys
def norm(what, path, me):
    d = open(path, 'rb').read()
    def text(t):
        # The text ends at its first NUL: qemu renews the CID in place
        # with %x, so a shorter CID leaves stale bytes after the NUL.
        t = re.sub(rb'(?m)^CID=[0-9a-f]+', b'CID=x', t.split(b'\0')[0])
        for sep in (b'.', b'-'):
            t = t.replace(b'"' + me + sep, b'"NAME' + sep)
        return t
    if d[:4] == b'KDMV':
        # header, descriptor area (sectors 1-20), the rest
        parts = d[:512], text(d[512:21 * 512]), d[21 * 512:]
        return parts if what == 'file' else parts[:2]
    return (text(d),) if what == 'file' else (text(d), len(d))
what = sys.argv[1]
if norm(what, sys.argv[2], b'q') != norm(what, sys.argv[3], b'm'):
    sys.exit(1)
PY
}

n=0
for opts in $VMDK_VARIANTS \
	subformat=monolithicFlat,preallocation=falloc
do
	n=$((n + 1))
	rm -f m*.vmdk q*.vmdk
	"$MIMG" convert -O vmdk -o "$opts" src.raw m.vmdk ||
		fail "mimg convert -o $opts"
	qemu_accepts m.vmdk src.raw "($opts)"
	same_map m.vmdk "($opts)"
	rm -f q*.vmdk
	qemu-img convert -f raw -O vmdk -o "$opts" src.raw q.vmdk ||
		fail "qemu-img convert -o $opts"
	same_vmdk desc q.vmdk m.vmdk ||
		fail "convert: descriptor of m.vmdk differs from qemu-img's ($opts)"

	# create: the same files as qemu-img's.
	rm -f m*.vmdk
	size=3G	# two extents when split
	case $opts in *prealloc*) size=8M ;; esac
	"$MIMG" create -q -f vmdk -o "$opts" m.vmdk $size ||
		fail "mimg create -o $opts"
	qemu-img create -q -f vmdk -o "$opts" q.vmdk $size
	for q in q*.vmdk; do
		m=m${q#q}
		[ -f "$m" ] || fail "mimg did not create $m ($opts)"
		qs=$(wc -c <"$q") ms=$(wc -c <"$m")
		# Flat extents (GiBs of holes): the size is what there is.
		if [ "$qs" -gt 1048576 ]; then
			[ "$qs" = "$ms" ] ||
				fail "$m has $ms bytes, qemu's $q $qs ($opts)"
			continue
		fi
		same_vmdk file "$q" "$m" ||
			fail "$m differs from qemu-img's $q ($opts)"
	done
	[ "$(ls m*.vmdk | wc -l)" = "$(ls q*.vmdk | wc -l)" ] ||
		fail "different number of files ($opts)"
done

# streamOptimized: VMware's layout with the fields ESXi/OVF import wants;
# qemu reads it; mimg reads it back.
for opts in "" ",adapter_type=lsilogic,hwversion=14,toolsversion=12345"; do
	rm -f s.vmdk
	"$MIMG" convert -O vmdk -o "subformat=streamOptimized$opts" src.raw s.vmdk ||
		fail "mimg convert to streamOptimized$opts"
	qemu_accepts s.vmdk src.raw "(streamOptimized$opts)"
	"$MIMG" convert -O raw s.vmdk back.raw && cmp src.raw back.raw ||
		fail "streamOptimized read back"
	"$MIMG" check s.vmdk >/dev/null || fail "mimg check s.vmdk"
	head -c 4096 s.vmdk | tr -d '\0' >desc.txt
	for key in 'createType="streamOptimized"' 'encoding="UTF-8"' \
		ddb.virtualHWVersion ddb.adapterType ddb.geometry.cylinders \
		ddb.geometry.heads ddb.geometry.sectors ddb.toolsInstallType \
		ddb.toolsVersion ddb.longContentID; do
		grep -q "$key" desc.txt || fail "stream descriptor lacks $key"
	done
	case $opts in *lsilogic*)
		grep -q 'ddb.virtualHWVersion = "14"' desc.txt &&
		grep -q 'ddb.toolsVersion = "12345"' desc.txt &&
		grep -q 'ddb.adapterType = "lsilogic"' desc.txt ||
			fail "stream descriptor options" ;;
	esac
	qemu-img info --output=json s.vmdk >s.json
	[ "$(json_get s.json format-specific.data.create-type)" = streamOptimized ] &&
	[ "$(json_get s.json format-specific.data.extents.0.compressed)" = true ] ||
		fail "qemu-img info of the stream"
done
# convert -c is accepted for the stream (it always compresses) ...
rm -f s.vmdk
"$MIMG" convert -c -O vmdk -o subformat=streamOptimized src.raw s.vmdk &&
	qemu_accepts s.vmdk src.raw "(convert -c)" || fail "convert -c to stream"

# Bad options are refused with qemu-img's reasons.
"$MIMG" create -q -f vmdk -o compat6=on,hwversion=7 x.vmdk 1M 2>err.txt &&
	fail "compat6 with hwversion accepted"
grep -q "compat6" err.txt || fail "compat6 message: $(cat err.txt)"
"$MIMG" create -q -f vmdk -o adapter_type=scsi x.vmdk 1M 2>err.txt &&
	fail "adapter_type=scsi accepted"
grep -q "x.vmdk: invalid parameter value: scsi" err.txt ||
	fail "adapter message (qemu-img's words): $(cat err.txt)"
"$MIMG" create -q -f vmdk -o subformat=vmfsSparse x.vmdk 1M 2>err.txt &&
	fail "unknown subformat accepted"
"$MIMG" create -q -f vmdk 'quo"te.vmdk' 1M 2>err.txt &&
	fail "a file name that breaks the descriptor accepted"
"$MIMG" create -q -f vmdk -o toolsversion='1"x' x.vmdk 1M 2>err.txt &&
	fail "an option value that breaks the descriptor accepted"
echo "ok: $n option sets written compatibly, streamOptimized accepted by qemu"
