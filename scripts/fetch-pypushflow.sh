#!/bin/sh
# fetch-pypushflow.sh DESTDIR [VERSION]
#
# Downloads python3-pypushflow (default 0.7.0) from Debian sid and unpacks it
# into DESTDIR (its Python package ends up in DESTDIR/usr/lib/python3/dist-packages).
#
# The system's apt state is left alone: apt runs with a private lists/cache
# directory and a private sources list.  The archive URI and its keyring are
# read at run time from the machine's own apt configuration
# (/etc/apt/sources.list.d/debian.sources, or FIBER_DEBIAN_SOURCES), so no
# host name is written into any file of this project.
#
# Exits non-zero when anything fails: a test that needs pypushflow must fail,
# not skip, when the download does.
set -eu

dest=${1:?usage: fetch-pypushflow.sh DESTDIR [VERSION]}
version=${2:-0.7.0}
sources=${FIBER_DEBIAN_SOURCES:-/etc/apt/sources.list.d/debian.sources}

mkdir -p "$dest"
# apt resolves relative Dir:: paths against its own directories (/etc/apt,
# /var/lib/apt): every path handed to it must be absolute.
dest=$(cd "$dest" && pwd)
site="$dest/usr/lib/python3/dist-packages"
stamp="$dest/.fetched-$version"

# Several test processes may call this at once: one downloads, the others
# wait for it and find the stamp.
if [ -z "${FIBER_FETCH_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
  FIBER_FETCH_LOCKED=1 exec flock "$dest/.lock" "$0" "$@"
fi

if [ -f "$stamp" ] && [ -d "$site/pypushflow" ]; then
  exit 0
fi

[ -r "$sources" ] || { echo "fetch-pypushflow: cannot read $sources" >&2; exit 1; }

# First deb822 stanza whose URI is the main archive (not -security/-updates
# paths): its URIs: and Signed-By: fields.
uri=$(awk '
  /^[[:space:]]*$/ { if (u != "" && u !~ /-security/) { print u; exit } u = "" }
  /^URIs:/ { u = $2 }
  END { if (u != "" && u !~ /-security/) print u }' "$sources" | head -n 1)
keyring=$(awk -v want="$uri" '
  /^[[:space:]]*$/ { if (u == want && k != "") { print k; exit } u = ""; k = "" }
  /^URIs:/ { u = $2 }
  /^Signed-By:/ { k = $2 }
  END { if (u == want && k != "") print k }' "$sources" | head -n 1)
[ -n "$uri" ] || { echo "fetch-pypushflow: no URIs: line in $sources" >&2; exit 1; }

work="$dest/.apt"
rm -rf "$work"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
signed=""
[ -n "$keyring" ] && signed=" [signed-by=$keyring]"
printf 'deb%s %s sid main\n' "$signed" "$uri" > "$work/sources.list"

set -- \
  -o Dir::State::Lists="$work/lists" \
  -o Dir::Cache="$work/cache" \
  -o Dir::Etc::SourceList="$work/sources.list" \
  -o Dir::Etc::SourceParts=/dev/null \
  -o Dir::Etc::Preferences=/dev/null \
  -o Dir::Etc::PreferencesParts=/dev/null \
  -o Acquire::Languages=none \
  -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false \
  -o APT::Get::List-Cleanup=false
if [ "$(id -u)" = 0 ]; then
  # The private directories belong to root; downloading as _apt would only
  # produce a warning and fall back anyway.
  set -- "$@" -o APT::Sandbox::User=root
fi

apt-get -q "$@" update
(cd "$work/debs" && apt-get -q "$@" download "python3-pypushflow=$version*")

deb=$(ls "$work/debs"/python3-pypushflow_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || { echo "fetch-pypushflow: no .deb downloaded" >&2; exit 1; }
rm -rf "$dest/usr"
dpkg -x "$deb" "$dest"
[ -d "$site/pypushflow" ] || { echo "fetch-pypushflow: $deb has no pypushflow package" >&2; exit 1; }
rm -rf "$work"
touch "$stamp"
