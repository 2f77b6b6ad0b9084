# SPDX-License-Identifier: BSD-2-Clause
# The image inspectors OpenStack runs on uploads (the CVE-2024-32498
# checks), found for the interop tests: oslo.utils' format_inspector
# where it is installed, Debian 12's Nova and Glance copies (installed,
# or unpacked from their .deb into a cache with `apt-get download`), or
# a file named by $MIMG_FORMAT_INSPECTOR.  Sourced after lib.sh:
# find_inspectors writes inspectors.txt ("NAME SOURCE" lines, empty when
# there are none) and run_inspector.py, which prints for each image
# "FORMAT VIRTUAL_SIZE SAFE" or "FORMAT VIRTUAL_SIZE UNSAFE: reason".

# Debian's Python has the distribution's modules (oslo_log, oslo_utils).
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

cache=${MIMG_INSPECTOR_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mimg-inspectors}

# Unpack FILE (a path inside the package) of Debian package PKG into the
# cache; prints its path.
from_deb() {
	_pkg=$1 _file=$2
	if [ -s "$cache/$_pkg/$_file" ]; then
		echo "$cache/$_pkg/$_file"
		return 0
	fi
	command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 ||
		return 1
	mkdir -p "$cache" 2>/dev/null || return 1
	_dl=$(mktemp -d "$cache/dl-XXXXXX") || return 1
	chmod 777 "$_dl" 2>/dev/null	# apt downloads as _apt
	if (cd "$_dl" && apt-get -q download "$_pkg" >/dev/null 2>&1) &&
	   dpkg -x "$_dl"/*.deb "$_dl/x" 2>/dev/null &&
	   [ -s "$_dl/x/$_file" ]; then
		mkdir -p "$cache/$_pkg/$(dirname "$_file")" &&
			mv "$_dl/x/$_file" "$cache/$_pkg/$_file"
	fi
	rm -rf "$_dl"
	[ -s "$cache/$_pkg/$_file" ] && echo "$cache/$_pkg/$_file"
}

# Each inspector is a line "NAME SOURCE": SOURCE is a file path or the
# module name oslo_utils.imageutils.format_inspector.
add() {
	# Only an inspector whose imports resolve is usable.
	"$PY" - "$2" >/dev/null 2>&1 <<'PY' && echo "$1 $2" >>inspectors.txt
import importlib, importlib.util, sys
src = sys.argv[1]
if src.endswith('.py'):
    spec = importlib.util.spec_from_file_location('format_inspector', src)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
else:
    importlib.import_module(src)
PY
}
find_inspectors() {
	: >inspectors.txt
	[ -n "${MIMG_FORMAT_INSPECTOR:-}" ] && add env "$MIMG_FORMAT_INSPECTOR"
	add oslo.utils oslo_utils.imageutils.format_inspector
	dp=/usr/lib/python3/dist-packages
	for spec in "nova python3-nova nova/image/format_inspector.py" \
		    "glance python3-glance glance/common/format_inspector.py"; do
		set -- $spec
		if [ -s "$dp/$3" ]; then
			add "$1" "$dp/$3"
		elif f=$(from_deb "$2" "usr/lib/python3/dist-packages/$3"); then
			add "$1" "$f"
		fi
	done
	# run_inspector.py SOURCE IMG...: older inspectors return the safety
	# verdict, newer ones raise.
	cat >run_inspector.py <<'PY'
import importlib, importlib.util, logging, sys
logging.disable(logging.CRITICAL)
src = sys.argv[1]
if src.endswith('.py'):
    spec = importlib.util.spec_from_file_location('format_inspector', src)
    fi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fi)
else:
    fi = importlib.import_module(src)
for path in sys.argv[2:]:
    insp = fi.detect_file_format(path)
    name = getattr(insp, 'NAME', None) or str(insp)
    try:
        ok = insp.safety_check()
        verdict = 'SAFE' if ok is None or ok is True else 'UNSAFE: False'
    except Exception as e:
        verdict = 'UNSAFE: %s' % e
    print(name, insp.virtual_size, verdict)
PY
}
