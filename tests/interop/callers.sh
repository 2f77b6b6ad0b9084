#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg in place of qemu-img for the programs that run qemu-img: each
# scenario is the argument list a real caller builds (the caller and its
# source file are named beside it), run once with qemu-img 7.2 and once
# with mimg invoked through a link named qemu-img, each in a directory of
# its own holding the same inputs.  The two runs must end with the same
# exit status, print the same JSON (apart from actual-size, which depends
# on the host's allocation), and leave images that qemu-img compares
# identical, checks with the same verdict and describes with the same
# format, size and backing file.
. "$TESTLIB"
need qemu-img python3

QEMU_IMG=$(command -v qemu-img)
mkdir -p bin
ln -s "$MIMG" bin/qemu-img
MIMG_AS_QEMU=$T/bin/qemu-img
# Where O_DIRECT works (callers pick -t none only there): the build tree,
# unless it is on tmpfs too, in which case -t none scenarios check that
# both tools fail alike.
WORK=$(mktemp -d "${CALLERS_WORKDIR:-${BUILD_ROOT:-$PWD}}/callers.XXXXXX")
trap 'rm -rf "$T" "$WORK"' EXIT
scenarios=0
failures=0
# Every scenario runs; each disagreement is reported.
disagree() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# Inputs every scenario starts from, made with qemu-img itself.
make_inputs() {
	"$QEMU_IMG" create -q -f raw src.raw 8M
	python3 - <<'PY'
import os
with open("src.raw", "r+b") as f:
    for i, off in enumerate((0, 3 << 20, (5 << 20) + 4096)):
        f.seek(off)
        f.write(bytes([(i * 37 + j) % 251 for j in range(65536)]))
PY
	"$QEMU_IMG" convert -q -f raw -O qcow2 src.raw base.qcow2
	"$QEMU_IMG" convert -q -f raw -O qcow2 src.raw base2.qcow2
	"$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
	"$QEMU_IMG" convert -q -f raw -O vmdk src.raw src.vmdk
	"$QEMU_IMG" convert -q -f raw -O qcow2 -c src.raw comp.qcow2
}

# Facts of an image both runs must agree on.
image_facts() {
	"$QEMU_IMG" info --output=json "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d.get("format"), d.get("virtual-size"), d.get("backing-filename"),
      d.get("backing-filename-format"))'
	"$QEMU_IMG" check -q "$1" >/dev/null 2>&1
	echo "check $?"
}

# Drop what depends on the host's allocation from JSON output.
json_norm() {
	python3 -c '
import json, sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k != "actual-size"}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
try:
    print(json.dumps(strip(json.load(sys.stdin)), sort_keys=True))
except ValueError:
    print("(not JSON)")'
}

# scenario NAME CALLER OUTPUTS -- ARGS...: run qemu-img ARGS in two
# directories and compare; OUTPUTS lists the images the command writes
# (comma-separated, or - for none).
scenario() {
	name=$1 caller=$2 outputs=$3
	shift 4
	scenarios=$((scenarios + 1))
	for side in ref mimg; do
		rm -rf "$WORK/$side"
		cp -a "$WORK/inputs" "$WORK/$side"
	done
	(cd "$WORK/ref" && "$QEMU_IMG" "$@" >out.txt 2>err.txt; echo $? >rc)
	(cd "$WORK/mimg" && "$MIMG_AS_QEMU" "$@" >out.txt 2>err.txt; echo $? >rc)
	ref_rc=$(cat "$WORK/ref/rc") mimg_rc=$(cat "$WORK/mimg/rc")
	if [ "$ref_rc" != "$mimg_rc" ]; then
		disagree "$name ($caller): qemu-img exit $ref_rc, mimg exit $mimg_rc: $(cat "$WORK/mimg/err.txt")"
		return 0
	fi
	json=
	case " $* " in *" --output=json "* | *" --output json "*) json=1 ;; esac
	if [ -n "$json" ]; then
		a=$(json_norm <"$WORK/ref/out.txt") b=$(json_norm <"$WORK/mimg/out.txt")
		[ "$a" = "$b" ] || disagree "$name ($caller): JSON differs
qemu-img: $a
mimg:     $b"
	fi
	[ "$outputs" = - ] && return 0
	[ "$ref_rc" = 0 ] || return 0
	for f in $(echo "$outputs" | tr , ' '); do
		a=$(cd "$WORK/ref" && image_facts "$f")
		b=$(cd "$WORK/mimg" && image_facts "$f")
		[ "$a" = "$b" ] || disagree "$name ($caller): $f differs
qemu-img: $a
mimg:     $b"
		(cd "$WORK" && "$QEMU_IMG" compare -q "ref/$f" "mimg/$f") ||
			disagree "$name ($caller): $f content differs from qemu-img's"
	done
}

# The inputs are made once and copied for each run.
mkdir "$WORK/inputs"
(cd "$WORK/inputs" && make_inputs)

# Nova: nova/privsep/qemu.py unprivileged_convert_image (-t none where the
# instance directory takes O_DIRECT, else writeback; -c when compressing).
scenario nova-convert-none nova/privsep/qemu.py dst.raw -- \
	convert -t none -O raw -f qcow2 base.qcow2 dst.raw
scenario nova-convert-none-qcow2 nova/privsep/qemu.py dst.qcow2 -- \
	convert -t none -O qcow2 -f raw src.raw dst.qcow2
scenario nova-convert-compress nova/privsep/qemu.py dst.qcow2 -- \
	convert -t writeback -O qcow2 -f raw -c src.raw dst.qcow2
scenario nova-convert-vmdk nova/privsep/qemu.py dst.raw -- \
	convert -t none -O raw -f vmdk src.vmdk dst.raw
# Nova: nova/virt/images.py qemu_img_info, --force-share and JSON.
scenario nova-info nova/virt/images.py - -- \
	info --output=json --force-share -f qcow2 top.qcow2
scenario nova-info-noformat nova/virt/images.py - -- \
	info --output=json --force-share base.qcow2
# Nova: nova/virt/libvirt/utils.py create_cow_image, with and without a
# size (root_gb=0).
scenario nova-create-cow nova/virt/libvirt/utils.py ov.qcow2 -- \
	create -f qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2,cluster_size=65536 ov.qcow2
scenario nova-create-cow-size nova/virt/libvirt/utils.py ov.qcow2 -- \
	create -f qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 ov.qcow2 16M
# Nova: nova/virt/disk/api.py extend.
scenario nova-resize nova/virt/disk/api.py base.qcow2 -- \
	resize base.qcow2 16M
# Nova: nova/virt/libvirt/driver.py volume snapshot deletion (rebase).
scenario nova-rebase nova/virt/libvirt/driver.py top.qcow2 -- \
	rebase -b base2.qcow2 -F qcow2 top.qcow2
scenario nova-rebase-unsafe nova/virt/libvirt/driver.py top.qcow2 -- \
	rebase -u -b base2.qcow2 -F qcow2 top.qcow2
# Cinder: cinder/image/image_utils.py convert_image (-O first, -t, -o
# subformat, -f last).
scenario cinder-convert-stream cinder/image/image_utils.py dst.vmdk -- \
	convert -O vmdk -t none -o subformat=streamOptimized -f raw src.raw dst.vmdk
scenario cinder-convert-vpc cinder/image/image_utils.py dst.vhd -- \
	convert -O vpc -f qcow2 base.qcow2 dst.vhd
scenario cinder-convert-raw cinder/image/image_utils.py dst.raw -- \
	convert -O raw -f qcow2 comp.qcow2 dst.raw
scenario cinder-info cinder/image/image_utils.py - -- \
	info --output=json --force-share -f raw src.raw
scenario cinder-resize cinder/image/image_utils.py src.raw -- \
	resize -f raw src.raw 12M
# Cinder: cinder/volume/drivers/remotefs.py snapshots.
scenario cinder-snap-create cinder/volume/drivers/remotefs.py snap.qcow2 -- \
	create -f qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 snap.qcow2 8M
scenario cinder-commit cinder/volume/drivers/remotefs.py base.qcow2 -- \
	commit -d top.qcow2
scenario cinder-rebase-u cinder/volume/drivers/remotefs.py top.qcow2 -- \
	rebase -u -b base2.qcow2 -F qcow2 top.qcow2
# Glance: glance/async_/flows/plugins/image_conversion.py (info, then
# convert), with file: names from the staging area.
scenario glance-info glance/async_/flows/plugins/image_conversion.py - -- \
	info --output=json file:base.qcow2
scenario glance-convert glance/async_/flows/plugins/image_conversion.py dst.raw -- \
	convert -f qcow2 -O raw file:base.qcow2 dst.raw
# ironic-lib: ironic_lib/qemu_img.py convert_image (-O raw, -t directsync
# falls back like -t none).
scenario ironic-convert ironic_lib/qemu_img.py dst.raw -- \
	convert -O raw -f qcow2 base.qcow2 dst.raw
# libvirt: src/storage/storage_util.c (create with compat, backing, resize
# --shrink, convert).
scenario libvirt-create src/storage/storage_util.c vol.qcow2 -- \
	create -f qcow2 -o compat=1.1 vol.qcow2 16M
scenario libvirt-create-backing src/storage/storage_util.c vol.qcow2 -- \
	create -f qcow2 -b base.qcow2 -F qcow2 -o compat=1.1 vol.qcow2 8M
scenario libvirt-convert src/storage/storage_util.c vol.qcow2 -- \
	convert -f raw -O qcow2 -o compat=1.1 src.raw vol.qcow2
scenario libvirt-shrink-raw src/storage/storage_util.c src.raw -- \
	resize --shrink -f raw src.raw 6M
scenario libvirt-shrink-qcow2 src/storage/storage_util.c base.qcow2 -- \
	resize --shrink -f qcow2 base.qcow2 4M
# cloud-localds (cloud-image-utils): convert the seed to qcow2.
scenario cloud-localds bin/cloud-localds seed.qcow2 -- \
	convert -f raw -O qcow2 src.raw seed.qcow2
# genimage: image-qemu.c.
scenario genimage image-qemu.c out.qcow2 -- \
	convert -f raw -O qcow2 src.raw out.qcow2
# measure, as image builders size their volumes.
scenario measure-json diskimage-builder - -- \
	measure --output=json -O qcow2 -f raw src.raw

# Cinder parses the version with "qemu-img version ([0-9.]*)".
"$MIMG_AS_QEMU" --version | grep -Eq '^qemu-img version [0-9]+\.[0-9]+\.[0-9]+' ||
	fail "version line: $("$MIMG_AS_QEMU" --version | head -1)"
[ "$failures" = 0 ] || fail "$failures of $scenarios caller scenarios differ from qemu-img"
echo "$scenarios caller scenarios agree with qemu-img"
