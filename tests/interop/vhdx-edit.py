# SPDX-License-Identifier: BSD-2-Clause
# Edit a VHDX file in place for the tests (not a test itself):
#   vhdx-edit.py FILE ACTION [ARGS]
#     header-crc N          break header N's (1 or 2) checksum
#     region1-crc           break the first region table's checksum
#     bat BLOCK VALUE       set the BAT entry of payload block BLOCK
#     param-flags V         set the file parameters' flags word
#     block-size V          set the file parameters' block size
#     log-entry valid|bad   give the headers a log GUID and write one log
#                           entry with it, without updates (valid: right
#                           CRC-32C; bad: not)
#     log SCENARIO BLOCK    leave updates in the log (see below)
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


MIB = 1 << 20


def set_log_guid():
    guid = bytes(range(1, 17))
    for off in H:
        h = read(off, 4096)
        h[48:64] = guid
        with_crc(h, 4)
        write(off, h)
    return guid


def log_region():
    h = read(H[0], 4096)
    log_len, log_off = struct.unpack("<IQ", h[68:80])
    return log_off, log_len


def bat_index(block):
    bs = struct.unpack("<I", read(meta_item(PARAMS), 4))[0]
    lss = struct.unpack("<I", read(meta_item(LOGICAL), 4))[0]
    ratio = (lss << 23) // bs
    return block + block // ratio


def bat_sector(block):
    """The file offset of the 4 KiB BAT sector holding BLOCK's entry,
    and its bytes."""
    off = regions()[BAT][0] + 8 * bat_index(block)
    at = off - off % 4096
    return at, read(at, 4096)


def entry(seq, tail, descs, guid, flushed, last):
    """A log entry: descs are ("data", file offset, 4096 bytes) or
    ("zero", file offset, length)."""
    dsec = (len(descs) + 2 + 127) // 128
    data = [d for d in descs if d[0] == "data"]
    e = bytearray((dsec + len(data)) * 4096)
    e[0:4] = b"loge"
    struct.pack_into("<IIQII", e, 8, len(e), tail, seq, len(descs), 0)
    e[32:48] = guid
    struct.pack_into("<QQ", e, 48, flushed, last)
    k = 0
    for i, d in enumerate(descs):
        at = 64 + 32 * i
        if d[0] == "zero":
            e[at:at + 4] = b"zero"
            struct.pack_into("<IQQQ", e, at + 4, 0, d[2], d[1], seq)
        else:
            sec = d[2]
            e[at:at + 4] = b"desc"
            e[at + 4:at + 8] = sec[4092:4096]
            e[at + 8:at + 16] = sec[0:8]
            struct.pack_into("<QQ", e, at + 16, d[1], seq)
            ds = (dsec + k) * 4096
            k += 1
            e[ds:ds + 4] = b"data"
            struct.pack_into("<I", e, ds + 4, seq >> 32)
            e[ds + 8:ds + 4092] = sec[8:4092]
            struct.pack_into("<I", e, ds + 4092, seq & 0xffffffff)
    with_crc(e, 4)
    return e


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
    guid = set_log_guid()
    e = entry(1, 0, [], guid, 0, 0)
    if args[0] == "bad":
        e[100] ^= 1
    write(log_region()[0], e)
elif action == "log":
    # Updates left in the log, as a writer that did not close the file
    # leaves them, each kind the format has.  BLOCK's BAT entry is made to
    # point at a new 1 MiB block of 0x5c bytes appended to the file.
    scenario, block = args[0], int(args[1])
    guid = set_log_guid()
    log_off, log_len = log_region()
    at, sector = bat_sector(block)
    f.seek(0, 2)
    end = f.tell()
    new = (end + MIB - 1) // MIB * MIB
    write(new, b"\x5c" * MIB)
    size = new + MIB
    updated = bytearray(sector)
    i = bat_index(block) * 8 - (at - regions()[BAT][0])
    updated[i:i + 8] = struct.pack("<Q", new | 6)
    if scenario == "data":
        write(log_off, entry(5, 0, [("data", at, updated)], guid, size, size))
    elif scenario == "zero":
        # the whole BAT sector cleared: its blocks read as zeroes
        write(log_off, entry(5, 0, [("zero", at, 4096)], guid, size, size))
    elif scenario == "wrap":
        # two entries, the first across the end of the log; the second
        # undoes the first's update of BLOCK and drops block 5
        first = log_len - 4096
        e1 = entry(7, first, [("data", at, updated)], guid, size, size)
        undo = bytearray(sector)
        j = bat_index(5) * 8 - (at - regions()[BAT][0])
        undo[j:j + 8] = bytes(8)
        e2 = entry(8, first, [("data", at, undo)], guid, size, size)
        log = bytearray(read(log_off, log_len))
        log[first:] = e1[:4096]
        log[0:len(e1) - 4096] = e1[4096:]
        log[len(e1) - 4096:len(e1) - 4096 + len(e2)] = e2
        write(log_off, log)
    elif scenario == "stale":
        # an older sequence after the active one: not replayed
        undo = bytearray(sector)
        j = bat_index(5) * 8 - (at - regions()[BAT][0])
        undo[j:j + 8] = bytes(8)
        e1 = entry(9, 0, [("data", at, updated)], guid, size, size)
        e2 = entry(3, 8192 * 4, [("data", at, undo)], guid, size, size)
        write(log_off, e1)
        write(log_off + 8192 * 4, e2)
    elif scenario == "cut":
        # written for a longer file than there is
        write(log_off, entry(5, 0, [("data", at, updated)], guid,
                             size + MIB, size + MIB))
    else:
        sys.exit("unknown log scenario")
else:
    sys.exit("unknown action " + action)
