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

: "${E2E_LIB_DIR:?set E2E_LIB_DIR to the tests/e2e directory}"
E2E_BACKEND_PID=
E2E_QEMU_PID=

# e2e_mkinitrd OUT INIT [SRC DEST]...: an uncompressed newc initramfs with
# busybox, the prelude, the virtio modules and the given extra files.
e2e_mkinitrd() {
	out=$1 init=$2
	shift 2
	root=$(mktemp -d "${TMPDIR:-/tmp}/mimg-initrd-XXXXXX") || return 1
	mkdir -p "$root/bin" "$root/lib/modules" "$root/data"
	cp "$E2E_BUSYBOX" "$root/bin/busybox"
	cp "$E2E_LIB_DIR/guest-prelude.sh" "$root/lib/prelude.sh"
	cp "$init" "$root/init"
	chmod 755 "$root/init" "$root/bin/busybox"
	cp "$E2E_MODDIR"/*.ko "$root/lib/modules/" 2>/dev/null
	echo "$E2E_MODULES" | tr ' ' '\n' >"$root/lib/modules/order"
	while [ $# -ge 2 ]; do
		mkdir -p "$root/$(dirname "$2")"
		cp "$1" "$root/$2" || { rm -rf "$root"; return 1; }
		shift 2
	done
	(cd "$root" && find . | cpio -o -H newc --quiet) >"$out"
	rc=$?
	rm -rf "$root"
	return $rc
}

# e2e_wait_socket SOCK PID: wait up to 15 s for a listening unix socket.
e2e_wait_socket() {
	i=0
	while [ ! -S "$1" ]; do
		kill -0 "$2" 2>/dev/null || return 1
		i=$((i + 1))
		[ "$i" -gt 150 ] && return 1
		sleep 0.1
	done
}

# e2e_backend_start KIND SOCK FMT IMAGE NUMQ LOG
#   KIND: vmm-blk (needs $VMM_BLK) or qsd (qemu-storage-daemon)
e2e_backend_start() {
	kind=$1 sock=$2 fmt=$3 image=$4 numq=$5 blog=$6
	rm -f "$sock"
	case $kind in
	vmm-blk)
		"$VMM_BLK" --socket "$sock" -f "$fmt" --num-queues "$numq" \
			"$image" >"$blog" 2>&1 &
		;;
	qsd)
		# discard=unmap: qemu ignores guest discards by default, and the
		# test expects them to reach the image as vmm-blk's do.
		qemu-storage-daemon \
			--blockdev "driver=file,filename=$image,node-name=f,discard=unmap" \
			--blockdev "driver=$fmt,file=f,node-name=d,discard=unmap" \
			--export "type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path=$sock,writable=on,num-queues=$numq" \
			>"$blog" 2>&1 &
		;;
	*)
		echo "unknown backend $kind" >&2
		return 1
		;;
	esac
	E2E_BACKEND_PID=$!
	if ! e2e_wait_socket "$sock" "$E2E_BACKEND_PID"; then
		echo "backend $kind did not create $sock; its output:" >&2
		cat "$blog" >&2
		e2e_backend_kill
		return 1
	fi
}

# Stops the backend with SIGTERM (a clean shutdown flushes the image) and
# fails if it does not exit within 20 s or exits with an error.
e2e_backend_stop() {
	[ -n "$E2E_BACKEND_PID" ] || return 0
	pid=$E2E_BACKEND_PID
	kill -TERM "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 200 ]; then
			echo "backend (pid $pid) still running 20 s after SIGTERM" >&2
			e2e_backend_kill
			return 1
		fi
		sleep 0.1
	done
	wait "$pid"
	rc=$?
	E2E_BACKEND_PID=
	# 0: clean exit; 143: killed by the SIGTERM we sent (no handler).
	case $rc in
	0 | 143) return 0 ;;
	*)
		echo "backend exited with status $rc" >&2
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

# e2e_boot CONSOLE_LOG INITRD SOCK NUMQ [EXTRA_CMDLINE]: boots the guest with
# the vhost-user-blk disk and waits for it to power off.  Returns non-zero
# when QEMU fails or the guest runs past $E2E_TIMEOUT.
e2e_boot() {
	clog=$1 initrd=$2 sock=$3 numq=$4 extra=${5:-}
	mem=256M
	timeout -k 5 "${E2E_TIMEOUT:-120}" qemu-system-x86_64 \
		-accel "${E2E_ACCEL:-tcg}" -smp "${E2E_SMP:-1}" -m "$mem" \
		-object "memory-backend-memfd,id=mem,size=$mem,share=on" \
		-machine q35,memory-backend=mem \
		-nodefaults -no-user-config -display none -no-reboot \
		-serial "file:$clog" \
		-kernel "$E2E_KERNEL" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 $extra" \
		-chardev "socket,id=vub,path=$sock" \
		-device "vhost-user-blk-pci,chardev=vub,num-queues=$numq" &
	E2E_QEMU_PID=$!
	wait "$E2E_QEMU_PID"
	rc=$?
	E2E_QEMU_PID=
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "guest timed out after ${E2E_TIMEOUT:-120} s; console:" >&2
		tail -n 30 "$clog" >&2
	elif [ "$rc" != 0 ]; then
		echo "qemu-system-x86_64 exited with status $rc; console:" >&2
		tail -n 30 "$clog" >&2
	fi
	return "$rc"
}

# For an EXIT trap: nothing of ours keeps running after the script.
e2e_cleanup() {
	# QEMU runs under timeout(1), which passes SIGTERM on to it.
	[ -n "$E2E_QEMU_PID" ] && kill -TERM "$E2E_QEMU_PID" 2>/dev/null
	e2e_backend_kill
}
