#!/bin/sh
# Checkpoint failover soak: tests/e2e_checkpoint.sh with many more random
# kills and cuts. Each run kills the sender (kill -9) at a random moment, or
# cuts the stream after a random number of bytes; each time the receiver
# must exit 3 and its target must equal the --digest-log line of the
# checkpoint it says it kept.
#
#   scripts/checkpoint-soak.sh [KILLS [CUTS]]    (default 50 and 10)
#
# Env: XCC_BIN or XCC_BUILD (default build).
set -u
export XCC_BIN=${XCC_BIN:-$PWD/${XCC_BUILD:-build}/bin/xc-colo}
FAILOVER_RUNS=${1:-50} TORN_RUNS=${2:-10} exec sh "$(dirname "$0")/../tests/e2e_checkpoint.sh"
