#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Persistent qcow2 bitmaps against qemu: bitmaps that mimg adds, changes
# and removes are what qemu-img bitmap makes of the same actions (info,
# check, content); each tool reads the other's; writes through mimg
# (bench -w, convert -n, resize) leave the dirty maps qemu leaves for the
# same writes (read back by qemu-nbd and nbdinfo); a killed writer leaves
# them in use, never a damaged image; convert --bitmaps copies them both
# ways; options, messages and exit codes as qemu-img bitmap's.
. "$TESTLIB"
need qemu-img qemu-io qemu-nbd nbdinfo python3
"$MIMG" --help | grep -q '^Formats:.*qcow2' || { echo "SKIP: no qcow2"; exit 77; }
n=0

# dmap IMG NAME: the dirty map of bitmap NAME of IMG, as qemu serves it.
dmap() {
	nbdinfo --map="qemu:dirty-bitmap:$2" -- \
		[ qemu-nbd -r -B "$2" -f qcow2 "$1" ] ||
		fail "qemu-nbd/nbdinfo cannot read bitmap $2 of $1"
}

# bitmaps IMG: the bitmaps qemu-img info lists (names, flags, sizes).
bitmaps() {
	qemu-img info -f qcow2 "$1" > info.txt || fail "qemu-img info $1"
	sed -n '/^    bitmaps:/,/^    [a-z]/p' info.txt
}

# same A B NAME...: A and B hold the same bitmaps, the same content, the
# same dirty maps for each NAME, and pass qemu-img check.
same() {
	a=$1 b=$2
	shift 2
	bitmaps "$a" > a.bm
	bitmaps "$b" > b.bm
	cmp -s a.bm b.bm || fail "bitmaps differ: $a: $(cat a.bm) $b: $(cat b.bm)"
	for i in "$a" "$b"; do
		qemu-img check -q -f qcow2 "$i" || fail "qemu-img check $i"
	done
	qemu-img compare -q -f qcow2 -F qcow2 "$a" "$b" ||
		fail "content of $a and $b differs"
	for name in "$@"; do
		dmap "$a" "$name" > a.map
		dmap "$b" "$name" > b.map
		cmp -s a.map b.map || fail "bitmap $name: $a:
$(cat a.map)
$b:
$(cat b.map)"
	done
	n=$((n + 1))
}

# pair: q.qcow2 and m.qcow2, the same fresh 64 MiB image.
pair() {
	qemu-img create -q -f qcow2 ${1:+-o "$1"} q.qcow2 64M
	cp q.qcow2 m.qcow2
}

# run_both NAME ARGS...: qemu-img bitmap ARGS on q.qcow2 and mimg
# bitmap ARGS on m.qcow2, each required to succeed.
run_both() {
	name=$1
	shift
	qemu-img bitmap "$@" q.qcow2 "$name" > q.out 2>&1 ||
		fail "qemu-img bitmap $* q.qcow2 $name: $(cat q.out)"
	"$MIMG" bitmap "$@" m.qcow2 "$name" > m.out 2>&1 ||
		fail "mimg bitmap $* m.qcow2 $name: $(cat m.out)"
}

# 1. Adding, with each granularity form, and reading the other's.
pair
run_both b0 --add
run_both fine --add -g 512
run_both big --add --granularity 2M
run_both off --add --disable
run_both max --add -g 2G
same q.qcow2 m.qcow2 b0 fine big off
"$MIMG" info q.qcow2 | sed -n '/^    bitmaps:/,/^    [a-z]/p' > mi.txt
bitmaps q.qcow2 > qi.txt
cmp -s mi.txt qi.txt || fail "mimg info lists other bitmaps: $(cat mi.txt)"
for cs in 512 2M; do
	qemu-img create -q -f qcow2 -o cluster_size=$cs c.qcow2 8M
	cp c.qcow2 d.qcow2
	qemu-img bitmap --add c.qcow2 x
	"$MIMG" bitmap --add d.qcow2 x || fail "add (cluster size $cs)"
	same c.qcow2 d.qcow2 x
done

# 2. Writes: mimg records what qemu records for the same requests.
for tool in qemu-img "$MIMG"; do
	"$tool" bench -q -w -c 5 -s 6k -S 3M -o 100k -f qcow2 \
		"$([ "$tool" = qemu-img ] && echo q || echo m).qcow2" ||
		fail "$tool bench -w"
done
same q.qcow2 m.qcow2 b0 fine big off max
qemu-img create -q -f raw src.raw 64M
qemu-io -f raw -c 'write -P 7 1M 70k' -c 'write -P 9 40M 512' src.raw \
	> /dev/null
qemu-img convert -n -f raw -O qcow2 src.raw q.qcow2
"$MIMG" convert -n -f raw -O qcow2 src.raw m.qcow2 || fail "convert -n"
same q.qcow2 m.qcow2 b0 fine big off
# a bitmap mimg added records qemu's writes as one qemu added does
"$MIMG" bitmap --add q.qcow2 fresh || fail "add fresh"
qemu-img bitmap --add m.qcow2 fresh
qemu-io -f qcow2 -c 'write 5M 1k' -c 'write -z 9M 128k' -c 'discard 20M 64k' \
	q.qcow2 > /dev/null
qemu-io -f qcow2 -c 'write 5M 1k' -c 'write -z 9M 128k' -c 'discard 20M 64k' \
	m.qcow2 > /dev/null
same q.qcow2 m.qcow2 fresh fine
"$MIMG" bench -q -w -c 2 -s 64k -o 30M -f qcow2 m.qcow2 || fail "bench"
qemu-img bench -q -w -c 2 -s 64k -o 30M -f qcow2 q.qcow2
same q.qcow2 m.qcow2 fresh fine b0

# 3. Changes, several actions per call, in order; merges across
# granularities and files.
run_both fine --clear --disable
run_both big --merge fine
run_both fine --merge b0 --enable
run_both b0 --remove
run_both off --enable --clear --merge big
qemu-img create -q -f qcow2 other.qcow2 64M
qemu-img bitmap --add -g 1M other.qcow2 o1
qemu-io -f qcow2 -c 'write 50M 4k' other.qcow2 > /dev/null
run_both fresh --merge o1 --source-file other.qcow2 --source-format qcow2
run_both new --add -g 4k --merge o1 -b other.qcow2
same q.qcow2 m.qcow2 fine big off fresh new
# writes after the changes, then a resize both ways
"$MIMG" bench -q -w -c 3 -s 512 -S 7M -o 1k -f qcow2 m.qcow2 || fail bench
qemu-img bench -q -w -c 3 -s 512 -S 7M -o 1k -f qcow2 q.qcow2
same q.qcow2 m.qcow2 fine big off fresh new
qemu-img resize -q q.qcow2 100M
"$MIMG" resize -q m.qcow2 100M || fail "resize 100M"
same q.qcow2 m.qcow2 fine big fresh
qemu-img resize -q --shrink q.qcow2 40M
"$MIMG" resize -q --shrink m.qcow2 40M || fail "resize --shrink"
same q.qcow2 m.qcow2 fine big off fresh new

# 4. convert --bitmaps, both ways.
rm -f qc.qcow2 mc.qcow2
qemu-img convert --bitmaps -O qcow2 m.qcow2 qc.qcow2
"$MIMG" convert --bitmaps -O qcow2 q.qcow2 mc.qcow2 ||
	fail "convert --bitmaps"
same qc.qcow2 mc.qcow2 fine big off fresh new max
same m.qcow2 mc.qcow2 fine big off fresh new

# 5. A writer killed while the image is open leaves its enabled bitmaps
# in use, the disabled ones as they were, and a sound image.
cp m.qcow2 k.qcow2
qemu-img bitmap --disable k.qcow2 big
"$MIMG" bench -q -w -c 100000000 -s 4k -S 0 -f qcow2 k.qcow2 &
pid=$!
sleep 0.5
kill -9 $pid
wait $pid 2>/dev/null
bitmaps k.qcow2 > k.bm
# every enabled bitmap (auto) is in use, no disabled one is
grep -c 'auto' k.bm > k.auto
grep -c 'in-use' k.bm > k.inuse
cmp -s k.auto k.inuse && ! grep -B3 'name: big' k.bm | grep -q in-use ||
	fail "after kill -9: $(cat k.bm)"
qemu-img check -q -f qcow2 k.qcow2 > /dev/null 2>&1
[ $? -le 3 ] || fail "check after kill -9"
dmap k.qcow2 big > k.map
dmap m.qcow2 big > m.map
cmp -s k.map m.map || fail "a disabled bitmap changed"
# convert refuses the inconsistent ones, or skips them
rm -f x.qcow2
"$MIMG" convert --bitmaps -O qcow2 k.qcow2 x.qcow2 2> m.err &&
	fail "convert --bitmaps of an inconsistent bitmap"
qemu-img convert --bitmaps -O qcow2 k.qcow2 y.qcow2 2> q.err
sed 's/^qemu-img: //' q.err > q.msg
sed 's/^mimg: //' m.err > m.msg
cmp -s q.msg m.msg || fail "convert --bitmaps in use: $(cat m.msg)"
rm -f x.qcow2 y.qcow2
"$MIMG" convert --bitmaps --skip-broken-bitmaps -O qcow2 k.qcow2 x.qcow2 \
	2> m.err || fail "--skip-broken-bitmaps"
qemu-img convert --bitmaps --skip-broken-bitmaps -O qcow2 k.qcow2 y.qcow2 \
	2> q.err
sed 's/^qemu-img: //' q.err > q.msg
sed 's/^mimg: //' m.err > m.msg
cmp -s q.msg m.msg || fail "--skip-broken-bitmaps: $(cat m.msg)"
same x.qcow2 y.qcow2 big
n=$((n + 2))

# 6. Refusals: status and message as qemu-img's.
same_err() {
	qemu-img "$@" > q.out 2>&1
	qs=$?
	"$MIMG" "$@" > m.out 2>&1
	check_eq "$?" "$qs" "$*: exit status"
	sed 's/^qemu-img: //' q.out > q.msg
	sed 's/^mimg: //' m.out > m.msg
	cmp -s q.msg m.msg || fail "$*: '$(cat m.msg)' (qemu-img: '$(cat q.msg)')"
	n=$((n + 1))
}
# qemu-img names its node ("#block123") where mimg names the file
same_status() {
	qemu-img "$@" > /dev/null 2>&1
	qs=$?
	"$MIMG" "$@" > /dev/null 2>&1
	check_eq "$?" "$qs" "$*: exit status"
	n=$((n + 1))
}
pair
qemu-img bitmap --add q.qcow2 b0
cp q.qcow2 m.qcow2
long=$(printf '%1024s' '' | tr ' ' n)
same_err bitmap q.qcow2 b0
same_err bitmap --add q.qcow2
same_err bitmap --add q.qcow2 b1 extra
same_err bitmap --remove -g 64k q.qcow2 b0
same_err bitmap --add -F qcow2 q.qcow2 b1
same_err bitmap --add -b other.qcow2 q.qcow2 b1
same_err bitmap --add q.qcow2 b0
same_err bitmap --add q.qcow2 ''
for g in 1000 256 4G abc -5; do
	same_err bitmap --add -g $g q.qcow2 b1
done
for op in --remove --clear --enable --disable '--merge nope'; do
	same_err bitmap $op q.qcow2 nope
done
same_err bitmap --merge nope q.qcow2 b0
same_err bitmap --merge b0 q.qcow2 nope
same_status bitmap --add nonexist.qcow2 b1
same_status bitmap --add q.qcow2 "$long"
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 1M
same_status bitmap --add v2.qcow2 b
qemu-img create -q -f raw r.raw 1M
same_status bitmap --add -f raw r.raw b
same_err bitmap --remove -f raw r.raw b
same_status bitmap --bogus q.qcow2 b0
# the actions before a failure stay
qemu-img bitmap --add --disable --add q.qcow2 b5 > q.out 2>&1 &&
	fail "qemu-img added b5 twice"
"$MIMG" bitmap --add --disable --add m.qcow2 b5 > m.out 2>&1 &&
	fail "mimg added b5 twice"
sed 's/^qemu-img: //' q.out > q.msg
sed 's/^mimg: //' m.out > m.msg
cmp -s q.msg m.msg || fail "--add --disable --add: $(cat m.msg)"
same q.qcow2 m.qcow2 b0 b5
# bitmaps in use (inconsistent) can only be removed
python3 - q.qcow2 b0 <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
h = f.read(4096)
p = struct.unpack(">I", h[100:104])[0]
while True:
    t, l = struct.unpack(">II", h[p:p + 8])
    if t == 0:
        sys.exit("no bitmaps extension")
    if t == 0x23852875:
        n, _, size, off = struct.unpack(">IIQQ", h[p + 8:p + 32])
        break
    p += 8 + ((l + 7) & ~7)
f.seek(off)
d = f.read(size)
e = 0
while e < size:
    nl, xl = struct.unpack(">HI", d[e + 18:e + 24])
    if d[e + 24 + xl:e + 24 + xl + nl] == sys.argv[2].encode():
        fl = struct.unpack(">I", d[e + 12:e + 16])[0]
        f.seek(off + e + 12)
        f.write(struct.pack(">I", fl | 1))
        break
    e += (24 + xl + nl + 7) & ~7
PY
cp q.qcow2 m.qcow2
for op in --clear --enable --disable '--merge b5'; do
	same_err bitmap $op q.qcow2 b0
done
same_err bitmap --merge b0 q.qcow2 b5
run_both b0 --remove
same q.qcow2 m.qcow2 b5
same_err convert --skip-broken-bitmaps -O qcow2 q.qcow2 z.qcow2
same_err convert --bitmaps -O raw q.qcow2 z.raw
echo "ok: $n comparisons with qemu-img bitmap, qemu-nbd and nbdinfo"
