/*
 * test_hooks.h - hooks for the tests to provoke failures the real backends
 * cannot be made to produce on demand. Not part of the API: never installed,
 * never exported from the shared library (no xcc_ prefix, so the version
 * script keeps them local); tests reach them through the static library.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_TEST_HOOKS_H
#define XCC_TEST_HOOKS_H

#include "private.h"

/* The next `count` map calls on the sim domain d fail whole with errno
 * err (sim.c). */
void sim_test_fail_maps(xcc_domain *d, unsigned count, int err);

/* The translator takes a sim guest's stream as if it were x86 PV, so the
 * decode path is tested without Xen (xen_translate.c). */
void xen_translate_allow_sim(xcc_xen_translator *t);

#endif /* XCC_TEST_HOOKS_H */
