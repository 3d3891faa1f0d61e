#!/usr/bin/env bash
# Installs the Debian packages the build needs, and only those that are missing.
# Called by the Makefile before every build; does nothing when all are present.
set -euo pipefail

packages=(
  build-essential pkg-config
  libuv1-dev libsodium-dev liblmdb-dev
  libprotobuf-c-dev protobuf-c-compiler
  libcmocka-dev
  libinih-dev libjansson-dev
  libhttp-parser-dev
  python3
  # curl and promtool (in prometheus): tests/cluster/test_http.sh
  curl prometheus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing missing packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
