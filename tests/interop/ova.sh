#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# OVA appliances (a tar: OVF descriptor first, then streamOptimized VMDK
# disks made by qemu-img): info lists the OVF's disks and opens the first
# one the OVF names, whatever the member order; convert gives its content
# (qemu-img compare against the original).  Hostile descriptors (DTD and
# entities, UTF-16, a disk member that is missing, hrefs that are
# absolute, escape with '..' or are URLs) and two members of one name
# are refused.
. "$TESTLIB"
need qemu-img qemu-io python3 tar gzip
if [ -z "${MIMG_HAVE_LIBXML2:-}" ]; then
	echo "SKIP: built without libxml2, OVF descriptors are not read"
	exit 77
fi

mkdir tmp
TMPDIR=$T/tmp
export TMPDIR

qemu-img create -q -f raw d1.raw 64M
qemu-io -f raw -c "write -P 0x31 0 1M" -c "write -P 0x32 60M 64k" d1.raw \
	>/dev/null || fail "qemu-io"
qemu-img create -q -f raw d2.raw 1M
qemu-io -f raw -c "write -P 0x99 0 512k" d2.raw >/dev/null || fail "qemu-io"
for d in d1 d2; do
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized \
		"$d.raw" "vm-$d.vmdk" || fail "qemu-img convert $d"
done

# ovf FILE [DISK1-HREF]: an OVF listing two disks, disk 1 first.
ovf() {
	cat > "$1" <<EOX
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References>
    <File ovf:href="vm-d2.vmdk" ovf:id="file2"/>
    <File ovf:href="${2:-vm-d1.vmdk}" ovf:id="file1"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="64" ovf:capacityAllocationUnits="byte * 2^20"
        ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:populatedSize="1114112"
        ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
    <Disk ovf:capacity="1048576" ovf:diskId="vmdisk2" ovf:fileRef="file2"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm">
    <Info>A VM</Info>
    <Name>test vm</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>1024MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>1024</rasd:VirtualQuantity>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
EOX
}

ovf vm.ovf
# mf ALG FILE...: manifest lines as ovftool and VirtualBox write them
mf() {
	alg=$1
	shift
	for f in "$@"; do
		d=$("$(echo "$alg" | tr A-Z a-z)sum" "$f")
		echo "$alg($f)= ${d%% *}"
	done
}
{ mf SHA256 vm.ovf; mf SHA512 vm-d1.vmdk; mf SHA1 vm-d2.vmdk; } > vm.mf
tar cf vm.ova vm.ovf vm-d2.vmdk vm.mf vm-d1.vmdk
"$MIMG" info --output=json vm.ova > info.json || fail "info vm.ova"
check_eq "$(json_get info.json archive.unpacked-size)" \
	"$(stat -c %s vm-d1.vmdk)" "unpacked size"
# Members after the disk (larger ones too) change nothing.
head -c 2M /dev/urandom > big.bin
tar cf vm2.ova vm.ovf vm-d1.vmdk big.bin vm-d2.vmdk
"$MIMG" info --output=json vm2.ova > info2.json || fail "info vm2.ova"
check_eq "$(json_get info2.json archive.unpacked-size)" \
	"$(stat -c %s vm-d1.vmdk)" "unpacked size, disk not last"
check_eq "$(json_get info.json archive.manifest)" vm.mf "manifest"
check_eq "$(json_get info.json archive.manifest-checked)" 2 \
	"manifest: the OVF and the disk read were checked"
check_eq "$(json_get info.json format)" vmdk "format"
check_eq "$(json_get info.json virtual-size)" 67108864 "virtual size"
check_eq "$(json_get info.json archive.ovf)" vm.ovf "ovf member"
check_eq "$(json_get info.json archive.tar-member)" vm-d1.vmdk "member"
check_eq "$(json_get info.json archive.ovf-disks.0.id)" vmdisk1 "disk 1"
check_eq "$(json_get info.json archive.ovf-disks.0.capacity)" 67108864 \
	"disk 1 capacity"
check_eq "$(json_get info.json archive.ovf-disks.1.file)" vm-d2.vmdk \
	"disk 2"
check_eq "$(json_get info.json archive.ovf-disks.0.populated-size)" 1114112 \
	"disk 1 populated size"
check_eq "$(json_get info.json archive.ovf-system.cpus)" 2 "CPUs"
check_eq "$(json_get info.json archive.ovf-system.memory)" 1073741824 \
	"memory"
check_eq "$(json_get info.json archive.ovf-system.name)" "test vm" "name"
"$MIMG" info vm.ova > info.txt || fail "human info"
grep -q "^OVF system: 'test vm' (vm), 2 CPUs, 1 GiB memory" info.txt ||
	fail "system line: $(cat info.txt)"
grep -q "vmdisk1: 'vm-d1.vmdk', 64 MiB, 1.06 MiB populated, streamOptimized (this image)" \
	info.txt || fail "disk 1 line: $(cat info.txt)"
grep -q "^OVF disks (vm.ovf):" info.txt || fail "no OVF disk list"
grep -q "vmdisk2: 'vm-d2.vmdk', 1 MiB" info.txt ||
	fail "disk 2 line: $(cat info.txt)"
"$MIMG" convert -O raw vm.ova out.raw || fail "convert vm.ova"
qemu-img compare -q -f raw -F raw d1.raw out.raw ||
	fail "converted OVA differs from its first disk"
gzip -c vm.ova > vm.ova.gz
"$MIMG" compare vm.ova.gz d1.raw >/dev/null || fail "compare gzipped OVA"
[ -z "$(ls -A tmp)" ] || fail "files left in TMPDIR"

# --ova-disk: by index from 0, file name or disk id
for sel in 1 vm-d2.vmdk vmdisk2; do
	rm -f out2.raw
	"$MIMG" convert --ova-disk "$sel" -O raw vm.ova out2.raw ||
		fail "convert --ova-disk $sel"
	qemu-img compare -q -f raw -F raw d2.raw out2.raw ||
		fail "--ova-disk $sel: content differs from disk 2"
done
"$MIMG" info --ova-disk 1 --output=json vm.ova > info3.json
check_eq "$(json_get info3.json virtual-size)" 1048576 "disk 2 size"
check_eq "$(json_get info3.json archive.ovf-disk)" 1 "disk 2 index"
"$MIMG" info --ova-disk vmdisk2 vm.ova | grep -q "vm-d2.vmdk', 1 MiB (this image)" ||
	fail "human info does not mark disk 2"
"$MIMG" info --ova-disk 2 vm.ova 2>err.txt >/dev/null &&
	fail "disk 2 (of 0 and 1) accepted"
grep -q "OVA disk 2 asked for, the OVF lists 2 (counted from 0)" err.txt ||
	fail "--ova-disk 2: $(cat err.txt)"
"$MIMG" info --ova-disk nope vm.ova 2>err.txt >/dev/null &&
	fail "disk 'nope' accepted"
grep -q "no disk with file name or id 'nope'" err.txt ||
	fail "--ova-disk nope: $(cat err.txt)"

# A manifest after the disks (VirtualBox's order) that does not match
{ mf SHA256 vm.ovf; mf SHA1 vm-d2.vmdk; } > bad.mf
echo "SHA256(vm-d1.vmdk)= $(sha256sum vm-d2.vmdk | cut -c1-64)" >> bad.mf
mv bad.mf vm.mf
tar cf badmf.ova vm.ovf vm-d1.vmdk vm-d2.vmdk vm.mf
"$MIMG" convert -O raw badmf.ova bad.raw 2>err.txt &&
	fail "an OVA whose manifest does not match was converted"
grep -q "the SHA256 digest of 'vm-d1.vmdk' does not match the manifest" \
	err.txt || fail "manifest mismatch: $(cat err.txt)"
"$MIMG" convert --ova-disk 1 -O raw badmf.ova good.raw ||
	fail "disk 2 matches its manifest line"
printf 'MD5(vm.ovf)= 00\n' > vm.mf
tar cf md5.ova vm.ovf vm.mf vm-d1.vmdk
"$MIMG" info md5.ova 2>err.txt >/dev/null && fail "MD5 manifest accepted"
grep -q "manifest line 1 is not" err.txt || fail "md5: $(cat err.txt)"
[ -z "$(ls -A tmp)" ] || fail "files left in TMPDIR"

refused() { # OVA PATTERN
	if "$MIMG" info "$1" >/dev/null 2>err.txt; then
		fail "$1 was accepted"
	fi
	grep -q "$2" err.txt || fail "$1: message lacks '$2': $(cat err.txt)"
}
ovf missing.ovf nothere.vmdk
tar cf missing.ova missing.ovf vm-d1.vmdk vm-d2.vmdk
refused missing.ova "'nothere.vmdk', which the archive does not hold"
# Disk hrefs that are not members: refused by what they are, nothing
# outside the archive is opened (a sentinel file by absolute path, the
# same by '..', a URL), with strace where it can trace.
mkdir sub
echo "sentinel, never to be read" > sentinel.txt
for href in ../vm-d1.vmdk "$T/sentinel.txt" ../sentinel.txt \
	"http://127.0.0.1:9/vm-d1.vmdk" "file:///etc/passwd" /etc/passwd; do
	ovf sub/escape.ovf "$href"
	(cd sub && cp ../vm-d1.vmdk ../vm-d2.vmdk . &&
		tar cf ../escape.ova escape.ovf vm-d1.vmdk vm-d2.vmdk)
	case $href in
	*://*) why="is a URL" ;;
	*) why="is absolute or has a '..' component" ;;
	esac
	refused escape.ova "disk file '$href' $why"
	"$MIMG" convert -O raw escape.ova esc.raw 2>/dev/null &&
		fail "href $href: converted"
	[ ! -e esc.raw ] || fail "href $href: left an output"
done
if strace -f -o /dev/null true 2>/dev/null; then
	strace -f -e trace=open,openat,openat2,connect,socket -o trace.txt \
		"$MIMG" info escape.ova >/dev/null 2>&1
	grep -q escape.ova trace.txt || fail "strace saw nothing"
	! grep -E "passwd|sentinel|connect\(|socket\(" trace.txt ||
		fail "something outside the archive was opened"
fi
# Two members of one name: whichever is used, the other could be the one
# a manifest or an extractor vouches for.
(cd sub && head -c 1M /dev/urandom > vm-d1.vmdk && cp ../vm.ovf . &&
	tar cf ../dup.ova vm.ovf vm-d1.vmdk && cd .. &&
	tar rf dup.ova vm-d1.vmdk)
refused dup.ova "two members named 'vm-d1.vmdk'"
tar cf dup2.ova --hard-dereference vm.ovf vm-d1.vmdk vm-d2.vmdk vm-d2.vmdk
refused dup2.ova "two members named 'vm-d2.vmdk'"
tar cf dup.tar --hard-dereference d1.raw d1.raw
refused dup.tar "two members named 'd1.raw'"
cat > laughs.ovf <<'EOX'
<?xml version="1.0"?>
<!DOCTYPE Envelope [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY x SYSTEM "file:///etc/passwd">
]>
<Envelope><References><File id="f" href="&c;&x;"/></References>
<DiskSection><Disk diskId="d" fileRef="f"/></DiskSection></Envelope>
EOX
tar cf laughs.ova laughs.ovf vm-d1.vmdk
refused laughs.ova "DTD or entities"
ovf u8.ovf
python3 -c 'import sys; open("utf16.ovf","wb").write(open("u8.ovf").read().replace("UTF-8","UTF-16").encode("utf-16"))'
tar cf utf16.ova utf16.ovf vm-d1.vmdk
refused utf16.ova "not UTF-8"
printf '<Envelope><DiskSection/>' > broken.ovf
tar cf broken.ova broken.ovf vm-d1.vmdk
refused broken.ova "not well-formed"
echo "ova: ok"
