#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The fuzz corpus read by qemu-img and by mimg.  Where both open a
# qcow2, VDI, VHD, VMDK, VHDX, Parallels, DMG, qcow (version 1), QED,
# Bochs or cloop image of it and both read the whole of it, they must
# give the same size, the same bytes and the same map (images too large
# to read whole: the same map).  VHDX inputs are decoded into the images
# the fuzz target reads; qemu-img maps a VHDX or DMG as all data, so
# their maps are not compared.  The corpus holds the odd images no hand-made test has:
# unusual header fields, short tables, compressed clusters and grains,
# subclusters, sizes that are not whole sectors.  An image one tool
# refuses is counted, not judged (mimg is stricter than qemu on purpose:
# it refuses reserved bits and tables past the end of the file, which
# qemu reads as zeroes).  Images that name other files (a backing file,
# a data file, extents) are not read: qemu-img would follow the names.
# Prints what happened to the images of each format; fails on a
# disagreement, on a crash of mimg, or when too few images were compared.
#
# Internal: "corpus-qemu-agree.sh one FMT FILE" judges one image (run in
# parallel by the main part) and prints "FMT OUTCOME FILE [DETAIL]".
set -u

# Images larger than this are opened but not read whole.
MAX_READ=$((256 << 20))

one() {
	fmt=$1 src=$2 name=${2##*/}
	d=$(mktemp -d "$WORK/one-XXXXXX") || exit 1
	cd "$d" || exit 1
	# A VHDX input describes a sparse file (fuzz/vhdx-seed.py).
	if [ "$fmt" = vhdx ]; then
		python3 "$CORPUS/../vhdx-seed.py" -d "$src" img || exit 1
	else
		cp "$src" img
	fi
	chmod 600 img
	timeout 30 qemu-img info -U -f "$fmt" --output=json img >q.json \
		2>/dev/null
	qr=$?
	timeout 30 "$MIMG" info -U -f "$fmt" --output=json img >m.json \
		2>m.err
	mr=$?
	out() { echo "$fmt $1 $name${2:+ $2}"; cd "$WORK" && rm -rf "$d"; }
	[ "$mr" -ge 128 ] && [ "$mr" -ne 137 ] &&
		{ out MIMG-CRASH "info: status $mr"; return; }
	[ "$qr" -ne 0 ] && [ "$mr" -ne 0 ] && { out both-refuse; return; }
	[ "$qr" -ne 0 ] && { out qemu-refuses; return; }
	[ "$mr" -ne 0 ] && { out mimg-refuses; return; }
	vsize() { sed -n 's/^    "virtual-size": \([0-9]*\),*$/\1/p' "$1"; }
	qs=$(vsize q.json) ms=$(vsize m.json)
	[ "$qs" = "$ms" ] ||
		{ out SIZE-DIFFERS "qemu-img $qs, mimg $ms"; return; }
	if grep -Eq '"(backing-filename|full-backing-filename|data-file)"' \
		q.json || grep '"filename": ' q.json |
		grep -vq '"filename": "img"'; then
		out names-files
		return
	fi
	if [ "$qs" -gt "$MAX_READ" ]; then
		# qemu-img maps a VHDX or DMG as all data: nothing to compare
		case $fmt in vhdx | dmg) out too-large; return ;; esac
		same_map && out map-same-too-large
		return
	fi
	timeout 60 qemu-img convert -U -f "$fmt" -O raw img q.raw \
		2>/dev/null
	qr=$?
	timeout 60 "$MIMG" convert -U -f "$fmt" -O raw img m.raw 2>m.err
	mr=$?
	[ "$mr" -ge 128 ] && [ "$mr" -ne 137 ] &&
		{ out MIMG-CRASH "convert: status $mr"; return; }
	[ "$qr" -ne 0 ] && [ "$mr" -ne 0 ] && { out both-fail-reading; return; }
	[ "$qr" -ne 0 ] && { out qemu-fails-reading; return; }
	[ "$mr" -ne 0 ] && { out mimg-fails-reading; return; }
	cmp -s q.raw m.raw ||
		{ out DATA-DIFFERS "$(cmp q.raw m.raw 2>&1 | head -1)"; return; }
	case $fmt in vhdx | dmg) out same; return ;; esac
	same_map && out same
}

# The same allocation, zeroes and host offsets (and exit status); else
# prints the outcome and fails (where either tool fails: counted only).
same_map() {
	timeout 60 qemu-img map -U -f "$fmt" --output=json img >q.map \
		2>/dev/null
	qr=$?
	timeout 60 "$MIMG" map -U -f "$fmt" --output=json img >m.map \
		2>/dev/null
	mr=$?
	[ "$mr" -ge 128 ] && [ "$mr" -ne 137 ] &&
		{ out MIMG-CRASH "map: status $mr"; return 1; }
	[ "$qr" -ne 0 ] && [ "$mr" -ne 0 ] &&
		{ out both-fail-mapping; return 1; }
	[ "$qr" -ne 0 ] && { out qemu-fails-mapping; return 1; }
	[ "$mr" -ne 0 ] && { out mimg-fails-mapping; return 1; }
	cmp -s q.map m.map && return 0
	out MAP-DIFFERS "$(diff q.map m.map | sed -n 2p)"
	return 1
}

if [ "${1:-}" = one ]; then
	one "$2" "$3"
	exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
need qemu-img cmp timeout xargs python3
corpus=$here/../../fuzz/corpus
[ -d "$corpus/qcow2" ] || fail "no fuzz corpus at $corpus"
WORK=$T CORPUS=$corpus
export MIMG WORK CORPUS

# VMDK: the binary sparse extents (their embedded descriptor names the
# file itself); a text descriptor always names other files.
mkdir vmdk-sparse
for f in "$corpus"/vmdk/*; do
	[ "$(head -c 4 "$f")" = KDMV ] && ln -s "$f" vmdk-sparse/
done

for fmt in qcow2 vdi vpc vmdk vhdx parallels dmg qcow qed bochs cloop; do
	dir=$corpus/$fmt
	[ "$fmt" = vmdk ] && dir=$T/vmdk-sparse
	need_format "$fmt"
	ls "$dir" | sed "s|^|$dir/|" |
		xargs -P "$(nproc)" -n 1 sh "$0" one "$fmt" >>results
done

echo "outcomes (format, outcome, images):"
awk '{print $1, $2}' results | sort | uniq -c |
	awk '{printf "  %-6s %-20s %5d\n", $2, $3, $1}'
bad=$(grep -E ' (SIZE|DATA|MAP)-DIFFERS |MIMG-CRASH ' results)
[ -z "$bad" ] || fail "qemu-img and mimg disagree:
$bad"
# The comparison means something only over enough images of each format
# (the corpus has about 160 qcow2, 45 VDI, 20 VHD, 15 VMDK, 15 VHDX,
# 20 Parallels, 8 DMG, 14 qcow, 25 QED, 12 Bochs, 8 cloop that both
# read).
for fmt in qcow2:100 vdi:25 vpc:10 vmdk:8 vhdx:10 parallels:15 dmg:6 qcow:10 \
	qed:15 bochs:8 cloop:5; do
	n=$(grep -c "^${fmt%%:*} same " results)
	[ "$n" -ge "${fmt#*:}" ] ||
		fail "$fmt: only $n images read by both (at least ${fmt#*:})"
done
echo "PASS: $(grep -c ' same ' results) images read the same by both"
