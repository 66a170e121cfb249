#!/bin/sh
# remote.sh — the remote pool benchmark (bench-remote) on a throw-away
# one-node Slurm: starts munged, slurmctld, slurmd and slurmrestd with all
# state in a temporary directory (scripts/slurm-cluster.sh run), runs
# bench-remote, stops every daemon again.  Needs root and the Slurm
# packages (scripts/slurm-cluster.sh install).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   bench/remote.sh [--build-dir BUILD] [--json] [--quick]

set -eu

here=$(cd "$(dirname "$0")" && pwd)
build="$here/../build"
if [ "${1:-}" = "--build-dir" ]; then
  [ $# -ge 2 ] || { echo "remote.sh: --build-dir needs a directory" >&2; exit 2; }
  build=$2
  shift 2
fi
program="$build/bench/bench-remote"
[ -x "$program" ] || { echo "remote.sh: $program not built (ninja -C $build)" >&2; exit 2; }
program=$(cd "$(dirname "$program")" && pwd)/bench-remote

exec "$here/../scripts/slurm-cluster.sh" run -- "$program" "$@"
