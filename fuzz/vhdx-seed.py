#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
# Turn a VHDX image of at most 16 MiB into the input form of fuzz_vhdx.c:
# flags, size in MiB - 1, then (offset, length, bytes) for each run of
# non-zero 512-byte sectors.
#   fuzz/vhdx-seed.py IMAGE OUTPUT [FLAGS]
import struct
import sys

MIB = 1 << 20
src, dst = sys.argv[1], sys.argv[2]
flags = int(sys.argv[3], 0) if len(sys.argv) > 3 else 0
data = open(src, "rb").read()
if len(data) > 16 * MIB:
    sys.exit(f"{src}: {len(data)} bytes, more than 16 MiB")
out = bytearray([flags, (max(len(data), 1) + MIB - 1) // MIB - 1])
pos = 0
while pos < len(data):
    if not any(data[pos:pos + 512]):
        pos += 512
        continue
    end = pos
    while end < len(data) and any(data[end:end + 512]) and end - pos < 65024:
        end += 512
    chunk = data[pos:end].rstrip(b"\0")
    out += struct.pack("<IH", pos, len(chunk)) + chunk
    pos = end
open(dst, "wb").write(out)
