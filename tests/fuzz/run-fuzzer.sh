#!/bin/sh
# run-fuzzer.sh FUZZER SEED_DIR SECONDS ARTIFACT_DIR [DICT]
#
# Runs a libFuzzer target for a bounded time on a scratch copy of its seed
# corpus, so the source tree is never modified.  Crash, timeout and OOM
# inputs are saved in ARTIFACT_DIR (the build directory).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu

fuzzer=$1
seeds=$2
seconds=$3
artifacts=$4
dict=${5:+-dict=$5}

work=$(mktemp -d "${TMPDIR:-/tmp}/fiber-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

cp "$seeds"/* "$work"/
"$fuzzer" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" $dict "$work"
