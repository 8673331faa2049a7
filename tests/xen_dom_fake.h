/*
 * xen_dom_fake.h - a Xen backend handle with no hypervisor behind it, for
 * the tests of the backend's pure parts (test_xen_changes.c,
 * test_xen_pt.c). Destroy x->p2m_lock in the teardown.
 */
#ifndef XCC_TESTS_XEN_DOM_FAKE_H
#define XCC_TESTS_XEN_DOM_FAKE_H

#include <pthread.h>
#include <string.h>

#include "domain/xen_priv.h"

/* dom and x zeroed and tied together: a guest of nr_pfns pages named
 * "xen:test", logging to the default logger. */
static void xen_dom_fake_init(xcc_domain *dom, struct xen_dom *x,
                              uint64_t nr_pfns)
{
    memset(dom, 0, sizeof(*dom));
    memset(x, 0, sizeof(*x));
    dom->name = "xen:test";
    dom->log = lib_default_logger();
    x->dom = dom;
    x->log = dom->log;
    x->nr_pfns = nr_pfns;
    pthread_mutex_init(&x->p2m_lock, NULL);
}

#endif /* XCC_TESTS_XEN_DOM_FAKE_H */
