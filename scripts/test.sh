#!/usr/bin/env bash
# test.sh — installs what is needed, builds, and runs every test.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   1. scripts/install-deps.sh (apt-get update + install)
#   2. build/       -Dwerror=true -Ddocs=true (the gi-docgen API reference,
#                   warnings fatal), `meson test` with every suite
#                   (C, fuzz, python, js, pypushflow, slurm, cli …)
#   3. build-asan/  AddressSanitizer + UBSan, the C suites (`--suite c`)
#   4. build-fuzz/  clang: the libFuzzer target of the wire decoder, run for
#                   a bounded time (`--suite fuzz`)
#   5. one closing line: total: N passed, N failed, N skipped
#
# Exits non-zero when a build or a test failed.  Re-running reuses both
# build directories (reconfigured, or wiped when they cannot be).
#
# Environment: FIBER_BUILD_DIR / FIBER_ASAN_BUILD_DIR rename the build
# directories; FIBER_SKIP_INSTALL=1 skips step 1; FIBER_SKIP_ASAN=1 skips
# step 3; FIBER_SKIP_FUZZ=1 skips step 4; extra arguments are passed to the
# first two `meson test` runs.
set -uo pipefail

cd "$(dirname "$0")/.."

BUILD=${FIBER_BUILD_DIR:-build}
ASAN_BUILD=${FIBER_ASAN_BUILD_DIR:-build-asan}
FUZZ_BUILD=${FIBER_FUZZ_BUILD_DIR:-build-fuzz}
PYTHON=/usr/bin/python3

passed=0
failed=0
skipped=0

section () {
  printf '\n==== %s ====\n' "$*"
}

# setup DIR MESON-OPTIONS…: configure DIR, reusing it when possible.
setup () {
  local dir=$1
  shift
  local log
  log=$(mktemp)
  if [ -d "$dir/meson-private" ]; then
    meson setup --reconfigure "$dir" "$@" >"$log" 2>&1 \
      || meson setup --wipe "$dir" "$@" >"$log" 2>&1
  else
    meson setup "$dir" "$@" >"$log" 2>&1
  fi
  local rc=$?
  if [ $rc -ne 0 ]; then
    cat "$log" >&2
  else
    grep -E '^(Build targets|  User defined options|    [a-z_]+ *: )' "$log" || true
  fi
  rm -f "$log"
  return $rc
}

# count DIR: adds the results of DIR's last `meson test` to the totals.
count () {
  local log="$1/meson-logs/testlog.json"
  local line
  if [ ! -s "$log" ]; then
    echo "test.sh: no test log in $1: counting the run as one failure" >&2
    failed=$((failed + 1))
    return
  fi
  line=$("$PYTHON" - "$log" <<'EOF'
import json, sys
passed = failed = skipped = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for raw in f:
        raw = raw.strip()
        if not raw:
            continue
        result = json.loads(raw).get("result", "ERROR")
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:  # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, INTERRUPT
            failed += 1
print(passed, failed, skipped)
EOF
  ) || { failed=$((failed + 1)); return; }
  read -r p f s <<<"$line"
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
}

# run_tests DIR MESON-TEST-ARGS…
run_tests () {
  local dir=$1
  shift
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs "$@"
  count "$dir"
}

start=$(date +%s)

section "dependencies"
if ! ./scripts/install-deps.sh; then
  echo "test.sh: installing the dependencies failed" >&2
  echo "total: 0 passed, 1 failed, 0 skipped"
  exit 1
fi

section "build: $BUILD (-Dwerror=true -Ddocs=true)"
if setup "$BUILD" -Dwerror=true -Ddocs=true && ninja -C "$BUILD" --quiet; then
  section "tests: $BUILD (all suites)"
  run_tests "$BUILD" "$@"
else
  echo "test.sh: the build in $BUILD failed" >&2
  failed=$((failed + 1))
fi

if [ "${FIBER_SKIP_ASAN:-0}" != 1 ]; then
  section "build: $ASAN_BUILD (address,undefined sanitizers)"
  if setup "$ASAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false \
       -Dintrospection=false && ninja -C "$ASAN_BUILD" --quiet; then
    section "tests: $ASAN_BUILD (C suites)"
    run_tests "$ASAN_BUILD" --suite c --timeout-multiplier 3 "$@"
  else
    echo "test.sh: the build in $ASAN_BUILD failed" >&2
    failed=$((failed + 1))
  fi
fi

if [ "${FIBER_SKIP_FUZZ:-0}" != 1 ]; then
  section "build: $FUZZ_BUILD (clang, libFuzzer)"
  # Only the fuzzers are built: the rest of the tree is checked above.
  if CC=clang setup "$FUZZ_BUILD" -Dintrospection=false -Dpeas=disabled \
       && ninja -C "$FUZZ_BUILD" --quiet tests/fuzz/fuzz-message \
            tests/fuzz/fuzz-message-replay; then
    section "tests: $FUZZ_BUILD (bounded fuzzing)"
    run_tests "$FUZZ_BUILD" --no-rebuild --suite fuzz
  else
    echo "test.sh: the build in $FUZZ_BUILD failed" >&2
    failed=$((failed + 1))
  fi
fi

section "done in $(( $(date +%s) - start )) s"
echo "total: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
