#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Write a Bochs "growing" redolog image holding the bytes of a raw file,
as Bochs lays it out: a 512-byte little-endian header (magic, type
"Redolog", subtype "Growing", version, header size, catalog entries,
bitmap bytes, extent bytes, then the disk size, after a reserved word in
version 2), the catalog (one 32-bit extent number per extent of the
disk, 0xffffffff when the extent is not allocated), then the allocated
extents in the order the catalog numbers them, each a bitmap (one bit
per sector, set when the sector holds data) padded to whole sectors and
the extent's sectors.

  bochs-make.py RAW OUT [--version 1|2] [--extent BYTES] [--disk BYTES]
                [--catalog N] [--bitmap BYTES] [--plan P] [--reverse]

--disk gives a disk size other than the raw file's (longer: the rest
reads as zeroes; not whole sectors: the tail is dropped).  --catalog
gives more catalog entries than the disk needs, --bitmap a larger
bitmap than the extent's sectors need.  --plan is applied to
the extents in turn: a (allocate every extent, data or not), s (leave
an extent of zeroes unallocated), c (allocate it, and leave the bits of
its zero sectors clear, their sectors filled with junk that must not be
read), z (allocate it and set every bit, zero sectors stored as
zeroes).  --reverse stores the extents in the file in the reverse of
their order on the disk."""
import argparse, struct

p = argparse.ArgumentParser()
p.add_argument("raw")
p.add_argument("out")
p.add_argument("--version", type=int, default=2, choices=(1, 2))
p.add_argument("--extent", type=int, default=32768)
p.add_argument("--disk", type=int)
p.add_argument("--catalog", type=int)
p.add_argument("--bitmap", type=int)
p.add_argument("--plan", default="c")
p.add_argument("--reverse", action="store_true")
a = p.parse_args()

data = open(a.raw, "rb").read()
disk = len(data) if a.disk is None else a.disk
sectors = disk // 512
ext_sectors = a.extent // 512
extents = -(-sectors // ext_sectors)
catalog_n = extents if a.catalog is None else a.catalog
bitmap_bytes = -(-ext_sectors // 8) if a.bitmap is None else a.bitmap
bitmap_blocks = -(-bitmap_bytes // 512)


def sector(i):
    s = data[i * 512:(i + 1) * 512]
    return s + bytes(512 - len(s)) if i < sectors else bytes(512)


stored = []  # (extent index, bitmap, data)
catalog = [0xFFFFFFFF] * catalog_n
for e in range(extents):
    kind = a.plan[e % len(a.plan)]
    secs = [sector(e * ext_sectors + k) for k in range(ext_sectors)]
    zero = all(s == bytes(512) for s in secs)
    if kind == "s" and zero:
        continue
    bits = bytearray(bitmap_blocks * 512)
    body = bytearray()
    for k, s in enumerate(secs):
        if kind == "c" and s == bytes(512):
            body += b"\xee" * 512  # junk behind a clear bit
        else:
            bits[k // 8] |= 1 << (k % 8)
            body += s
    stored.append((e, bytes(bits), bytes(body)))
if a.reverse:
    stored.reverse()
for n, (e, _, _) in enumerate(stored):
    catalog[e] = n

h = bytearray(512)
h[0:22] = b"Bochs Virtual HD Image"
h[32:39] = b"Redolog"
h[48:55] = b"Growing"
struct.pack_into("<IIIII", h, 64, 0x00010000 * a.version, 512, catalog_n,
                 bitmap_bytes, a.extent)
struct.pack_into("<Q", h, 84 if a.version == 1 else 88, disk)
out = bytearray(h)
out += struct.pack("<%dI" % catalog_n, *catalog)
for _, bits, body in stored:
    out += bits + body
open(a.out, "wb").write(out)
