#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# convert -O ova writes an appliance that independent readers accept:
# GNU tar and Python's tarfile list ustar members in DSP0243's order
# (.ovf, .mf, the disks as References lists them); sha256sum checks the
# manifest; Python's XML parser reads an OVF 1.0 envelope whose sizes,
# capacities, hardware and references agree with the members (rasd
# elements in the CIM schema's order); qemu-img checks each extracted
# streamOptimized VMDK and finds the source's content in it; OpenStack's
# format inspectors, and virt-v2v --print-source, where they can be had,
# accept the disks and the appliance.  mimg reads its own OVA back.  Bad
# options and a failed conversion leave nothing behind.  (The DMTF schema
# itself, ovftool and VirtualBox are not available to the tests.)
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
need qemu-img qemu-io python3 tar sha256sum

qemu-img create -q -f raw d1.raw 64M
qemu-io -f raw -c "write -P 0x31 0 1M" -c "write -P 0x32 60M 64k" d1.raw \
	>/dev/null || fail "qemu-io"
qemu-img create -q -f raw d2.raw 3000k
qemu-io -f raw -c "write -P 0x99 0 512k" d2.raw >/dev/null || fail "qemu-io"
qemu-img convert -f raw -O qcow2 d2.raw d2.qcow2

"$MIMG" convert -O ova -o "name=Web & DB <1>,cpus=4,memory=3G" d1.raw \
	d2.qcow2 app.ova || fail "convert -O ova"
base="Web___DB__1_"
check_eq "$(tar tf app.ova | tr '\n' ' ')" \
	"$base.ovf $base.mf $base-disk1.vmdk $base-disk2.vmdk " "tar order"
mkdir x
(cd x && tar xf ../app.ova) || fail "tar xf"
(cd x && sed -n 's/^SHA256(\(.*\))= \([0-9a-f]\{64\}\)$/\2  \1/p' "$base.mf" |
	sha256sum -c --strict --quiet) || fail "sha256sum -c of the manifest"
check_eq "$(wc -l < "x/$base.mf")" 3 "manifest lines"

python3 - app.ova x "$base" <<'PY' || fail "OVF or tar layout"
import sys, tarfile, xml.etree.ElementTree as ET
ova, d, base = sys.argv[1:]
with tarfile.open(ova) as t:
    ms = t.getmembers()
    for m in ms:
        assert m.isreg() and m.mode == 0o644, m
        assert not m.pax_headers, m.pax_headers
    sizes = {m.name: m.size for m in ms}
raw = open(ova, 'rb').read(512)
assert raw[257:263] == b'ustar\0' and raw[263:265] == b'00', raw[257:265]
O = '{http://schemas.dmtf.org/ovf/envelope/1}'
R = '{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData}'
V = '{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData}'
env = ET.parse('%s/%s.ovf' % (d, base)).getroot()
assert env.tag == O + 'Envelope'
kids = [c.tag for c in env]
assert kids == [O + 'References', O + 'DiskSection', O + 'NetworkSection',
                O + 'VirtualSystem'], kids
files = {f.get(O + 'id'): f for f in env.find(O + 'References')}
assert [f.get(O + 'href') for f in files.values()] == \
    ['%s-disk1.vmdk' % base, '%s-disk2.vmdk' % base]
for f in files.values():
    assert int(f.get(O + 'size')) == sizes[f.get(O + 'href')], f.attrib
disks = env.find(O + 'DiskSection').findall(O + 'Disk')
caps = [(int(x.get(O + 'capacity')), x.get(O + 'capacityAllocationUnits'),
         int(x.get(O + 'populatedSize'))) for x in disks]
assert caps == [(64 << 20, 'byte', (1 << 20) + (64 << 10)),
                (3000 << 10, 'byte', 512 << 10)], caps
for x in disks:
    assert x.get(O + 'fileRef') in files
    assert x.get(O + 'format').endswith('vmdk.html#streamOptimized')
net = env.find(O + 'NetworkSection').find(O + 'Network').get(O + 'name')
vs = env.find(O + 'VirtualSystem')
assert vs.find(O + 'Name').text == 'Web & DB <1>'
assert vs[0].tag == O + 'Info' and vs[1].tag == O + 'Name'
hw = vs.find(O + 'VirtualHardwareSection')
assert hw.find(O + 'System').find(V + 'VirtualSystemType').text == 'vmx-07'
items = hw.findall(O + 'Item')
ids = set()
by_type = {}
for it in items:
    tags = [c.tag for c in it]
    assert all(t.startswith(R) for t in tags), tags
    assert tags == sorted(tags), ('rasd order', tags)
    f = {c.tag[len(R):]: c.text for c in it}
    assert f['InstanceID'] not in ids
    ids.add(f['InstanceID'])
    by_type.setdefault(f['ResourceType'], []).append(f)
assert by_type['3'][0]['VirtualQuantity'] == '4'
assert by_type['4'][0]['VirtualQuantity'] == '3072'
assert by_type['4'][0]['AllocationUnits'] == 'byte * 2^20'
ctl = by_type['6'][0]
assert ctl['ResourceSubType'] == 'lsilogic'
hd = by_type['17']
assert [h['HostResource'] for h in hd] == \
    ['ovf:/disk/' + x.get(O + 'diskId') for x in disks]
assert all(h['Parent'] == ctl['InstanceID'] for h in hd)
assert [h['AddressOnParent'] for h in hd] == ['0', '1']
assert by_type['10'][0]['Connection'] == net == 'VM Network'
PY

for i in 1 2; do
	v="x/$base-disk$i.vmdk"
	qemu-img check -q -f vmdk "$v" || fail "qemu-img check disk $i"
	qemu-img info --output=json "$v" > info$i.json
	check_eq "$(json_get info$i.json format-specific.data.create-type)" \
		streamOptimized "disk $i create type"
	qemu-img compare -q -f raw -F vmdk "d$i.raw" "$v" ||
		fail "disk $i differs from its source"
	grep -q "RW [0-9]* SPARSE \"$base-disk$i.vmdk\"" "$v" ||
		fail "disk $i's descriptor names another extent"
done
grep -q 'ddb.adapterType = "lsilogic"' "x/$base-disk1.vmdk" ||
	fail "the VMDK's adapter is not the OVF's controller"

# Read back by mimg: the OVF's system, the disks, the manifest.
"$MIMG" info --output=json app.ova > back.json || fail "mimg info app.ova"
check_eq "$(json_get back.json archive.ovf-system.cpus)" 4 "CPUs read back"
check_eq "$(json_get back.json archive.ovf-system.memory)" 3221225472 \
	"memory read back"
check_eq "$(json_get back.json archive.manifest-checked)" 2 "manifest"
"$MIMG" convert --ova-disk 1 -O raw app.ova back2.raw || fail "read disk 2"
qemu-img compare -q -f raw -F raw d2.raw back2.raw || fail "disk 2 read back"

# OpenStack's inspectors on the extracted disks
. "$here/inspector-lib.sh"
find_inspectors
while read -r name src_; do
	"$PY" run_inspector.py "$src_" "x/$base-disk1.vmdk" "x/$base-disk2.vmdk" \
		> verdicts.txt 2>inspect.err || fail "$name: $(cat inspect.err)"
	check_eq "$(tr '\n' ' ' < verdicts.txt)" \
		"vmdk 67108864 SAFE vmdk 3072000 SAFE " "$name inspector"
	echo "$name inspector accepts the OVA's disks"
done < inspectors.txt

# virt-v2v, where it is installed (libguestfs; not in scripts/setup.sh for
# its size), parses the OVA and checks its manifest as it would import it
if command -v virt-v2v >/dev/null; then
	LIBGUESTFS_BACKEND=direct virt-v2v -i ova app.ova --print-source \
		> v2v.txt 2>&1 || fail "virt-v2v: $(cat v2v.txt)"
	for want in "source name: Web & DB <1>" "memory: 3221225472 (bytes)" \
		"nr vCPUs: 4" '0 \[scsi\]' '1 \[scsi\]' \
		'Bridge "VM Network" \[e1000\]'; do
		grep -q "$want" v2v.txt || fail "virt-v2v: no '$want': $(cat v2v.txt)"
	done
	echo "virt-v2v reads the OVA"
fi

# IDE, no network, the name from the file name
"$MIMG" convert -q -O ova -o controller=ide,network= d2.raw d2.raw d2.raw \
	ide.ova || fail "controller=ide"
tar xOf ide.ova ide.ovf > ide.ovf || fail "ide.ovf is not a member"
python3 - ide.ovf <<'PY' || fail "IDE OVF"
import sys, xml.etree.ElementTree as ET
O = '{http://schemas.dmtf.org/ovf/envelope/1}'
R = '{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData}'
env = ET.parse(sys.argv[1]).getroot()
assert env.find(O + 'NetworkSection') is None
vs = env.find(O + 'VirtualSystem')
assert vs.find(O + 'Name').text == 'ide'
items = [{c.tag[len(R):]: c.text for c in it}
         for it in vs.find(O + 'VirtualHardwareSection').findall(O + 'Item')]
ctl = [i for i in items if i['ResourceType'] == '5']
hd = [i for i in items if i['ResourceType'] == '17']
assert [c['Address'] for c in ctl] == ['0', '1']
assert [(h['Parent'], h['AddressOnParent']) for h in hd] == \
    [(ctl[0]['InstanceID'], '0'), (ctl[0]['InstanceID'], '1'),
     (ctl[1]['InstanceID'], '0')]
assert not [i for i in items if i['ResourceType'] == '10']
PY
tar xOf ide.ova ide-disk1.vmdk | grep -aq 'ddb.adapterType = "ide"' ||
	fail "IDE disk's adapter"

# -o help lists the appliance's options
"$MIMG" convert -O ova -o help d1.raw help.ova > help.txt ||
	fail "-o help"
for o in controller cpus memory name network; do
	grep -q "^  $o=" help.txt || fail "-o help lacks $o: $(cat help.txt)"
done
[ ! -e help.ova ] || fail "-o help wrote the output"

refused() { # WHY ARGS...: convert fails, says WHY, leaves no output
	why=$1
	shift
	"$MIMG" convert -O ova "$@" bad.ova 2>err.txt && fail "accepted: $*"
	grep -q "$why" err.txt || fail "$*: message lacks '$why': $(cat err.txt)"
	[ ! -e bad.ova ] || fail "$*: bad.ova left behind"
}
refused "cpus=0 is not between" -o cpus=0 d1.raw
refused "memory=1000 is not a whole number of MiB" -o memory=1000 d1.raw
refused "5 disks; one IDE controller takes 1 to 4" -o controller=ide \
	d2.raw d2.raw d2.raw d2.raw d2.raw
refused "controller" -o controller=sata d1.raw
refused "nosuch" -o nosuch=1 d1.raw
refused "must be UTF-8 text" -o "name=$(printf 'a\001b')" d1.raw
# a source that fails half way (a zstd stream cut short): the output goes
if command -v zstd >/dev/null; then
	head -c 4M /dev/urandom > r.raw
	zstd -q r.raw
	head -c 3M r.raw.zst > cut.zst
	refused "Truncated zstd input" cut.zst
fi
[ -z "$(ls -A x | grep -v "^$base")" ] || fail "stray files"
echo "ova-write: ok"
