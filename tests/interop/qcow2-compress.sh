#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg convert -c writes compressed qcow2 (zlib and zstd, several cluster
# sizes) that qemu-img checks clean, reads identically and counts as
# compressed; incompressible clusters are stored plainly.  mimg reads
# qemu-img's own compressed images.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/qcow2-lib.sh"

make_pattern_raw pat.raw
# Text compresses well; add some so that most clusters shrink.
python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1536 * 1024)
    f.write(b"".join(b"line %d of some compressible text\n" % i for i in range(12000)))' pat.raw

for ct in zlib zstd; do
	for cs in 4k 64k 2M; do
		rm -f c.qcow2 q.qcow2
		o=compression_type=$ct,cluster_size=$cs
		"$MIMG" convert -c -f raw -O qcow2 -o "$o" pat.raw c.qcow2 ||
			fail "mimg convert -c -o $o"
		qemu-img check -f qcow2 --output=json c.qcow2 >chk.json 2>&1 ||
			{ cat chk.json >&2; fail "qemu-img check after convert -c -o $o"; }
		compressed=$(json_get chk.json compressed-clusters 2>/dev/null || echo 0)
		[ "$compressed" -gt 0 ] ||
			fail "convert -c -o $o: qemu-img sees no compressed clusters"
		qemu-img info --output=json c.qcow2 >info.json
		check_eq "$(json_get info.json format-specific.data.compression-type)" \
			$ct "compression type recorded ($o)"
		qemu-img compare -f raw -F qcow2 pat.raw c.qcow2 >cmp.out 2>&1 ||
			{ cat cmp.out >&2; fail "convert -c -o $o: qemu-img reads other data"; }
		same_content c.qcow2 qcow2 "(mimg convert -c -o $o)"
		same_check c.qcow2 "(mimg convert -c -o $o)"

		# Same image made by qemu-img, read by mimg.
		qemu-img convert -c -f raw -O qcow2 -o "$o" pat.raw q.qcow2
		same_content q.qcow2 qcow2 "(qemu-img convert -c -o $o)"
		# Compression must not be much worse than qemu-img's (in
		# allocated KiB: the file length may be padded sparsely).
		ms=$(du -k c.qcow2 | cut -f1) qs=$(du -k q.qcow2 | cut -f1)
		[ "$ms" -le $((qs + qs / 10 + 64)) ] ||
			fail "convert -c -o $o: mimg uses $ms KiB, qemu-img $qs KiB"
	done
done

# Compressed image as a base, overwritten in an overlay and in place.
"$MIMG" convert -c -O qcow2 -o compression_type=zstd pat.raw cb.qcow2 ||
	fail "mimg convert -c zstd"
qemu-img create -q -f qcow2 -b cb.qcow2 -F qcow2 ov.qcow2
qio ov.qcow2 qcow2 "write -P 0x70 1600k 3k"
same_content ov.qcow2
qio cb.qcow2 qcow2 "write -P 0x71 1601k 5k" "write -z 0 4k"
qemu_clean cb.qcow2 "(qemu overwrote a mimg compressed image)"
same_content cb.qcow2 qcow2 "(compressed clusters overwritten by qemu)"
echo "ok: compressed qcow2 both ways"
