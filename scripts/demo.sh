#!/usr/bin/env bash
# demo.sh — installs what is needed, builds, and demonstrates `fiber map`
# on the default local process pool over real work:
#   1. the SHA-256 of every /usr/share/doc/*/copyright file (hundreds),
#      checked against a plain sequential sha256sum;
#   2. gzip -9 of a set of generated files, timed against a sequential loop;
#   3. a registered task over GVariant input (--task fiber.echo);
#   4. what a failing line looks like.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Environment: FIBER_BUILD_DIR (default build), FIBER_SKIP_INSTALL=1 to skip
# the package installation, FIBER_DEMO_FILES (default 64) files to compress.
set -euo pipefail

cd "$(dirname "$0")/.."

BUILD=${FIBER_BUILD_DIR:-build}
N_FILES=${FIBER_DEMO_FILES:-64}

section () {
  printf '\n==== %s ====\n' "$*"
}

now () {
  date +%s.%N
}

elapsed () {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}

section "dependencies"
./scripts/install-deps.sh

section "build ($BUILD)"
if [ ! -d "$BUILD/meson-private" ]; then
  meson setup "$BUILD" >/dev/null
fi
ninja -C "$BUILD" --quiet
FIBER=$BUILD/plugin/tools/fiber
"$FIBER" --version

work=$(mktemp -d "${TMPDIR:-/tmp}/fiber-demo-XXXXXX")
trap 'rm -rf "$work"' EXIT

section "pool types"
"$FIBER" pool-types
echo "(fiber map uses the default: \$FIBER_POOL_TYPE, else the default-pool-type setting, else process)"

# --------------------------------------------------------------------------
section "1. sha256sum of every /usr/share/doc/*/copyright"
ls -1 /usr/share/doc/*/copyright >"$work/files.txt"
n=$(wc -l <"$work/files.txt")
echo "\$ ls /usr/share/doc/*/copyright | fiber map -- sha256sum {}     # $n files"
t0=$(now)
"$FIBER" map -- sha256sum {} <"$work/files.txt" >"$work/fiber-sha.txt"
t1=$(now)
head -n 5 "$work/fiber-sha.txt"
echo "… ($(wc -l <"$work/fiber-sha.txt") lines)"
xargs -d '\n' sha256sum <"$work/files.txt" >"$work/plain-sha.txt"
if cmp -s "$work/fiber-sha.txt" "$work/plain-sha.txt"; then
  echo "identical to sequential sha256sum, in input order: yes"
else
  echo "fiber map output differs from sequential sha256sum" >&2
  diff "$work/plain-sha.txt" "$work/fiber-sha.txt" | head >&2
  exit 1
fi
echo "fiber map: $n commands in $(elapsed "$t0" "$t1") s"

# --------------------------------------------------------------------------
section "2. gzip -9 of $N_FILES generated files"
mkdir "$work/data"
for i in $(seq -w 1 "$N_FILES"); do
  # ~1.3 MB of compressible text per file
  seq "$((10#$i * 1000))" "$((10#$i * 1000 + 180000))" >"$work/data/part-$i.txt"
done
du -sh "$work/data" | awk '{ print "input: " $1 }'
ls -1 "$work"/data/part-*.txt >"$work/parts.txt"

echo "\$ ls data/*.txt | fiber map -- gzip -9 -k -f {}"
t0=$(now)
"$FIBER" map -- gzip -9 -k -f {} <"$work/parts.txt"
t1=$(now)
fiber_s=$(elapsed "$t0" "$t1")
ls "$work"/data/*.gz | wc -l | awk '{ print "compressed files: " $1 }'
for f in "$work"/data/part-*.txt; do
  gzip -t "$f.gz"
done
echo "all archives test OK (gzip -t)"

rm -f "$work"/data/*.gz
t0=$(now)
while read -r f; do gzip -9 -k -f "$f"; done <"$work/parts.txt"
t1=$(now)
seq_s=$(elapsed "$t0" "$t1")
echo "fiber map on $(getconf _NPROCESSORS_ONLN) CPUs: $fiber_s s;  sequential loop: $seq_s s" \
  "(speed-up $(awk -v a="$seq_s" -v b="$fiber_s" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')×)"

# --------------------------------------------------------------------------
section "3. a registered task over GVariant input"
echo "\$ printf '(1, \"one\")\\n(2, \"two\")\\n(3, \"three\")\\n' | fiber map --task fiber.echo"
printf '(1, "one")\n(2, "two")\n(3, "three")\n' | "$FIBER" map --task fiber.echo

# --------------------------------------------------------------------------
section "4. failing lines are summarised, the exit status is 1"
echo "\$ printf 'ok\\nbad\\nok\\n' | fiber map -- sh -c 'test {} = ok'"
set +e
printf 'ok\nbad\nok\n' | "$FIBER" map --no-progress -- sh -c 'test {} = ok'
status=$?
set -e
echo "exit status: $status"
[ "$status" -eq 1 ]

section "done"
