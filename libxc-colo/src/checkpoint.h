/*
 * checkpoint.h - what checkpoint.c (the sender: continuous checkpoints)
 * and restore_checkpoint.c (the receiver: buffered epochs, failover)
 * agree on. The protocol is described in libxc-colo/docs/stream-format.md,
 * section "Checkpoint streams".
 *
 * Internal API: names start ckpt_.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_CHECKPOINT_H
#define XCC_CHECKPOINT_H

#include "private.h"

/*
 * How long the primary waits for the secondary's CHECKPOINT_DIRTY_PFN_LIST
 * in COLO mode, and for the last acknowledgements at the end, unless the
 * caller says otherwise. Generous: a secondary that takes this long is gone.
 */
#define CKPT_DEFAULT_BACK_TIMEOUT_MS 10000u

/* The back channel's reader polls this often for a stop request. */
#define CKPT_BACK_POLL_MS 50

#endif /* XCC_CHECKPOINT_H */
