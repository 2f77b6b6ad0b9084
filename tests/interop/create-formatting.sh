#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# create's "Formatting" line is qemu-img's, word for word: the options in
# qemu-img's order, defaults listed, sizes and numbers in decimal, the
# last of a repeated option, the size taken from a backing file; and
# printed, or not, before a refusal as qemu-img prints it.
. "$TESTLIB"
need qemu-img

qemu-img create -q -f raw base.raw 3M
mkdir q m
n=0
# same FMT ARGS...: both tools create FMT with ARGS in their own
# directory; their standard outputs must be equal (qemu-img's last line:
# an encrypted image's creation may be tried again, see qemu_img_luks).
same() {
	fmt=$1
	shift
	(cd q && qemu_img_luks create -f "$fmt" "$@" >all 2>err) ||
		fail "qemu-img create -f $fmt $*: $(cat q/err)"
	tail -n 1 q/all >q/out
	(cd m && "$MIMG" create -f "$fmt" "$@" >out 2>err) ||
		fail "mimg create -f $fmt $*: $(cat m/err)"
	cmp -s q/out m/out ||
		fail "-f $fmt $*: qemu-img says '$(cat q/out)', mimg '$(cat m/out)'"
	rm -f q/img m/img
	n=$((n + 1))
}
cp base.raw q/ && cp base.raw m/
for f in raw qcow2 vmdk vdi vpc vhdx; do
	same $f img 1G
	same $f -o size=4M img
done
same raw -o preallocation=off img 1M
same qcow2 -o cluster_size=64k -o cluster_size=0x20000,lazy_refcounts=yes img 1M
same qcow2 -o refcount_bits=0x10,compat=0.10,extended_l2=off img 1M
same qcow2 -o compression_type=zstd,preallocation=metadata,data_file_raw=off img 1M
same qcow2 -b base.raw -F raw img
same qcow2 -o backing_file=base.raw,backing_fmt=raw img 2M
same qcow2 --object secret,id=s0,data=pw -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10,encrypt.cipher-alg=aes-128 img 1M
same vmdk -o subformat=monolithicFlat,adapter_type=lsilogic,hwversion=6 img 1M
same vmdk -o compat6=on,zeroed_grain=on,toolsversion=10240 img 1M
qemu-img create -q -f vmdk base.vmdk 2M && cp base.vmdk q/ && cp base.vmdk m/
same vmdk -b base.vmdk -F vmdk img
same vdi -o static=on,preallocation=off img 1M
same vpc -o subformat=fixed,force_size=on img 1M
same vhdx -o block_size=1M,log_size=2M,block_state_zero=off,subformat=dynamic img 8M
same luks --object secret,id=s0,data=pw -o key-secret=s0,iter-time=10,cipher-alg=aes-128,hash-alg=sha1 img 1M
# Refused values: qemu-img prints the line before the format refuses a
# choice or a combination, and no line when a size, number or boolean
# does not parse.
for o in compression_type=foo compat=9 preallocation=foo cluster_size=3000 \
	compat=0.10,extended_l2=on lazy_refcounts=maybe cluster_size=foo \
	nosuch=1; do
	same_output -e "create -o $o" create -f qcow2 -o $o bad.qcow2 1M
	n=$((n + 1))
done
same_output -e "create vhdx -o block_size=3M" create -f vhdx -o block_size=3M bad.vhdx 1M
same_output -e "create vpc -o subformat=foo" create -f vpc -o subformat=foo bad.vpc 1M
# A backing file that does not open: no line, qemu-img's two-line error.
same_output -e "create -b missing" create -f qcow2 -b missing.qcow2 -F qcow2 \
	bad.qcow2 1M
# What a format cannot create: no line either.
same_output -e "create dmg" create -f dmg bad.dmg 1M
# A backing file that opens: the line (its size, in whole sectors, when
# none is given), then what the format refuses; one named as the image
# itself, an empty name or a missing format: no line.
truncate -s 1000 odd.raw
qemu-img create -q -f qcow2 base.qcow2 3M
for c in "-f qcow2 -b odd.raw -F raw" "-f vmdk -b base.qcow2 -F qcow2" \
	"-f qcow2 -b base.qcow2 -F qcow2 -o cluster_size=3" \
	"-f qcow2 -b bad.qcow2 -F qcow2" \
	"-f qcow2 -o backing_file= -o size=1M" \
	"-f qcow2 -b base.qcow2 -F raw -o refcount_bits=3 -o size=5M"; do
	rm -f bad.qcow2
	# shellcheck disable=SC2086 # the options' words
	same_output -e "create $c" create $c bad.qcow2
	rm -f bad.qcow2
	n=$((n + 1))
done
# (qemu-img ends this one's message without a newline: stdout only)
same_output "create -b without -F" create -f qcow2 -b base.qcow2 bad.qcow2
echo "$n Formatting lines and refusals equal"
