#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# convert streams a streamOptimized VMDK out of an xz, zstd or gzip file
# or a tar with no temporary file (it works with $TMPDIR missing), in both
# layouts: the grain directory at the front as qemu-img writes it, and
# VMware's footer layout.  The result equals qemu-img's conversion of the
# unpacked file and zero runs stay holes.  Grains out of order, past the
# capacity, or not the ones the grain tables list, and streams cut short,
# are errors, never other data.  A gzip file declares no size: its end is
# found as it is read, and a gzip file cut short or damaged is refused.
# Zeroed grains (table entry 1 with the header's flag, which qemu-img
# reads but never writes) read as zeroes, streamed or not.  info says
# streamed, and reads the rest of a tar as when it is unpacked: hostile
# members after the image are refused.
. "$TESTLIB"
need qemu-img qemu-io python3 tar xz zstd gzip
layout() { python3 "$(dirname "$0")/vmdk-stream-layout.py" "$@"; }

# 80 MiB, three grain tables' worth: 5 MiB of data in three places.
qemu-img create -q -f raw disk.raw 80M
qemu-io -f raw -c "write -P 0xab 1M 3M" -c "write -P 0x5c 40M 1M" \
	-c "write -P 0x77 79M 1M" disk.raw >/dev/null || fail "qemu-io"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized disk.raw \
	front.vmdk || fail "qemu-img streamOptimized"
layout footer front.vmdk footer.vmdk || fail "footer layout"
qemu-img compare -q -f raw -F vmdk disk.raw footer.vmdk ||
	fail "qemu-img reads the footer layout differently"
qemu-img convert -f vmdk -O raw front.vmdk qemu.raw
qemu-img compare -q -f raw -F raw disk.raw qemu.raw ||
	fail "qemu-img reads the front layout differently"
# qemu-img ends the file after the last grain, without an end marker,
# when no padding follows it
cp front.vmdk noeos.vmdk
layout edit noeos.vmdk noeos || fail "noeos"
qemu-img compare -q -f raw -F vmdk disk.raw noeos.vmdk ||
	fail "qemu-img reads the stream without end marker differently"

for v in front footer noeos; do
	xz -q -k $v.vmdk
	zstd -q -k $v.vmdk
	tar cf $v.tar $v.vmdk
	tar czf $v.tgz $v.vmdk
	gzip -q -k $v.vmdk
	for f in $v.vmdk.xz $v.vmdk.zst $v.tar $v.tgz $v.vmdk.gz; do
		# 5 MiB of data; the rest holes
		streams "$f" qemu.raw 5
		check_eq "$(qemu-img map --output=json out.qcow2 |
			grep -c '"data": true')" 3 "$f: data runs in the qcow2"
		# info streams it too, the whole archive still read
		TMPDIR=$T/missing "$MIMG" info --output=json "$f" \
			>info.json || fail "info $f without a temporary directory"
		json_eq info.json "$f: info" archive.streamed true \
			virtual-size 83886080 \
			format-specific.data.create-type streamOptimized
		TMPDIR=$T/missing "$MIMG" info "$f" >info.txt ||
			fail "info $f"
		grep -q "^archive: .*, streamed, no temporary file$" info.txt ||
			fail "$f: info says $(grep archive: info.txt)"
	done
done

# gzip: the size info gives is the data's, found at its end; $TMPDIR, an
# empty directory here, stays empty.
mkdir tmp
for v in front footer noeos; do
	TMPDIR=$T/tmp "$MIMG" info --output=json $v.vmdk.gz >info.json ||
		fail "info $v.vmdk.gz"
	check_eq "$(json_get info.json archive.unpacked-size)" \
		"$(stat -c %s $v.vmdk)" "$v.vmdk.gz: info's archive.unpacked-size"
	TMPDIR=$T/tmp "$MIMG" convert -O raw $v.vmdk.gz o.raw ||
		fail "convert $v.vmdk.gz"
	check_eq "$(ls -A tmp)" "" "$v.vmdk.gz: files left in TMPDIR"
done

# bzip2 and lz4 declare no size either; what a file that does not
# declare its size unpacks to is bounded all the same.
for c in bzip2 lz4; do
	command -v $c >/dev/null 2>&1 || continue
	$c -q -c footer.vmdk >footer.vmdk.$c || fail "$c"
	TMPDIR=$T/missing "$MIMG" convert -O raw footer.vmdk.$c o.raw ||
		fail "convert footer.vmdk.$c"
	qemu-img compare -q -f raw -F raw qemu.raw o.raw ||
		fail "footer.vmdk.$c differs"
	if [ $c = bzip2 ]; then
		{ cat footer.vmdk; head -c 300M /dev/zero; } | bzip2 -9 >bomb.bz2
		for cmd in "convert -O raw bomb.bz2 o.raw" "info bomb.bz2"; do
			TMPDIR=$T/missing "$MIMG" $cmd >/dev/null 2>err.txt &&
				fail "$cmd: accepted"
			grep -q "refused as a decompression bomb" err.txt ||
				fail "$cmd: $(cat err.txt)"
		done
	fi
done

# Zeroed grains: 1-2 MiB loses its data, and entries in a hole are
# marked too.  qemu-img reads them as zeroes; so does mimg, from the file
# and streamed, in both layouts.
cp disk.raw zeroed.raw
qemu-io -f raw -c "write -z 1M 1M" zeroed.raw >/dev/null || fail "qemu-io"
cp front.vmdk zeroed.vmdk
layout edit zeroed.vmdk zeroed || fail "zeroed"
layout footer zeroed.vmdk zfooter.vmdk || fail "zeroed footer layout"
for v in zeroed zfooter; do
	qemu-img compare -q -f raw -F vmdk zeroed.raw $v.vmdk ||
		fail "qemu-img reads $v.vmdk differently"
	"$MIMG" convert -O raw $v.vmdk o.raw || fail "convert $v.vmdk"
	qemu-img compare -q -f raw -F raw zeroed.raw o.raw ||
		fail "$v.vmdk: mimg reads the zeroed grains differently"
	qemu-img map --output=json $v.vmdk >qemu.map
	"$MIMG" map --output=json $v.vmdk >mimg.map || fail "map $v.vmdk"
	cmp -s qemu.map mimg.map || fail "$v.vmdk: map differs from qemu-img's"
	gzip -q -k $v.vmdk
	xz -q -k $v.vmdk
	for f in $v.vmdk.gz $v.vmdk.xz; do
		streams "$f" zeroed.raw 4
	done
done
# Without the header's flag an entry of 1 is sector 1, which holds no
# grain: qemu-img fails to read it, mimg refuses it.  Grains 16-31 and
# 100-110 have such entries, in different windows of the conversion:
# whichever worker gets to its grain first names it.
cp front.vmdk noflag.vmdk
layout edit noflag.vmdk noflag || fail "noflag"
qemu-img convert -f vmdk -O raw noflag.vmdk o.raw 2>/dev/null &&
	fail "qemu-img read noflag.vmdk"
"$MIMG" convert -O raw noflag.vmdk o.raw 2>err.txt &&
	fail "mimg read noflag.vmdk"
grep -Eq "grain (1[6-9]|2[0-9]|3[01]|10[0-9]|110) at offset 512 has invalid compressed size" err.txt ||
	fail "noflag.vmdk: $(cat err.txt)"

refused() { # FILE PATTERN
	rm -f bad.raw
	if TMPDIR=$T/missing "$MIMG" convert -O raw "$1" bad.raw 2>err.txt
	then
		fail "$1 was converted"
	fi
	grep -q "$2" err.txt || fail "$1: message lacks '$2': $(cat err.txt)"
}
# info_refused FILE PATTERN: info fails too, with or without $TMPDIR
info_refused() {
	refused "$1" "$2"
	for tmp in $T/missing $T; do
		if TMPDIR=$tmp "$MIMG" info "$1" >/dev/null 2>err.txt; then
			fail "info accepted $1"
		fi
		grep -q "$2" err.txt ||
			fail "info $1: message lacks '$2': $(cat err.txt)"
	done
}

# Members after (or before) a streamed image are checked as when the
# tar is unpacked: two of one name, links, names that escape, and a
# size past the data are refused by info as by convert.
mktar() { # TAR SPEC...: file:NAME:PATH, sym:NAME:TARGET, liar:NAME:PATH
	python3 - "$@" <<'PY'
import sys, tarfile
mode = "w:gz" if sys.argv[1].endswith(".tgz") else "w"
with tarfile.open(sys.argv[1], mode, format=tarfile.GNU_FORMAT) as t:
    for spec in sys.argv[2:]:
        kind, name, arg = spec.split(":", 2)
        i = tarfile.TarInfo(name)
        if kind == "sym":
            i.type, i.linkname = tarfile.SYMTYPE, arg
            t.addfile(i)
            continue
        data = open(arg, "rb").read()
        i.size = len(data)
        if kind == "liar":  # header claims more than the archive holds
            i.size = len(data) + (1 << 30)
            t.fileobj.write(i.tobuf(tarfile.GNU_FORMAT, t.encoding,
                                    t.errors))
            t.fileobj.write(data + bytes(-len(data) % 512))
            t.offset += 512 + len(data) + (-len(data) % 512)
            continue
        with open(arg, "rb") as f:
            t.addfile(i, f)
PY
}
echo readme > README
for ext in tar tgz; do
	mktar dupafter.$ext file:front.vmdk:front.vmdk file:README:README \
		file:README:README
	info_refused dupafter.$ext "two members named 'README'"
	# (a small file first is unpacked, which needs $TMPDIR)
	mktar dupbefore.$ext file:README:README file:front.vmdk:front.vmdk \
		file:README:README
	TMPDIR=$T "$MIMG" info dupbefore.$ext >/dev/null 2>err.txt &&
		fail "info accepted dupbefore.$ext"
	grep -q "two members named 'README'" err.txt ||
		fail "dupbefore.$ext: $(cat err.txt)"
	mktar dupimage.$ext file:front.vmdk:front.vmdk \
		file:front.vmdk:front.vmdk
	info_refused dupimage.$ext "two members named 'front.vmdk'"
	mktar symafter.$ext file:front.vmdk:front.vmdk sym:x:/etc/passwd
	info_refused symafter.$ext "is a link"
	mktar dotdot.$ext file:front.vmdk:front.vmdk file:../x:README
	info_refused dotdot.$ext "absolute or has a '\.\.'"
	mktar liar.$ext file:front.vmdk:front.vmdk liar:README:README
	info_refused liar.$ext "runcated"
done
mktar ok.tar file:front.vmdk:front.vmdk file:README:README
TMPDIR=$T/missing "$MIMG" info ok.tar >/dev/null ||
	fail "info refuses a README after the image"

damaged() { # LAYOUT EDIT PATTERN
	cp $1.vmdk $2.vmdk
	layout edit $2.vmdk $2 || fail "edit $2"
	xz -q -f $2.vmdk
	refused $2.vmdk.xz "$3"
}
damaged front swap "grains out of order or repeated"
damaged front lba "past the capacity"
damaged front gte "are not the grains the grain tables list"
damaged footer gtfooter "where the markers before it give"
head -c $(($(stat -c %s front.vmdk.xz) / 2)) front.vmdk.xz > cut.xz
refused cut.xz "unpacking"
# gzip cut short, in its data or in its trailer (CRC and size), or with
# garbage in its data, in both layouts
gzip -q -k noflag.vmdk
refused noflag.vmdk.gz "are not the grains the grain tables list"
for v in front footer; do
	head -c 600 $v.vmdk.gz > cut.gz
	info_refused cut.gz "truncated"
	head -c $(($(stat -c %s $v.vmdk.gz) - 4)) $v.vmdk.gz > cut.gz
	info_refused cut.gz "truncated"
	for at in 100 500 900; do
		cp $v.vmdk.gz bad.gz
		printf GARBAGEGARBAGE | dd of=bad.gz bs=1 seek=$at \
			conv=notrunc status=none
		refused bad.gz "bad.gz'\\?: "
	done
done
# cut inside a tar, which declares the cut size: the markers run past it,
# or (qemu-img writes no end-of-stream marker) the tables list more
head -c $(($(stat -c %s front.vmdk) / 1024 * 512)) front.vmdk > short.vmdk
tar cf short.tar short.vmdk
refused short.tar "are not the grains the grain tables list"
for cut in 1024 4096; do
	head -c $(($(stat -c %s footer.vmdk) - cut)) footer.vmdk > short.vmdk
	tar cf short.tar short.vmdk
	refused short.tar "(truncated?)"
done
echo "archive-stream-vmdk: ok"
