# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# Guest side, busybox sh: sourced by every test guest's /init.  Mounts the
# pseudo filesystems, loads the virtio modules (in the order listed in
# /lib/modules/order), and waits for /dev/vda.  Lines starting "E2E" on the
# serial console are the protocol the host parses.

/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

guest_poweroff() {
	sync
	poweroff -f
	# poweroff -f does not return; if it ever does, init exiting panics
	# the kernel and QEMU (-no-reboot) exits.
	exit 1
}

guest_fail() {
	echo "E2E-FAIL $*"
	guest_poweroff
}

for m in $(cat /lib/modules/order); do
	# Absent file: the module is built into this kernel.
	[ -f "/lib/modules/$m.ko" ] || continue
	insmod "/lib/modules/$m.ko" || guest_fail "insmod $m"
done

i=0
while [ ! -b /dev/vda ]; do
	i=$((i + 1))
	[ "$i" -gt 200 ] && guest_fail "no /dev/vda after 20 s"
	sleep 0.1
done
echo "E2E-READY $(blockdev --getsize64 /dev/vda)"
