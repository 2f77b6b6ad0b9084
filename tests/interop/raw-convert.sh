#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg convert of a sparse raw image with random data, zero-filled blocks
# and holes: qemu-img compare says the content is identical, and mimg's
# output allocates no more than qemu-img convert's.  Also -S 0, -n with
# and without --target-is-zero, and a source in another format made by
# qemu-img when mimg has that driver.
. "$TESTLIB"
need qemu-img dd du python3

formats=$("$MIMG" --help | sed -n 's/^Formats://p')

# 64 MiB virtual: random data at 1M, 9M+4k, 30M; zeroes written at 20M
# (allocated but zero) and inside the data at 31M; data in the last KiB.
truncate -s 64M src.img
put_random src.img 1024 512
put_random src.img 9220 4
put_random src.img 30720 2048
put_zero src.img 20480 1024
put_zero src.img 31744 64
put_random src.img 65535 1

alloc() { du -k "$1" | cut -f1; }

"$MIMG" convert -f raw -O raw src.img m.img || fail "mimg convert"
qemu-img convert -f raw -O raw src.img q.img || fail "qemu-img convert"
qemu-img compare -q -f raw -F raw src.img m.img ||
	fail "mimg's copy differs from the source"
check_eq "$(stat -c %s m.img)" "$(stat -c %s q.img)" "output size"
[ "$(alloc m.img)" -le "$(alloc q.img)" ] ||
	fail "mimg output allocates $(alloc m.img)k, qemu-img's $(alloc q.img)k"
[ "$(alloc m.img)" -lt "$(alloc src.img)" ] ||
	fail "zero blocks were written"

# the probed source format works as well, and -p/-q do not change data
"$MIMG" convert -q -p src.img m2.img || fail "mimg convert (probed)"
cmp -s m.img m2.img || fail "probed conversion differs"

# -S 0: every byte written, like qemu-img -S 0
"$MIMG" convert -S 0 -O raw src.img full.img || fail "mimg convert -S 0"
qemu-img convert -S 0 -f raw -O raw src.img qfull.img
qemu-img compare -q src.img full.img || fail "-S 0 content"
[ "$(alloc full.img)" -ge 65536 ] ||
	fail "-S 0 left holes: $(alloc full.img)k allocated"
[ "$(alloc qfull.img)" -ge 65536 ] || fail "qemu-img -S 0 left holes"

# other -S sizes qemu-img accepts: multiples of 512 up to 16M
for s in 64k 1536 4M 16M; do
	"$MIMG" convert -S $s src.img s.img || fail "mimg convert -S $s"
	qemu-img convert -S $s -O raw src.img qs.img
	qemu-img compare -q src.img s.img || fail "-S $s content"
	# mimg looks for zeroes in blocks at multiples of the size: with a
	# size that is not a power of two, blocks straddle file system
	# blocks and a few more may be allocated than with qemu-img
	[ $s = 1536 ] || [ "$(alloc s.img)" -le "$(alloc qs.img)" ] ||
		fail "-S $s: mimg allocates $(alloc s.img)k, qemu-img $(alloc qs.img)k"
	rm -f s.img qs.img
done

# -n over a target full of garbage
garbage() { # FILE MIB
	python3 -c 'import sys
sys.stdout.buffer.write(b"\xa5" * (int(sys.argv[1]) << 20))' "$2" >"$1"
}
garbage g.img 64
"$MIMG" convert -n -O raw src.img g.img || fail "mimg convert -n"
qemu-img compare -q src.img g.img || fail "-n over garbage: content"
[ "$(alloc g.img)" -le "$(alloc q.img)" ] ||
	fail "-n: zero ranges were not deallocated ($(alloc g.img)k)"

# --target-is-zero on a target that does read as zeroes
truncate -s 64M z.img
"$MIMG" convert -n --target-is-zero src.img z.img ||
	fail "mimg convert --target-is-zero"
qemu-img compare -q src.img z.img || fail "--target-is-zero: content"
[ "$(alloc z.img)" -le "$(alloc q.img)" ] ||
	fail "--target-is-zero wrote zeroes"

# over garbage, --target-is-zero is taken at its word: the zero ranges
# are not written, exactly as qemu-img leaves them
garbage gm.img 64
cp gm.img gq.img
"$MIMG" convert -n --target-is-zero src.img gm.img ||
	fail "mimg convert --target-is-zero over garbage"
qemu-img convert -n --target-is-zero -f raw -O raw src.img gq.img
cmp -s gm.img gq.img ||
	fail "--target-is-zero over garbage: not what qemu-img leaves"
rm -f gm.img gq.img

# a larger existing target keeps its tail, as with qemu-img -n
garbage big.img 65
"$MIMG" convert -n src.img big.img || fail "mimg convert -n (larger)"
# qemu-img compare would flag the tail: check head and tail separately
cmp -n 67108864 src.img big.img || fail "larger target: head"
tail -c 1048576 big.img | python3 -c 'import sys
d = sys.stdin.buffer.read(); sys.exit(0 if d == b"\xa5" * len(d) else 1)' ||
	fail "larger target: tail was touched"

# output options: preallocation as qemu-img applies it
for p in falloc full; do
	"$MIMG" convert -O raw -o preallocation=$p src.img p.img ||
		fail "mimg convert -o preallocation=$p"
	qemu-img compare -q src.img p.img || fail "preallocation=$p content"
	[ "$(alloc p.img)" -ge 65536 ] ||
		fail "preallocation=$p: only $(alloc p.img)k allocated"
	rm -f p.img
done

# sources in other formats, made by qemu-img
for f in qcow2 vmdk; do
	case " $formats " in *" $f "*) ;; *) continue ;; esac
	qemu-img convert -f raw -O "$f" src.img "src.$f"
	"$MIMG" convert -O raw "src.$f" "from-$f.img" || fail "$f -> raw"
	qemu-img compare -q -f raw -F raw src.img "from-$f.img" ||
		fail "$f -> raw content"
	[ "$(alloc "from-$f.img")" -le "$(alloc q.img)" ] ||
		fail "$f -> raw allocation"
done
echo "raw-convert: ok"
