#!/usr/bin/env bash
# tools/build-deb.sh OUTDIR: builds the Debian package musproxy_VERSION_ARCH.deb
# from this tree (tracked files and untracked ones git does not ignore, so
# uncommitted changes are in it) with dpkg-buildpackage -us -uc -b, in a
# scratch copy, and puts the .deb, .changes and .buildinfo into OUTDIR. It
# installs what the build needs when missing (apt-get update first, then
# the Build-Depends of debian/control and the packaging tools); needs root
# for that (or sudo). It does not install the package or run lintian.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
[ $# -eq 1 ] || { echo "usage: tools/build-deb.sh OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
apt_install() {   # packages not installed yet, after one apt-get update
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "build-deb: installing ${missing[*]}"
  if [ -z "${APT_UPDATED:-}" ]; then
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q >/dev/null
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 \
    install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
apt_install dpkg-dev debhelper fakeroot
# the Build-Depends, as dpkg-checkbuilddeps reports them missing
if ! unmet=$(dpkg-checkbuilddeps 2>&1); then
  pkgs=$(sed -n 's/.*Unmet build dependencies: //p' <<<"$unmet" | sed 's/([^)]*)//g; s/|[^ ]*//g')
  pkgs=${pkgs//debhelper-compat/debhelper}
  # shellcheck disable=SC2086
  apt_install $pkgs
fi

version=$(dpkg-parsechangelog -S Version)
work=$(mktemp -d /tmp/musproxy-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src="$work/musproxy-$version"
mkdir -p "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # one tar reading the list (xargs would start several when the list is
  # long, and the reader stops at the first archive's end)
  git -C "$top" ls-files -z --cached --others --exclude-standard |
    (cd "$top" && tar -cf - --no-recursion --ignore-failed-read --null -T - 2>/dev/null) |
    tar -xf - -C "$src"
else
  tar -C "$top" --exclude='./build*' --exclude=./var -cf - . | tar -xf - -C "$src"
fi
echo "build-deb: building musproxy $version in $src"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
  tail -60 "$work/build.log"; echo "build-deb: dpkg-buildpackage failed" >&2; exit 1; }
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
cp "$work/build.log" "$out/build.log"
ls "$out"/*.deb
