#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The manuals agree with the programs and the library: every option that
# `mimg COMMAND --help` lists appears in mimg(1) for that command (its
# synopsis or its section, or among the options common to all commands),
# every option of `vmm-blk --help` in vmm-blk(8), and every function the
# shared library exports or mimg.h declares (MIMG_API) in libmimg(3); and
# the comment over each function in mimg.h states its errors (or that it
# cannot fail) and its thread-safety.
#   BUILD_ROOT=build SOURCE_ROOT=. tests/install/docs.sh
set -eu
: "${BUILD_ROOT:?}" "${SOURCE_ROOT:?}"
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
command -v nm >/dev/null || { echo "SKIP: no nm"; exit 77; }
lib=$(find "$BUILD_ROOT" -maxdepth 1 -type f -name 'libmimg.so.*.*' | head -1)
[ -n "$lib" ] || { echo "FAIL: no libmimg.so in $BUILD_ROOT" >&2; exit 1; }
vmmblk=$BUILD_ROOT/vmm-blk/vmm-blk
[ -x "$vmmblk" ] || vmmblk=
exec python3 - "$BUILD_ROOT/mimg/mimg" "$vmmblk" "$lib" "$SOURCE_ROOT/doc" \
	"$SOURCE_ROOT/libmimg/include/mimg.h" <<'PY'
import re, subprocess, sys

mimg, vmmblk, lib, doc, header = sys.argv[1:]
problems = []

def help_options(argv):
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    opts = set()
    for line in out.splitlines():
        m = re.match(r"\s{2,}((?:-[A-Za-z0-9]|--[a-z][\w-]*)(?:,\s*--[a-z][\w-]*)?)", line)
        if m:
            opts.update(o.strip() for o in m.group(1).split(","))
    return opts - {"-h", "--help"}

def mentions(text, opt):
    if opt.startswith("--"):
        return re.search(r"Fl " + re.escape("-" + opt[2:]) + r"\b", text)
    return any(opt[1] in cluster
               for cluster in re.findall(r"Fl ([A-Za-z0-9]+)\b", text))

page = open(f"{doc}/mimg.1").read()
synopsis = page.split(".Sh SYNOPSIS", 1)[1].split(".Sh ", 1)[0]
common = page.split(".Sh OPTIONS COMMON TO ALL COMMANDS", 1)[-1].split(".Sh ", 1)[0]
top = subprocess.run([mimg, "--help"], capture_output=True, text=True).stdout
commands = re.findall(r"^  ([a-z]+) ", top.split("Commands:", 1)[1], re.M)
if not commands:
    problems.append("mimg --help lists no commands")
for cmd in commands:
    syn = re.search(r"^\.Cm " + cmd + r"\n(.*?)(?=^\.Nm|\Z)", synopsis, re.M | re.S)
    sec = re.search(r"^\.Ss " + cmd + r"\n(.*?)(?=^\.S[sh] |\Z)", page, re.M | re.S)
    if not syn or not sec:
        problems.append(f"mimg.1: no synopsis or section for '{cmd}'")
        continue
    text = syn.group(1) + sec.group(1) + common
    for opt in sorted(help_options([mimg, cmd, "--help"])):
        if not mentions(text, opt):
            problems.append(f"mimg.1: '{cmd}' lacks {opt} (in mimg {cmd} --help)")

def mentions_man(text, opt):
    # man(7) markup: options are written with escaped hyphens.
    plain = re.sub(r"\\f[BIRP]", " ", text.replace("\\-", "-"))
    return re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", plain)

if vmmblk:
    page8 = open(f"{doc}/vmm-blk.8").read()
    for opt in sorted(help_options([vmmblk, "--help"])):
        if not mentions_man(page8, opt):
            problems.append(f"vmm-blk.8 lacks {opt} (in vmm-blk --help)")

page3 = open(f"{doc}/libmimg.3").read()
nm = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True,
                    text=True).stdout
exported = sorted({l.split()[-1] for l in nm.splitlines()
                   if l.split()[-1].startswith("mimg_")})
if not exported:
    problems.append(f"{lib} exports no mimg_ symbols")
for sym in exported:
    if not re.search(r"\b" + sym + r"\b", page3):
        problems.append(f"libmimg.3 lacks {sym} (exported by libmimg)")

# The header is the documentation: the comment block that starts at the
# beginning of a line above each prototype (one block may cover a group)
# names its errors and its thread-safety.
hdr = open(header).read()
declared = []
for m in re.finditer(r"MIMG_API\s+[^;]*?\b(mimg_\w+)\s*\(", hdr):
    name = m.group(1)
    declared.append(name)
    start = hdr.rfind("\n/*", 0, m.start())
    comment = hdr[start:hdr.find("*/", start)] if start >= 0 else ""
    if not re.search(r"Errors?:|[Cc]annot fail|-E[A-Z0-9]+|negative errno", comment):
        problems.append(f"mimg.h: {name} does not document its errors")
    if not re.search(r"[Tt]hread|concurrent", comment):
        problems.append(f"mimg.h: {name} does not document its thread-safety")
    if not re.search(r"\b" + name + r"\b", page3):
        problems.append(f"libmimg.3 lacks {name} (declared in mimg.h)")
if not declared:
    problems.append("mimg.h declares no MIMG_API functions")
for sym in exported:
    if sym not in declared:
        problems.append(f"libmimg exports {sym}, which mimg.h does not declare")

for p in problems:
    print("FAIL:", p, file=sys.stderr)
print(f"{len(commands)} commands, {len(exported)} exported and "
      f"{len(declared)} declared library functions checked")
sys.exit(1 if problems else 0)
PY
