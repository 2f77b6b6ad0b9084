# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# Host side helpers for booting a small Linux guest under QEMU with a
# vhost-user-blk disk, served either by vmm-blk or by qemu-storage-daemon
# (the reference).  Sourced by tests/e2e/*.sh and bench/vmm-blk.sh, after
# scripts/e2e-guest-deps.sh's e2e_deps has set E2E_KERNEL, E2E_MODDIR and
# E2E_BUSYBOX.  The caller sets E2E_LIB_DIR to this file's directory.
#
# Environment knobs:
#   E2E_ACCEL    tcg (default) or kvm: nested KVM hangs on the CI machines
#   E2E_SMP      guest CPUs (default 1)
#   E2E_TIMEOUT  seconds before a guest is killed (default 120)
#   E2E_SERIAL   serial number vmm-blk gives the disk (--serial)
#   E2E_VMMBLK_ARGS  more vmm-blk options (split at spaces)
#   E2E_RECONNECT  set: QEMU reconnects to the backend's socket every
#                second after losing it (chardev reconnect=1)
#   E2E_TICK     a shell function e2e_boot calls about twice a second
#                while the guest runs (it may restart the backend)

: "${E2E_LIB_DIR:?set E2E_LIB_DIR to the tests/e2e directory}"
E2E_BACKEND_PID=
E2E_QEMU_PID=

# e2e_mkinitrd OUT INIT [SRC DEST]...: an uncompressed newc initramfs with
# busybox, the prelude, the virtio modules and the given extra files.
e2e_mkinitrd() {
	_e_out=$1 _e_init=$2
	shift 2
	_e_root=$(mktemp -d "${TMPDIR:-/tmp}/mimg-initrd-XXXXXX") || return 1
	mkdir -p "$_e_root/bin" "$_e_root/lib/modules" "$_e_root/data"
	cp "$E2E_BUSYBOX" "$_e_root/bin/busybox"
	cp "$E2E_LIB_DIR/guest-prelude.sh" "$_e_root/lib/prelude.sh"
	cp "$_e_init" "$_e_root/init"
	chmod 755 "$_e_root/init" "$_e_root/bin/busybox"
	cp "$E2E_MODDIR"/*.ko "$_e_root/lib/modules/" 2>/dev/null
	echo "$E2E_MODULES" | tr ' ' '\n' >"$_e_root/lib/modules/order"
	while [ $# -ge 2 ]; do
		mkdir -p "$_e_root/$(dirname "$2")"
		cp "$1" "$_e_root/$2" || { rm -rf "$_e_root"; return 1; }
		shift 2
	done
	(cd "$_e_root" && find . | cpio -o -H newc --quiet) >"$_e_out"
	_e_rc=$?
	rm -rf "$_e_root"
	return $_e_rc
}

# e2e_wait_socket SOCK PID: wait up to 15 s for a listening unix socket.
e2e_wait_socket() {
	_e_i=0
	while [ ! -S "$1" ]; do
		e2e_alive "$2" || return 1
		_e_i=$((_e_i + 1))
		[ "$_e_i" -gt 150 ] && return 1
		sleep 0.1
	done
}

# e2e_backend_start KIND SOCK FMT IMAGE NUMQ LOG [ro]
#   KIND: vmm-blk (needs $VMM_BLK) or qsd (qemu-storage-daemon)
e2e_backend_start() {
	_e_kind=$1 _e_sock=$2 _e_fmt=$3 _e_image=$4 _e_numq=$5 _e_blog=$6 _e_ro=${7:-}
	rm -f "$_e_sock"
	case $_e_kind in
	vmm-blk)
		set -- --socket "$_e_sock" -f "$_e_fmt" --num-queues "$_e_numq"
		[ -n "$_e_ro" ] && set -- "$@" --read-only
		[ -n "${E2E_SERIAL:-}" ] && set -- "$@" --serial "$E2E_SERIAL"
		# shellcheck disable=SC2086 # options are split on purpose
		"$VMM_BLK" "$@" ${E2E_VMMBLK_ARGS:-} "$_e_image" >"$_e_blog" 2>&1 &
		;;
	qsd)
		_e_writable=on _e_roopt=
		[ -n "$_e_ro" ] && _e_writable=off _e_roopt=,read-only=on
		# discard=unmap: qemu ignores guest discards by default, and the
		# test expects them to reach the image as vmm-blk's do.
		qemu-storage-daemon \
			--blockdev "driver=file,filename=$_e_image,node-name=f,discard=unmap$_e_roopt" \
			--blockdev "driver=$_e_fmt,file=f,node-name=d,discard=unmap$_e_roopt" \
			--export "type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path=$_e_sock,writable=$_e_writable,num-queues=$_e_numq" \
			>"$_e_blog" 2>&1 &
		;;
	*)
		echo "unknown backend $_e_kind" >&2
		return 1
		;;
	esac
	E2E_BACKEND_PID=$!
	if ! e2e_wait_socket "$_e_sock" "$E2E_BACKEND_PID"; then
		echo "backend $_e_kind did not create $_e_sock; its output:" >&2
		cat "$_e_blog" >&2
		e2e_backend_kill
		return 1
	fi
}

# Stops the backend with SIGTERM (a clean shutdown flushes the image) and
# fails if it does not exit within 20 s or exits with an error.
e2e_backend_stop() {
	[ -n "$E2E_BACKEND_PID" ] || return 0
	_e_pid=$E2E_BACKEND_PID
	kill -TERM "$_e_pid" 2>/dev/null
	_e_i=0
	while kill -0 "$_e_pid" 2>/dev/null; do
		_e_i=$((_e_i + 1))
		if [ "$_e_i" -gt 200 ]; then
			echo "backend (pid $_e_pid) still running 20 s after SIGTERM" >&2
			e2e_backend_kill
			return 1
		fi
		sleep 0.1
	done
	wait "$_e_pid"
	_e_rc=$?
	E2E_BACKEND_PID=
	# 0: clean exit; 143: killed by the SIGTERM we sent (no handler).
	case $_e_rc in
	0 | 143) return 0 ;;
	*)
		echo "backend exited with status $_e_rc" >&2
		return 1
		;;
	esac
}

e2e_backend_kill() {
	[ -n "$E2E_BACKEND_PID" ] || return 0
	kill -KILL "$E2E_BACKEND_PID" 2>/dev/null
	wait "$E2E_BACKEND_PID" 2>/dev/null
	E2E_BACKEND_PID=
}

# e2e_control SOCK COMMAND: send COMMAND to vmm-blk's control socket and
# print its reply line.
e2e_control() {
	python3 - "$1" "$2" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
reply = b""
while not reply.endswith(b"\n"):
    chunk = s.recv(256)
    if not chunk:
        break
    reply += chunk
print(reply.decode().strip())
EOF
}

# e2e_alive PID: the process runs (a zombie, exited but not yet waited
# for, does not count).
e2e_alive() {
	_e_state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	case $_e_state in
	Z* | X* | '') return 1 ;;
	esac
	return 0
}

# e2e_boot CONSOLE_LOG INITRD SOCK NUMQ [EXTRA_CMDLINE]: boots the guest with
# the vhost-user-blk disk and waits for it to power off.  Returns non-zero
# when QEMU fails or the guest runs past $E2E_TIMEOUT.
e2e_boot() {
	_e_clog=$1 _e_initrd=$2 _e_sock=$3 _e_numq=$4 _e_extra=${5:-}
	_e_mem=256M
	_e_chr=
	[ -n "${E2E_RECONNECT:-}" ] && _e_chr=,reconnect=1
	# TCG before QEMU 8.1 leaves out the guest's memory barriers when the
	# machine can hold only one vCPU; the backend, another process, then
	# misses ring updates (and the guest an interrupt) now and then and
	# the guest waits forever.  Room for a second vCPU, never plugged in,
	# keeps the barriers; nr_cpus=1 keeps the guest to one possible CPU
	# (Linux sizes virtio-blk's queues by them).
	_e_smp=${E2E_SMP:-1}
	if [ "${E2E_ACCEL:-tcg}" = tcg ] && [ "$_e_smp" = 1 ]; then
		_e_smp=1,maxcpus=2
		_e_extra="nr_cpus=1 $_e_extra"
	fi
	# The kernel's crypto self-tests are skipped: on a loaded host a TCG
	# guest once spent the whole timeout in one (a soft lockup of
	# cryptomgr_test) before reaching init.
	timeout -k 5 "${E2E_TIMEOUT:-120}" qemu-system-x86_64 \
		-accel "${E2E_ACCEL:-tcg}" -smp "$_e_smp" -m "$_e_mem" \
		-object "memory-backend-memfd,id=mem,size=$_e_mem,share=on" \
		-machine q35,memory-backend=mem \
		-nodefaults -no-user-config -display none -no-reboot \
		-serial "file:$_e_clog" \
		-kernel "$E2E_KERNEL" -initrd "$_e_initrd" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 cryptomgr.notests $_e_extra" \
		-chardev "socket,id=vub,path=$_e_sock$_e_chr" \
		-device "vhost-user-blk-pci,chardev=vub,num-queues=$_e_numq" &
	E2E_QEMU_PID=$!
	# A backend that dies leaves the guest waiting for I/O forever: stop
	# the guest soon instead of at the timeout.  Backends also exit when
	# QEMU closes the connection during its own shutdown, so QEMU gets a
	# few seconds to finish by itself first.
	_e_dead=
	while e2e_alive "$E2E_QEMU_PID"; do
		[ -n "${E2E_TICK:-}" ] && "$E2E_TICK"
		if [ -n "$E2E_BACKEND_PID" ] && ! e2e_alive "$E2E_BACKEND_PID"; then
			_e_dead=${_e_dead:-0}
			_e_dead=$((_e_dead + 1))
			if [ "$_e_dead" -gt 10 ]; then
				kill -TERM "$E2E_QEMU_PID" 2>/dev/null
				break
			fi
		fi
		sleep 0.5
	done
	[ "${_e_dead:-0}" -gt 10 ] || _e_dead=
	wait "$E2E_QEMU_PID"
	_e_rc=$?
	E2E_QEMU_PID=
	if [ -n "$_e_dead" ]; then
		echo "the backend exited while the guest was running; console:" >&2
		tail -n 30 "$_e_clog" >&2
		return 1
	elif [ "$_e_rc" = 124 ] || [ "$_e_rc" = 137 ]; then
		echo "guest timed out after ${E2E_TIMEOUT:-120} s; console:" >&2
		tail -n 30 "$_e_clog" >&2
	elif [ "$_e_rc" != 0 ]; then
		echo "qemu-system-x86_64 exited with status $_e_rc; console:" >&2
		tail -n 30 "$_e_clog" >&2
	fi
	return "$_e_rc"
}

# For an EXIT trap: nothing of ours keeps running after the script.
e2e_cleanup() {
	# QEMU runs under timeout(1), which passes SIGTERM on to it.
	[ -n "$E2E_QEMU_PID" ] && kill -TERM "$E2E_QEMU_PID" 2>/dev/null
	e2e_backend_kill
}
