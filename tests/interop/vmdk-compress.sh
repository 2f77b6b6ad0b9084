#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# convert -c -O vmdk does what qemu-img 7.2 does for every subformat:
# streamOptimized is compressed; monolithicSparse and twoGbMaxExtentSparse
# succeed with plain grains (the same allocation as without -c); flat
# subformats fail with "invalid cluster size" (and mimg leaves no file).
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/vmdk-lib.sh"

make_raw src.raw 4

# alloc IMG: qemu-img's map without host offsets.
alloc() {
	qemu-img map -f vmdk --output=json "$1" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    e.pop("offset", None)
    print(e)'
}

n=0
for sf in monolithicSparse twoGbMaxExtentSparse streamOptimized \
	  monolithicFlat twoGbMaxExtentFlat; do
	rm -f q*.vmdk m*.vmdk
	qemu-img convert -c -f raw -O vmdk -o subformat=$sf src.raw q.vmdk \
		2>q.err
	qrc=$?
	"$MIMG" convert -c -f raw -O vmdk -o subformat=$sf src.raw m.vmdk \
		2>m.err
	mrc=$?
	check_eq "$mrc" "$qrc" "exit status of convert -c ($sf)"
	if [ "$qrc" -ne 0 ]; then
		grep -q "invalid cluster size" q.err ||
			fail "qemu-img's reason changed: $(cat q.err)"
		grep -q "invalid cluster size" m.err ||
			fail "mimg's reason ($sf): $(cat m.err)"
		ls m*.vmdk >/dev/null 2>&1 && fail "mimg left files ($sf)"
		n=$((n + 1))
		continue
	fi
	qemu_accepts m.vmdk src.raw "(convert -c, $sf)"
	qemu-img info --output=json q.vmdk >q.json
	qemu-img info --output=json m.vmdk >m.json
	check_eq "$(json_get m.json format-specific.data.extents.0.compressed 2>/dev/null || echo false)" \
		"$(json_get q.json format-specific.data.extents.0.compressed 2>/dev/null || echo false)" \
		"compressed extents ($sf)"
	if [ $sf != streamOptimized ]; then
		# Plain grains where qemu-img puts them: the same as -c-less.
		alloc q.vmdk >q.map
		alloc m.vmdk >m.map
		cmp -s q.map m.map || fail "allocation differs from qemu-img's ($sf)"
		"$MIMG" convert -f raw -O vmdk -o subformat=$sf src.raw p.vmdk ||
			fail "convert without -c ($sf)"
		alloc p.vmdk >p.map
		cmp -s p.map m.map || fail "-c changed the allocation ($sf)"
		rm -f p*.vmdk
	fi
	n=$((n + 1))
done
echo "ok: convert -c -O vmdk behaves as qemu-img for $n subformats"
