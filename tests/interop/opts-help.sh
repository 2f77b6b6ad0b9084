#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# "-o help" (and "-o ?") of create, convert and amend print each format's
# options as qemu-img 7.2 prints them, byte for byte (measure refuses
# them, as qemu-img 7.2 measure does); with a file name,
# qemu-img adds the host file's options: mimg lists the ones it has
# (preallocation) and the rest must be exactly qemu-img's lines.  Bad
# option values are refused with qemu-img's message and status, as are
# formats that cannot be created.
. "$TESTLIB"
need qemu-img
fmts=$("$MIMG" --help | sed -n 's/^Formats: //p')

# Lines of A missing from B, and B's lines not in A, sorted.
only_in() { sort "$1" > s1; sort "$2" > s2; comm -23 s1 s2; }

# same_help ARGS...: qemu-img ARGS and mimg ARGS both succeed and print
# the same, byte for byte.
same_help() {
	qemu-img "$@" > q.txt 2>&1 || fail "qemu-img $*"
	"$MIMG" "$@" > m.txt 2>&1 || fail "mimg $*: $(cat m.txt)"
	cmp -s q.txt m.txt || fail "$*:
$(diff q.txt m.txt)"
}

n=0
for f in raw qcow2 vmdk vpc vdi vhdx parallels luks; do
	case " $fmts " in *" $f "*) ;; *) continue ;; esac
	for o in help '?' 'help,size=1M'; do
		same_help create -f "$f" -o "$o"
		n=$((n + 1))
	done
	same_help convert -O "$f" -o help
	# With a file name: the host file's options join the list.
	qemu-img create -f "$f" -o help x.img > q.txt 2>&1
	"$MIMG" create -f "$f" -o help x.img > m.txt 2>&1
	head -1 m.txt | grep -qx 'Supported options:' ||
		fail "create -f $f -o help FILE: $(head -1 m.txt)"
	only_in m.txt q.txt > extra.txt
	[ -s extra.txt ] && fail "create -f $f -o help FILE: lines qemu-img" \
		"does not print: $(cat extra.txt)"
	only_in q.txt m.txt > missing.txt
	grep -v -e '^  extent_size_hint=' -e '^  nocow=' missing.txt &&
		fail "create -f $f -o help FILE: lines missing"
	qemu-img convert -O "$f" -o help a.img x.img > q.txt 2>&1
	"$MIMG" convert -O "$f" -o help a.img x.img > m.txt 2>&1
	only_in m.txt q.txt | grep . && fail "convert -O $f -o help SRC DST"
	n=$((n + 3))
done
[ -e x.img ] && fail "-o help created a file"

# amend
for f in qcow2 luks; do
	for o in help '?'; do
		same_help amend -f "$f" -o "$o"
		n=$((n + 1))
	done
done
qemu-img create -q -f qcow2 a.qcow2 1M
qemu-img amend -o help a.qcow2 > q.txt
"$MIMG" amend -o help a.qcow2 > m.txt || fail "amend -o help FILE"
cmp -s q.txt m.txt || fail "amend -o help FILE (probed)"

# Refusals: same status, same words after the program name.
same_err() {
	qemu-img "$@" > q.out 2>&1
	qs=$?
	"$MIMG" "$@" > m.out 2>&1
	check_eq "$?" "$qs" "$*: exit status"
	# (qemu-img prints "Formatting ..." before some refusals: so must
	# mimg; some of its messages lack the final newline)
	awk 1 q.out | sed 's/^qemu-img: //' > q.msg
	sed 's/^mimg: //' m.out > m.msg
	cmp -s q.msg m.msg || fail "$*: '$(cat m.msg)' (qemu-img:" \
		"'$(cat q.msg)')"
	n=$((n + 1))
}
same_err amend -f vmdk -o help
same_err amend -f nosuch -o help
same_err amend -o help
same_err create -f nosuch -o help
# qemu-img 7.2 measure has no option listing: "-o help" is refused
for o in help '?'; do
	same_err measure -O qcow2 -o "$o" --size 1G
	same_err measure -O raw -o "$o" --size 1G
done
same_err measure -o help --size 1G
same_err measure -O qcow2 -o help
for o in foo=1 cluster_size=abc cluster_size=-1 cluster_size= \
	cluster_size=99999999999999999999 lazy_refcounts=maybe \
	lazy_refcounts=1 refcount_bits=x refcount_bits=1k refcount_bits= \
	compat=2 compat= preallocation=xx compression_type=lz4 \
	cluster_size=3k refcount_bits=3 help=on; do
	same_err create -f qcow2 -o "$o" b.qcow2 1M
done
same_err create -f qcow2 -o size=abc b.qcow2
same_err create -f raw -o foo=1 b.img 1M
same_err create -f vpc -o subformat=foo b.vhd 1M
same_err create -f vmdk -o subformat=foo b.vmdk 1M
same_err create -f vmdk -o adapter_type=foo b.vmdk 1M
same_err create -f vdi -o static=maybe b.vdi 1M
for f in raw vdi vpc vmdk; do
	same_err create -f $f -o preallocation=bogus b.$f 1M
done
same_err create -f raw -b a.qcow2 -F qcow2 b.img 1M
# combinations qcow2 refuses, and a backing file without its format
for o in compat=0.10,refcount_bits=8 compat=0.10,lazy_refcounts=on \
	compat=0.10,extended_l2=on compat=0.10,compression_type=zstd \
	compat=0.10,data_file=b.data extended_l2=on,cluster_size=4k \
	data_file_raw=on cluster_size=65537 cluster_size=4M refcount_bits=128 \
	backing_file=a.qcow2 \
	preallocation=full,backing_file=a.qcow2,backing_fmt=qcow2; do
	same_err create -q -f qcow2 -o "$o" b.qcow2 1M
done
# ",," is a comma inside a value
same_err create -f qcow2 -o cluster_size=64k,,1 b.qcow2 1M
"$MIMG" create -q -f qcow2 -o backing_file=a,,b.qcow2,backing_fmt=qcow2 \
	-u c.qcow2 1M || fail "escaped comma in a name"
qemu-img info c.qcow2 | grep -qx 'backing file: a,b.qcow2' ||
	fail "escaped comma: $(qemu-img info c.qcow2 | grep backing)"
# Formats that cannot be created (by qemu-img either): no listing.
for f in dmg bochs cloop; do
	case " $fmts " in *" $f "*) ;; *) continue ;; esac
	same_output -e "create -f $f -o help" create -f "$f" -o help
	same_output -e "convert -O $f -o help" convert -O "$f" -o help
	n=$((n + 2))
done
echo "ok: $n -o listings and refusals as qemu-img"
