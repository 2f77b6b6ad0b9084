# SPDX-License-Identifier: BSD-2-Clause
# Rewrite a streamOptimized VMDK whose grain directory is at the front (as
# qemu-img writes it) into VMware's footer layout: header with the
# directory offset all ones, descriptor, grains, each grain table behind a
# marker after its grains, the directory behind its marker, the footer
# (the header naming the directory) and the end-of-stream marker.  With
# "edit", damage a stream in place instead, or ("zeroed") turn grains
# into zeroed grains (table entry 1, header flag bit 2), which qemu-img
# never writes: grains 16-31 lose their data, 100-110 (a hole) are marked
# too; the footer layout keeps the zeroed entries of its source:
#   vmdk-stream-layout.py footer SRC DST
#   vmdk-stream-layout.py edit FILE noeos|swap|lba|gte|gtfooter|zeroed|noflag
import struct
import sys


def grains_of(b):
    """(grain, marker offset, record) of each grain marker, in order."""
    flags, cap, gs = struct.unpack_from("<IQQ", b, 8)
    over = struct.unpack_from("<Q", b, 64)[0]
    out, off = [], over * 512
    while True:
        lba, size, typ = struct.unpack_from("<QII", b, off)
        if size == 0:
            if typ == 0:
                return out
            off += 512 + lba * 512
            continue
        out.append((lba // gs, off, b[off:off + 12 + size]))
        off += (12 + size + 511) // 512 * 512


def zeroed_of(b):
    """Grains whose entry in the front tables is 1."""
    cap, gs = struct.unpack_from("<QQ", b, 12)
    nge, gdo = struct.unpack_from("<I", b, 44)[0], struct.unpack_from(
        "<Q", b, 56)[0]
    out = set()
    if gdo == 0xFFFFFFFFFFFFFFFF:
        return out
    for i in range(-(-cap // (gs * nge))):
        gt = struct.unpack_from("<I", b, gdo * 512 + 4 * i)[0]
        for j in range(nge if gt else 0):
            if struct.unpack_from("<I", b, gt * 512 + 4 * j)[0] == 1:
                out.add(i * nge + j)
    return out


def footer(src, dst):
    b = open(src, "rb").read()
    h = bytearray(b[:512])
    flags, cap, gs, descoff, descsz, nge = struct.unpack_from("<IQQQQI", h, 8)
    over = struct.unpack_from("<Q", h, 64)[0]
    struct.pack_into("<I", h, 8, flags & ~2)   # no redundant directory
    struct.pack_into("<QQ", h, 48, 0, 0xFFFFFFFFFFFFFFFF)
    out = bytearray(h)
    out += b[descoff * 512:(descoff + descsz) * 512]
    out += bytes(over * 512 - len(out))
    gd = [0] * -(-cap // (gs * nge))
    zeroed = zeroed_of(b)

    def pad():
        out.extend(bytes(-len(out) % 512))

    def table(typ, entries):
        data = struct.pack("<%dI" % len(entries), *entries)
        out.extend(struct.pack("<QII", -(-len(data) // 512), 0, typ))
        pad()
        sector = len(out) // 512
        out.extend(data)
        pad()
        return sector

    gt, cur = None, None
    for g, _, rec in grains_of(b):
        if gt is not None and g // nge != cur:
            gd[cur] = table(1, gt)
            gt = None
        if gt is None:
            gt, cur = [0] * nge, g // nge
            for z in zeroed:
                if z // nge == cur:
                    gt[z % nge] = 1
        gt[g % nge] = len(out) // 512
        out.extend(rec)
        pad()
    if gt is not None:
        gd[cur] = table(1, gt)
    gd_sector = table(2, gd)
    out.extend(struct.pack("<QII", 1, 0, 3))
    pad()
    f = bytearray(h)
    struct.pack_into("<Q", f, 56, gd_sector)
    out.extend(f)
    out.extend(bytes(512))
    open(dst, "wb").write(out)


def edit(path, how):
    b = bytearray(open(path, "rb").read())
    gs = struct.unpack_from("<Q", b, 20)[0]
    g = grains_of(b)
    if how == "noeos":
        # as qemu-img 7.2 leaves it when the last grain ends the file
        del b[g[-1][1] + (len(g[-1][2]) + 511) // 512 * 512:]
    elif how == "swap":
        # the second grain's marker says the first's LBA: out of order
        struct.pack_into("<Q", b, g[1][1], g[0][0] * gs)
    elif how == "lba":
        cap = struct.unpack_from("<Q", b, 12)[0]
        struct.pack_into("<Q", b, g[-1][1], cap)
    elif how == "gte":
        # a grain the front tables no longer list: a random-access
        # reader reads zeroes there
        gd = struct.unpack_from("<Q", b, 56)[0]
        gt = struct.unpack_from("<I", b, gd * 512)[0]
        i = b.find(struct.pack("<I", g[0][1] // 512), gt * 512)
        struct.pack_into("<I", b, i, 0)
    elif how == "gtfooter":
        # footer layout: the first table marker lists another sector
        off = g[-1][1] + (len(g[-1][2]) + 511) // 512 * 512
        assert struct.unpack_from("<II", b, off + 8) == (0, 1)
        struct.pack_into("<I", b, off + 512 + 4 * (g[-1][0] % 512), 7)
    elif how in ("zeroed", "noflag"):
        # The grain markers of 16-31 become grain table markers covering
        # the same sectors, which a front-layout reader passes over.
        if how == "zeroed":
            flags = struct.unpack_from("<I", b, 8)[0]
            struct.pack_into("<I", b, 8, flags | 4)
        gdo = struct.unpack_from("<Q", b, 56)[0]
        gt0 = struct.unpack_from("<I", b, gdo * 512)[0]
        for grain, off, rec in g:
            if 16 <= grain < 32:
                sectors = (len(rec) + 511) // 512
                struct.pack_into("<QII", b, off, sectors - 1, 0, 1)
                struct.pack_into("<I", b, gt0 * 512 + 4 * grain, 1)
        for grain in range(100, 111):
            struct.pack_into("<I", b, gt0 * 512 + 4 * grain, 1)
    open(path, "wb").write(b)


if sys.argv[1] == "footer":
    footer(sys.argv[2], sys.argv[3])
else:
    edit(sys.argv[2], sys.argv[3])
