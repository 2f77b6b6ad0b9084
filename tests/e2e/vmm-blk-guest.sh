#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# End-to-end: a Linux guest under QEMU uses a vhost-user-blk-pci disk served
# by vmm-blk (or, with E2E_BACKEND=qsd, by qemu-storage-daemon, the
# reference).  Scenarios:
#   qcow2       an overlay on a compressed qcow2 base, 2 queues, discards,
#               write-zeroes
#   readonly    a qcow2 served read-only: the guest sees a read-only disk,
#               its writes fail, and the file is not modified
#   raw         a sparse raw file, 2 queues, discards punch holes
#   vmdk        a monolithicSparse VMDK (when this build's mimg opens VMDK),
#               discards free grains (vmm-blk only)
#   vmdkstream  a streamOptimized VMDK, read-only
#   restart     (vmm-blk only) a raw disk with 2 queues whose backend is
#               killed with SIGKILL while it holds guest writes; QEMU
#               reconnects (reconnect=1) to a new vmm-blk, which resubmits
#               them and then grows the disk online (control socket); the
#               guest sees the new size and its data verifies
# The guest writes known data with O_DIRECT, reads it back and reports
# checksums, writes from 4 processes at once into the same clusters, resets
# the device, discards and zeroes ranges, flushes, and reports the disk's
# serial number (vmm-blk --serial).  After the backend has shut down the
# host checks the image with qemu-img check, compares it with the expected
# content (qemu-img compare) and checks that discarded clusters no longer
# hold data (qemu-img map).
#
# Environment: VMM_BLK (the daemon), MIMG (the CLI), E2E_BACKEND
# (vmm-blk | qsd), E2E_SCENARIOS (default "qcow2 readonly raw vmdk
# vmdkstream restart"), E2E_KEEP=1 keeps the work directory (logs, images) for
# debugging, and the E2E_* knobs of guest-lib.sh.  Exit 77 only when vmm-blk
# was not built or the guest's tools cannot be installed.

set -u
here=$(cd "$(dirname "$0")" && pwd)
backend=${E2E_BACKEND:-vmm-blk}

case $backend in
vmm-blk)
	if [ -z "${VMM_BLK:-}" ] || [ ! -x "$VMM_BLK" ]; then
		echo "SKIP: vmm-blk was not built (VMM_BLK=${VMM_BLK:-unset})"
		exit 77
	fi
	;;
qsd) ;;
*)
	echo "E2E_BACKEND must be vmm-blk or qsd, not $backend" >&2
	exit 2
	;;
esac

. "$here/../../scripts/e2e-guest-deps.sh"
e2e_deps cc
rc=$?
if [ "$rc" = 77 ]; then
	echo "SKIP: QEMU, busybox or the guest kernel cannot be installed here"
	exit 77
elif [ "$rc" != 0 ]; then
	echo "FAIL: setting up the guest's dependencies" >&2
	exit 1
fi
command -v python3 >/dev/null 2>&1 || { echo "FAIL: python3 is required" >&2; exit 1; }

E2E_LIB_DIR=$here
. "$here/guest-lib.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/mimg-e2e-XXXXXX")
if [ -n "${E2E_KEEP:-}" ]; then
	trap 'e2e_cleanup; echo "kept $T"' EXIT
else
	trap 'e2e_cleanup; rm -rf "$T"' EXIT
fi
trap 'exit 1' INT TERM

# A failure inside a scenario shows the ends of its logs: a rare failure
# in CI is then diagnosed from its output alone.
fail() {
	echo "FAIL: $*" >&2
	if [ -n "${d:-}" ]; then
		for _log in "$d"/backend*.log "$d/console.log"; do
			[ -s "$_log" ] || continue
			echo "--- last lines of ${_log##*/}:" >&2
			tail -n 25 "$_log" | tr -d '\r' >&2
		done
	fi
	exit 1
}

# BLKZEROOUT and concurrent strided writes have no busybox tool; a static
# helper goes into the guest.
gcc -static -O2 -std=c11 -D_GNU_SOURCE -o "$T/guest-io" "$here/guest-io.c" ||
	fail "building guest-io with gcc -static"

E2E_SERIAL=mimg-e2e-0001

# check_reads DIR: every read the guest reported matches the plan.
check_reads() {
	grep -a '^E2E read ' "$1/console.log" | tr -d '\r' |
		sed 's/^E2E read //' >"$1/guest-reads"
	if ! cmp -s "$1/guest-reads" "$1/expected-reads"; then
		echo "guest reads (OFF LEN MD5) differ from the expected:" >&2
		diff "$1/expected-reads" "$1/guest-reads" >&2
		return 1
	fi
	echo "  $(wc -l <"$1/guest-reads") guest reads match"
}

# check_discards DIR FMT IMAGE: discarded clusters hold no data in the
# top layer any more (zero clusters or unallocated both qualify).
check_discards() {
	[ -s "$1/discards" ] || return 0
	qemu-img map --output=json -f "$2" "$3" >"$1/map.json" ||
		fail "qemu-img map $3"
	python3 - "$1/map.json" "$1/discards" <<'EOF' || return 1
import json, sys
extents = json.load(open(sys.argv[1]))
bad = 0
for line in open(sys.argv[2]):
    off, n = map(int, line.split())
    for e in extents:
        if e["start"] < off + n and off < e["start"] + e["length"] \
                and e["depth"] == 0 and e["data"]:
            print("discarded range %d+%d still allocated as data: %s"
                  % (off, n, json.dumps(e)), file=sys.stderr)
            bad = 1
sys.exit(bad)
EOF
	echo "  discarded ranges hold no data"
}

# check_queues DIR NUMQ: the guest has NUMQ request queues and each one
# completed requests (interrupt counts from the guest's /proc/interrupts).
check_queues() {
	q=$(grep -a '^E2E-QUEUES' "$1/console.log" | tr -d '\r' | sed 's/^E2E-QUEUES *//')
	n=0
	for e in $q; do
		n=$((n + 1))
		[ "${e##*=}" -gt 0 ] || fail "request queue ${e%=*} carried no I/O ($q)"
	done
	[ "$n" = "$2" ] || fail "the guest has $n request queues ($q), expected $2"
	echo "  interrupts per queue: $q"
}

# check_serial DIR: vmm-blk gave the disk the serial number we asked for
# (qemu-storage-daemon's export has no such option).
check_serial() {
	[ "$backend" = vmm-blk ] || return 0
	got=$(grep -a '^E2E serial' "$1/console.log" | tr -d '\r' | sed 's/^E2E serial *//')
	[ "$got" = "$E2E_SERIAL" ] || fail "guest sees serial '$got', expected '$E2E_SERIAL'"
	echo "  serial number: $got"
}

# The restart scenario's disk grows from 64 MiB to this.
RESTART_SIZE=$((80 * 1048576))

# freeze_holding PID QEMU_PARENT: stop vmm-blk (PID) with SIGSTOP at a
# moment the inflight area that QEMU (the child of QEMU_PARENT, timeout(1))
# keeps for it records requests taken and not answered; print how many.
# Between tries the daemon runs a moment (SIGCONT), a little longer each
# time so that the tries fall at every phase of the guest's writes.
# Fails when it never held one in 60 s of tries (a slow TCG guest on a
# busy machine has a request in flight rarely).
freeze_holding() {
	python3 - "$1" "$2" <<'EOF'
import os, signal, struct, sys, time
pid, parent = int(sys.argv[1]), sys.argv[2]

def area_fd():
    for kid in open("/proc/%s/task/%s/children" % (parent, parent)).read().split():
        fds = "/proc/%s/fd" % kid
        for fd in os.listdir(fds):
            try:
                if os.readlink(os.path.join(fds, fd)).startswith("/memfd:vmm-blk-inflight"):
                    return os.path.join(fds, fd)
            except OSError:
                pass
    return None

def taken(path):
    area = open(path, "rb").read()
    n = off = 0
    while off + 16 <= len(area):
        version, qsize = struct.unpack_from("=HH", area, off + 8)
        if version != 1 or qsize == 0:
            break
        n += sum(1 for i in range(qsize) if area[off + 16 + 16 * i] == 1)
        off += (16 + 16 * qsize + 63) // 64 * 64
    return n

def all_stopped():
    for t in os.listdir("/proc/%d/task" % pid):
        st = open("/proc/%d/task/%s/stat" % (pid, t)).read()
        if st[st.rindex(")") + 2] not in "tT":
            return False
    return True

path = area_fd()
if path is None:
    sys.exit("QEMU holds no vmm-blk inflight area")
give_up = time.monotonic() + 60
attempt = 0
while time.monotonic() < give_up:
    attempt += 1
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 2
    while not all_stopped():
        if time.monotonic() > deadline:
            sys.exit("vmm-blk does not stop")
        time.sleep(0.001)
    n = taken(path)
    if n:
        print(n, attempt)
        sys.exit(0)
    os.kill(pid, signal.SIGCONT)
    time.sleep(0.005 + (attempt % 7) * 0.001)
sys.exit("vmm-blk never held a request when stopped (%d tries)" % attempt)
EOF
}

# E2E_TICK of the restart scenario: once the guest writes in its restart
# step, freeze the backend at a moment it holds requests it took from the
# ring and has not answered (the inflight area says so), kill it, start a
# new one on the same socket and grow the disk through its control socket.
restart_tick() {
	[ -z "$restarted" ] || return 0
	grep -aq '^E2E-SYNC restart' "$d/console.log" 2>/dev/null || return 0
	restarted=1
	_pid=$E2E_BACKEND_PID
	_held=$(freeze_holding "$_pid" "$E2E_QEMU_PID") || fail "freezing vmm-blk while it holds requests"
	kill -KILL "$_pid"
	wait "$_pid" 2>/dev/null
	E2E_BACKEND_PID=
	echo "  killed vmm-blk (pid $_pid) with SIGKILL holding ${_held% *} request(s) (try ${_held#* })"
	e2e_backend_start vmm-blk "$d/sock" raw "$image" "$numq" \
		"$d/backend-2.log" || fail "restarting vmm-blk"
	_r=$(e2e_control "$d/ctl" "resize $RESTART_SIZE") ||
		fail "resize through the control socket"
	[ "$_r" = "ok $RESTART_SIZE" ] || fail "resize: vmm-blk answered '$_r'"
	echo "  new vmm-blk (pid $E2E_BACKEND_PID) resized the disk: $_r"
}

# scenario NAME FMT NUMQ SMP [io-plan options]
scenario() {
	name=$1 fmt=$2 numq=$3 smp=$4
	shift 4
	d=$T/$name
	mkdir -p "$d"
	echo "== $name: $fmt via $backend, $numq queue(s), $smp vCPU(s)"
	python3 "$here/io-plan.py" "$d" "$@" || fail "io-plan.py"
	size=$(stat -c %s "$d/expected.raw")
	start_size=$size
	ro=
	tick='' reconnect='' vargs=''
	timeout=${E2E_TIMEOUT:-120}
	case $name in
	restart)
		start_size=$((64 * 1048576))
		cp "$d/base.raw" "$d/disk.raw" && truncate -s "$start_size" "$d/disk.raw" ||
			fail "creating the raw image"
		image=$d/disk.raw
		tick=restart_tick reconnect=1 vargs="--control $d/ctl"
		# More guest work than the others, and a backend restart.
		timeout=$((${E2E_TIMEOUT:-120} + 60))
		restarted=
		;;
	readonly)
		qemu-img convert -q -f raw -O qcow2 "$d/base.raw" "$d/base.qcow2" ||
			fail "creating the qcow2 image"
		image=$d/base.qcow2
		ro=1
		;;
	raw)
		cp "$d/base.raw" "$d/disk.raw" && truncate -s "$size" "$d/disk.raw" ||
			fail "creating the raw image"
		image=$d/disk.raw
		;;
	vmdkstream)
		qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized \
			"$d/base.raw" "$d/base.vmdk" || fail "creating the streamOptimized VMDK"
		image=$d/base.vmdk
		ro=1
		;;
	qcow2)
		# A compressed base: reads and copy-on-write from compressed
		# clusters of the backing file.
		qemu-img convert -q -c -f raw -O qcow2 "$d/base.raw" "$d/base.qcow2" &&
			qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 \
				"$d/disk.qcow2" "$size" || fail "creating the qcow2 overlay"
		image=$d/disk.qcow2
		;;
	vmdk)
		cp "$d/base.raw" "$d/full.raw" && truncate -s "$size" "$d/full.raw" &&
			qemu-img convert -q -f raw -O vmdk "$d/full.raw" "$d/disk.vmdk" ||
			fail "creating the VMDK"
		image=$d/disk.vmdk
		;;
	esac

	set --
	for f in "$d"/data/*.bin; do
		[ -e "$f" ] || continue
		set -- "$@" "$f" "data/${f##*/}"
	done
	e2e_mkinitrd "$d/initrd" "$here/init-io.sh" "$d/steps" steps \
		"$T/guest-io" bin/guest-io "$@" || fail "building the initramfs"
	md5_before=$(md5sum <"$image")

	E2E_VMMBLK_ARGS=$vargs e2e_backend_start "$backend" "$d/sock" "$fmt" \
		"$image" "$numq" "$d/backend.log" $ro || fail "starting $backend"
	start=$(date +%s)
	E2E_VMMBLK_ARGS=$vargs E2E_TICK=$tick E2E_RECONNECT=$reconnect \
		E2E_TIMEOUT=$timeout E2E_SMP=$smp e2e_boot "$d/console.log" "$d/initrd" "$d/sock" "$numq"
	boot_rc=$?
	e2e_backend_stop || { cat "$d/backend.log" >&2; fail "stopping $backend"; }
	echo "  guest ran $(($(date +%s) - start)) s"
	# Sanitizer builds: a report fails the test even if the daemon went on.
	for _log in "$d"/backend*.log; do
		if grep -Eq 'runtime error:|AddressSanitizer|LeakSanitizer' "$_log"; then
			cat "$_log" >&2
			fail "$name: sanitizer report from $backend"
		fi
	done
	[ "$boot_rc" = 0 ] || fail "the guest did not run to completion"
	if grep -a '^E2E-FAIL' "$d/console.log" >&2; then
		tail -n 20 "$d/console.log" >&2
		fail "the guest reported an error"
	fi
	grep -aq '^E2E-DONE' "$d/console.log" || {
		tail -n 30 "$d/console.log" >&2
		fail "the guest stopped before finishing its steps"
	}
	grep -a '^E2E-INFO' "$d/console.log" | tr -d '\r' | sed 's/^E2E-INFO/  device:/'
	gsize=$(grep -a '^E2E-READY' "$d/console.log" | tr -d '\r' | sed 's/^E2E-READY //')
	[ "$gsize" = "$start_size" ] || fail "$name: the guest sees $gsize bytes, the image has $start_size"
	if [ -n "$tick" ]; then
		[ -n "$restarted" ] || fail "$name: the backend was never restarted"
		_g=$(grep -a '^E2E restart' "$d/console.log" | tr -d '\r')
		case $_g in
		*" size=$size") echo "  guest: $_g" ;;
		*) fail "$name: the guest did not see the disk grow to $size ($_g)" ;;
		esac
		_re=$(grep -o 'queue [0-9]*: resubmitting [0-9]* requests' "$d/backend-2.log" |
			paste -sd ';' -)
		[ -n "$_re" ] || fail "$name: the new vmm-blk resubmitted nothing"
		echo "  new vmm-blk: $_re"
	fi
	check_reads "$d" || fail "$name: guest-visible data is wrong"
	check_queues "$d" "$numq"
	check_serial "$d"
	if [ -n "$ro" ]; then
		grep -aq '^E2E rotest' "$d/console.log" || fail "$name: read-only check did not run"
		[ "$(md5sum <"$image")" = "$md5_before" ] ||
			fail "$name: the read-only image file was modified"
		echo "  read-only: guest writes refused, image file unchanged"
	fi

	if [ "$fmt" != raw ]; then
		qemu-img check -f "$fmt" "$image" >"$d/check.log" 2>&1 || {
			cat "$d/check.log" >&2
			fail "$name: qemu-img check found problems in the image"
		}
		echo "  qemu-img check: clean"
	fi
	qemu-img compare -f "$fmt" -F raw "$image" "$d/expected.raw" >"$d/compare.log" 2>&1 || {
		cat "$d/compare.log" >&2
		fail "$name: image content differs from the expected"
	}
	echo "  qemu-img compare: identical to the expected content"
	check_discards "$d" "$fmt" "$image" || fail "$name: discards did not free clusters"
	# Each scenario holds a few hundred MiB of images; free them early.
	[ -n "${E2E_KEEP:-}" ] || rm -rf "$d"
}

# VMDK through vmm-blk needs this build's VMDK driver.
vmdk_supported() {
	[ "$backend" = qsd ] && return 0
	[ -n "${MIMG:-}" ] && [ -x "$MIMG" ] || return 1
	qemu-img create -q -f vmdk "$T/probe.vmdk" 1M >/dev/null 2>&1 &&
		"$MIMG" info -f vmdk "$T/probe.vmdk" >/dev/null 2>&1
}

for s in ${E2E_SCENARIOS:-qcow2 readonly raw vmdk vmdkstream restart}; do
	case $s in
	# 12 KiB past a cluster boundary: the last cluster is a partial one.
	qcow2) scenario qcow2 qcow2 2 2 --size $((64 * 1048576 + 12288)) ;;
	readonly) scenario readonly qcow2 1 1 --read-only --base-size 67108864 ;;
	raw) scenario raw raw 2 2 ;;
	vmdk)
		if vmdk_supported; then
			# vmm-blk frees discarded grains; qemu's VMDK driver has
			# no discard, so the reference runs without.
			if [ "$backend" = qsd ]; then
				scenario vmdk vmdk 1 1 --no-discard
			else
				scenario vmdk vmdk 1 1
			fi
		else
			echo "== vmdk: not run, this build's mimg cannot open VMDK"
		fi
		;;
	vmdkstream)
		if vmdk_supported; then
			scenario vmdkstream vmdk 1 1 --read-only --base-size 67108864
		else
			echo "== vmdkstream: not run, this build's mimg cannot open VMDK"
		fi
		;;
	restart)
		if [ "$backend" = vmm-blk ]; then
			scenario restart raw 2 2 --restart-to "$RESTART_SIZE"
		else
			echo "== restart: not run, it needs vmm-blk's control socket"
		fi
		;;
	*) fail "unknown scenario $s" ;;
	esac
done
echo "PASS"
