#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# A convert that fails after creating its target leaves no file behind:
# a hostile source whose reads fail half-way, an option the target format
# refuses once created (-c to raw, -c to flat VMDK as qemu-img refuses
# it), a full file system (a small tmpfs in a user namespace) and SIGTERM,
# SIGINT.  Every extent file of a multi-file VMDK goes too; a file that
# existed before (convert -n, or an unrelated file with a similar name)
# never does.
here=$(cd "$(dirname "$0")" && pwd)
. "$TESTLIB"
. "$here/vmdk-lib.sh"

# left DIR: the files in DIR whose names start with "out".
left() {
	(cd "$1" && ls -A | grep '^out' | tr '\n' ' ')
}

# fails_clean WHAT mimg-convert-args...: the convert fails and no out*
# file but out-keep.txt is left.
fails_clean() {
	_what=$1
	shift
	"$MIMG" convert "$@" >conv.out 2>&1 &&
		fail "$_what: convert succeeded"
	[ "$(left .)" = "out-keep.txt " ] ||
		fail "$_what: left behind: $(left .) ($(cat conv.out))"
}

# A monolithicSparse source whose grain at 3 MiB points past the end of
# the file: the first 3 MiB convert, then a read fails.
make_raw src.raw 4
qemu-img convert -f raw -O vmdk src.raw bad.vmdk
python3 - bad.vmdk <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(512)
gd = struct.unpack_from('<Q', h, 56)[0]
f.seek(gd * 512)
gt = struct.unpack('<I', f.read(4))[0]
f.seek(gt * 512 + 48 * 4)	# grain 48: offset 3 MiB
f.write(struct.pack('<I', 0x7ffffff0))
PY
"$MIMG" convert -O raw bad.vmdk probe.raw 2>err.txt &&
	fail "the damaged source converts"
grep -q "past the end" err.txt || fail "unexpected error: $(cat err.txt)"
rm -f probe.raw

echo keep >out-keep.txt
n=0
for t in "raw" "qcow2" "qcow2 -o data_file=out-data.bin" "vpc" "vdi" \
	 "vmdk" "vmdk -o subformat=streamOptimized" \
	 "vmdk -o subformat=monolithicFlat" \
	 "vmdk -o subformat=twoGbMaxExtentSparse" \
	 "vmdk -o subformat=twoGbMaxExtentFlat"; do
	# shellcheck disable=SC2086
	fails_clean "bad source to $t" -O $t bad.vmdk out.img
	n=$((n + 1))
done

# Options the target refuses once it exists.
fails_clean "-c to raw" -c -O raw src.raw out.img
fails_clean "-c to monolithicFlat" -c -O vmdk -o subformat=monolithicFlat \
	src.raw out.vmdk
fails_clean "-c to twoGbMaxExtentFlat" -c -O vmdk \
	-o subformat=twoGbMaxExtentFlat src.raw out.vmdk
n=$((n + 3))

# convert -n into an existing target: the target stays.
qemu-img create -q -f qcow2 out-existing.qcow2 4M
"$MIMG" convert -n -O qcow2 bad.vmdk out-existing.qcow2 2>/dev/null &&
	fail "convert -n from the bad source succeeded"
[ -f out-existing.qcow2 ] || fail "convert -n removed the existing target"
qemu-img check -q out-existing.qcow2 || fail "existing target damaged"
# ... and so does a target that existed before convert overwrote it.
echo old >out-old.img
"$MIMG" convert -O raw bad.vmdk out-old.img 2>/dev/null &&
	fail "convert over an existing file succeeded"
[ -f out-old.img ] || fail "convert removed a file that existed before"
rm -f out-existing.qcow2 out-old.img
n=$((n + 2))

# A full file system: a 2 MiB tmpfs in a user namespace (no privileges
# needed where user namespaces are allowed).
mkdir mnt
head -c 4M /dev/urandom >rnd.raw
cat >full.sh <<EOF
mount -t tmpfs -o size=2m tmpfs mnt || exit 77
cd mnt
echo keep >out-keep.txt
for t in "qcow2" "vmdk" "vmdk -o subformat=twoGbMaxExtentSparse" \
	 "vmdk -o subformat=streamOptimized" "raw -S 0"; do
	"$MIMG" convert -O \$t ../rnd.raw out.img >../conv.out 2>&1 &&
		{ echo "convert -O \$t into a full fs succeeded"; exit 1; }
	grep -qi "space" ../conv.out ||
		{ echo "-O \$t: not ENOSPC: \$(cat ../conv.out)"; exit 1; }
	[ "\$(ls -A | tr '\n' ' ')" = "out-keep.txt " ] ||
		{ echo "-O \$t left: \$(ls -A)"; exit 1; }
done
EOF
if command -v unshare >/dev/null 2>&1 && unshare -rm true 2>/dev/null; then
	unshare -rm sh full.sh
	case $? in
	0) n=$((n + 5)) ;;
	77) echo "note: tmpfs cannot be mounted here; full-fs cases skipped" ;;
	*) fail "full file system" ;;
	esac
else
	echo "note: no user namespaces; full-fs cases skipped"
fi

# Signals: the files go, the process dies of the signal.  The convert is
# stopped as soon as its target appears, so that the signal surely comes
# while it runs, then signalled and continued.
head -c 96M /dev/urandom >big.raw
for sig in TERM INT; do
	for t in "qcow2 -c" "vmdk -o subformat=twoGbMaxExtentSparse"; do
		rm -f out*.img out*.vmdk
		# A background job ignores SIGINT: start it with the default.
		python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$MIMG" convert -m 1 -O $t big.raw \
			out.vmdk 2>conv.out &
		pid=$!
		i=0
		while [ ! -e out.vmdk ] && [ $i -lt 400 ]; do
			sleep 0.02
			i=$((i + 1))
		done
		kill -STOP $pid 2>/dev/null ||
			fail "SIG$sig -O $t: convert ended before the signal"
		case $t in *twoGb*)
			# extents are made before the descriptor
			[ -e out-s001.vmdk ] || fail "no extent file" ;;
		esac
		kill -$sig $pid
		kill -CONT $pid
		wait $pid
		rc=$?
		case $sig in TERM) want=143 ;; INT) want=130 ;; esac
		[ $rc = $want ] || fail "SIG$sig -O $t: exit status $rc"
		[ "$(left .)" = "out-keep.txt " ] ||
			fail "SIG$sig -O $t: left behind: $(left .)"
		n=$((n + 1))
	done
done
echo "ok: $n failed conversions left no file behind"
