#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Parallels images against qemu-img 7.2: images it makes and writes read
# the same in mimg (bytes, info, map, check); mimg's new images are its
# files byte for byte; what mimg converts and writes qemu-img reads and
# checks clean; an image left in use, a BAT entry past the file and space
# leaked at the end are reported and repaired with qemu-img's words; old
# "WithoutFreeSpace" images (entries in sectors) read the same.
. "$TESTLIB"
need qemu-img qemu-io python3
need_format parallels

# Images qemu-img makes and writes, over cluster sizes (3000 rounds up
# to 3072: clusters need not be powers of two) and sizes not whole
# clusters.
for spec in 1M:64M 64k:10M 3000:5000k 512:4M; do
	cs=${spec%%:*} size=${spec#*:}
	f=q-$cs.hdd
	qemu-img create -q -f parallels -o cluster_size=$cs $f $size ||
		fail "qemu-img create $spec"
	"$MIMG" create -q -f parallels -o cluster_size=$cs m-$cs.hdd $size ||
		fail "mimg create $spec"
	cmp -s $f m-$cs.hdd || fail "$spec: mimg's new image differs from qemu-img's"
	same_output -e "info $spec" info --output=json $f
	qemu-io -f parallels -c "write -P 0x11 0 4k" -c "write -P 0x22 100k 200k" \
		-c "write -P 0x33 3000k 1k" -c "write -P 0x44 1000 3000" $f \
		>/dev/null || fail "qemu-io write $spec"
	qemu-img convert -f parallels -O raw $f q.raw
	"$MIMG" convert -f parallels -O raw $f m.raw || fail "mimg convert $spec"
	cmp -s q.raw m.raw || fail "$spec: mimg reads other bytes than qemu-img"
	same_output -e "map $spec" map --output=json $f
	same_output -e "info $spec written" info $f
	same_output -e "check $spec" check $f
	same_output -e "check json $spec" check --output=json $f
	# mimg converts the raw bytes into a parallels image of this
	# cluster size: qemu-img reads them and checks it clean.
	"$MIMG" convert -f raw -O parallels -o cluster_size=$cs q.raw conv.hdd ||
		fail "mimg convert to parallels $spec"
	qemu-img compare -q -f raw -F parallels q.raw conv.hdd ||
		fail "$spec: qemu-img reads mimg's conversion differently"
	qemu-img check -q conv.hdd || fail "$spec: qemu-img check of mimg's conversion"
	# mimg writes into qemu-img's image (all clusters: new and old).
	python3 -c 'import sys; sys.stdout.buffer.write(bytes([0x5a]) * (300 << 10))' >pat.raw
	"$MIMG" convert -n -f raw -O parallels pat.raw $f || fail "mimg write $spec"
	qemu-io -f parallels -c "read -P 0x5a 0 300k" -c "read -P 0x33 3000k 1k" $f |
		grep -q "^read 1024" || fail "$spec: qemu-io reads other data after mimg wrote"
	qemu-img check -q $f || fail "$spec: qemu-img check after mimg wrote"
	check_eq "$(od -An -tx4 -j44 -N4 $f | tr -d ' ')" 00000000 "$spec: in-use field after close"
done

# Resizing is refused with qemu-img's words.
qemu-img create -q -f parallels r.hdd 10M
same_output -e "resize" resize r.hdd 20M

# An image left in use: read, refused for writing, repaired by check.
qemu-img create -q -f parallels p.hdd 10M
qemu-io -f parallels -c "write -P 0x33 0 1M" -c "write -P 0x44 3M 512" p.hdd >/dev/null
cp p.hdd inuse.hdd
printf 'Ynot' | dd of=inuse.hdd bs=1 seek=44 conv=notrunc 2>/dev/null
"$MIMG" compare -f parallels -F parallels p.hdd inuse.hdd >/dev/null ||
	fail "an image in use does not read as it was"
"$MIMG" convert -n -f raw -O parallels pat.raw inuse.hdd 2>err &&
	fail "an image in use was opened for writing"
grep -q "parallels: Image was not closed correctly; cannot be opened read/write" err ||
	fail "in use: $(cat err)"
same_output -e "check in use" check inuse.hdd
cp inuse.hdd inuse-q.hdd
qemu-img check -r all inuse-q.hdd >q.out 2>q.err
"$MIMG" check -r all inuse.hdd >m.out 2>m.err || fail "mimg check -r all in use: $(cat m.err)"
sed -i 's/^qemu-img: //' q.err; sed -i 's/^mimg: //' m.err
cmp -s q.out m.out && cmp -s q.err m.err || fail "check -r all in use differs:
$(diff q.out m.out; diff q.err m.err)"
cmp -s inuse.hdd inuse-q.hdd || fail "repaired in-use images differ"

# A BAT entry past the file, space after the last cluster.
cp p.hdd bad.hdd
printf '\011\0\0\0' | dd of=bad.hdd bs=1 seek=72 conv=notrunc 2>/dev/null
cp p.hdd leak.hdd
truncate -s 5M leak.hdd
for f in bad.hdd leak.hdd; do
	same_output -e "check $f" check $f
	same_output -e "check json $f" check --output=json $f
	cp $f q-$f
	cp $f m-$f
	qemu-img check -r all q-$f >q.out 2>q.err
	"$MIMG" check -r all m-$f >m.out 2>m.err
	sed -i 's/^qemu-img: //' q.err; sed -i 's/^mimg: //' m.err
	cmp -s q.out m.out && cmp -s q.err m.err || fail "check -r all $f differs:
$(diff q.out m.out; diff q.err m.err)"
	# (qemu-img's repair of bad.hdd leaves its file 10 MiB long, up to
	# the cluster it unlinked: a leak its next check reports.)
	qemu-img compare -q -f parallels -F parallels q-$f m-$f ||
		fail "repaired $f reads differently from qemu-img's repair"
	qemu-img check -q m-$f || fail "qemu-img check of mimg's repaired $f"
done
# mimg refuses to read a cluster outside the file (qemu-img reads
# zeroes there).
"$MIMG" convert -O raw bad.hdd bad.raw 2>err && fail "a cluster past the file was read"
grep -q "BAT entry 2 (9) places its cluster at 9437184, outside" err ||
	fail "bad entry: $(cat err)"

# Old images: BAT entries in sectors, data offset given or not.
for data_off in keep zero; do
	python3 - p.hdd old.hdd $data_off <<'PY'
import struct, sys
src, dst, data_off = sys.argv[1:4]
b = bytearray(open(src, "rb").read())
tracks, n = struct.unpack_from("<II", b, 28)
b[0:16] = b"WithoutFreeSpace"
for i in range(n):
    (e,) = struct.unpack_from("<I", b, 64 + 4 * i)
    struct.pack_into("<I", b, 64 + 4 * i, e * tracks)
if data_off == "zero":
    struct.pack_into("<I", b, 48, 0)
open(dst, "wb").write(b)
PY
	qemu-img compare -q -f parallels -F parallels p.hdd old.hdd ||
		fail "old $data_off: qemu-img does not read the converted image alike"
	"$MIMG" compare -q -f parallels -F parallels p.hdd old.hdd ||
		fail "old $data_off: mimg reads the old image differently"
	same_output -e "map old $data_off" map --output=json old.hdd
	same_output -e "check old $data_off" check old.hdd
done
echo "parallels: qemu-img and mimg agree"
