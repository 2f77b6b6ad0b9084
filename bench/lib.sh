# SPDX-License-Identifier: BSD-2-Clause
# Setup shared by the host-level benchmarks: where mimg is, what they need,
# and the working directory they keep their images in between runs.
# Sourced by bench/*.sh after their options are parsed.

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIMG=${MIMG:-$ROOT/build/mimg/mimg}

# bench_need PROG...: stop unless each PROG and the built mimg are there.
bench_need() {
	for p in "$@"; do
		command -v "$p" >/dev/null ||
			{ echo "bench: $p is needed" >&2; exit 1; }
	done
	[ -x "$MIMG" ] || { echo "bench: build mimg first ($MIMG)" >&2; exit 1; }
}

# bench_enter DIR NAME: work in DIR, or in $TMPDIR/NAME when DIR is empty.
bench_enter() {
	WORK=${1:-${TMPDIR:-/tmp}/$2}
	mkdir -p "$WORK"
	cd "$WORK"
}
