#!/bin/busybox sh
# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# Guest /init for the I/O test: runs /steps (written by io-plan.py) against
# /dev/vda and prints one "E2E ..." line per step.  Reads and writes use
# O_DIRECT so every byte crosses the virtio-blk device, not the page cache.
#
# Steps:  write OFF FILE | read OFF LEN | discard OFF LEN | zeroout OFF LEN
#         | stripe OFF FILE (4 concurrent writers, interleaved 4 KiB blocks)
#         | flush | rotest (the device is read-only and refuses writes)
#         | serial (report the device's serial number)
#         | reload (unbind and rebind virtio_blk: the device is reset and
#           set up again over the same vhost-user connection)
#         | restart OFF FILE SIZE (print E2E-SYNC restart, then write FILE
#           at OFF again and again, 4 writers at once, until the disk has
#           SIZE bytes: the host kills the backend in the middle, starts a
#           new one and resizes the disk through it)

. /lib/prelude.sh
set -o pipefail

dev=/dev/vda
[ -r /steps ] || guest_fail "no /steps"

step_write() {
	dd if="/data/$2" of="$dev" bs=64k oflag=direct,seek_bytes seek="$1" \
		conv=notrunc 2>/tmp/dd.err || guest_fail "write $1 $2: $(cat /tmp/dd.err)"
	echo "E2E write $1 $2"
}

step_read() {
	sum=$(dd if="$dev" bs=64k iflag=direct,skip_bytes,count_bytes \
		skip="$1" count="$2" 2>/tmp/dd.err | md5sum) ||
		guest_fail "read $1 $2: $(cat /tmp/dd.err)"
	echo "E2E read $1 $2 ${sum%% *}"
}

step_discard() {
	max=$(cat /sys/block/vda/queue/discard_max_bytes)
	[ "$max" -gt 0 ] || guest_fail "discard $1 $2: device does not support discard"
	blkdiscard -o "$1" -l "$2" "$dev" || guest_fail "discard $1 $2"
	echo "E2E discard $1 $2"
}

step_zeroout() {
	/bin/guest-io zeroout "$dev" "$1" "$2" || guest_fail "zeroout $1 $2"
	echo "E2E zeroout $1 $2"
}

# Each writer is pinned to a vCPU in turn: with 2+ vCPUs and queues, the
# writers' requests go down different queues at once (blk-mq maps queues
# to CPUs), and every queue carries some I/O.
step_stripe() {
	pids=
	ncpu=$(grep -c ^processor /proc/cpuinfo)
	for i in 0 1 2 3; do
		taskset -c $((i % ncpu)) /bin/guest-io stripe "$dev" "/data/$2" "$1" "$i" 4 4096 &
		pids="$pids $!"
	done
	for p in $pids; do
		wait "$p" || guest_fail "stripe $1 $2: a writer failed"
	done
	echo "E2E stripe $1 $2"
}

step_rotest() {
	[ "$(blockdev --getro "$dev")" = 1 ] || guest_fail "the device is not read-only"
	if dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct conv=notrunc 2>/dev/null; then
		guest_fail "a write to the read-only device succeeded"
	fi
	echo "E2E rotest"
}

step_reload() {
	drv=/sys/bus/virtio/drivers/virtio_blk
	vdev=$(basename "$(readlink -f /sys/block/vda/device)")
	echo "$vdev" >"$drv/unbind" || guest_fail "unbinding $vdev from virtio_blk"
	[ -b "$dev" ] && guest_fail "$dev still present after unbind"
	echo "$vdev" >"$drv/bind" || guest_fail "binding $vdev to virtio_blk"
	i=0
	while [ ! -b "$dev" ]; do
		i=$((i + 1))
		[ "$i" -gt 200 ] && guest_fail "no $dev 20 s after rebinding virtio_blk"
		sleep 0.1
	done
	echo "E2E reload $vdev"
}

step_restart() {
	want=$(($3 / 512))
	echo "E2E-SYNC restart"
	n=0
	while [ "$(cat /sys/block/vda/size)" != "$want" ]; do
		n=$((n + 1))
		[ "$n" -gt 1000 ] && guest_fail "restart: the disk never grew to $3 bytes"
		step_stripe "$1" "$2" >/dev/null
	done
	echo "E2E restart $1 $2 rounds=$n size=$(blockdev --getsize64 "$dev")"
}

# fsync on the block device makes Linux send a virtio-blk FLUSH.
step_flush() {
	dd if=/dev/null of="$dev" conv=notrunc,fsync 2>/tmp/dd.err ||
		guest_fail "flush: $(cat /tmp/dd.err)"
	echo "E2E flush"
}

q=/sys/block/vda/queue
echo "E2E-INFO discard_max_bytes=$(cat $q/discard_max_bytes)" \
	"write_zeroes_max_bytes=$(cat $q/write_zeroes_max_bytes)" \
	"logical_block_size=$(cat $q/logical_block_size)" \
	"write_cache=$(cat $q/write_cache | tr ' ' _)" \
	"queues=$(ls -d /sys/block/vda/mq/* | wc -l)" \
	"ro=$(blockdev --getro "$dev")"

while read -r op a b c; do
	case $op in
	write) step_write "$a" "$b" ;;
	read) step_read "$a" "$b" ;;
	discard) step_discard "$a" "$b" ;;
	zeroout) step_zeroout "$a" "$b" ;;
	stripe) step_stripe "$a" "$b" ;;
	reload) step_reload ;;
	restart) step_restart "$a" "$b" "$c" ;;
	flush) step_flush ;;
	rotest) step_rotest ;;
	serial) echo "E2E serial $(cat /sys/block/vda/serial 2>/dev/null)" ;;
	'' | '#'*) ;;
	*) guest_fail "unknown step $op" ;;
	esac
done </steps

# Interrupts per request queue (MSI-X vector "virtioN-req.Q"), so the host
# can tell that every queue carried I/O.
echo "E2E-QUEUES$(awk '/virtio[0-9]+-req/ {
	n = 0
	for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i
	printf " %s=%d", $NF, n
}' /proc/interrupts)"

echo "E2E-DONE"
guest_poweroff
