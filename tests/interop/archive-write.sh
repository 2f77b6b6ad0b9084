#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# convert -O raw into NAME.xz, NAME.zst or NAME.gz (or with
# --output-compression) writes one compressed stream that the real xz,
# zstd and gzip test and unpack to the source's content (cmp), declaring
# the size it unpacks to, so that mimg streams it back with no temporary
# file.  Several sources are concatenated, as for raw output; a failed
# conversion leaves nothing; the option is refused where it cannot apply.
. "$TESTLIB"
need qemu-img qemu-io xz zstd gzip cmp

qemu-img create -q -f raw a.raw 24M
qemu-io -f raw -c "write -P 0xab 1M 3M" -c "write -P 0x5c 23M 1M" a.raw \
	>/dev/null || fail "qemu-io"
head -c 2M /dev/urandom > b.raw
qemu-img convert -f raw -O qcow2 a.raw a.qcow2
cat a.raw b.raw > ab.raw

for c in xz:xz zst:zstd gz:gzip; do
	ext=${c%%:*} tool=${c#*:}
	rm -f "out.raw.$ext"
	"$MIMG" convert -O raw a.qcow2 "out.raw.$ext" || fail "convert to .$ext"
	"$tool" -t "out.raw.$ext" || fail "$tool -t out.raw.$ext"
	"$tool" -dc "out.raw.$ext" | cmp - a.raw || fail ".$ext content"
	# two sources, the codec named by option whatever the name
	"$MIMG" convert --output-compression "$tool" a.raw b.raw "two.$tool" ||
		fail "--output-compression $tool"
	"$tool" -t "two.$tool" || fail "$tool -t two.$tool"
	"$tool" -dc "two.$tool" | cmp - ab.raw || fail "$tool: two sources"
done
# the declared sizes
xz -l --robot out.raw.xz | awk '$1 == "totals" { print $5 }' > xz.size
check_eq "$(cat xz.size)" 25165824 "xz index: unpacked size"
zstd -lv out.raw.zst 2>&1 | grep -q "Decompressed Size:.*(25165824 B)" ||
	fail "zstd frame header lacks the size: $(zstd -lv out.raw.zst 2>&1)"
check_eq "$(gzip -l out.raw.gz | awk 'NR == 2 { print $2 }')" 25165824 \
	"gzip ISIZE"
# mimg streams what it wrote (TMPDIR does not exist)
for f in out.raw.xz out.raw.zst; do
	TMPDIR=$T/missing "$MIMG" convert -O raw "$f" back.raw ||
		fail "$f not streamed back"
	cmp back.raw a.raw || fail "$f read back"
done
# a level, and none: the name does not matter then
"$MIMG" convert --compression-level 1 -O raw a.raw l1.xz || fail "level 1"
xz -dc l1.xz | cmp - a.raw || fail "level 1 content"
"$MIMG" convert --output-compression none -O raw a.raw plain.gz ||
	fail "--output-compression none"
cmp plain.gz a.raw || fail "none: not the raw image"

refused() { # WHY OUT ARGS...
	why=$1 out=$2
	shift 2
	"$MIMG" convert "$@" "$out" 2>err.txt && fail "accepted: $* $out"
	grep -q "$why" err.txt || fail "$*: message lacks '$why': $(cat err.txt)"
	[ ! -e "$out" ] || fail "$*: $out left behind"
}
refused "needs -O raw" x.qcow2 -O qcow2 --output-compression xz a.raw
refused "is not xz, zstd, gzip or none" x.bz2 --output-compression bzip2 a.raw
refused "takes levels 1 to 9" x.gz --compression-level 12 a.raw
head -c 4M /dev/urandom > r.raw
zstd -q r.raw
head -c 3M r.raw.zst > cut.zst
refused "Truncated zstd input" cut.raw.xz -O raw cut.zst
echo "archive-write: ok"
