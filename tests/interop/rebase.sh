#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg rebase against qemu-img rebase done on a copy: the guest content
# must be the same before and after and equal to qemu-img's result, the
# image must check clean and name the new backing file.
. "$TESTLIB"
need qemu-img qemu-io python3
need_format qcow2

io() { qemu-io -f qcow2 "$@" > /dev/null || fail "qemu-io $*"; }

# base <- mid <- top, and an unrelated "other" of a different size.
qemu-img create -q -f qcow2 base.qcow2 8M
io -c 'write -P 1 0 1M' -c 'write -P 2 2M 1M' -c 'write -P 7 5M 100k' \
	-c 'write -c -P 8 6M 64k' base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
io -c 'write -P 3 512k 64k' -c 'write -z 2M 64k' -c 'write -P 4 7M 3k' \
	mid.qcow2
qemu-img create -q -f qcow2 other.qcow2 6M
io -c 'write -P 1 0 512k' -c 'write -P 3 2M 64k' -c 'write -P 9 4M 1M' \
	other.qcow2
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
io -c 'write -P 5 2M 64k' -c 'write -P 6 7M 4k' -c 'write -P 6 600k 1k' \
	top.qcow2
qemu-img convert -O raw top.qcow2 before.raw

# One safe rebase per target: same content, clean, new name recorded.
n=0
for target in "base.qcow2 qcow2" "other.qcow2 qcow2" "'' -"; do
	n=$((n + 1))
	eval "set -- $target"
	name=$1 fmt=$2
	fopt=""
	[ "$fmt" = - ] || fopt="-F $fmt"
	cp top.qcow2 "q$n.qcow2"
	cp top.qcow2 "m$n.qcow2"
	# shellcheck disable=SC2086
	qemu-img rebase -b "$name" $fopt "q$n.qcow2" || fail "qemu-img rebase $n"
	# shellcheck disable=SC2086
	"$MIMG" rebase -b "$name" $fopt "m$n.qcow2" || fail "mimg rebase -b '$name'"
	qemu-img check -q "m$n.qcow2" || fail "check after rebase -b '$name'"
	qemu-img compare -q -f raw -F qcow2 before.raw "m$n.qcow2" ||
		fail "content changed by rebase -b '$name'"
	qemu-img compare -q "q$n.qcow2" "m$n.qcow2" ||
		fail "differs from qemu-img rebase -b '$name'"
	qemu-img info --output=json "q$n.qcow2" > q.json
	qemu-img info --output=json "m$n.qcow2" > m.json
	python3 - q.json m.json <<'PY' || fail "info after rebase -b '$name'"
import json, sys
q, m = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("backing-filename", "backing-filename-format", "virtual-size"):
    assert q.get(k) == m.get(k), (k, q.get(k), m.get(k))
PY
	# The guest ranges the image defines itself were not rewritten.
	qemu-io -f qcow2 -c 'read -P 5 2M 64k' -c 'read -P 6 7M 4k' \
		"m$n.qcow2" | grep -q 'Pattern verification failed' &&
		fail "rebase -b '$name' changed the image's own data"
done

# -u only rewrites the header: name and format, or none without -b.
cp top.qcow2 u.qcow2
"$MIMG" rebase -u -b other.qcow2 -F qcow2 u.qcow2 || fail "rebase -u"
check_eq "$(qemu-img info --output=json u.qcow2 | python3 -c \
	'import json,sys; d=json.load(sys.stdin); print(d["backing-filename"], d["backing-filename-format"])')" \
	"other.qcow2 qcow2" "rebase -u names"
qemu-img check -q u.qcow2 || fail "check after rebase -u"
# Nothing past the header cluster changed.
tail -c +65537 top.qcow2 > a.bin
tail -c +65537 u.qcow2 > b.bin
cmp -s a.bin b.bin || fail "rebase -u changed more than the header"
"$MIMG" rebase -u u.qcow2 || fail "rebase -u without -b"
qemu-img info --output=json u.qcow2 | grep -q backing-filename &&
	fail "rebase -u without -b kept a backing file"
qemu-img check -q u.qcow2 || fail "check after removing the backing file"

# Errors: exit status and message as qemu-img's.
qemu-img create -q -f raw r.raw 1M
qemu-img create -q -f vmdk v.vmdk 1M
for args in "-b base.qcow2 -F qcow2 -f raw r.raw" \
	    "-u -b base.qcow2 -F qcow2 v.vmdk" \
	    "-b base.qcow2 top.qcow2" \
	    "-u -b base.qcow2 top.qcow2" \
	    "-b missing.qcow2 -F qcow2 top.qcow2" \
	    "-b missing.qcow2 top.qcow2" \
	    "top.qcow2" \
	    "-b base.qcow2 -F qcow2" \
	    "-b base.qcow2 -F qcow2 top.qcow2 extra" \
	    "-b top.qcow2 -F qcow2 top.qcow2"; do
	cp top.qcow2 keep.qcow2
	# shellcheck disable=SC2086
	qemu-img rebase $args > /dev/null 2> q.err; qs=$?
	cp keep.qcow2 top.qcow2
	# shellcheck disable=SC2086
	"$MIMG" rebase $args > /dev/null 2> m.err; ms=$?
	check_eq "$ms" "$qs" "exit status of rebase $args"
	# qemu-img says why it cannot open the image itself by its locks
	case $args in
	"-b top.qcow2"*) grep -q "Could not open new backing file 'top.qcow2'" m.err ||
		fail "message of rebase $args: $(cat m.err)" ;;
	*) check_eq "$(head -n 1 m.err | sed 's/^mimg: //')" \
		"$(grep -v '^WARNING\|^  ' q.err | head -n 1 | sed 's/^qemu-img: //')" \
		"message of rebase $args" ;;
	esac
	cmp -s keep.qcow2 top.qcow2 || fail "failed rebase $args changed the image"
done
exit 0
