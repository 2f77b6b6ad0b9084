#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Every C source and header is formatted as .clang-format says.  Layout
# differs between clang-format releases, so the check runs only with the
# release the tree is formatted with (14, Debian 12's); others skip.
#   SOURCE_ROOT=. tests/install/format.sh
# To format a file: clang-format -i FILE.
set -eu
: "${SOURCE_ROOT:?}"
want=14
cf=
for c in clang-format-$want clang-format; do
	if command -v "$c" >/dev/null 2>&1; then cf=$c; break; fi
done
[ -n "$cf" ] || { echo "SKIP: no clang-format"; exit 77; }
major=$("$cf" --version | sed -n 's/.*clang-format version \([0-9]*\).*/\1/p')
[ "$major" = "$want" ] || {
	echo "SKIP: clang-format $major; the tree is formatted with $want"
	exit 77
}
cd "$SOURCE_ROOT"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	files=$(git ls-files '*.c' '*.h')
else
	files=$(find . -name '*.[ch]' ! -path './build*' | sed 's|^\./||')
fi
[ -n "$files" ] || { echo "FAIL: no C files under $SOURCE_ROOT" >&2; exit 1; }
n=$(echo "$files" | wc -l)
err=$(mktemp)
trap 'rm -f "$err"' EXIT
# shellcheck disable=SC2086 # one file name per word
if "$cf" --dry-run --Werror $files 2>"$err"; then
	echo "$n files checked, all formatted"
	exit 0
fi
bad=$(sed -n 's/^\([^:]*\.[ch]\):[0-9]*:[0-9]*: .*/\1/p' "$err" | sort -u)
for f in $bad; do
	echo "not formatted: $f (clang-format -i $f)" >&2
done
echo "$n files checked, $(echo "$bad" | grep -c .) not formatted" >&2
exit 1
