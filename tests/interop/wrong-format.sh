#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# An image opened as a format it is not in (-f): mimg refuses it in
# qemu-img's words, for each format qemu-img creates and each format named.
# Left out: VHDX (qemu-img says only "Invalid argument"; mimg names the
# missing identifier), a file too large to be a VMDK descriptor and one
# too small for a LUKS header (mimg says so), a qcow2 file taken for VDI
# (qemu-img judges a field before the signature).
. "$TESTLIB"
need qemu-img

files=""
for f in qcow2 vmdk vpc vdi vhdx parallels qcow qed raw; do
	qemu-img create -q -f $f x.$f 1M || fail "qemu-img create -f $f"
	files="$files x.$f"
done
n=0
for file in $files; do
	for fmt in qcow2 vmdk vpc vdi parallels qcow qed luks bochs cloop; do
		case $fmt:$file in
		vmdk:x.vhdx | luks:x.qcow | vdi:x.qcow2) continue ;;
		"${file#x.}:$file") continue ;; # its own format
		esac
		need_format "$fmt"
		same_output -e "info -f $fmt $file" info -f "$fmt" "$file"
		n=$((n + 1))
	done
done
echo "wrong-format: $n refusals in qemu-img's words"
