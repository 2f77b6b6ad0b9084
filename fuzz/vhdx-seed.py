#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
# The input form of fuzz_vhdx.c: flags, size in MiB - 1, then (offset,
# length, bytes) for each run of non-zero 512-byte sectors.
#   fuzz/vhdx-seed.py IMAGE INPUT [FLAGS]   an image of at most 16 MiB
#                                           into an input
#   fuzz/vhdx-seed.py -d INPUT IMAGE        an input back into the image
#                                           the fuzz target reads (with
#                                           its checksums made right)
import struct
import sys

MIB = 1 << 20


def encode(src, dst, flags):
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
        while (end < len(data) and any(data[end:end + 512])
               and end - pos < 65024):
            end += 512
        chunk = data[pos:end].rstrip(b"\0")
        out += struct.pack("<IH", pos, len(chunk)) + chunk
        pos = end
    open(dst, "wb").write(out)


TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
    TABLE.append(c)


def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc = (crc >> 8) ^ TABLE[(crc ^ b) & 0xff]
    return crc ^ 0xffffffff


def decode(src, dst):
    data = open(src, "rb").read()
    if len(data) < 2:
        sys.exit(f"{src}: too short")
    size = (data[1] % 16 + 1) * MIB
    img = bytearray(size)
    i = 2
    while i + 6 <= len(data):
        off, n = struct.unpack("<IH", data[i:i + 6])
        i += 6
        n = min(n, len(data) - i)
        if off < size:
            m = min(n, size - off)
            img[off:off + m] = data[i:i + m]
        i += n
    if not data[0] & 1:
        for off, n, sig in ((0x10000, 4096, b"head"), (0x20000, 4096, b"head"),
                            (0x30000, 0x10000, b"regi"),
                            (0x40000, 0x10000, b"regi")):
            if img[off:off + 4] == sig:
                img[off + 4:off + 8] = b"\0\0\0\0"
                img[off + 4:off + 8] = struct.pack(
                    "<I", crc32c(img[off:off + n]))
    open(dst, "wb").write(img)


if sys.argv[1] == "-d":
    decode(sys.argv[2], sys.argv[3])
else:
    encode(sys.argv[1], sys.argv[2],
           int(sys.argv[3], 0) if len(sys.argv) > 3 else 0)
