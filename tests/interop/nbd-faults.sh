#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# NBD failures give clear errors and never hang: an unreachable server, a
# server that accepts and never answers, read and write errors injected by
# nbdkit's error filter, requests slower than the timeout (delay filter),
# a server killed in the middle of a conversion, and an export smaller
# than the image it holds claims (read as a short file, like the same
# truncated local file).
. "$TESTLIB"
. "$(dirname "$TESTLIB")/nbd-lib.sh"
need_libnbd
need nbdkit qemu-img qemu-io python3 cmp timeout

formats=$("$MIMG" --help | sed -n 's/^Formats://p')
case " $formats " in
*" qcow2 "*) ;;
*) echo "SKIP: mimg has no qcow2 driver"; exit 77 ;;
esac

# expect_fail WHAT PATTERN CMD...: CMD must fail within 60 s (no hang),
# its message matching PATTERN.
expect_fail() {
	_what=$1 _pat=$2
	shift 2
	timeout 60 "$@" >out.txt 2>err.txt
	_st=$?
	[ $_st = 124 ] && fail "$_what: hung"
	[ $_st = 0 ] && fail "$_what: succeeded"
	grep -Eq "$_pat" err.txt ||
		{ cat err.txt >&2; fail "$_what: message does not match '$_pat'"; }
}

qemu-img create -q -f qcow2 src.qcow2 32M
qemu-io -f qcow2 -c 'write -P 0x61 0 16M' src.qcow2 >/dev/null
qemu-img convert -f qcow2 -O raw src.qcow2 src.raw

# Unreachable: no socket, a refused TCP port, a server that never speaks.
expect_fail "missing socket" "Could not connect.*$T/none.sock" \
	"$MIMG" info "nbd+unix:///?socket=$T/none.sock"
expect_fail "refused port" "Could not connect" \
	"$MIMG" info "nbd://127.0.0.1:1/"
python3 - "$T/mute.sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.bind(sys.argv[1]); s.listen(4)
c, _ = s.accept()
time.sleep(30)
PY
mute=$!
OTHER_PIDS="$OTHER_PIDS $mute"
wait_for "$T/mute.sock" || fail "listener did not start"
start=$(date +%s)
MIMG_NBD_TIMEOUT=2 expect_fail "mute server" "no answer from the NBD server in 2 s" \
	"$MIMG" info "nbd+unix:///?socket=$T/mute.sock"
[ $(($(date +%s) - start)) -lt 20 ] || fail "mute server: the timeout took too long"
kill $mute 2>/dev/null

# Read errors once the image is open (the error filter's trigger file).
nbd_start e --filter=error file src.qcow2 error-pread=EIO \
	error-pread-rate=100% error-pread-file="$T/fail-now"
"$MIMG" info "$URI" >/dev/null || fail "info before the fault"
: >fail-now
expect_fail "read error" "read of .* bytes at offset .*Input/output error" \
	"$MIMG" convert -O raw "$URI" out.raw
rm -f fail-now
nbd_stop e

# Write errors on the target.
cp src.raw dst.raw
nbd_start e --filter=error file dst.raw error-pwrite=EIO \
	error-pwrite-rate=100% error-zero=EIO error-zero-rate=100%
expect_fail "write error" "(write|zero) of .* bytes at offset .*Input/output error" \
	"$MIMG" convert -n -O raw src.qcow2 "$URI"
nbd_stop e

# Slow server: within the timeout it works, past it a clear error.
nbd_start d --filter=delay file src.qcow2 delay-read=3
MIMG_NBD_TIMEOUT=1 expect_fail "slow server" "no answer from the NBD server in 1 s" \
	"$MIMG" info "$URI"
nbd_stop d
nbd_start d --filter=delay file src.qcow2 delay-read=50ms
MIMG_NBD_TIMEOUT=5 "$MIMG" compare "$URI" src.raw >/dev/null ||
	fail "a slow server within the timeout"
nbd_stop d

# The server dies in the middle of a conversion.
nbd_start k --filter=delay file src.qcow2 delay-read=100ms
kpid=$(cat "$T/k.pid")
timeout 120 "$MIMG" convert -O raw -m 1 "$URI" out.raw 2>err.txt &
conv=$!
sleep 1
kill -9 "$kpid"
wait $conv
st=$?
[ $st = 124 ] && fail "convert hung after the server died"
[ $st = 0 ] && fail "convert succeeded although the server died"
grep -Eq "connection to the NBD server lost|read of .* bytes at offset" err.txt ||
	{ cat err.txt >&2; fail "server died: unclear message"; }
rm -f "$T/k.pid"

# An export smaller than the image claims reads like the same truncated
# file: the same outcome, never a hang.
for cut in 307200 8388608; do
	python3 -c "import sys; d=open('src.qcow2','rb').read(); open('short.qcow2','wb').write(d[:$cut])"
	nbd_start s file short.qcow2
	timeout 60 "$MIMG" convert -O raw short.qcow2 local.raw 2>local.err
	lst=$?
	timeout 60 "$MIMG" convert -O raw "$URI" nbd.raw 2>nbd.err
	nst=$?
	[ $nst = 124 ] && fail "short export ($cut): hung"
	check_eq "$nst" "$lst" "exit status for a short export ($cut) vs the file"
	if [ $lst = 0 ]; then
		cmp local.raw nbd.raw || fail "short export ($cut) read differently"
	else
		[ -s nbd.err ] || fail "short export ($cut): no message"
	fi
	nbd_stop s
done
echo "ok"
