#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# An NBD server whose block status is wrong (nbd-liar.py, written for
# this test: nbdkit's own plugins cannot send such replies) never makes
# mimg convert, map or compare write wrong data or hang: extents past the
# export's end are cut at it, zero-length extents, replies for a context
# never negotiated and replies with no extents fail with a message that
# names the NBD server, a hole over data (NBD_STATE_HOLE without ZERO) is
# read, tiny and huge replies give the right data, and a block status
# request never answered times out.  NBD_STATE_ZERO is trusted, as
# qemu-img trusts it: over data it gives the same output as qemu-img's.
. "$TESTLIB"
. "$(dirname "$TESTLIB")/nbd-lib.sh"
need_libnbd
need qemu-img qemu-io python3 cmp timeout

LIAR="$(dirname "$TESTLIB")/nbd-liar.py"
export MIMG_NBD_TIMEOUT=2

# 1 MiB: data, a hole, a small data run, three sectors' worth.
qemu-img create -q -f raw src.raw 1M
qemu-io -f raw -c 'write -P 0x51 0 256k' -c 'write -P 0x52 512k 64k' \
	-c 'write -P 0x53 768k 1536' src.raw >/dev/null

# One server; the export name picks the mode.
python3 "$LIAR" "$T/liar.sock" src.raw 2>"$T/liar.log" &
OTHER_PIDS="$OTHER_PIDS $!"
wait_for "$T/liar.sock" || fail "nbd-liar.py did not start"
# liar MODE: sets URI to the export that answers as MODE.
liar() {
	URI="nbd+unix:///$1?socket=$T/liar.sock"
}

# run WHAT CMD...: CMD within 60 s (never a hang); sets $st.
run() {
	_what=$1
	shift
	timeout 60 "$@" >out.txt 2>err.txt
	st=$?
	[ $st = 124 ] && fail "$_what: hung"
	return 0
}

# right MODE: convert, map and compare give the file's data.
right() {
	liar "$1"
	rm -f out.raw
	run "$1: convert" "$MIMG" convert -f raw -O raw "$URI" out.raw
	[ $st = 0 ] || { cat err.txt >&2; fail "$1: convert failed"; }
	cmp out.raw src.raw || fail "$1: convert wrote wrong data"
	run "$1: compare" "$MIMG" compare -f raw -F raw "$URI" src.raw
	[ $st = 0 ] || { cat out.txt err.txt >&2; fail "$1: compare said $st"; }
	run "$1: map" "$MIMG" map --output json -f raw "$URI"
	[ $st = 0 ] || { cat err.txt >&2; fail "$1: map failed"; }
	# What the map calls zero must read as zeroes, and it must cover
	# the export exactly.
	python3 - out.txt src.raw <<'PY' || fail "$1: map is wrong"
import json, sys
m = json.load(open(sys.argv[1]))
data = open(sys.argv[2], "rb").read()
pos = 0
for e in m:
    assert e["start"] == pos, (e, pos)
    if e["zero"]:
        run = data[e["start"]:e["start"] + e["length"]]
        assert run.count(0) == len(run), e
    pos += e["length"]
assert pos == len(data), (pos, len(data))
PY
}

# refused MODE: convert, map and compare fail, naming the server.
refused() {
	liar "$1"
	rm -f out.raw
	for cmd in "convert -f raw -O raw $URI out.raw" \
		   "map -f raw $URI" "compare -f raw -F raw $URI src.raw"; do
		# shellcheck disable=SC2086
		run "$1: $cmd" "$MIMG" $cmd
		[ $st = 0 ] && fail "$1: mimg $cmd succeeded"
		[ "${cmd%% *}" = compare ] && [ $st != 2 ] &&
			fail "$1: compare exited $st, not 2 (error)"
		grep -q "NBD server" err.txt ||
			{ cat err.txt >&2; fail "$1: $cmd: no clear message"; }
	done
}

right honest
right beyond
right hole-data
right tiny
right many
refused empty
refused empty-later
refused no-context
refused no-extents
refused mute-status

# Trusted as qemu-img trusts it: data said to read as zeroes.
liar zero-lie
run "zero-lie: mimg" "$MIMG" convert -f raw -O raw "$URI" out.raw
[ $st = 0 ] || { cat err.txt >&2; fail "zero-lie: convert failed"; }
run "zero-lie: qemu-img" qemu-img convert -f raw -O raw "$URI" outq.raw
[ $st = 0 ] || { cat err.txt >&2; fail "zero-lie: qemu-img convert failed"; }
cmp out.raw outq.raw || fail "zero-lie: mimg and qemu-img differ"
echo PASS
