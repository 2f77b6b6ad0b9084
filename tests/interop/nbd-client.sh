#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# mimg as an NBD client (libnbd): info, map, compare, checksum and convert read
# exports served by nbdkit's file plugin (the image format inside is
# probed, as qemu-img does) and by nbdkit-mimg-plugin; holes of the source
# are skipped through NBD block status (nbdkit's log filter shows what was
# read); convert -n writes into exports, with zero requests for zero runs
# and nothing written where the source has no data; a conversion whose
# source and target are both NBD; nbds:// (TLS with a pre-shared key).
. "$TESTLIB"
. "$(dirname "$TESTLIB")/nbd-lib.sh"
need_libnbd
need nbdkit qemu-img qemu-io python3 cmp

# libnbd is loaded when an nbd:// URI is opened, not at every start.
LD_DEBUG=files "$MIMG" info "$T" 2>ld.txt >/dev/null
! grep -q "file=libnbd" ld.txt || fail "mimg loads libnbd at start"
LD_DEBUG=files "$MIMG" info "nbd+unix:///?socket=$T/none.sock" \
	2>ld.txt >/dev/null
grep -q "file=libnbd" ld.txt || fail "the loader did not report libnbd"

formats=$("$MIMG" --help | sed -n 's/^Formats://p')
for f in qcow2 vmdk; do
	case " $formats " in
	*" $f "*) ;;
	*) echo "SKIP: mimg has no $f driver"; exit 77 ;;
	esac
done

# bytes_of LOG OP: total bytes of the OP requests (Read, Write, Zero) in
# an nbdkit log filter file.
bytes_of() {
	python3 - "$1" "$2" <<'PY'
import re, sys
n = 0
for line in open(sys.argv[1]):
    m = re.search(r' %s id=\d+ offset=0x[0-9a-f]+ count=(0x[0-9a-f]+)' % sys.argv[2], line)
    if m:
        n += int(m.group(1), 16)
print(n)
PY
}

# A 64 MiB qcow2 with 1 MiB of data and a zero cluster; a VMDK likewise.
qemu-img create -q -f qcow2 src.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x71 1M 512k' -c 'write -P 0x72 40M 512k' \
	-c 'write -z 20M 1M' src.qcow2 >/dev/null
qemu-img convert -f qcow2 -O vmdk src.qcow2 src.vmdk
qemu-img convert -f qcow2 -O raw src.qcow2 src.raw

# Reading images inside a plain export: the format is probed.
for spec in src.qcow2:qcow2 src.vmdk:vmdk; do
	img=${spec%%:*} fmt=${spec#*:}
	nbd_start r --filter=log file "$img" logfile="$T/r.log"
	"$MIMG" info --output json "$URI" >m.json || fail "mimg info on $img over NBD"
	check_eq "$(json_get m.json format)" "$fmt" "format of $img over NBD"
	check_eq "$(json_get m.json virtual-size)" 67108864 "size of $img over NBD"
	qemu-img info --output json "$URI" >q.json || fail "qemu-img info $img over NBD"
	check_eq "$(json_get q.json format)" "$fmt" "qemu-img: format of $img over NBD"
	"$MIMG" compare "$URI" src.raw >/dev/null || fail "mimg compare $img over NBD"
	# the same digest as the file's, and as the raw image's
	"$MIMG" checksum "$URI" >sum.nbd || fail "mimg checksum $img over NBD"
	"$MIMG" checksum -f raw src.raw >sum.raw
	check_eq "$(cut -d' ' -f1 sum.nbd)" "$(cut -d' ' -f1 sum.raw)" \
		"checksum of $img over NBD"
	"$MIMG" map --output json "$URI" >map.nbd || fail "mimg map $img over NBD"
	"$MIMG" map --output json "$img" >map.local
	python3 - map.nbd map.local <<'PY' || fail "map of $img over NBD differs from the file's"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
strip = lambda m: [(e["start"], e["length"], e["data"], e["zero"]) for e in m]
sys.exit(0 if strip(a) == strip(b) else "%r != %r" % (strip(a), strip(b)))
PY
	: >"$T/r.log"
	rm -f out.qcow2
	"$MIMG" convert -O qcow2 "$URI" out.qcow2 || fail "mimg convert $img from NBD"
	qemu-img compare -q out.qcow2 src.raw || fail "convert of $img from NBD"
	nbd_stop r
	# Work proportional to the data: the holes were never read.
	read=$(bytes_of "$T/r.log" Read)
	[ "$read" -le $((4 << 20)) ] ||
		fail "convert of $img over NBD read $read bytes for 1 MiB of data"
done

# A raw export: holes come from base:allocation.
nbd_start r --filter=log file src.raw logfile="$T/r.log"
"$MIMG" map --output json "$URI" >map.nbd || fail "mimg map of a raw export"
qemu-img map --output json -f raw "$URI" >map.q || fail "qemu-img map of a raw export"
python3 - map.nbd map.q <<'PY' || fail "map of a raw export differs from qemu-img's"
import json, sys
def runs(p):
    out = []
    for e in json.load(open(p)):
        k = (e["data"], e["zero"])
        if out and out[-1][2] == k and out[-1][0] + out[-1][1] == e["start"]:
            out[-1][1] += e["length"]
        else:
            out.append([e["start"], e["length"], k])
    return out
a, b = runs(sys.argv[1]), runs(sys.argv[2])
sys.exit(0 if a == b else "%r != %r" % (a, b))
PY
: >"$T/r.log"
"$MIMG" convert -O raw "$URI" out.raw || fail "mimg convert of a raw export"
cmp out.raw src.raw || fail "raw export read wrong"
read=$(bytes_of "$T/r.log" Read)
[ "$read" -le $((4 << 20)) ] || fail "raw export: read $read bytes for 1 MiB of data"
nbd_stop r

# convert -n into an export full of garbage: zero runs become zero
# requests, data is written once.
python3 -c 'import os; open("dst.raw","wb").write(os.urandom(64 << 20))'
nbd_start w --filter=log file dst.raw logfile="$T/w.log"
"$MIMG" convert -n -O raw src.qcow2 "$URI" || fail "convert -n into NBD"
nbd_stop w wait
cmp dst.raw src.raw || fail "convert -n into NBD wrote the wrong content"
written=$(bytes_of "$T/w.log" Write)
zeroed=$(bytes_of "$T/w.log" Zero)
[ "$written" -le $((2 << 20)) ] ||
	fail "convert -n into NBD wrote $written bytes for 1 MiB of data"
[ "$zeroed" -ge $((62 << 20)) ] ||
	fail "convert -n into NBD zeroed only $zeroed bytes"

# Requests from concurrent callers are in flight together on the one
# connection: with reads delayed, the log shows a read starting before
# the one before it has returned.  More connections where asked for.
qemu-img create -q -f raw wide.raw 64M
qemu-io -f raw -c 'write -P 0x74 0 16M' wide.raw >/dev/null
nbd_start p --filter=log --filter=delay file wide.raw \
	logfile="$T/p.log" delay-read=100ms
"$MIMG" convert -O raw "$URI" out.raw || fail "convert with delayed reads"
cmp out.raw wide.raw || fail "convert with delayed reads read wrong"
python3 - "$T/p.log" <<'PY' || fail "reads were not in flight together"
import re, sys
busy = peak = 0
for line in open(sys.argv[1]):
    if re.search(r' Read id=\d+ .*\.\.\.$', line):
        busy += 1
        peak = max(peak, busy)
    elif ' ...Read id=' in line:
        busy -= 1
conns = sum(' Connect ' in l for l in open(sys.argv[1]))
sys.exit(0 if peak >= 4 and conns == 1 else "peak %d, %d connections" % (peak, conns))
PY
: >"$T/p.log"
python3 -c 'import os; open("dst.raw","wb").write(os.urandom(64 << 20))'
nbd_start w --filter=log file dst.raw logfile="$T/w4.log"
MIMG_NBD_CONNECTIONS=4 "$MIMG" convert -n -O raw wide.raw "$URI" ||
	fail "convert -n over 4 connections"
nbd_stop w wait
cmp dst.raw wide.raw || fail "convert -n over 4 connections wrote wrong"
conns=$(grep -c ' Connect ' "$T/w4.log")
[ "$conns" -eq 4 ] || fail "MIMG_NBD_CONNECTIONS=4 opened $conns connections"
nbd_stop p

# Compressed clusters stored one after the other are read together: far
# fewer requests than the 256 clusters.
qemu-img convert -c -f raw -O qcow2 wide.raw wide-c.qcow2
nbd_start c --filter=log file wide-c.qcow2 logfile="$T/c.log"
"$MIMG" convert -O raw "$URI" out.raw || fail "convert of a compressed qcow2"
nbd_stop c
cmp out.raw wide.raw || fail "compressed qcow2 over NBD read wrong"
reads=$(grep -c ' Read id=.*\.\.\.$' "$T/c.log")
[ "$reads" -le 64 ] ||
	fail "compressed qcow2 over NBD: $reads read requests for 256 clusters"

# convert -n -O qcow2 into a qcow2 that lives in an export.  An export
# cannot grow: the file has room for the clusters after its end.
qemu-img create -q -f qcow2 dst.qcow2 64M
truncate -s 80M dst.qcow2
nbd_start w file dst.qcow2
"$MIMG" convert -n -O qcow2 src.vmdk "$URI" || fail "convert -n -O qcow2 into NBD"
nbd_stop w wait
qemu-img check -q dst.qcow2 || fail "qemu-img check of a qcow2 written over NBD"
qemu-img compare -q dst.qcow2 src.raw || fail "qcow2 written over NBD"

# Both ends NBD: nbdkit-mimg-plugin serving a chain, nbdkit file as target.
if [ -n "${NBDKIT_MIMG_PLUGIN:-}" ]; then
	qemu-img create -q -f qcow2 -b src.qcow2 -F qcow2 top.qcow2
	qemu-io -f qcow2 -c 'write -P 0x73 41M 64k' top.qcow2 >/dev/null
	qemu-img convert -f qcow2 -O raw top.qcow2 top.raw
	nbd_mimg s file=top.qcow2 readonly=true
	suri=$URI
	python3 -c 'import os; open("dst.raw","wb").write(os.urandom(64 << 20))'
	nbd_start w file dst.raw
	"$MIMG" convert -n -f raw -O raw "$suri" "$URI" ||
		fail "convert from NBD to NBD"
	"$MIMG" compare -f raw -F raw "$suri" "$URI" >/dev/null ||
		fail "mimg compare of two exports"
	nbd_stop w wait
	nbd_stop s
	cmp dst.raw top.raw || fail "convert from NBD to NBD wrote the wrong content"
fi

# Without -n the target would have to be created: refused by name.
nbd_start w file dst.raw
"$MIMG" convert -O raw src.qcow2 "$URI" 2>err.txt && fail "convert created an export"
grep -q "convert -n" err.txt || { cat err.txt >&2; fail "no hint to use -n"; }
nbd_stop w

# nbds://: TLS with a pre-shared key.
printf 'alice:%s\n' "$(python3 -c 'import os; print(os.urandom(32).hex())')" >keys.psk
nbdkit -U "$T/t.sock" --pidfile "$T/t.pid" --tls=require --tls-psk="$T/keys.psk" \
	file src.qcow2 2>t.log && wait_for "$T/t.pid" && NBD_SERVERS="$NBD_SERVERS t"
if [ -s "$T/t.pid" ]; then
	turi="nbds+unix://alice@/?socket=$T/t.sock&tls-psk-file=$T/keys.psk"
	"$MIMG" compare "$turi" src.raw >/dev/null || fail "mimg over nbds://"
	"$MIMG" info "nbd+unix:///?socket=$T/t.sock" 2>err.txt &&
		fail "plain NBD read a TLS-only export"
	nbd_stop t
else
	echo "nbdkit without TLS: nbds:// not tested"
fi
echo "ok"
