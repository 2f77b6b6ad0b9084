#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# -p prints the progress on standard output as qemu-img 7.2 does, also
# into a pipe: "    (NN.NN/100%)" and a carriage return when it moved,
# the end of the work, then a newline, with what the command prints in
# between where qemu-img prints it.  Compared byte for byte where the
# work is the same in both tools (one pass over data they both read);
# elsewhere (more passes, parts skipped) the lines must have the form.
. "$TESTLIB"
need qemu-img qemu-io python3

qemu-img create -q -f raw a.raw 1M
qemu-io -f raw -c 'write -P 0x61 0 1M' a.raw >/dev/null
cp a.raw same.raw
qemu-img create -q -f raw big.raw 2M
qemu-io -f raw -c 'write -P 0x61 0 1M' big.raw >/dev/null
cp a.raw diff.raw
qemu-io -f raw -c 'write -P 0x62 512k 4k' diff.raw >/dev/null
n=0

# same_progress ARGS...: both tools' standard output, byte for byte.
same_progress() {
	rm -f out.img
	qemu-img "$@" >q.out 2>/dev/null
	qs=$?
	rm -f out.img
	"$MIMG" "$@" >m.out 2>/dev/null
	check_eq $? "$qs" "$*: exit status"
	cmp -s q.out m.out ||
		fail "$*: qemu-img printed $(od -c q.out), mimg $(od -c m.out)"
	n=$((n + 1))
}
same_progress compare -p a.raw same.raw
same_progress compare -p a.raw big.raw
same_progress compare -p -s a.raw big.raw
same_progress compare -p a.raw diff.raw
same_progress convert -p a.raw out.img
same_progress convert -p -q a.raw out.img

# The form, for commands whose passes differ: each line a progress line
# ending in a carriage return (the last 100.00), then the newline.
form() { # form FILE
	python3 - "$1" <<'PY' || fail "progress of $*: $(od -c "$1")"
import re, sys
t = open(sys.argv[1], "rb").read().decode()
lines = t.split("\n")[0].split("\r")
assert lines[-1] == "" and len(lines) >= 3, lines
for l in lines[:-1]:
    assert re.fullmatch(r"    \(\d{1,3}\.\d\d/100%\)", l), l
assert lines[0] == "    (0.00/100%)" and lines[-2] == "    (100.00/100%)"
PY
	n=$((n + 1))
}
if "$MIMG" --help | grep -q '^Formats:.*qcow2'; then
	qemu-img create -q -f qcow2 base.qcow2 4M
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
	qemu-io -f qcow2 -c 'write -P 1 0 3M' top.qcow2 >/dev/null
	"$MIMG" commit -p top.qcow2 >m.out || fail "commit -p"
	form m.out
	"$MIMG" convert -p -O qcow2 base.qcow2 out.qcow2 >m.out ||
		fail "convert -p"
	form m.out
	"$MIMG" amend -p -o compat=0.10 out.qcow2 >m.out || fail "amend -p"
	form m.out
	"$MIMG" rebase -p -b big.raw -F raw top.qcow2 >m.out ||
		fail "rebase -p"
	form m.out
fi
echo "progress: $n outputs as qemu-img's"
