#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Write a cloop version 2 image holding the bytes of a raw file, as
create_compressed_fs lays it out: the shell preamble padded to 128
bytes, the block size and the number of blocks (big-endian 32-bit),
the offsets of the blocks (big-endian 64-bit, one more than there are
blocks: block i is the bytes from offset i to offset i + 1), then the
blocks, each a zlib stream of one block of the disk.  A raw file that
is not whole blocks is padded with zeroes.

  cloop-make.py RAW OUT [--block BYTES] [--plan P]

--plan is applied to the blocks in turn: z (deflate level 9), 0 (level
0: stored, not compressed), 1 (level 1), t (level 9 followed by junk
after the end of the stream, which a reader ignores)."""
import argparse, struct, zlib

p = argparse.ArgumentParser()
p.add_argument("raw")
p.add_argument("out")
p.add_argument("--block", type=int, default=65536)
p.add_argument("--plan", default="z")
a = p.parse_args()

PREAMBLE = (b"#!/bin/sh\n#V2.0 Format\n"
            b"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n")
data = open(a.raw, "rb").read()
n = -(-len(data) // a.block)
blocks = []
for i in range(n):
    b = data[i * a.block:(i + 1) * a.block]
    b += bytes(a.block - len(b))
    kind = a.plan[i % len(a.plan)]
    c = zlib.compress(b, {"z": 9, "0": 0, "1": 1, "t": 9}[kind])
    if kind == "t":
        c += b"junk after the stream"
    blocks.append(c)
at = 128 + 8 + 8 * (n + 1)
offsets = [at]
for c in blocks:
    at += len(c)
    offsets.append(at)
out = bytearray(PREAMBLE.ljust(128, b"\0"))
out += struct.pack(">II", a.block, n)
out += struct.pack(">%dQ" % (n + 1), *offsets)
for c in blocks:
    out += c
open(a.out, "wb").write(out)
