# SPDX-License-Identifier: BSD-2-Clause
# Edit a VHDX file in place for the tests (not a test itself):
#   vhdx-edit.py FILE ACTION [ARGS]
#     header-crc N          break header N's (1 or 2) checksum
#     region1-crc           break the first region table's checksum
#     bat BLOCK VALUE       set the BAT entry of payload block BLOCK
#     param-flags V         set the file parameters' flags word
#     block-size V          set the file parameters' block size
#     log-entry valid|bad   give the headers a log GUID and write one log
#                           entry with it (valid: right CRC-32C; bad: not)
import struct
import sys


def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 & -(crc & 1))
    return crc ^ 0xffffffff


def with_crc(buf, at):
    buf[at:at + 4] = b"\0\0\0\0"
    buf[at:at + 4] = struct.pack("<I", crc32c(bytes(buf)))


BAT = bytes.fromhex("6677c22d23f600429d64115e9bfd4a08")
META = bytes.fromhex("06a27c8b90479a4bb8fe575f050f886e")
PARAMS = bytes.fromhex("3767a1ca36fa434db3b633f0aa44e76b")
LOGICAL = bytes.fromhex("1dbf41816fa90947ba47f233a8faab5f")
H = (0x10000, 0x20000)

path, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
f = open(path, "r+b")


def read(off, n):
    f.seek(off)
    return bytearray(f.read(n))


def write(off, data):
    f.seek(off)
    f.write(data)


def regions():
    t = read(0x30000, 0x10000)
    out = {}
    for i in range(struct.unpack("<I", t[8:12])[0]):
        e = t[16 + 32 * i:48 + 32 * i]
        out[bytes(e[:16])] = struct.unpack("<QI", e[16:28])
    return out


def meta_item(guid):
    moff = regions()[META][0]
    t = read(moff, 0x10000)
    for i in range(struct.unpack("<H", t[10:12])[0]):
        e = t[32 + 32 * i:64 + 32 * i]
        if bytes(e[:16]) == guid:
            return moff + struct.unpack("<I", e[16:20])[0]
    sys.exit("no such metadata item")


if action == "header-crc":
    off = H[int(args[0]) - 1]
    write(off + 4, b"\xde\xad\xbe\xef")
elif action == "region1-crc":
    write(0x30004, b"\xde\xad\xbe\xef")
elif action == "bat":
    block, value = int(args[0]), int(args[1], 0)
    p = meta_item(PARAMS)
    bs = struct.unpack("<I", read(p, 4))[0]
    lss = struct.unpack("<I", read(meta_item(LOGICAL), 4))[0]
    ratio = (lss << 23) // bs
    idx = block + block // ratio
    write(regions()[BAT][0] + 8 * idx, struct.pack("<Q", value))
elif action == "param-flags":
    write(meta_item(PARAMS) + 4, struct.pack("<I", int(args[0], 0)))
elif action == "block-size":
    write(meta_item(PARAMS), struct.pack("<I", int(args[0], 0)))
elif action == "log-entry":
    guid = bytes(range(1, 17))
    for off in H:
        h = read(off, 4096)
        h[48:64] = guid
        with_crc(h, 4)
        write(off, h)
    h = read(H[0], 4096)
    log_len, log_off = struct.unpack("<IQ", h[68:80])
    e = bytearray(4096)
    e[0:4] = b"loge"
    struct.pack_into("<IIQII", e, 8, 4096, 0, 1, 0, 0)
    e[32:48] = guid
    with_crc(e, 4)
    if args[0] == "bad":
        e[100] ^= 1
    write(log_off, e)
else:
    sys.exit("unknown action " + action)
