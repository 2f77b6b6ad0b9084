#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Images inside compressed files and tar archives: raw and qcow2 images
# compressed with xz, zstd, gzip, bzip2 and lz4, and a tar.gz holding
# disk.raw, are read by info, convert, compare, map, check, measure,
# checksum and dd; what
# convert writes is what qemu-img compare calls identical to the
# original.  Nothing is left in $TMPDIR.  Hostile archives (links, two
# disk images, ".." names, truncated data, a decompression bomb, too many
# members) fail cleanly and create no file.
. "$TESTLIB"
need qemu-img qemu-io python3 tar xz zstd gzip bzip2

mkdir tmp
TMPDIR=$T/tmp
export TMPDIR

# 16 MiB with three data runs, holes and a zero-filled range.
qemu-img create -q -f raw disk.raw 16M
qemu-io -f raw -c "write -P 0xab 1M 3M" -c "write -P 0 8M 1M" \
	-c "write -P 0x5c 12M 100k" -c "write -P 0x77 15M 1M" disk.raw \
	>/dev/null || fail "qemu-io"
qemu-img convert -f raw -O qcow2 disk.raw disk.qcow2 || fail "qemu-img"

# libarchive (and the libxml2 it brings) and libcrypto are loaded when a
# file may be compressed or a tar and when a digest is made, not at every
# start.
LD_DEBUG=files "$MIMG" info disk.qcow2 2>ld.txt >/dev/null
! grep -Eq "file=lib(archive|xml2|crypto)" ld.txt ||
	fail "mimg loads libarchive, libxml2 or libcrypto for a plain qcow2"
gzip -k -c disk.qcow2 >ld.qcow2.gz
LD_DEBUG=files "$MIMG" info ld.qcow2.gz 2>ld.txt >/dev/null ||
	fail "info ld.qcow2.gz"
grep -q "file=libarchive" ld.txt || fail "the loader did not report libarchive"
LD_DEBUG=files "$MIMG" checksum disk.qcow2 2>ld.txt >/dev/null ||
	fail "checksum disk.qcow2"
grep -q "file=libcrypto" ld.txt || fail "the loader did not report libcrypto"
rm ld.qcow2.gz ld.txt

left_in_tmp() {
	[ -z "$(ls -A tmp)" ] || fail "files left in TMPDIR: $(ls -A tmp)"
}

# summary INFO MAP: "format size compression member|data runs" in one
# python run (its start-up is the slow part of this test).
summary() {
	python3 -c 'import json,sys
i = json.load(open(sys.argv[1])); a = i.get("archive", {})
runs = " ".join("%d+%d" % (e["start"], e["length"])
                for e in json.load(open(sys.argv[2])) if e["data"])
print(i["format"], i["virtual-size"], a.get("compression", "-"),
      a.get("tar-member", "-") + "|" + runs)' "$1" "$2"
}

# check_read FILE FORMAT COMPRESSION [TAR-MEMBER]: every reading command.
check_read() {
	"$MIMG" info --output=json "$1" > info.json || fail "info $1"
	"$MIMG" map --output=json "$1" > map.out || fail "map $1"
	s=$(summary info.json map.out)
	check_eq "${s%%|*}" "$2 16777216 ${3:--} ${4:--}" "$1: info"
	if [ "$2" = qcow2 ]; then
		"$MIMG" map --output=json disk.qcow2 > map.ref
		cmp -s map.out map.ref ||
			fail "$1: map differs from the original's"
	else
		# zero blocks became holes: data is exactly what was written
		check_eq "${s#*|}" \
			"1048576+3145728 12582912+102400 15728640+1048576" \
			"$1: data runs"
	fi
	"$MIMG" info "$1" | grep -q "^archive: " ||
		fail "$1: human info has no archive line"
	rm -f out.raw out.qcow2
	"$MIMG" convert -O raw "$1" out.raw || fail "convert $1"
	qemu-img compare -q -f raw -F raw disk.raw out.raw ||
		fail "$1: converted content differs from the original"
	"$MIMG" compare "$1" disk.raw >/dev/null ||
		fail "mimg compare $1 with the original"
	left_in_tmp
	[ "${FULL:-}" ] || return 0
	"$MIMG" convert -O qcow2 "$1" out.qcow2 || fail "convert $1 to qcow2"
	qemu-img compare -q -f raw -F qcow2 disk.raw out.qcow2 ||
		fail "$1: converted qcow2 differs from the original"
	if [ "$2" = qcow2 ]; then
		"$MIMG" check "$1" > check.out || fail "check $1"
		"$MIMG" check disk.qcow2 > check.ref
		cmp -s check.out check.ref || fail "$1: check differs"
	fi
	# measure as qemu-img measures the qcow2, or the raw image convert
	# unpacked; the same checksum as the original; dd copies the content
	"$MIMG" measure -O qcow2 "$1" > measure.out || fail "measure $1"
	if [ "$2" = qcow2 ]; then
		qemu-img measure -O qcow2 disk.qcow2 > measure.ref
	else
		qemu-img measure -O qcow2 -f raw out.raw > measure.ref
	fi
	cmp -s measure.out measure.ref ||
		fail "$1: measure differs: $(cat measure.out)"
	"$MIMG" checksum "$1" > sum.out || fail "checksum $1"
	"$MIMG" checksum disk.raw > sum.ref
	check_eq "$(cut -d' ' -f1 sum.out)" "$(cut -d' ' -f1 sum.ref)" \
		"$1: checksum"
	rm -f dd.raw
	"$MIMG" dd -O raw if="$1" of=dd.raw || fail "dd $1"
	qemu-img compare -q -f raw -F raw disk.raw dd.raw ||
		fail "$1: dd content differs from the original"
	left_in_tmp
}

for fmt in raw qcow2; do
	for c in xz zstd gzip bzip2 lz4; do
		command -v "$c" >/dev/null 2>&1 || continue
		"$c" -q -c "disk.$fmt" > "disk.$fmt.$c" || fail "$c"
		# every command for xz, the reading ones for the others
		FULL=$([ "$c" = xz ] && echo 1) check_read "disk.$fmt.$c" \
			"$fmt" "$c"
	done
done
# The disk size is the archive's.
"$MIMG" info --output=json disk.raw.xz > info.json
check_eq "$(json_get info.json actual-size)" \
	"$(($(stat -c %b disk.raw.xz) * 512))" "actual size"
# Two layers: libarchive names the outermost first.
gzip -c disk.raw.xz > twice.gz
check_read twice.gz raw "gzip,xz"

tar czf disk.tgz disk.raw
FULL=1 check_read disk.tgz raw gzip disk.raw
# O_DIRECT on the source (-T none) reads the archive through the cache.
"$MIMG" convert -T none -O raw disk.tgz direct.raw || fail "convert -T none"
qemu-img compare -q -f raw -F raw disk.raw direct.raw ||
	fail "-T none: converted content differs"
# A tar with a README and one qcow2 picks the qcow2; -f names the image
# inside.
echo "readme" > README
tar cf disk.tar README disk.qcow2
check_read disk.tar qcow2 "" disk.qcow2
"$MIMG" info -f qcow2 disk.tar >/dev/null || fail "info -f qcow2 of a tar"

# --- hostile archives ---------------------------------------------------
# expect_refused FILE PATTERN: mimg fails, says PATTERN, leaves nothing.
expect_refused() {
	if "$MIMG" info "$1" >/dev/null 2>err.txt; then
		fail "$1 was accepted"
	fi
	grep -q "$2" err.txt || fail "$1: message lacks '$2': $(cat err.txt)"
	if "$MIMG" convert -O raw "$1" refused.raw 2>/dev/null; then
		fail "$1 was converted"
	fi
	left_in_tmp
}

# Tars made member by member, names kept as given (tar(1) would strip
# "/" and ".."): mktar NAME SPEC... where SPEC is file:NAME:PATH,
# sym:NAME:TARGET or hard:NAME:TARGET.
mktar() {
	python3 - "$@" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "w:gz", format=tarfile.GNU_FORMAT) as t:
    for spec in sys.argv[2:]:
        kind, name, arg = spec.split(":", 2)
        i = tarfile.TarInfo(name)
        if kind == "file":
            with open(arg, "rb") as f:
                data = f.read()
            i.size = len(data)
            with open(arg, "rb") as f:
                t.addfile(i, f)
            continue
        i.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
        i.linkname = arg
        t.addfile(i)
PY
}
mktar sym.tgz file:disk.raw:disk.raw sym:link.raw:/etc/passwd
expect_refused sym.tgz "is a link"
mktar hard.tgz file:disk.raw:disk.raw hard:other.raw:disk.raw
expect_refused hard.tgz "is a link"
mktar dotdot.tgz "file:../escape.raw:disk.raw"
expect_refused dotdot.tgz "'\.\./escape.raw' is absolute or has a '\.\.'"
[ ! -e ../escape.raw ] || fail "a member was written outside"
mktar abs.tgz "file:/tmp/abs.raw:disk.raw"
expect_refused abs.tgz "absolute"
cp disk.raw other.raw
tar czf two.tgz disk.raw other.raw
# (a raw first file of 1 MiB or more is streamed, by info too)
expect_refused two.tgz "another file, 'other.raw', after the image"
head -c 512k disk.raw > small.raw
cp small.raw other.raw
tar czf twosmall.tgz small.raw other.raw
expect_refused twosmall.tgz "'small.raw' (raw), 'other.raw' (raw)"
cp disk.qcow2 other.qcow2
tar czf twoq.tgz disk.qcow2 README other.qcow2
expect_refused twoq.tgz "several disk images"
mkdir empty
tar czf empty.tgz empty
expect_refused empty.tgz "holds no file"
python3 -c 'import io, tarfile
with tarfile.open("many.tgz", "w:gz") as t:
    for n in range(1100):
        t.addfile(tarfile.TarInfo("f%d" % n), io.BytesIO())'
expect_refused many.tgz "more than 1024 members"
size=$(stat -c %s disk.raw.xz)
head -c $((size / 2)) disk.raw.xz > trunc.xz
expect_refused trunc.xz "unpacking"
head -c $((size - 10)) disk.raw.xz > trunc2.xz
expect_refused trunc2.xz "unpacking"
# cut inside the first block: libarchive gives up while choosing filters
head -c 100 disk.tgz > trunc3.tgz
expect_refused trunc3.tgz "truncated gzip input"
# gzip: each member's CRC-32 and length are checked.  Stored (level 0)
# blocks inflate whatever their bytes, so a changed byte in one is found
# by the trailer alone, in a plain gzip file and in a tar.gz.
python3 -c 'import gzip, sys, tarfile
data = bytearray(open("disk.raw", "rb").read())
def damaged(buf):
    buf = bytearray(buf)
    buf[len(buf) // 2] ^= 0x55
    return bytes(buf)
open("stored.raw.gz", "wb").write(gzip.compress(bytes(data), 0))
open("flipped.raw.gz", "wb").write(damaged(gzip.compress(bytes(data), 0)))
with tarfile.open("stored.tgz", "w:gz", compresslevel=0) as t:
    t.add("disk.raw")
open("flipped.tgz", "wb").write(damaged(open("stored.tgz", "rb").read()))'
check_read stored.raw.gz raw gzip
check_read stored.tgz raw gzip disk.raw
expect_refused flipped.raw.gz "gzip data: incorrect data check"
expect_refused flipped.tgz "gzip data: incorrect data check"
# members one after another read as one stream, as gzip -d does; zero
# bytes may pad the end; anything else after the last member is refused
head -c 5M disk.raw > part1
tail -c +$((5 * 1048576 + 1)) disk.raw > part2
{ gzip -c part1; gzip -c part2; } > members.gz
check_read members.gz raw gzip
{ cat disk.raw.gzip; head -c 10000 /dev/zero; } > padded.gz
check_read padded.gz raw gzip
{ cat disk.raw.gzip; printf garbage; } > trailing.gz
expect_refused trailing.gz "data after the end of the gzip stream"
{ cat disk.raw.gzip; printf x; } > trailing1.gz
expect_refused trailing1.gz "data after the end of the gzip stream"
# A tar ends before its compressed data does (tar pads to 10 KiB
# records): the trailer after its end is still checked, spooled or
# streamed (a streamOptimized VMDK in the tar).
head -c 60000 /dev/urandom > small.img
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized small.img \
	small.vmdk
for m in small.img small.vmdk; do
	tar cf small.tar $m
	gzip -c small.tar > small.tgz
	python3 -c 'import sys
b = bytearray(open("small.tgz", "rb").read()); b[-8] ^= 1
open("badcrc.tgz", "wb").write(b)'
	expect_refused badcrc.tgz "gzip data: incorrect data check"
	xz -c small.tar | head -c -20 > cut.txz
	expect_refused cut.txz "xz data"
done
# 128 MiB of zeroes in about a hundred bytes of bzip2, refused once past
# 64 MiB
dd if=/dev/zero bs=1M count=128 status=none | bzip2 -9 > bomb.bz2
expect_refused bomb.bz2 "decompression bomb"
echo "archive: ok"
