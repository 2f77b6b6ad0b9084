#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Images qemu-img and qemu-io make across their options (qcow2 cluster
# sizes, extended L2, every preallocation, v2, lazy refcounts, refcount
# widths, zstd, a backing chain, a snapshot, a bitmap, an external data
# file; VMDK subformats and options, VDI, VHD, raw), each written with
# data, zeroes (kept and unmapped), discards and compressed clusters;
# then info, map, check and measure of each, in both output formats,
# and compare of pairs, must print what qemu-img prints, with its exit
# status and message, and
# each qcow2 converted to qcow2 must be the file qemu-img writes.
. "$TESTLIB"
need qemu-img qemu-io

W='write -P 1 0 1M'
OPS="$W|write -z 2M 1M|write -P 2 3M 4k|discard 512k 256k|write -z -u 6M 64k"
# Compressed clusters only into unallocated ones (not preallocated).
COPS="$OPS|write -c -P 3 4M 2M"

# make FMT NAME CREATE-OPTIONS "OP|OP|..."
make() {
	qemu-img create -q -f "$1" ${3:+-o "$3"} "$2" 8M ||
		fail "qemu-img create -f $1 -o '$3' $2"
	[ -n "$4" ] || return 0
	set -f
	old_ifs=$IFS
	IFS='|'
	set -- "$1" "$2" $4
	IFS=$old_ifs
	set +f
	fmt=$1 name=$2
	shift 2
	for op in "$@"; do
		qemu-io -f "$fmt" -c "$op" "$name" >/dev/null ||
			fail "qemu-io -c '$op' $name"
	done
}

images=
if "$MIMG" --help | grep -q '^Formats:.*qcow2'; then
	for cs in 512 4k 64k 2M; do
		for el in off on; do
			[ $el = on ] && [ $cs != 64k ] && [ $cs != 2M ] &&
				continue
			for pre in off metadata falloc full; do
				n=q-$cs-$el-$pre.qcow2
				ops=$OPS
				[ $pre = off ] && ops=$COPS
				make qcow2 $n \
					cluster_size=$cs,extended_l2=$el,preallocation=$pre \
					"$ops"
				images="$images $n"
			done
		done
	done
	make qcow2 v2.qcow2 compat=0.10 "$W|write -z 2M 1M|discard 512k 256k"
	make qcow2 lazy.qcow2 lazy_refcounts=on "$W"
	make qcow2 rc1.qcow2 refcount_bits=1 "$W|discard 0 64k"
	make qcow2 rc64.qcow2 refcount_bits=64 "$W"
	make qcow2 zstd.qcow2 compression_type=zstd "write -c -P 5 0 2M"
	make qcow2 base.qcow2 "" "$W|write -z 2M 1M"
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
	qemu-io -c 'write -P 7 512k 1M' -c 'write -z 4M 64k' \
		-c 'discard 0 64k' top.qcow2 >/dev/null
	make qcow2 snap.qcow2 "" "$W"
	qemu-img snapshot -c s1 snap.qcow2
	qemu-io -c 'write -P 9 0 64k' snap.qcow2 >/dev/null
	make qcow2 bitmap.qcow2 "" "$W"
	qemu-img bitmap --add bitmap.qcow2 b0
	make qcow2 ext.qcow2 data_file=ext.raw,data_file_raw=on "$W"
	images="$images v2.qcow2 lazy.qcow2 rc1.qcow2 rc64.qcow2 zstd.qcow2"
	# an overlay larger than its backing file: zeroes past its end
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 grown.qcow2 12M
	qemu-io -c 'write -P 8 7M 2M' grown.qcow2 >/dev/null
	images="$images base.qcow2 top.qcow2 snap.qcow2 bitmap.qcow2 ext.qcow2"
	images="$images grown.qcow2"
fi
if "$MIMG" --help | grep -q '^Formats:.*vmdk'; then
	VOPS="$W|write -z 2M 1M|write -P 2 5M 64k"
	for sf in monolithicSparse monolithicFlat twoGbMaxExtentSparse \
		twoGbMaxExtentFlat; do
		for o in "" compat6=on adapter_type=lsilogic hwversion=6; do
			n=v-$sf-${o%%=*}.vmdk
			make vmdk "$n" "subformat=$sf${o:+,$o}" "$VOPS"
			images="$images $n"
		done
	done
	make vmdk v-zeroed.vmdk zeroed_grain=on "$VOPS"
	make raw src.raw "" "$W|write -P 3 5M 64k"
	qemu-img convert -O vmdk -o subformat=streamOptimized src.raw \
		v-stream.vmdk
	images="$images v-zeroed.vmdk v-stream.vmdk"
fi
for f in vdi vpc; do
	"$MIMG" --help | grep -q "^Formats:.*$f" || continue
	make $f dyn.$f "" "$W|write -z 2M 1M|write -P 2 5M 64k"
	images="$images dyn.$f"
done
"$MIMG" --help | grep -q '^Formats:.*vdi' &&
	make vdi static.vdi static=on "$W" && images="$images static.vdi"
"$MIMG" --help | grep -q '^Formats:.*vpc' &&
	make vpc fixed.vpc subformat=fixed "$W" && images="$images fixed.vpc"
if "$MIMG" --help | grep -q '^Formats:.*parallels'; then
	for cs in 1M 64k 3000; do
		make parallels p-$cs.hdd cluster_size=$cs \
			"$W|write -z 2M 1M|write -P 2 5M 64k"
		images="$images p-$cs.hdd"
	done
fi
make raw plain.raw "" "$W|write -z 2M 1M"
images="$images plain.raw"

n=0
for f in $images; do
	for cmd in "info" "info --output=json" "info --backing-chain" \
		"map" "map --output=json" "check" "check --output=json" \
		"measure -O qcow2" "measure -O qcow2 --output=json"; do
		# mimg checks VHD images, which qemu-img cannot (status 63).
		case "$f $cmd" in *.vpc\ check*) continue ;; esac
		# shellcheck disable=SC2086 # the command's words
		qemu-img $cmd -U "$f" >q.out 2>q.err
		qs=$?
		# shellcheck disable=SC2086
		"$MIMG" $cmd -U "$f" >m.out 2>m.err
		ms=$?
		check_eq "$ms" "$qs" "$cmd $f: exit status"
		cmp -s q.out m.out || fail "$cmd $f: $(diff q.out m.out)"
		check_eq "$(sed 's/^mimg: //' m.err)" \
			"$(sed 's/^qemu-img: //' q.err)" "$cmd $f: message"
		n=$((n + 1))
	done
done

# compare of each image with the three after it, plain and strict (whose
# message names the first run whose whole block status differs).
set -- $images
for f in $images; do
	shift
	for g in $(echo "$@" | cut -d' ' -f1-3); do
		for s in "" -s; do
			qemu-img compare $s -U "$f" "$g" >q.out 2>&1
			qs=$?
			"$MIMG" compare $s -U "$f" "$g" >m.out 2>&1
			ms=$?
			check_eq "$ms" "$qs" "compare $s $f $g: exit status"
			check_eq "$(sed 's/^mimg: //' m.out)" \
				"$(sed 's/^qemu-img: //' q.out)" \
				"compare $s $f $g"
			n=$((n + 1))
		done
	done
done
echo "$n outputs of $(echo $images | wc -w) images as qemu-img's"

# convert -O qcow2 of the qcow2 images: the same file, byte for byte,
# for every uncompressed layout; compressed, no larger than qemu-img's
# and ending on a whole sector as its does.
n=0
for f in $images; do
	case $f in *.qcow2) ;; *) continue ;; esac
	[ "$f" = ext.qcow2 ] && continue
	for o in "" "-o cluster_size=4k" "-o extended_l2=on" \
		"-o preallocation=metadata" "-S 0" "-o compat=0.10" \
		"-o refcount_bits=1,lazy_refcounts=on" "--bitmaps" "-c" \
		"-c -o compression_type=zstd,cluster_size=4k"; do
		rm -f q.out.qcow2 m.out.qcow2
		# shellcheck disable=SC2086 # the options' words
		qemu-img convert -O qcow2 $o "$f" q.out.qcow2 2>q.err
		qs=$?
		# shellcheck disable=SC2086
		"$MIMG" convert -O qcow2 $o "$f" m.out.qcow2 2>m.err
		check_eq "$?" "$qs" "convert $o $f: exit status"
		check_eq "$(sed 's/^mimg: //' m.err)" \
			"$(sed 's/^qemu-img: //' q.err)" "convert $o $f: message"
		n=$((n + 1))
		[ "$qs" = 0 ] || continue # (v2 images have no bitmaps)
		case $o in
		-c*)
			qemu-img check -q m.out.qcow2 ||
				fail "convert $o $f: qemu-img check"
			qemu-img compare -q q.out.qcow2 m.out.qcow2 ||
				fail "convert $o $f: content"
			qsz=$(stat -c %s q.out.qcow2) msz=$(stat -c %s m.out.qcow2)
			[ "$msz" -le "$qsz" ] && [ $((msz % 512)) = 0 ] ||
				fail "convert $o $f: $msz bytes, qemu-img $qsz"
			;;
		*)
			cmp -s q.out.qcow2 m.out.qcow2 ||
				fail "convert $o $f: $(cmp q.out.qcow2 m.out.qcow2)"
			;;
		esac
	done
done

# The target's backing file given in -o, not -B: an overlay just the
# same (the file qemu-img writes), with qemu-img's errors.
if [ -f top.qcow2 ]; then
	for t in qemu-img "$MIMG"; do
		rm -f o-$n.qcow2
		"$t" convert -O qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 \
			top.qcow2 o-$n.qcow2 || fail "$t convert -o backing_file"
		n=$((n + 1))
	done
	cmp -s o-$((n - 2)).qcow2 o-$((n - 1)).qcow2 ||
		fail "convert -o backing_file: not qemu-img's file"
	for args in "-o backing_file=base.qcow2 top.qcow2" \
		"-o backing_file=base.qcow2,backing_fmt=qcow2 top.qcow2 base.qcow2"; do
		# shellcheck disable=SC2086 # the arguments' words
		qemu-img convert -O qcow2 $args err.qcow2 2>q.err
		qs=$?
		# shellcheck disable=SC2086
		"$MIMG" convert -O qcow2 $args err.qcow2 2>m.err
		check_eq "$?" "$qs" "convert $args: exit status"
		check_eq "$(sed 's/^mimg: //' m.err)" \
			"$(sed 's/^qemu-img: //' q.err)" "convert $args"
	done
	# rebase, unsafe and safe: the header (extensions in qemu's order)
	# and the copied data as qemu-img leaves them.
	for args in "-u -b snap.qcow2 -F qcow2" "-u -b base.qcow2 -F raw" \
		"-u -b ''" "-b ''" "-b snap.qcow2 -F qcow2"; do
		cp top.qcow2 rq.qcow2
		cp top.qcow2 rm.qcow2
		eval qemu-img rebase "$args" rq.qcow2 ||
			fail "qemu-img rebase $args"
		eval "\"\$MIMG\"" rebase "$args" rm.qcow2 ||
			fail "mimg rebase $args"
		cmp -s rq.qcow2 rm.qcow2 ||
			fail "rebase $args: $(cmp rq.qcow2 rm.qcow2)"
		n=$((n + 1))
	done
	# qemu-img prints this error but exits with status 0.
	qemu-img create -q -f qcow2 z.qcow2 8M
	"$MIMG" convert -n --target-is-zero -B base.qcow2 -F qcow2 top.qcow2 \
		z.qcow2 2>m.err && fail "--target-is-zero with -B: status 0"
	qemu-img convert -n --target-is-zero -B base.qcow2 -F qcow2 top.qcow2 \
		z.qcow2 2>q.err
	check_eq "$(sed 's/^mimg: //' m.err)" "$(sed 's/^qemu-img: //' q.err)" \
		"--target-is-zero with a backing file"
fi
echo "PASS, and $n conversions to qcow2 as qemu-img's"
