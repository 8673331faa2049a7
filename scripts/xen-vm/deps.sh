#!/bin/sh
# Host tools the Xen VM harness needs: QEMU to boot Xen, cpio and gzip to
# pack the initramfs images, a C toolchain with static libc for the domU
# workload, libxen-dev for the backend test program, python3 for the summary.
# Installs only what is missing; safe to run again.
set -eu

PKGS="qemu-system-x86 cpio gzip gcc libc6-dev libxen-dev libxxhash-dev \
python3 binutils"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "xen-vm/deps.sh: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
