#!/bin/sh
# Host tools the Xen VM harness needs: QEMU to boot Xen, cpio and gzip to
# pack the initramfs images, a C toolchain with static libc for the domU
# workload, libxen-dev for the backend test program, python3 for the summary.
# Installs only what is missing (scripts/deps.sh does the work).
set -eu
exec sh "$(dirname "$0")/../deps.sh" qemu-system-x86 cpio gzip gcc libc6-dev \
    libxen-dev libxxhash-dev python3 binutils
