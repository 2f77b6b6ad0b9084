#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg info --output=json against qemu-img info --output=json on the same
# files: raw files of several sizes and awkward names must give the very
# same bytes (key order, escaping, sizes); qcow2 and VMDK files made by
# qemu-img, when mimg has those drivers, the same common keys.
. "$TESTLIB"
need qemu-img qemu-io python3

formats=$("$MIMG" --help | sed -n 's/^Formats://p')
has_format() {
	case " $formats " in *" $1 "*) return 0 ;; esac
	return 1
}

n=0
# raw: sizes from empty to odd byte counts to large sparse files
for size in 0 1 512 1000 65536 1048577 3G; do
	n=$((n + 1))
	f="raw$n.img"
	truncate -s "$size" "$f" || fail "truncate $size"
	# some data so that actual-size is not always 0
	[ "$size" != 0 ] && printf 'data' | dd of="$f" conv=notrunc \
		status=none
	qemu-img info -f raw --output=json "$f" >q.json ||
		fail "qemu-img info $f"
	"$MIMG" info --output=json "$f" >m.json || fail "mimg info $f"
	cmp -s q.json m.json || {
		diff -u q.json m.json >&2
		fail "raw size $size: JSON differs from qemu-img's"
	}
	# with the format given, and the human layout too
	"$MIMG" info -f raw --output=json "$f" | cmp -s q.json - ||
		fail "raw size $size with -f raw: JSON differs"
	qemu-img info -f raw "$f" >q.txt
	"$MIMG" info "$f" >m.txt
	cmp -s q.txt m.txt || {
		diff -u q.txt m.txt >&2
		fail "raw size $size: human output differs from qemu-img's"
	}
done

# file names that need escaping in JSON (qemu escapes control
# characters and all non-ASCII as \uXXXX)
for name in 'with space.img' 'quote"back\slash.img' \
	"$(printf 'tab\there.img')" "$(printf 'caf\303\251.img')" \
	"$(printf 'bad\377utf8.img')" "$(printf 'emoji\360\237\230\200.img')"; do
	truncate -s 1M "$name"
	qemu-img info -f raw --output=json "$name" >q.json
	"$MIMG" info --output=json "$name" >m.json ||
		fail "mimg info on an awkward name"
	cmp -s q.json m.json || {
		diff -u q.json m.json >&2
		fail "escaping of file name differs from qemu-img's"
	}
	rm -f "$name"
done

# a file in another directory, named with a path
mkdir -p sub/dir
truncate -s 10M sub/dir/x.img
qemu-img info -f raw --output=json sub/dir/x.img >q.json
"$MIMG" info --output=json sub/dir/x.img >m.json
cmp -s q.json m.json || { diff -u q.json m.json >&2; fail "sub/dir path"; }

# Common keys of formats made by qemu-img (one python run per file: it
# starts slowly on a loaded machine).
compare_keys() { # FILE FMT
	qemu-img info -f "$2" --output=json "$1" >q.json ||
		fail "qemu-img info $1"
	"$MIMG" info --output=json "$1" >m.json || fail "mimg info $1"
	python3 - q.json m.json <<'PY' || fail "$1 ($2): keys differ"
import json, sys
q = json.load(open(sys.argv[1]))
m = json.load(open(sys.argv[2]))
bad = [k for k in ("virtual-size", "format", "filename", "actual-size",
                   "cluster-size", "dirty-flag") if q.get(k) != m.get(k)]
for k in bad:
    print("key %s: qemu-img %r, mimg %r" % (k, q.get(k), m.get(k)),
          file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# The whole JSON, byte for byte, including the member order qemu-img
# uses (the order of its dictionary, not of insertion).
compare_all() { # FILE
	qemu-img info --output=json "$1" >q.json || fail "qemu-img info $1"
	"$MIMG" info --output=json "$1" >m.json || fail "mimg info $1"
	cmp -s q.json m.json || {
		diff -u q.json m.json >&2
		fail "$1: JSON differs from qemu-img's"
	}
	qemu-img info "$1" >q.txt || fail "qemu-img info $1"
	"$MIMG" info "$1" >m.txt || fail "mimg info $1"
	cmp -s q.txt m.txt || {
		diff -u q.txt m.txt >&2
		fail "$1: human output differs from qemu-img's"
	}
}

if has_format qcow2; then
	qemu-img create -q -f qcow2 a.qcow2 100M
	compare_keys a.qcow2 qcow2
	compare_all a.qcow2
	qemu-img create -q -f qcow2 -o cluster_size=4k,compat=0.10 b.qcow2 \
		1G
	qemu-io -f qcow2 -c 'write -P 1 0 300k' b.qcow2 >/dev/null
	compare_keys b.qcow2 qcow2
	# backing file and an internal snapshot: every common member
	qemu-img create -q -f qcow2 -b raw6.img -F raw c.qcow2
	qemu-img snapshot -c snap1 c.qcow2
	qemu-io -f qcow2 -c 'write -P 7 0 64k' c.qcow2 >/dev/null
	qemu-img snapshot -c "second snap" c.qcow2
	compare_keys c.qcow2 qcow2
	compare_all c.qcow2
	# an explicit format wins over probing: the container as raw
	qemu-img info -f raw --output=json c.qcow2 >q.json
	"$MIMG" info -f raw --output=json c.qcow2 >m.json ||
		fail "mimg info -f raw of a qcow2 file"
	cmp -s q.json m.json || { diff -u q.json m.json >&2; fail "-f raw"; }
else
	echo "qcow2 driver not built: qcow2 part skipped"
fi

if has_format vmdk; then
	qemu-img create -q -f vmdk c.vmdk 50M
	compare_keys c.vmdk vmdk
	compare_all c.vmdk
	qemu-img convert -O vmdk -o subformat=streamOptimized raw5.img \
		d.vmdk
	compare_keys d.vmdk vmdk
	compare_all d.vmdk
else
	echo "vmdk driver not built: vmdk part skipped"
fi
echo "info-json: ok"
