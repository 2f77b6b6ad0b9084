#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg info --backing-chain --output=json against qemu-img's on a qcow2
# chain (relative names, a subdirectory, a raw base): the same images in
# the same order with the same common and backing keys; and the data read
# through the chain is what qemu-img reads.
. "$TESTLIB"
need qemu-img qemu-io python3

formats=$("$MIMG" --help | sed -n 's/^Formats://p')
case " $formats " in
*" qcow2 "*) ;;
*) echo "SKIP: mimg has no qcow2 driver"; exit 77 ;;
esac

mkdir -p imgs/base
qemu-img create -q -f raw imgs/base/base.raw 4M
qemu-io -f raw -c 'write -P 0x11 0 1M' imgs/base/base.raw >/dev/null
qemu-img create -q -f qcow2 -b base/base.raw -F raw imgs/mid.qcow2 6M
qemu-io -f qcow2 -c 'write -P 0x22 512k 64k' imgs/mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=4k -b mid.qcow2 -F qcow2 \
	imgs/top.qcow2
qemu-io -f qcow2 -c 'write -P 0x33 5M 4k' imgs/top.qcow2 >/dev/null

compare_chain() { # FILE
	qemu-img info --backing-chain --output=json "$1" >q.json ||
		fail "qemu-img info --backing-chain $1"
	"$MIMG" info --backing-chain --output=json "$1" >m.json ||
		fail "mimg info --backing-chain $1"
	python3 - q.json m.json <<'PY' || fail "chain of $1 differs"
import json, sys
q = json.load(open(sys.argv[1]))
m = json.load(open(sys.argv[2]))
if not isinstance(m, list) or len(m) != len(q):
    sys.exit("mimg lists %s images, qemu-img %d" %
             (len(m) if isinstance(m, list) else "no list of", len(q)))
keys = ["filename", "format", "virtual-size", "actual-size",
        "cluster-size", "dirty-flag", "backing-filename",
        "full-backing-filename", "backing-filename-format"]
bad = 0
for i, (a, b) in enumerate(zip(q, m)):
    for k in keys:
        if a.get(k) != b.get(k):
            print("image %d key %s: qemu-img %r, mimg %r" %
                  (i, k, a.get(k), b.get(k)), file=sys.stderr)
            bad += 1
sys.exit(1 if bad else 0)
PY
}

compare_chain imgs/top.qcow2
compare_chain imgs/mid.qcow2
# and the very same bytes, in both layouts
for out in human json; do
	qemu-img info --backing-chain --output=$out imgs/top.qcow2 >q.out
	"$MIMG" info --backing-chain --output=$out imgs/top.qcow2 >m.out
	cmp -s q.out m.out || { diff -u q.out m.out >&2; fail "chain ($out)"; }
done
(cd imgs && compare_chain top.qcow2) || exit 1
compare_chain "$T/imgs/top.qcow2"

# without --backing-chain only the top image, still with its backing keys
qemu-img info --output=json imgs/top.qcow2 >q1.json
"$MIMG" info --output=json imgs/top.qcow2 >m1.json
python3 - q1.json m1.json <<'PY' || fail "top image info differs"
import json, sys
q = json.load(open(sys.argv[1]))
m = json.load(open(sys.argv[2]))
keys = ("backing-filename", "full-backing-filename",
        "backing-filename-format", "virtual-size", "filename")
bad = [k for k in keys if k not in q or q.get(k) != m.get(k)]
for k in bad:
    print("key %s: qemu-img %r, mimg %r" % (k, q.get(k), m.get(k)),
          file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# a chain that loops: both refuse with status 1 and print no images
qemu-img create -q -f qcow2 loop-a.qcow2 1M
qemu-img create -q -f qcow2 -b loop-a.qcow2 -F qcow2 loop-b.qcow2
qemu-img rebase -u -b loop-b.qcow2 -F qcow2 loop-a.qcow2
for out in human json; do
	qemu-img info --backing-chain --output=$out loop-b.qcow2 >q.out 2>q.err
	qs=$?
	"$MIMG" info --backing-chain --output=$out loop-b.qcow2 >m.out 2>m.err
	check_eq "$?" "$qs" "info --backing-chain of a loop ($out)"
	check_eq "$(cat m.out)" "" "info of a loop printed images ($out)"
	grep -q "infinite loop" m.err || fail "loop message: $(cat m.err)"
done
"$MIMG" convert loop-b.qcow2 loop.raw 2>m.err && fail "converted a loop"

# a missing image down the chain: an error and nothing printed
qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 orphan.qcow2 1M
"$MIMG" info --backing-chain --output=json orphan.qcow2 >m.out 2>m.err &&
	fail "info --backing-chain with a missing backing file succeeded"
check_eq "$(cat m.out)" "" "partial chain printed"
grep -q "gone.qcow2" m.err || fail "missing backing file not named"

# plain info does not open backing files: a missing one is still named,
# with the path it resolves to, exactly as qemu-img prints it
mkdir -p d
qemu-img create -q -f qcow2 -u -b ../x/gone.qcow2 -F qcow2 d/o2.qcow2 1M
for f in orphan.qcow2 d/o2.qcow2; do
	qemu-img info --output=json "$f" >q.json
	"$MIMG" info --output=json "$f" >m.json || fail "mimg info $f"
	cmp -s q.json m.json || { diff -u q.json m.json >&2; fail "$f JSON"; }
	qemu-img info "$f" >q.txt
	"$MIMG" info "$f" >m.txt || fail "mimg info $f"
	cmp -s q.txt m.txt || { diff -u q.txt m.txt >&2; fail "$f human"; }
done

# data through the chain: convert and compare with qemu-img
"$MIMG" convert -O raw imgs/top.qcow2 flat.img || fail "convert chain"
qemu-img compare -q imgs/top.qcow2 flat.img || fail "chain content"

# the untrusted mode refuses to follow the chain
"$MIMG" convert --untrusted -O raw imgs/top.qcow2 no.img 2>err.txt &&
	fail "--untrusted followed a backing file"
grep -q "mid.qcow2" err.txt || fail "untrusted refusal names the file"
echo "backing-chain: ok"
