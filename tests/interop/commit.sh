#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg commit against qemu-img commit on copies of the same chain: every
# image must end with the same guest content and allocation as qemu-img's,
# check clean, and the top must be emptied unless -d or -b.
. "$TESTLIB"
need qemu-img qemu-io python3
need_format qcow2

io() { qemu-io -f qcow2 "$@" > /dev/null || fail "qemu-io $*"; }

# base <- mid <- top, the top with data, a zeroed range and a compressed
# cluster, the mid with data over the base's.
qemu-img create -q -f qcow2 base.qcow2 4M
io -c 'write -P 1 0 1M' -c 'write -P 8 3M 64k' base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
io -c 'write -P 2 512k 1M' mid.qcow2
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 6M
io -c 'write -P 3 1M 64k' -c 'write -z 0 64k' -c 'write -P 4 1000k 3k' \
	-c 'write -c -P 5 2M 64k' -c 'write -P 6 5M 64k' top.qcow2
qemu-img convert -O raw top.qcow2 before.raw

# Same data allocation (runs merged, host offsets left out), backing file and
# size in each image of directories q and m.
same_layers() {
	python3 - "$@" <<'PY'
import json, subprocess, sys
def runs(path):
    out = []
    m = json.loads(subprocess.check_output(
        ["qemu-img", "map", "--output=json", path]))
    for e in m:
        e.pop("offset", None)
        # qemu-img writes zero clusters where a base grows to the top's
        # size; mimg leaves that tail unallocated: both read as zeroes.
        if e["zero"] and not e["data"]:
            e["present"] = None
        key = {k: v for k, v in e.items() if k not in ("start", "length")}
        if out and out[-1][2] == key and out[-1][0] + out[-1][1] == e["start"]:
            out[-1][1] += e["length"]
        else:
            out.append([e["start"], e["length"], key])
    return out
def info(path):
    d = json.loads(subprocess.check_output(
        ["qemu-img", "info", "--output=json", path]))
    return d.get("backing-filename"), d["virtual-size"]
for f in sys.argv[1:]:
    q, m = "q/" + f, "m/" + f
    assert runs(q) == runs(m), (f, runs(q), runs(m))
    assert info(q) == info(m), (f, info(q), info(m))
PY
}

for mode in "" "-d" "-b base.qcow2"; do
	rm -rf q m
	mkdir q m
	cp base.qcow2 mid.qcow2 top.qcow2 q/
	cp base.qcow2 mid.qcow2 top.qcow2 m/
	# shellcheck disable=SC2086
	(cd q && qemu-img commit $mode top.qcow2 > ../q.out) ||
		fail "qemu-img commit $mode"
	# shellcheck disable=SC2086
	(cd m && "$MIMG" commit $mode top.qcow2 > ../m.out) ||
		fail "mimg commit $mode"
	check_eq "$(cat m.out)" "$(cat q.out)" "output of commit $mode"
	for f in base mid top; do
		qemu-img check -q "m/$f.qcow2" || fail "check $f after commit $mode"
		qemu-img compare -q "q/$f.qcow2" "m/$f.qcow2" ||
			fail "$f content after commit $mode differs from qemu-img's"
	done
	same_layers base.qcow2 mid.qcow2 top.qcow2 ||
		fail "allocation or info after commit $mode differ"
	qemu-img compare -q -f raw -F qcow2 before.raw m/top.qcow2 ||
		fail "the top's content changed with commit $mode"
done

# The top is emptied in place (same inode), into the very bytes qemu-img
# leaves: a fresh layout for a version 3 image, every cluster unmapped
# for a version 2 one and for one holding a snapshot (kept intact).
rm -rf q m
mkdir q m
qemu-img create -q -f qcow2 q/b.qcow2 4M
io -c 'write -P 1 0 4M' q/b.qcow2
qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 q/t3.qcow2
io -c 'write -P 3 1M 64k' -c 'write -c -P 5 2M 64k' -c 'write -z 3M 64k' \
	q/t3.qcow2
qemu-img create -q -f qcow2 -o compat=0.10 -b b.qcow2 -F qcow2 q/t2.qcow2
io -c 'write -P 3 1M 128k' q/t2.qcow2
qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 q/ts.qcow2
io -c 'write -P 3 1M 128k' q/ts.qcow2
qemu-img snapshot -c snap q/ts.qcow2
io -c 'write -P 4 1M 64k' q/ts.qcow2
qemu-img convert -l snap -O raw q/ts.qcow2 snap.raw
cp q/* m/
for t in t3 t2 ts; do
	cp q/b.qcow2 q/b0.qcow2
	cp m/b.qcow2 m/b0.qcow2
	inode=$(stat -c %i "m/$t.qcow2")
	(cd q && qemu-img commit -q "$t.qcow2") || fail "qemu-img commit $t"
	(cd m && "$MIMG" commit -q "$t.qcow2") || fail "mimg commit $t"
	check_eq "$(stat -c %i "m/$t.qcow2")" "$inode" "inode of $t after commit"
	cmp -s "q/$t.qcow2" "m/$t.qcow2" ||
		fail "$t after commit differs from qemu-img's bytes"
	qemu-img check -q "m/$t.qcow2" || fail "check $t after commit"
	qemu-img compare -q "m/b.qcow2" "m/$t.qcow2" ||
		fail "$t does not read as its base after commit"
	mv q/b0.qcow2 q/b.qcow2
	mv m/b0.qcow2 m/b.qcow2
done
qemu-img convert -l snap -O raw m/ts.qcow2 m/snap.raw
cmp -s snap.raw m/snap.raw || fail "commit changed the top's snapshot"

# A base with larger clusters than the top, over a backing file of its
# own: partial writes into it must keep what its backing file shows.
rm -rf q m
mkdir q m
qemu-img create -q -f qcow2 q/b.qcow2 4M
io -c 'write -P 1 0 4M' q/b.qcow2
qemu-img create -q -f qcow2 -o cluster_size=1M -b b.qcow2 -F qcow2 q/mid.qcow2
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 q/t.qcow2
io -c 'write -P 2 1088k 64k' q/t.qcow2
cp q/b.qcow2 q/mid.qcow2 q/t.qcow2 m/
(cd q && qemu-img commit -q t.qcow2) || fail "qemu-img commit, large base clusters"
(cd m && "$MIMG" commit -q t.qcow2) || fail "mimg commit, large base clusters"
qemu-img compare -q q/mid.qcow2 m/mid.qcow2 ||
	fail "commit into a base with larger clusters lost its backing data"
qemu-img check -q m/mid.qcow2 || fail "check mid with larger clusters"

# VMDK: the data reaches the base as with qemu-img.  (Writing the base
# changes its CID, so neither tool's overlay opens afterwards: its
# parentCID no longer matches, as VMDK means it to.)
if "$MIMG" --help | grep -q '^Formats:.*vmdk'; then
	rm -rf q m
	mkdir q m
	qemu-img create -q -f vmdk q/b.vmdk 4M
	qemu-io -f vmdk -c 'write -P 1 0 64k' q/b.vmdk > /dev/null
	qemu-img create -q -f vmdk -b b.vmdk -F vmdk q/t.vmdk
	qemu-io -f vmdk -c 'write -P 2 1M 64k' q/t.vmdk > /dev/null
	cp q/b.vmdk q/t.vmdk m/
	(cd q && qemu-img commit -q t.vmdk) || fail "qemu-img commit vmdk"
	(cd m && "$MIMG" commit -q t.vmdk) || fail "mimg commit vmdk"
	qemu-img compare -q q/b.vmdk m/b.vmdk || fail "vmdk commit: base differs"
	same_layers b.vmdk || fail "vmdk commit allocation"
fi

# -q prints nothing.
cp base.qcow2 mid.qcow2 top.qcow2 m/
(cd m && "$MIMG" commit -q top.qcow2 > ../m.out 2>&1) || fail "commit -q"
check_eq "$(cat m.out)" "" "commit -q output"

# Errors: exit status and message as qemu-img's.
for args in "" "-b missing.qcow2 top.qcow2" "base.qcow2" \
	    "-t bogus top.qcow2" "top.qcow2 extra" "nosuch.qcow2" \
	    "-r abc top.qcow2" "-r -1 top.qcow2"; do
	# shellcheck disable=SC2086
	qemu-img commit $args > /dev/null 2> q.err; qs=$?
	# shellcheck disable=SC2086
	"$MIMG" commit $args > /dev/null 2> m.err; ms=$?
	check_eq "$ms" "$qs" "exit status of commit $args"
	case $args in nosuch*) continue ;; esac
	check_eq "$(head -n 1 m.err | sed 's/^mimg: //')" \
		"$(head -n 1 q.err | sed 's/^qemu-img: //')" \
		"message of commit $args"
done
# -r: 8 MiB of data committed at 4 MiB/s take at least 1.5 s (a first
# 2 MiB chunk goes at once); zeroes do not count.  Only the lower bound
# is checked; the base then reads as the overlay did.
qemu-img create -q -f qcow2 rb.qcow2 16M
qemu-img create -q -f qcow2 -b rb.qcow2 -F qcow2 rt.qcow2
io -c 'write -P 4 0 8M' -c 'write -z 8M 8M' rt.qcow2
cp rt.qcow2 rt-copy.qcow2
t0=$(date +%s%N)
"$MIMG" commit -q -r 4M rt.qcow2 || fail "commit -r 4M"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -ge 1450 ] || fail "commit -r 4M of 8 MiB took $ms ms"
qemu-img compare -q rb.qcow2 rt-copy.qcow2 || fail "commit -r: the base differs"
exit 0
