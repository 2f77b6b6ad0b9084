#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# What tools that drive qemu-img rely on: the version line (Cinder parses
# "qemu-img version ([0-9.]*)"), message prefixes under the qemu-img name,
# "file:" image names, and create taking its size from the backing file
# or, with -u, not opening the backing file at all.
. "$TESTLIB"
need qemu-img python3

# --version: mimg's own line, and qemu-img's when run under that name.
"$MIMG" --version | head -n 1 | grep -q '^mimg version [0-9.]*$' ||
	fail "mimg --version first line"
ln -s "$MIMG" qemu-img

# both ARGS...: run qemu-img and mimg (under qemu-img's name) with ARGS,
# stderr in q.err and m.err, exit statuses in qs and ms, and check that
# the statuses are the same.
both() {
	qemu-img "$@" > /dev/null 2> q.err; qs=$?
	./qemu-img "$@" > /dev/null 2> m.err; ms=$?
	check_eq "$ms" "$qs" "exit status of '$*'"
}
line=$(./qemu-img --version | head -n 1)
python3 - "$line" <<'PY' || fail "qemu-img personality version: $line"
import re, sys
m = re.match(r"qemu-img version ([0-9.]*)", sys.argv[1])
assert m and m.group(1) == "7.2.0", sys.argv[1]
PY
./qemu-img -V | head -n 1 | grep -q '^qemu-img version 7\.2\.0 ' ||
	fail "-V"

# Error messages: same prefix, hint and exit status as qemu-img.
truncate -s 1M e.raw
for args in "" "nosuchcommand" "info" "bench -t bogus e.raw" \
	"convert -T bogus e.raw n.raw" "compare -T bogus e.raw e.raw" \
	"check -T bogus e.raw"; do
	# shellcheck disable=SC2086
	both $args
	check_eq "$(head -c 10 m.err)" "qemu-img: " "prefix of '$args'"
	check_eq "$(tail -n 1 m.err)" "$(tail -n 1 q.err)" "hint of '$args'"
done
check_eq "$(./qemu-img 2>&1)" "$(qemu-img 2>&1)" "no-argument message"
# Where several errors apply, the one qemu-img reports first, in its
# words (--image-opts with -f is refused when the image is opened, after
# the argument count).
for args in "compare --image-opts -f raw e.raw" "info --image-opts -f raw" \
	"info --image-opts -f raw e.raw" "map --image-opts -f raw e.raw e.raw" \
	"convert e.raw" "convert --image-opts -f raw e.raw n.raw" \
	"convert -c -C e.raw" "convert --target-is-zero e.raw" \
	"convert -n -o cluster_size=4k e.raw" \
	"measure -f raw" "measure -f raw --size 1M e.raw" \
	"resize -f raw e.raw 1X" "resize -f raw e.raw +99999999999999999999" \
	"resize -f raw e.raw 8E" "resize -f raw e.raw 15.9e" \
	"resize -f raw e.raw 18446744073709551615" "resize -f raw e.raw 16E" \
	"resize -f raw none.raw 8E"; do
	# shellcheck disable=SC2086
	both $args
	check_eq "$(cat m.err)" "$(cat q.err)" "message of '$args'"
done
[ ! -e n.raw ] || fail "convert refusing --image-opts with -f made n.raw"
# -T (the source's cache mode) is taken where qemu-img takes it.
for args in "compare -T none e.raw e.raw" "check -T none -f raw e.raw"; do
	# shellcheck disable=SC2086
	both $args
done

# file: prefixes name plain files, everywhere an image is named.
qemu-img create -q -f qcow2 base.qcow2 3M
"$MIMG" info file:base.qcow2 > m.txt || fail "info file:"
qemu-img info file:base.qcow2 > q.txt
cmp -s m.txt q.txt || fail "info file: output: $(diff q.txt m.txt)"
"$MIMG" create -q -f qcow2 -b file:base.qcow2 -F qcow2 file:top.qcow2 ||
	fail "create with file: names"
check_eq "$(qemu-img info --output=json top.qcow2 |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["backing-filename"])')" \
	base.qcow2 "backing name given as file:"
"$MIMG" compare -q file:base.qcow2 file:top.qcow2 || fail "compare file:"
"$MIMG" check -q file:top.qcow2 || fail "check file:"
"$MIMG" convert -O raw file:top.qcow2 file:top.raw || fail "convert file:"
[ -f top.raw ] || fail "convert file: made no top.raw"

# qemu-img records "-b file:NAME" as given; the backing file opens.
qemu-img create -q -f qcow2 -b file:base.qcow2 -F qcow2 qtop.qcow2
"$MIMG" compare -q qtop.qcow2 base.qcow2 || fail "backing name file:base.qcow2"

# json: names are refused, never interpreted.
"$MIMG" info 'json:{"file":{"driver":"file","filename":"base.qcow2"}}' \
	> /dev/null 2> m.err && fail "json: name was accepted"
grep -q 'json:' m.err || fail "json: refusal does not say why: $(cat m.err)"

# create without a size takes the backing file's, with -o as with -b.
"$MIMG" create -q -f qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 \
	o.qcow2 || fail "create -o backing_file without a size"
check_eq "$(qemu-img info --output=json o.qcow2 |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" \
	3145728 "size taken from the backing file"
qemu-img check -q o.qcow2 || fail "qemu-img check of o.qcow2"

# -u: the backing file is not opened, so it need not exist; a size is then
# required, and the backing format too, as qemu-img says.
"$MIMG" create -q -u -f qcow2 -b missing.qcow2 -F qcow2 u.qcow2 1M ||
	fail "create -u with a missing backing file"
qemu-img info -U --output=json u.qcow2 > u.json 2>/dev/null ||
	qemu-img info --output=json -U u.qcow2 > u.json
check_eq "$(json_get u.json backing-filename)" missing.qcow2 "-u backing name"
check_eq "$(json_get u.json virtual-size)" 1048576 "-u size"
for args in "-u -f qcow2 -b missing.qcow2 -F qcow2 n1.qcow2" \
	    "-u -f qcow2 -b missing.qcow2 n2.qcow2 1M" \
	    "-f qcow2 -b missing.qcow2 -F qcow2 n3.qcow2 1M"; do
	# shellcheck disable=SC2086
	qemu-img create $args > /dev/null 2> q.err; qs=$?
	# shellcheck disable=SC2086
	"$MIMG" create $args > /dev/null 2> m.err; ms=$?
	check_eq "$ms" "$qs" "exit status of create $args"
done
./qemu-img create -u -f qcow2 -b missing.qcow2 -F qcow2 n4.qcow2 \
	2> m.err && fail "-u without a size"
check_eq "$(cat m.err)" "qemu-img: n4.qcow2: Image creation needs a size parameter" \
	"-u without a size message"

# -U / --force-share: accepted wherever qemu-img takes it (mimg takes no
# locks), refused where qemu-img refuses it.
qemu-img create -q -f qcow2 fs.qcow2 1M
for args in "info -U fs.qcow2" "info --force-share fs.qcow2" \
	    "check -U fs.qcow2" "compare -U fs.qcow2 fs.qcow2" \
	    "map -U fs.qcow2" "measure -U -O qcow2 fs.qcow2" \
	    "convert -U -O raw fs.qcow2 fs.raw" "bench -U -c 1 fs.qcow2" \
	    "snapshot -U -l fs.qcow2" "snapshot -U -c x fs.qcow2" \
	    "commit -U fs.qcow2" "resize -U fs.qcow2 2M"; do
	# shellcheck disable=SC2086
	both $args
done
exit 0
