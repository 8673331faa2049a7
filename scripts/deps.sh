#!/bin/sh
# Install xc-colo's build, test and benchmark dependencies from Debian when they
# are missing. Called by the Makefile; safe to run again (it only checks when
# everything is present). With arguments, installs those packages instead
# (the Xen VM harness passes its own list).
set -eu

PKGS="build-essential pkg-config libxen-dev libcriterion-dev libxxhash-dev \
clang libclang-rt-14-dev llvm python3 gnuplot-nox libjson-c-dev libsodium-dev libzstd-dev"
[ $# -gt 0 ] && PKGS="$*"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "deps.sh: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
