# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
#
# An NBD server that serves FILE read-only on the Unix socket SOCK, with
# honest reads and base:allocation replies shaped by MODE, the name of
# the export asked for (not a test itself; nbd-extents.sh runs it):
#   honest      the file's data and holes, in 64 KiB pieces
#   beyond      one data extent twice the export's size
#   empty       a zero-length extent first
#   empty-later a zero-length extent after a real one
#   hole-data   everything a hole (NBD_STATE_HOLE without ZERO) over data
#   tiny        true extents of 512 bytes, 8 per reply
#   many        true extents of 512 bytes, 20000 in one reply, the
#               last ones past the export's end
#   zero-lie    data claimed to read as zeroes (NBD_STATE_ZERO)
#   no-context  block status replies for a context never negotiated
#   no-extents  a block status reply with no extents
#   mute-status block status never answered (reads are)
#   python3 nbd-liar.py SOCK FILE   (then nbd+unix:///MODE?socket=SOCK)
# Written from the protocol description (doc/proto.md of the NBD project).
import os
import socket
import struct
import sys
import threading

NBDMAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY = 0x3e889045565a9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCT_MAGIC = 0x668e33ef

OPT_ABORT, OPT_INFO, OPT_GO = 2, 6, 7
OPT_STRUCTURED, OPT_LIST_META, OPT_SET_META = 8, 9, 10
REP_ACK, REP_INFO, REP_META = 1, 3, 4
REP_ERR_UNSUP = (1 << 31) + 1
CMD_READ, CMD_DISC, CMD_FLUSH, CMD_BLOCK_STATUS = 0, 2, 3, 7
CHUNK_NONE, CHUNK_DATA, CHUNK_STATUS, CHUNK_ERROR = 0, 1, 5, (1 << 15) + 1
DONE = 1
STATE_HOLE, STATE_ZERO = 1, 2
CTX_ID = 7

sock_path, path = sys.argv[1:3]
data = open(path, "rb").read()
size = len(data)


def recv_exact(c, n):
    buf = b""
    while len(buf) < n:
        got = c.recv(n - len(buf))
        if not got:
            raise EOFError
        buf += got
    return buf


def opt_reply(c, opt, rtype, payload=b""):
    c.sendall(struct.pack(">QIII", OPT_REPLY, opt, rtype, len(payload)) +
              payload)


def chunk(c, handle, ctype, payload, flags=DONE):
    c.sendall(struct.pack(">IHHQI", STRUCT_MAGIC, flags, ctype, handle,
                          len(payload)) + payload)


def true_extents(off, length, piece=65536, count=None):
    """The file's data and zero runs in PIECE-byte pieces from OFF (COUNT
    of them, past the end of the export if need be)."""
    out = []
    end = min(size, off + length)
    while (off < end) if count is None else (len(out) < count):
        n = piece - off % piece
        if count is None:
            n = min(n, end - off)
        zero = data[off:off + n].count(0) == n
        out.append((n, STATE_HOLE | STATE_ZERO if zero else 0))
        off += n
    return out


def lie(mode, off, length):
    if mode == "beyond":
        return [(min(2 * size, 0xffffffff), 0)]
    if mode == "empty":
        return [(0, 0), (4096, 0)]
    if mode == "empty-later":
        return [(512, 0), (0, STATE_ZERO), (4096, 0)]
    if mode == "hole-data":
        return [(min(length, size - off), STATE_HOLE)]
    if mode == "tiny":
        return true_extents(off, length, 512)[:8]
    if mode == "many":
        return true_extents(off, length, 512, 20000)
    if mode == "zero-lie":
        return [(min(length, size - off), STATE_ZERO)]
    if mode == "no-extents":
        return []
    return true_extents(off, length)


def handshake(c):
    """The export name asked for with NBD_OPT_GO, or None."""
    c.sendall(struct.pack(">QQH", NBDMAGIC, IHAVEOPT, 1 | 2))
    recv_exact(c, 4)  # client flags
    while True:
        magic, opt, length = struct.unpack(">QII", recv_exact(c, 16))
        payload = recv_exact(c, length)
        if magic != IHAVEOPT or opt == OPT_ABORT:
            return None
        if opt == OPT_STRUCTURED:
            opt_reply(c, opt, REP_ACK)
        elif opt in (OPT_SET_META, OPT_LIST_META):
            nlen = struct.unpack(">I", payload[:4])[0]
            p = 4 + nlen
            nq = struct.unpack(">I", payload[p:p + 4])[0]
            p += 4
            for _ in range(nq):
                qlen = struct.unpack(">I", payload[p:p + 4])[0]
                name = payload[p + 4:p + 4 + qlen]
                p += 4 + qlen
                if name == b"base:allocation":
                    opt_reply(c, opt, REP_META,
                              struct.pack(">I", CTX_ID) + name)
            opt_reply(c, opt, REP_ACK)
        elif opt in (OPT_GO, OPT_INFO):
            # export info: size, flags (has flags, read-only, flush)
            opt_reply(c, opt, REP_INFO,
                      struct.pack(">HQH", 0, size, 1 | 2 | 4))
            opt_reply(c, opt, REP_ACK)
            if opt == OPT_GO:
                nlen = struct.unpack(">I", payload[:4])[0]
                return payload[4:4 + nlen].decode()
        else:
            opt_reply(c, opt, REP_ERR_UNSUP)


def serve(c):
    try:
        mode = handshake(c)
        if mode is None:
            return
        while True:
            magic, flags, cmd, handle, off, length = struct.unpack(
                ">IHHQQI", recv_exact(c, 28))
            if magic != REQ_MAGIC or cmd == CMD_DISC:
                return
            if cmd == CMD_READ:
                chunk(c, handle, CHUNK_DATA, struct.pack(">Q", off) +
                      data[off:off + length].ljust(length, b"\0"))
            elif cmd == CMD_BLOCK_STATUS:
                if mode == "mute-status":
                    continue
                ctx = CTX_ID + 1 if mode == "no-context" else CTX_ID
                ext = lie(mode, off, length)
                chunk(c, handle, CHUNK_STATUS, struct.pack(">I", ctx) +
                      b"".join(struct.pack(">II", n, f) for n, f in ext))
            elif cmd == CMD_FLUSH:
                chunk(c, handle, CHUNK_NONE, b"")
            else:
                msg = b"not supported"
                chunk(c, handle, CHUNK_ERROR,
                      struct.pack(">IH", 22, len(msg)) + msg)
    except (EOFError, ConnectionError):
        pass
    finally:
        c.close()


srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if os.path.exists(sock_path):
    os.unlink(sock_path)
srv.bind(sock_path)
srv.listen(8)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
