#!/usr/bin/env bash
# install-deps.sh — installs every Debian 12 package fiber-glib needs to
# build, test and benchmark (apt-get update, then apt-get install -y).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs as root, or through sudo when not root.  Set FIBER_SKIP_INSTALL=1
# to skip this step on a machine that is already set up.
set -euo pipefail

PACKAGES=(
  # build
  meson ninja-build pkg-config gcc libc6-dev clang libclang-rt-14-dev
  libglib2.0-dev libgirepository1.0-dev gobject-introspection
  libsoup-3.0-dev libjson-glib-dev libzmq3-dev libglib-testing-0-dev
  libpeas-dev gi-docgen
  # bindings and their tests
  python3 python3-gi gjs python3-pytest python3-psutil
  python3-pytest-timeout python3-billiard python3-gevent
  # remote pools: a one-node Slurm cluster for the tests
  slurmctld slurmd slurmrestd slurm-client munge slurm-wlm-jwt-plugin
  # test tooling
  valgrind dbus
  # the demonstration workload and the test scripts
  coreutils gzip findutils
)

if [ "${FIBER_SKIP_INSTALL:-0}" = 1 ]; then
  echo "install-deps: skipped (FIBER_SKIP_INSTALL=1)"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: must run as root (or with sudo available)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

echo "install-deps: apt-get update"
"${SUDO[@]}" apt-get update -q
echo "install-deps: apt-get install (${#PACKAGES[@]} packages)"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q "${PACKAGES[@]}" >"${TMPDIR:-/tmp}/fiber-apt.log.$$" 2>&1 \
  || { cat "${TMPDIR:-/tmp}/fiber-apt.log.$$" >&2; rm -f "${TMPDIR:-/tmp}/fiber-apt.log.$$"; exit 1; }
grep -E 'newly installed' "${TMPDIR:-/tmp}/fiber-apt.log.$$" || true
rm -f "${TMPDIR:-/tmp}/fiber-apt.log.$$"

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: not installed: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: all ${#PACKAGES[@]} packages are installed"
