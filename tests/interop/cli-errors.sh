#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Mistakes on the command line and bad files: mimg exits with the status
# qemu-img exits with for the same mistake, and explains in one line
# prefixed "mimg: " (usage errors add one "Try ... --help" line, as
# qemu-img's do).
. "$TESTLIB"
need qemu-img qemu-io python3

truncate -s 1M r.img
mkdir adir

# same_status DESCRIPTION MAX_LINES ARGS...: run "qemu-img ARGS" and
# "mimg ARGS"; exit statuses must match and mimg's stderr must be at most
# MAX_LINES lines, the first one starting with "mimg: ".
same_status() {
	desc=$1 max=$2
	shift 2
	qemu-img "$@" >q.out 2>q.err
	qs=$?
	"$MIMG" "$@" >m.out 2>m.err
	ms=$?
	check_eq "$ms" "$qs" "$desc: exit status (qemu-img said: $(head -1 q.err))"
	if [ "$ms" != 0 ]; then
		lines=$(wc -l <m.err)
		[ "$lines" -ge 1 ] && [ "$lines" -le "$max" ] ||
			{ cat m.err >&2; fail "$desc: $lines lines on stderr"; }
		head -1 m.err | grep -q '^mimg: ..' ||
			{ cat m.err >&2; fail "$desc: no 'mimg: ' message"; }
	fi
}

same_status "no arguments" 2
same_status "unknown command" 2 frobnicate
same_status "info: missing file" 1 info missing.img
same_status "info: unknown format" 1 info -f nosuchfmt r.img
same_status "info: no file name" 2 info
same_status "info: two file names" 2 info r.img r.img
same_status "info: bad --output" 1 info --output=xml r.img
same_status "info: a directory" 1 info adir
same_status "info: ok" 1 info r.img
same_status "create: bad size" 2 create -f raw x.img 1x
same_status "create: negative size" 2 create -f raw x.img -- -5
same_status "create: unknown format" 1 create -f nosuchfmt x.img 1M
same_status "create: no size" 1 create -f raw x.img
same_status "create: no file name" 2 create -f raw
same_status "create: unknown option" 1 create -f raw -o foo=bar x.img 1M
same_status "convert: missing source" 1 convert missing.img y.img
same_status "convert: unknown output format" 1 convert -O nosuchfmt r.img y.img
same_status "convert: --target-is-zero without -n" 1 \
	convert --target-is-zero r.img y.img
same_status "convert: bad -S" 1 convert -S 1000 r.img y.img
same_status "convert: bad -m" 1 convert -m 0 r.img y.img
same_status "convert: one file" 2 convert r.img
same_status "convert: -n and missing target" 1 convert -n r.img nothere.img
same_status "convert: -o with -n" 1 convert -n -o preallocation=off r.img r.img
same_status "convert: compressed raw" 1 convert -c -O raw r.img y.img
same_status "convert: snapshot of raw" 1 convert -l snap1 r.img y.img
same_status "convert: bad cache mode" 1 convert -t bogus r.img y.img
same_status "convert: bad -S text" 2 convert -S -5 r.img y.img
same_status "convert: target directory missing" 1 \
	convert -O raw r.img nodir/y.img
same_status "create: directory missing" 1 create -f raw nodir/y.img 1M
same_status "create: over a directory" 1 create -f raw adir 1M
truncate -s 512k small.img
same_output -e "convert -n: target smaller than the source" \
	convert -n r.img small.img
same_output -e "convert -n -O raw: target smaller than the source" \
	convert -n -O raw r.img r.img small.img
same_output -e "convert -c -n: compression before the sizes" \
	convert -c -n -O raw r.img small.img
same_status "create: raw with a backing file" 1 \
	create -f raw -b r.img -F raw y.img
same_output -e "check -r all on raw" check -r all r.img # the warning too
same_status "check: raw has no check" 1 check r.img
check_eq "$(cat m.err)" "mimg: This image format does not support checks" \
	"check on raw: message"
same_status "check: raw, explicit format" 1 check -f raw r.img
same_status "check: missing file" 1 check missing.img
same_status "check: bad -r" 2 check -r sometimes r.img

# --image-opts names the driver itself: -f beside it is refused by every
# command that opens an image, with its own error status (compare: 2)
io=driver=raw,file.filename=r.img
for c in info amend\ -o\ size=1M bitmap\ --add\ b check map \
	measure\ -O\ qcow2 bench\ -c\ 1 commit rebase\ -u; do
	# shellcheck disable=SC2086 # the command and its options
	same_status "$c: --image-opts with -f" 1 $c --image-opts -f raw "$io"
	grep -q 'image-opts and --format are mutually exclusive' m.err ||
		fail "$c: --image-opts with -f: $(cat m.err)"
done
same_status "convert: --image-opts with -f" 1 \
	convert --image-opts -f raw "$io" y.img
same_status "dd: --image-opts with -f" 1 \
	dd --image-opts -f raw if="$io" of=y.img
# the image is not last: resize's size, compare's second image
for c in "resize --image-opts -f raw $io 2M" \
	"compare --image-opts -f raw $io $io" \
	"compare --image-opts -F raw $io $io"; do
	# shellcheck disable=SC2086 # the command and its arguments
	same_status "$c" 1 $c
	grep -q 'image-opts and --format are mutually exclusive' m.err ||
		fail "$c: $(cat m.err)"
done

# resize counts its arguments before reading the options, as qemu-img;
# check names the values -r takes
for c in "resize r.img" "resize -q r.img" "resize" "resize r.img 1M 2M" \
	"check -r foo r.img"; do
	# shellcheck disable=SC2086 # the command and its arguments
	same_status "$c" 2 $c
	check_eq "$(head -1 m.err | sed 's/^mimg: //')" \
		"$(head -1 q.err | sed 's/^qemu-img: //')" "$c: message"
done

# A file probed as raw and opened to be written: qemu-img's warning, and
# its order of refusals for a raw image that cannot be rebased.
for c in "resize p.img 2M" "check -r all p.img" "commit p.img" \
	"rebase -u -b x p.img" "rebase -f raw -b x -F raw p.img" \
	"rebase -f raw -u -b x p.img" "rebase -f raw -u -b x -F raw p.img"; do
	cp r.img p.img
	# shellcheck disable=SC2086 # the command and its arguments
	same_output -e "$c" $c
done

# An image whose backing file is missing: the commands that read through
# the chain (check too, as qemu-img opens it) fail in qemu-img's words.
case " $("$MIMG" --help | sed -n 's/^Formats://p') " in *" qcow2 "*)
	qemu-img create -q -f qcow2 -u -b missing.qcow2 -F qcow2 mb.qcow2 1M
	for c in "check mb.qcow2" "map mb.qcow2" "compare mb.qcow2 r.img" \
		"convert mb.qcow2 y.img" "measure -O qcow2 mb.qcow2" \
		"info mb.qcow2" "info --backing-chain mb.qcow2"; do
		# shellcheck disable=SC2086 # the command and its arguments
		same_output -e "$c" $c
	done
	;;
esac

# A target convert cannot make: what qemu-img says, options it parses
# apart from what the format refuses ("error while converting"), and its
# order of checks for backing files, preallocation and compression.
case " $("$MIMG" --help | sed -n 's/^Formats://p') " in *" qcow2 "*)
	for o in "-O qcow2 -o cluster_size=3" "-O qcow2 -o foo=1" \
		"-O qcow2 -o compat=9" "-O qcow2 -o cluster_size=abc" \
		"-O qcow2 -o lazy_refcounts=maybe" "-O qcow2 -o ," \
		"-O qcow2 -o a=1," "-O qcow2 -o preallocation=full -c" \
		"-O qcow2 -o preallocation=metadata -c -B r.img" \
		"-B x" "-B x -F raw" "-O nosuch -B x" "-O vpc -B x -F raw" \
		"--bitmaps"; do
		rm -f y.img
		# shellcheck disable=SC2086 # the options' words
		same_output -e "convert $o" convert $o r.img y.img
	done
	# a backing file that does not open as its format says: qemu-img
	# creates the target and fails to open it, mimg creates nothing
	mkdir -p sub
	for o in "-B nosuch.qcow2 -F qcow2" "-B r.img -F qcow2" \
		"-o backing_file=nosuch.qcow2,backing_fmt=qcow2"; do
		for t in y.img sub/y.img; do
			rm -f $t
			# shellcheck disable=SC2086
			same_output -e "convert $o to $t" convert -O qcow2 $o \
				r.img $t
			rm -f $t
			# shellcheck disable=SC2086
			"$MIMG" convert -O qcow2 $o r.img $t 2>/dev/null
			[ ! -e $t ] || fail "convert $o: $t left behind"
		done
	done
	;;
esac

# Numbers given as sizes: qemu-img's words for one that does not parse
# (two lines), one out of range and a negative one, option by option.
cp r.img w.img
for v in 1x 99E -5; do
	for c in "create -f raw x.img -- $v" "map -s $v r.img" \
		"map -l $v r.img" "bench -o $v r.img" "bench -s $v r.img" \
		"bench -S $v r.img" "convert -S $v r.img y.img" \
		"convert -r $v r.img y.img" "measure --size $v -O raw" \
		"dd if=r.img of=y.img bs=$v" "dd if=r.img of=y.img count=$v" \
		"dd if=r.img of=y.img skip=$v" "resize -f raw w.img $v"; do
		# shellcheck disable=SC2086 # the command and its arguments
		same_status "$c" 3 $c
		check_eq "$(sed 's/^mimg: //' m.err)" \
			"$(sed 's/^qemu-img: //' q.err)" "$c: message"
	done
done

# converting an image onto itself (or onto a file of its backing chain)
# would truncate what is being read: qemu-img refuses (image locks), so
# must mimg, leaving the file intact
head -c 65536 /dev/urandom >data.img
cp data.img data.orig
same_status "convert onto the source" 1 convert data.img data.img
cmp -s data.img data.orig || fail "convert onto the source changed it"
ln data.img link.img
same_status "convert onto a hard link of the source" 1 \
	convert data.img link.img
same_status "convert -n onto the source" 1 convert -n data.img ./data.img
case " $("$MIMG" --help | sed -n 's/^Formats://p') " in *" qcow2 "*)
	qemu-img create -q -f qcow2 -b data.img -F raw over.qcow2
	same_status "convert onto the backing file" 1 \
		convert over.qcow2 data.img
	same_status "create over its own backing file" 1 \
		create -f qcow2 -b data.img -F raw data.img
	;;
esac
cmp -s data.img data.orig || fail "the source was changed"
case " $("$MIMG" --help | sed -n 's/^Formats://p') " in *" vmdk "*)
	# the target is the flat extent the VMDK descriptor points to
	qemu-img create -q -f vmdk -o subformat=monolithicFlat flat.vmdk 1M
	qemu-io -f vmdk -c 'write -P 0x33 0 64k' flat.vmdk >/dev/null
	cp flat-flat.vmdk extent.orig
	same_status "convert onto the source's extent" 1 \
		convert -O raw flat.vmdk flat-flat.vmdk
	cmp -s flat-flat.vmdk extent.orig || fail "the extent was changed"
	;;
esac

# damaged images of the other formats: one line naming the file
formats=$("$MIMG" --help | sed -n 's/^Formats://p')
case " $formats " in *" qcow2 "*)
	printf 'QFI\373\0\0\0\003' >short.qcow2
	same_status "info: truncated qcow2 header" 1 info short.qcow2
	grep -q "short.qcow2" m.err || fail "truncated qcow2: file not named"
	qemu-img create -q -f qcow2 good.qcow2 1M
	python3 -c 'import sys
d = bytearray(open("good.qcow2", "rb").read())
d[20:24] = (99).to_bytes(4, "big")  # cluster_bits
open("bad.qcow2", "wb").write(d)'
	same_status "info: qcow2 cluster_bits 99" 1 info bad.qcow2
	grep -q "99" m.err || fail "bad cluster_bits: value not named"
	same_status "convert: damaged qcow2" 1 convert bad.qcow2 out.img
	;;
esac
case " $formats " in *" vmdk "*)
	printf 'KDMV' >bad.vmdk
	truncate -s 1000 bad.vmdk
	same_status "info: damaged vmdk" 1 info bad.vmdk
	grep -q "bad.vmdk" m.err || fail "damaged vmdk: file not named"
	;;
esac

# the statuses themselves, not only their agreement
"$MIMG" check r.img 2>/dev/null
check_eq "$?" 63 "check on raw"
"$MIMG" info missing.img 2>m.err
check_eq "$?" 1 "info on a missing file"
grep -q "missing.img" m.err || fail "the message names the file"
"$MIMG" 2>/dev/null
check_eq "$?" 1 "no arguments"

# An unknown option is worded as qemu-img words it, in every command
# (but measure, where qemu-img prints its help and exits 0).
for c in amend bench bitmap check commit compare convert create dd info map \
	rebase resize snapshot; do
	for o in --no-such-option -Z; do
		qemu-img $c $o r.img 2>q.err >/dev/null
		qs=$?
		"$MIMG" $c $o r.img 2>m.err >/dev/null
		check_eq "$?" "$qs" "$c $o: exit status"
		check_eq "$(head -1 m.err)" "$(head -1 q.err | sed 's/^qemu-img:/mimg:/')" \
			"$c $o: message"
	done
done

# --help and --version succeed and print to stdout
for c in "" info create convert check; do
	# shellcheck disable=SC2086
	"$MIMG" $c --help >h.out 2>h.err || fail "mimg $c --help failed"
	[ -s h.out ] || fail "mimg $c --help printed nothing"
	[ -s h.err ] && fail "mimg $c --help wrote to stderr"
done
"$MIMG" --version | grep -q '^mimg version [0-9]' || fail "--version"
echo "cli-errors: ok"
