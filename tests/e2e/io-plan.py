#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
# Copyright (c) 2026 The mimg authors
"""Plans the guest I/O of the end-to-end test and what the host expects.

Writes into DIR:
  base.raw           content of the base image (random data in a few ranges)
  data/p*.bin        the patterns the guest writes
  steps              the guest's script (see init-io.sh)
  expected.raw       the disk content after all steps
  expected-reads     "OFF LEN MD5" for every read step, in order
  discards           "OFF LEN" of the 64 KiB clusters discarded and not
                     written again (they must not stay allocated as data)

The data is pseudo-random from a fixed seed, so a misplaced or stale block
never matches by accident and every run is the same.
"""
import argparse
import hashlib
import os
import random

K = 1024
M = 1024 * K


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--size", type=int, default=64 * M)
    ap.add_argument("--base-size", type=int, default=40 * M)
    ap.add_argument("--no-discard", action="store_true")
    ap.add_argument("--read-only", action="store_true",
                    help="the disk is the base itself, served read-only")
    ap.add_argument("--restart-to", type=int, metavar="SIZE",
                    help="a short plan around a backend restart, after "
                    "which the disk grows to SIZE")
    ap.add_argument("--seed", type=int, default=20261124)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    size, bsize = args.size, args.base_size
    assert bsize <= size and size >= 64 * M

    def rand(n):
        return rng.randbytes(n)

    # Base: data where the guest will overwrite part of a cluster (so the
    # backend must merge with the backing file), aligned and unaligned
    # ranges, and data up to the base's end (the overlay is larger).
    base = bytearray(bsize)
    for off, n in [(0, 4 * M), (8 * M, 4 * M), (20 * M + 12 * K, 300 * K),
                   (bsize - M, M)]:
        base[off:off + n] = rand(n)
    disk = bytearray(size)
    disk[:bsize] = base

    steps, reads = [], []
    cluster = 64 * K
    discarded = set()    # clusters, for the host's allocation check
    os.makedirs(os.path.join(args.dir, "data"), exist_ok=True)
    npat = 0

    def write(off, n, op="write"):
        nonlocal npat
        npat += 1
        name = "p%d.bin" % npat
        data = rand(n)
        with open(os.path.join(args.dir, "data", name), "wb") as f:
            f.write(data)
        disk[off:off + n] = data
        discarded.difference_update(range(off // cluster, (off + n - 1) // cluster + 1))
        steps.append("%s %d %s" % (op, off, name))

    def read(off, n):
        off = max(off, 0)
        n = min(n, len(disk) - off)
        steps.append("read %d %d" % (off, n))
        reads.append("%d %d %s" % (off, n, hashlib.md5(disk[off:off + n]).hexdigest()))
    read.reads = reads

    def discard(off, n):
        if args.no_discard:
            return
        assert off % cluster == 0 and n % cluster == 0
        disk[off:off + n] = bytes(n)
        discarded.update(range(off // cluster, (off + n) // cluster))
        steps.append("discard %d %d" % (off, n))

    def zeroout(off, n):
        disk[off:off + n] = bytes(n)
        steps.append("zeroout %d %d" % (off, n))

    steps.append("serial")
    if args.restart_to:
        return restart_plan(args, disk, steps, read, write, cluster)
    # Reads served by the backing file alone, and across the base's end.
    read(0, 4 * M)
    read(bsize - M, 2 * M)
    if args.read_only:
        assert bsize == size
        steps.append("rotest")
        read(20 * M, 2 * M)
        read(0, size)
        return finish(args.dir, base, disk, steps, reads, set(), cluster)
    writes = [
        (M + 4 * K, 192 * K),          # partial clusters over base data
        (10 * M, M),                   # whole clusters over base data
        (bsize - M // 2, M),           # across the end of the base
        (50 * M, 2 * M),               # where the base has nothing
        (size - 64 * K, 64 * K),       # the last cluster of the disk
        (20 * M + 8 * K, 8 * K),       # small, inside an unaligned base range
        (30 * M + 512, 64 * K),        # 512-byte aligned only
    ]
    for off, n in writes:
        write(off, n)
    # Concurrent writers into the same clusters: over base data (each
    # cluster's first write must copy from the backing file without losing
    # the others' blocks) and where the base has nothing.
    stripes = [(3 * M, M), (56 * M, M)]
    for off, n in stripes:
        write(off, n, "stripe")
    steps.append("flush")
    # A device reset in the middle: the backend must set the queues up
    # again and still serve what was written before.
    steps.append("reload")
    for off, n in writes + stripes:
        read(off - 64 * K, n + 128 * K)
    # Discards: over base data (must read back as zeroes, not as the
    # backing file's data) and over data the guest wrote.
    discard(8 * M, M)
    discard(50 * M, M)
    write(8 * M + 64 * K, 4 * K)       # into a discarded range
    # Write-zeroes: part of a cluster of base data, and a range across
    # guest-written and base data; both must read as zeroes.
    zeroout(2 * M + 4 * K, 60 * K)
    zeroout(10 * M + 512 * K, M)
    steps.append("flush")
    read(M, 2 * M)
    read(7 * M, 5 * M)
    read(49 * M, 4 * M)
    read(0, size)
    finish(args.dir, base, disk, steps, reads, discarded, cluster)


def restart_plan(args, disk, steps, read, write, cluster):
    """Writes that go on while the host kills the backend and starts a new
    one, which then grows the disk; data written before, during and after
    must all read back."""
    size, new = args.size, args.restart_to
    assert new > size and new % M == 0
    write(M + 4 * K, 192 * K)
    write(3 * M, 2 * M, "restart")
    steps[-1] += " %d" % new
    disk.extend(bytes(new - size))
    write(new - M - 4 * K, M)                # in the new range
    write(size - 64 * K, 128 * K)            # across the old end
    steps.append("flush")
    read(M, 6 * M)
    read(size - M, new - size + M)
    finish(args.dir, disk[:args.base_size], disk, steps, read.reads, set(),
           cluster)


def finish(d, base, disk, steps, reads, discarded, cluster):
    discards = []
    for c in sorted(discarded):
        if discards and discards[-1][0] + discards[-1][1] == c * cluster:
            discards[-1][1] += cluster
        else:
            discards.append([c * cluster, cluster])
    discards = ["%d %d" % (o, n) for o, n in discards]

    with open(os.path.join(d, "base.raw"), "wb") as f:
        f.write(base)
    with open(os.path.join(d, "expected.raw"), "wb") as f:
        f.write(disk)
    for name, lines in [("steps", steps), ("expected-reads", reads),
                        ("discards", discards)]:
        with open(os.path.join(d, name), "w") as f:
            f.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
