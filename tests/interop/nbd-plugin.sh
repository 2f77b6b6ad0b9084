#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# nbdkit-mimg-plugin with independent clients: qemu-img, qemu-io, nbdcopy
# and nbdinfo read raw, qcow2, VMDK, VHDX and a qcow2 backing chain served by
# the plugin as qemu-img reads the files; the extent map matches
# qemu-nbd's on the same image; writes through the plugin (qemu-io with
# FUA, zeroes and discards, nbdcopy over several connections) leave an
# image that qemu-img check finds clean and that holds what was written.
# nbdkit's cow filter and TLS stack on the plugin.
. "$TESTLIB"
. "$(dirname "$TESTLIB")/nbd-lib.sh"
need_plugin
need qemu-img qemu-io qemu-nbd nbdinfo nbdcopy python3 cmp

formats=$("$MIMG" --help | sed -n 's/^Formats://p')
for f in qcow2 vmdk; do
	case " $formats " in
	*" $f "*) ;;
	*) echo "SKIP: mimg has no $f driver"; exit 77 ;;
	esac
done

# The images: data, an explicit zero range and holes in each.
qemu-img create -q -f raw disk.raw 16M
qemu-io -f raw -c 'write -P 0x11 1M 3M' -c 'write -P 0x12 9M 64k' \
	disk.raw >/dev/null
qemu-img create -q -f qcow2 disk.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x21 0 2M' -c 'write -z 4M 1M' \
	-c 'write -P 0x22 15M 512k' disk.qcow2 >/dev/null
qemu-img create -q -f vmdk disk.vmdk 16M
qemu-io -f vmdk -c 'write -P 0x31 64k 1M' -c 'write -P 0x32 12M 4k' \
	disk.vmdk >/dev/null
mkdir -p chain/base
qemu-img create -q -f raw chain/base/base.raw 16M
qemu-io -f raw -c 'write -P 0x41 0 8M' chain/base/base.raw >/dev/null
qemu-img create -q -f qcow2 -b base/base.raw -F raw chain/top.qcow2
qemu-io -f qcow2 -c 'write -P 0x42 1M 1M' -c 'write -z 6M 1M' \
	chain/top.qcow2 >/dev/null

for spec in disk.raw:raw disk.qcow2:qcow2 disk.vmdk:vmdk \
	chain/top.qcow2:qcow2; do
	img=${spec%%:*} fmt=${spec#*:}
	rm -f expect.raw q.raw c.raw
	qemu-img convert -f "$fmt" -O raw "$img" expect.raw ||
		fail "qemu-img convert $img"
	nbd_mimg m file="$img" readonly=true
	muri=$URI

	vsize=$(qemu-img info --output=json -f "$fmt" "$img" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
	qemu-img info --output=json -f raw "$muri" >info.json ||
		fail "qemu-img info on the plugin serving $img"
	check_eq "$(json_get info.json virtual-size)" "$vsize" \
		"size of $img served by the plugin"
	qemu-img compare -q -f raw -F raw "$muri" expect.raw ||
		fail "qemu-img compare: plugin serving $img"
	qemu-img convert -f raw -O raw "$muri" q.raw ||
		fail "qemu-img convert from the plugin serving $img"
	cmp q.raw expect.raw || fail "qemu-img read $img wrong through the plugin"
	nbdcopy "$muri" c.raw || fail "nbdcopy from the plugin serving $img"
	cmp c.raw expect.raw || fail "nbdcopy read $img wrong through the plugin"
	nbdinfo "$muri" >info.txt || fail "nbdinfo $img"
	grep -q 'is_read_only: true' info.txt ||
		fail "readonly=true: export of $img is writable"
	grep -q 'can_multi_conn: true' info.txt ||
		fail "the plugin does not offer multi-conn for $img"

	# The same extents as qemu-nbd reports for the same image.
	merged_map "$muri" >m.map || fail "nbdinfo --map on the plugin ($img)"
	qemu_nbd_start q -r -f "$fmt" "$img"
	merged_map "$URI" >q.map || fail "nbdinfo --map on qemu-nbd ($img)"
	nbd_stop q
	diff q.map m.map >map.diff ||
		{ cat map.diff >&2; fail "extent map of $img differs from qemu-nbd's"; }
	nbd_stop m
done

# A VHDX and a Parallels image served read-only and written through the
# plugin: qemu-img reads what they hold (qemu-nbd reports a VHDX all data,
# so extents are not compared).
qemu-img create -q -f raw vpat.raw 16M
qemu-io -f raw -c 'write -P 0x52 5M 1536k' -c 'write -P 0x53 2M 4k' \
	vpat.raw >/dev/null
for fmt in vhdx parallels; do
	need_format $fmt
	d=disk.$fmt
	o=
	[ $fmt = vhdx ] && o=block_size=1M
	qemu-img create -q -f $fmt ${o:+-o $o} $d 16M
	qemu-io -f $fmt -c 'write -P 0x51 2M 1M' $d >/dev/null
	nbd_mimg v file=$d readonly=true
	qemu-img compare -q -f raw -F $fmt "$URI" $d ||
		fail "qemu-img compare: plugin serving $d"
	nbd_stop v
	nbd_mimg v file=$d
	nbdcopy vpat.raw "$URI" || fail "nbdcopy into the plugin serving $d"
	# (closing marks a Parallels image closed: wait for it)
	nbd_stop v wait
	qemu-img check -q $d || fail "qemu-img check $d"
	qemu-img compare -q -f $fmt -F raw $d vpat.raw ||
		fail "$d after nbdcopy through the plugin"
done

# Writes through the plugin into the chain's overlay: qemu-io with FUA,
# write-zeroes and discard, then nbdcopy over several connections.
cp chain/top.qcow2 top.orig
qemu-img convert -f qcow2 -O raw chain/top.qcow2 expect.raw
nbd_mimg w file=chain/top.qcow2
wuri=$URI
nbdinfo "$wuri" >info.txt || fail "nbdinfo on a writable export"
for cap in can_flush can_fua can_zero can_trim can_multi_conn; do
	grep -q "$cap: true" info.txt || fail "writable export lacks $cap"
done
io_cmds="-c 'write -P 0x5a 512k 64k' -c 'write -f -P 0x5b 3M 4k' -c 'write -z 1M 256k' -c 'write -z -u 12M 1M' -c 'discard 14M 64k' -c 'write -P 0x5c 15M 1M' -c flush"
eval "qemu-io -f raw $io_cmds \"\$wuri\"" >qio.out 2>&1 &&
	! grep -qi 'error\|fail' qio.out ||
	{ cat qio.out >&2; fail "qemu-io writes through the plugin"; }
eval "qemu-io -f raw $io_cmds expect.raw" >/dev/null 2>&1 ||
	fail "qemu-io on the expected content"
# discard makes qcow2 ranges read as the backing file: model it so
python3 - <<'PY' || fail "model of discard"
with open("chain/base/base.raw", "rb") as b, open("expect.raw", "r+b") as e:
    b.seek(14 << 20); e.seek(14 << 20); e.write(b.read(64 << 10))
PY
# nbdcopy writes a new pattern in parallel (4 connections by default);
# with --destination-is-zero it copies only the source's data.
qemu-img create -q -f raw pat.raw 16M
qemu-io -f raw -c 'write -P 0x66 4M 2M' -c 'write -P 0x67 8M 64k' \
	pat.raw >/dev/null
python3 - <<'PY' || fail "model of the nbdcopy writes"
with open("pat.raw", "rb") as p, open("expect.raw", "r+b") as e:
    for off, n in ((4 << 20, 2 << 20), (8 << 20, 64 << 10)):
        p.seek(off); e.seek(off); e.write(p.read(n))
PY
nbdcopy --destination-is-zero pat.raw "$wuri" ||
	fail "nbdcopy into the plugin"
nbd_stop w wait
qemu-img check -q chain/top.qcow2 || fail "qemu-img check after writes"
qemu-img compare -q -f qcow2 -F raw chain/top.qcow2 expect.raw ||
	fail "content after writes through the plugin"

# nbdkit -r: the image is not touched.
nbd_mimg r -r file=chain/top.qcow2
cmp chain/top.qcow2 top.orig >/dev/null 2>&1 && fail "test setup: no change"
cp chain/top.qcow2 top.before
qemu-io -f raw -c 'write 0 4k' "$URI" >qio.out 2>&1
grep -qi 'read-only\|readonly\|not permitted\|EPERM\|denied' qio.out ||
	{ cat qio.out >&2; fail "nbdkit -r accepted a write"; }
nbd_stop r wait
cmp chain/top.qcow2 top.before || fail "nbdkit -r changed the image"

# untrusted=true: an image that names a backing file is refused at start.
LD_PRELOAD=$NBDKIT_PRELOAD nbdkit -U "$T/u.sock" --pidfile "$T/u.pid" -f "$NBDKIT_MIMG_PLUGIN" \
	file=chain/top.qcow2 untrusted=true 2>u.err &&
	fail "untrusted=true served an image with a backing file"
grep -q "untrusted" u.err || { cat u.err >&2; fail "untrusted: no reason given"; }
nbd_mimg u2 file=disk.qcow2 untrusted=true
qemu-img compare -q -f raw -F qcow2 "$URI" disk.qcow2 ||
	fail "untrusted=true on a self-contained image"
nbd_stop u2
# nbdkit's filters stack on the plugin: cow keeps the client's writes
# in memory and leaves the image alone; TLS (a pre-shared key) serves it
# to a client that authenticates, here nbdcopy.
cp disk.qcow2 cow.before
nbd_start c --filter=cow "$NBDKIT_MIMG_PLUGIN" file=disk.qcow2
qemu-io -f raw -c "write -P 0x5c 0 64k" -c "read -P 0x5c 0 64k" "$URI" |
	grep -q '^read 65536' || fail "cow filter over the plugin"
nbd_stop c wait
cmp disk.qcow2 cow.before || fail "cow filter: the image changed"
printf 'alice:%s\n' "$(python3 -c 'import os; print(os.urandom(32).hex())')" >keys.psk
if LD_PRELOAD=$NBDKIT_PRELOAD nbdkit -U "$T/t.sock" --pidfile "$T/t.pid" --tls=require \
	--tls-psk="$T/keys.psk" "$NBDKIT_MIMG_PLUGIN" file=disk.qcow2 2>t.log &&
	wait_for "$T/t.pid"; then
	NBD_SERVERS="$NBD_SERVERS t"
	nbdcopy "nbds+unix://alice@/?socket=$T/t.sock&tls-psk-file=$T/keys.psk" \
		tls.raw || fail "nbdcopy over TLS from the plugin"
	qemu-img compare -q -f raw -F qcow2 tls.raw disk.qcow2 ||
		fail "content read over TLS from the plugin"
	nbd_stop t
else
	echo "nbdkit without TLS: the plugin over TLS not tested"
fi

# password=+FILE: an encrypted image is served decrypted; without the
# password nbdkit refuses to start.
case " $formats " in
*" luks "*)
	printf 'nbd-secret' >pass.txt
	qemu_img_luks create -q -f luks --object secret,id=s,file=pass.txt \
		-o key-secret=s,iter-time=10 disk.luks 4M ||
		fail "qemu-img create luks"
	qemu-io --object secret,id=s,file=pass.txt \
		--image-opts driver=luks,key-secret=s,file.filename=disk.luks \
		-c 'write -P 0x77 64k 1M' >/dev/null || fail "qemu-io luks"
	qemu-img convert --object secret,id=s,file=pass.txt \
		--image-opts driver=luks,key-secret=s,file.filename=disk.luks \
		-O raw luks.raw || fail "qemu-img convert luks"
	nbd_mimg l file=disk.luks password=+pass.txt readonly=true
	qemu-img compare -q -f raw -F raw "$URI" luks.raw ||
		fail "LUKS image served with password="
	nbd_stop l
	LD_PRELOAD=$NBDKIT_PRELOAD nbdkit -U "$T/l2.sock" --pidfile "$T/l2.pid" -f "$NBDKIT_MIMG_PLUGIN" \
		file=disk.luks 2>l2.err &&
		fail "an encrypted image was served without its password"
	grep -q "password" l2.err || { cat l2.err >&2; fail "no password: no reason given"; }
	;;
esac
echo "ok"
