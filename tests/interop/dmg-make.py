#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Write a UDIF disk image (.dmg) holding the bytes of a raw file, as the
format is documented: the data fork (chunks), a property list whose
"blkx" resources are base64 "mish" blocks (or a binary resource fork),
and the 512-byte "koly" trailer.

  dmg-make.py RAW OUT [--rsrc] [--chunk SECTORS] [--parts N] [--plan P]

--plan lists chunk types in turn (z: zlib, r: raw, 0: zeroes, i: ignore,
c: a comment entry between chunks), repeated over the disk: a chunk of
zeroes in the raw file becomes a zero chunk (ignore for i), other data a
zlib chunk where the plan says 0 or i.  --parts splits
the disk into that many blkx resources (partitions), each with its own
first sector and data offset.  --bzip2 compresses with bzip2 instead of
zlib (UDBZ images)."""
import argparse, base64, bz2, struct, zlib

p = argparse.ArgumentParser()
p.add_argument("raw")
p.add_argument("out")
p.add_argument("--rsrc", action="store_true")
p.add_argument("--chunk", type=int, default=2048)
p.add_argument("--parts", type=int, default=1)
p.add_argument("--plan", default="z")
p.add_argument("--bzip2", action="store_true")
a = p.parse_args()

data = open(a.raw, "rb").read()
assert len(data) % 512 == 0
sectors = len(data) // 512
TYPES = {"z": 0x80000005, "r": 1, "0": 0, "i": 2}

fork = bytearray()
mishes = []
per = -(-sectors // a.parts) if sectors else 0
k = 0
for part in range(a.parts):
    first = part * per
    count = min(per, sectors - first)
    if count <= 0:
        break
    data_off = len(fork)
    entries = []
    s = 0
    while s < count:
        n = min(a.chunk, count - s)
        blob = data[(first + s) * 512:(first + s + n) * 512]
        kind = a.plan[k % len(a.plan)]
        k += 1
        if kind == "c":
            entries.append((0x7ffffffe, 0, 0, 0, 0))
            kind = a.plan[k % len(a.plan)] if len(a.plan) > 1 else "z"
            k += 1
        zero = blob == bytes(len(blob))
        if zero and kind not in "0i":
            kind = "0"
        elif not zero and kind in "0i":
            kind = "z"
        t = TYPES[kind]
        off = len(fork) - data_off
        if kind == "z":
            c = bz2.compress(blob) if a.bzip2 else zlib.compress(blob)
            fork += c
            entries.append((0x80000006 if a.bzip2 else t, s, n, off, len(c)))
        elif kind == "r":
            fork += blob
            entries.append((t, s, n, off, len(blob)))
        else:
            entries.append((t, s, n, off, 0))
        s += n
    entries.append((0xffffffff, count, 0, len(fork) - data_off, 0))
    m = bytearray(b"mish")
    m += struct.pack(">IQQQII", 1, first, count, data_off, 0, part)
    m += bytes(24) + struct.pack(">II", 2, 32) + bytes(128)
    m += struct.pack(">I", len(entries))
    for t, sec, n, off, ln in entries:
        m += struct.pack(">IIQQQQ", t, 0, sec, n, off, ln)
    mishes.append(bytes(m))

out = bytearray(fork)
xml_off = xml_len = rsrc_off = rsrc_len = 0
if a.rsrc:
    body = b"".join(struct.pack(">I", len(m)) + m for m in mishes)
    rsrc_off = len(out)
    head = struct.pack(">IIII", 256, 256 + len(body), len(body), 0)
    out += head + bytes(256 - len(head)) + body
    rsrc_len = len(out) - rsrc_off
else:
    items = "".join(
        "<dict><key>Attributes</key><string>0x0050</string>"
        "<key>CFName</key><string>part %d</string><key>Data</key><data>\n%s\n"
        "</data><key>ID</key><string>%d</string>"
        "<key>Name</key><string>part %d</string></dict>\n"
        % (i, base64.encodebytes(m).decode(), i, i)
        for i, m in enumerate(mishes))
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">'
           "<dict><key>resource-fork</key><dict><key>blkx</key><array>\n%s"
           "</array></dict></dict></plist>\n" % items).encode()
    xml_off = len(out)
    out += xml
    xml_len = len(xml)
koly = bytearray(512)
struct.pack_into(">4sIII", koly, 0, b"koly", 4, 512, 1)
struct.pack_into(">QQQQQ", koly, 16, 0, 0, len(fork), rsrc_off, rsrc_len)
struct.pack_into(">II", koly, 56, 1, 1)
struct.pack_into(">QQ", koly, 0xd8, xml_off, xml_len)
struct.pack_into(">IQ", koly, 0x1e8, 1, sectors)
out += koly
open(a.out, "wb").write(out)
