# SPDX-License-Identifier: BSD-2-Clause
# Helpers shared by the NBD interop tests (sourced after lib.sh; not a
# test itself).  Servers run on Unix sockets in $T and are killed by PID
# when the test ends.
#   nbd_start NAME ARGS...  nbdkit -U $T/NAME.sock ARGS; sets $URI
#   nbd_stop NAME [wait]    kill it (and wait until it is gone)
#   need_plugin / need_libnbd: skip (77) without the plugin / nbd:// in mimg

NBD_SERVERS=
OTHER_PIDS=	# other helpers the test started, killed at the end too
trap 'nbd_cleanup; rm -rf "$T"' EXIT

nbd_cleanup() {
	for _n in $NBD_SERVERS; do
		nbd_stop "$_n"
	done
	for _p in $OTHER_PIDS; do
		kill "$_p" 2>/dev/null
	done
}

need_plugin() {
	[ -n "${NBDKIT_MIMG_PLUGIN:-}" ] ||
		{ echo "SKIP: nbdkit-mimg-plugin not built"; exit 77; }
	need nbdkit
}

# A plugin built with GCC's sanitizers needs their runtime loaded first
# in nbdkit, which is not built with them: every nbdkit the tests start
# runs with LD_PRELOAD=$NBDKIT_PRELOAD.
NBDKIT_PRELOAD=
[ -z "${NBDKIT_MIMG_PLUGIN:-}" ] ||
	NBDKIT_PRELOAD=$(ldd "$NBDKIT_MIMG_PLUGIN" 2>/dev/null |
		awk '$1 ~ /^lib(asan|ubsan)\.so/ { printf "%s%s", s, $3; s = ":" }')

need_libnbd() {
	[ -n "${MIMG_HAVE_LIBNBD:-}" ] ||
		{ echo "SKIP: mimg built without libnbd"; exit 77; }
}

# wait_for FILE: up to 20 s for FILE to appear (non-empty, or a socket).
wait_for() {
	_i=0
	while [ ! -s "$1" ] && [ ! -S "$1" ]; do
		_i=$((_i + 1))
		[ $_i -gt 400 ] && return 1
		sleep 0.05
	done
}

# nbd_uri NAME: the URI of server NAME's default export.
nbd_uri() {
	echo "nbd+unix:///?socket=$T/$1.sock"
}

nbd_start() {
	_name=$1
	shift
	rm -f "$T/$_name.pid" "$T/$_name.sock"
	LD_PRELOAD=$NBDKIT_PRELOAD \
		nbdkit -U "$T/$_name.sock" --pidfile "$T/$_name.pid" "$@" \
		2>>"$T/$_name.log" || { cat "$T/$_name.log" >&2; fail "nbdkit $*"; }
	wait_for "$T/$_name.pid" || fail "nbdkit $_name did not start"
	NBD_SERVERS="$NBD_SERVERS $_name"
	URI=$(nbd_uri "$_name")
}

# qemu-nbd as a server on the same kind of socket (for comparisons).
qemu_nbd_start() {
	_name=$1
	shift
	rm -f "$T/$_name.pid" "$T/$_name.sock"
	qemu-nbd --fork -k "$T/$_name.sock" --pid-file "$T/$_name.pid" "$@" \
		2>>"$T/$_name.log" || { cat "$T/$_name.log" >&2; fail "qemu-nbd $*"; }
	wait_for "$T/$_name.pid" || fail "qemu-nbd $_name did not start"
	NBD_SERVERS="$NBD_SERVERS $_name"
	URI=$(nbd_uri "$_name")
}

# nbd_stop NAME [wait]: kill it; with "wait", until it has exited (and so
# closed its image).  nbdkit takes a second or more to exit.
nbd_stop() {
	[ -s "$T/$1.pid" ] || return 0
	_pid=$(cat "$T/$1.pid")
	rm -f "$T/$1.pid"
	kill "$_pid" 2>/dev/null || return 0
	[ "${2:-}" = wait ] || return 0
	_i=0
	while kill -0 "$_pid" 2>/dev/null; do
		_i=$((_i + 1))
		[ $_i -gt 200 ] && { kill -9 "$_pid" 2>/dev/null; break; }
		sleep 0.05
	done
}

# nbd_mimg NAME ARGS...: nbdkit serving an image through the plugin.
nbd_mimg() {
	_name=$1
	shift
	nbd_start "$_name" "$NBDKIT_MIMG_PLUGIN" "$@"
}

# merged_map URI: nbdinfo --map with adjacent extents of one type merged
# ("offset length type" lines), to compare servers that split runs
# differently.
merged_map() {
	nbdinfo --map "$1" | awk '
		{ if (n && $3 == t && $1 == o + l) { l += $2; next }
		  if (n) print o, l, t; o = $1; l = $2; t = $3; n = 1 }
		END { if (n) print o, l, t }'
}
