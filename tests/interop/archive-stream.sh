#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# convert streams a raw image out of a compressed file (xz, zstd, and
# gzip, bzip2 and lz4, whose data is counted first as they declare no
# usable size) or a tar with no temporary file (it works with $TMPDIR
# missing), writes no zero block, and checks the data against the size
# the archive declares: a tar
# member cut short, a zstd file with a second frame, or a tar with
# another file after the image are errors (for info too, which streams
# what convert streams).  Images that need random access are still
# unpacked into $TMPDIR, and nothing is left there, killed by a signal
# or not.
. "$TESTLIB"
need qemu-img qemu-io python3 tar xz zstd gzip bzip2 lz4

# 24 MiB: data, a zero-filled megabyte, data at the end.
qemu-img create -q -f raw disk.raw 24M
qemu-io -f raw -c "write -P 0xab 1M 3M" -c "write -P 0 8M 1M" \
	-c "write -P 0x5c 23M 1M" disk.raw >/dev/null || fail "qemu-io"
xz -q -k -T2 disk.raw
zstd -q -k disk.raw
gzip -q -k disk.raw
bzip2 -q -k disk.raw
lz4 -q -z disk.raw disk.raw.lz4
zstd -q -c <disk.raw >pipe.zst # from a pipe: no content size
tar czf disk.tgz disk.raw
qemu-img convert -f raw -O qcow2 disk.raw disk.qcow2
xz -q -k disk.qcow2

# 4 MiB of data; the zero megabyte is a hole
for f in disk.raw.xz disk.raw.zst disk.tgz disk.raw.gz disk.raw.bz2 \
	disk.raw.lz4 pipe.zst; do
	streams "$f" disk.raw 4 -c
	TMPDIR=$T/missing "$MIMG" info --output=json "$f" > info.json ||
		fail "info $f without a temporary directory"
	json_eq info.json "$f: info" archive.streamed true \
		virtual-size 25165824
done
# -m above what the stream keeps is lowered, not an error
TMPDIR=$T/missing "$MIMG" convert -m 64 -O raw disk.raw.xz m64.raw ||
	fail "convert -m 64"
qemu-img compare -q -f raw -F raw disk.raw m64.raw || fail "-m 64 differs"

# qcow2 needs random access: unpacked
for f in disk.qcow2.xz; do
	TMPDIR=$T/missing "$MIMG" convert -O raw "$f" o.raw 2>err.txt &&
		fail "$f was not unpacked into TMPDIR"
	grep -q "cannot create a temporary file" err.txt ||
		fail "$f: $(cat err.txt)"
	"$MIMG" info --output=json "$f" > info.json
	check_eq "$(json_get info.json archive.streamed)" false \
		"$f: streamed"
done

refused() {
	if "$MIMG" convert -O raw "$1" bad.raw 2>err.txt; then
		fail "$1 was converted"
	fi
	grep -q "$2" err.txt || fail "$1: message lacks '$2': $(cat err.txt)"
}
# a tar header that says 8 GiB over 24 MiB of data
tar cf liar.tar disk.raw
python3 - <<'PY'
b = bytearray(open("liar.tar", "rb").read())
h = b[:512]
h[124:136] = b"%011o\0" % ((1 << 33) - 1)
h[148:156] = b" " * 8
h[148:156] = b"%06o\0 " % sum(h)
b[:512] = h
open("liar.tar", "wb").write(b)
PY
refused liar.tar "Truncated tar archive"
# xz files of many blocks, one corrupt in the middle, one with bytes
# after its stream, one whose block asks for a 4 GiB dictionary (liblzma
# decodes streamed .xz files with its memory capped at 1 GiB)
xz -q -c -T2 --block-size=1MiB disk.raw > blocks.xz
rm -f out.raw
TMPDIR=$T/missing "$MIMG" convert -O raw blocks.xz out.raw ||
	fail "convert blocks.xz"
qemu-img compare -q -f raw -F raw disk.raw out.raw || fail "blocks.xz differs"
python3 - <<'PY'
import lzma, zlib
b = bytearray(open("blocks.xz", "rb").read())
mid = len(b) // 2
b[mid:mid + 8] = bytes(x ^ 0x5a for x in b[mid:mid + 8])
open("corrupt.xz", "wb").write(b)
one = bytearray(lzma.compress(open("disk.raw", "rb").read()[:4 << 20],
                              format=lzma.FORMAT_XZ))
hsize = (one[12] + 1) * 4
assert one[13] & 3 == 0 and one[14] == 0x21 and one[15] == 1
one[16] = 40  # dictionary size code 40: 4 GiB - 1
one[12 + hsize - 4:12 + hsize] = zlib.crc32(one[12:12 + hsize - 4]).to_bytes(4, "little")
open("bigdict.xz", "wb").write(one)
PY
refused corrupt.xz "unpacking"
cp disk.raw.xz trail.xz
printf 'trailing' >> trail.xz
refused trail.xz "unpacking"
# (libarchive, without liblzma, sets no such cap)
if [ -n "${MIMG_HAVE_LIBLZMA:-}" ]; then
	refused bigdict.xz "more than the 1073741824 bytes of memory allowed"
fi
cat disk.raw.zst disk.raw.zst > twice.zst
refused twice.zst "holds more data than the 25165824 bytes"
echo readme > README
tar cf after.tar disk.raw README
refused after.tar "another file, 'README', after the image"
for f in liar.tar twice.zst after.tar; do
	"$MIMG" info "$f" >/dev/null 2>err.txt && fail "info accepted $f"
done
head -c $(($(stat -c %s disk.raw.xz) / 2)) disk.raw.xz > cut.xz
refused cut.xz "unpacking"

# Spooling: a signal leaves nothing behind (the file has no name).
mkdir tmp
dd if=/dev/urandom bs=1M count=48 status=none > big.raw
qemu-img convert -f raw -O qcow2 big.raw big.qcow2
gzip -1 big.qcow2
TMPDIR=$T/tmp "$MIMG" convert -O raw big.qcow2.gz big.raw &
pid=$!
sleep 0.3
kill -TERM $pid 2>/dev/null
wait $pid
[ -z "$(ls -A tmp)" ] || fail "left in TMPDIR: $(ls -A tmp)"
echo "archive-stream: ok"
