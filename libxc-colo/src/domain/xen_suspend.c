/*
 * xen_suspend.c - cooperative suspend and resume of a Xen guest, around the
 * final pass of a save and each checkpoint.
 *
 * A plain pause stops a PV guest wherever it is. A guest that suspends
 * itself first freezes its tasks, detaches its devices and rewrites its
 * start_info (store and console frames as pfns), so its memory is then a
 * state it can come back from; libxenguest refuses to finish a save of a
 * domain that did not ("Domain has not been suspended").
 *
 * The protocol, as libxl follows it in Xen 4.17: the toolstack writes
 * "suspend" to the domain's control/shutdown node in xenstore. The guest's
 * watch on that node fires; it acknowledges by clearing the node (writing
 * ""), suspends its devices and makes the SCHEDOP_shutdown hypercall with
 * SHUTDOWN_suspend. Xen then reports the domain shut down with that reason
 * and xenstored fires @releaseDomain. We watch both (the node for the
 * acknowledgement, @releaseDomain for the shutdown) and also look every
 * XEN_SUSPEND_POLL_MS, in case a watch event is lost.
 *
 * A guest that has not acknowledged when the time is up has the request
 * withdrawn: the node is cleared inside a transaction, unless the guest
 * acknowledged at the last moment (then it is suspending, and we wait for
 * it as long again). The guest is then left running and the save fails with
 * XCC_ENOSUSPEND. An HVM guest without PV drivers has no watcher: Xen suspends
 * it directly (xc_domain_shutdown), as libxl does. Xen's optional suspend
 * event channel (a guest that binds one answers faster) is not used.
 *
 * Resume is the fast, cooperative one, xc_domain_resume(xch, dom, 1): the
 * guest's suspend hypercall returns 1, "cancelled", and it carries on with
 * its devices and xenstore connection as they were. xenstored is then told
 * (xs_resume_domain), which re-arms @releaseDomain for the next shutdown.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen_priv.h"

/* After xen_priv.h: xenguest.h needs xenctrl.h's types. */
#include <xen/hvm/params.h>
#include <xenguest.h>
#include <xenstore.h>

#define NS_PER_MS UINT64_C(1000000)

/* control/shutdown's value while a suspend request waits for the guest. */
#define SUSPEND_REQUEST "suspend"

/* Withdrawing races the guest's own transaction; retry a few times. */
#define WITHDRAW_TRIES 16

/* ---- The wait, without Xen -------------------------------------------------- */

void xen_suspend_wait_init(struct xen_suspend_wait *w, uint64_t now_ns,
                           uint32_t timeout_ms)
{
    memset(w, 0, sizeof(*w));
    w->state = XEN_SUSPEND_REQUESTED;
    w->t_request = now_ns;
    w->timeout_ns =
        (uint64_t)(timeout_ms ? timeout_ms : XEN_SUSPEND_DEFAULT_TIMEOUT_MS) *
        NS_PER_MS;
    w->deadline = now_ns + w->timeout_ns;
}

enum xen_suspend_verdict xen_suspend_wait_step(struct xen_suspend_wait *w,
                                               const struct xen_suspend_obs *o,
                                               uint64_t now_ns)
{
    w->looks++;
    if (w->state == XEN_SUSPEND_DONE)
        return XEN_SUSPEND_SUSPENDED;
    if (w->state == XEN_SUSPEND_FAILED)
        return XEN_SUSPEND_GONE;
    if (o->gone) {
        w->state = XEN_SUSPEND_FAILED;
        return XEN_SUSPEND_GONE;
    }
    if (o->shutdown) {
        if (o->reason != SHUTDOWN_suspend) {
            w->state = XEN_SUSPEND_FAILED;
            return XEN_SUSPEND_OTHER;
        }
        /* A guest may suspend before its acknowledgement is seen. */
        if (!w->t_ack)
            w->t_ack = now_ns;
        w->t_done = now_ns;
        w->state = XEN_SUSPEND_DONE;
        return XEN_SUSPEND_SUSPENDED;
    }
    if (w->state == XEN_SUSPEND_REQUESTED && !o->request_pending) {
        w->state = XEN_SUSPEND_ACKED;
        w->t_ack = now_ns;
    }
    if (now_ns < w->deadline)
        return XEN_SUSPEND_WAIT;
    if (w->state == XEN_SUSPEND_REQUESTED)
        return XEN_SUSPEND_WITHDRAW;
    w->state = XEN_SUSPEND_FAILED;
    return XEN_SUSPEND_STUCK;
}

void xen_suspend_wait_late_ack(struct xen_suspend_wait *w, uint64_t now_ns)
{
    w->state = XEN_SUSPEND_ACKED;
    w->t_ack = now_ns;
    w->deadline = now_ns + w->timeout_ns;
}

int xen_suspend_wait_poll_ms(const struct xen_suspend_wait *w, uint64_t now_ns)
{
    uint64_t left;

    if (now_ns >= w->deadline)
        return 0;
    left = (w->deadline - now_ns + NS_PER_MS - 1) / NS_PER_MS;
    return left < XEN_SUSPEND_POLL_MS ? (int)left : XEN_SUSPEND_POLL_MS;
}

/* ---- Xen and xenstore --------------------------------------------------------- */

static const char *shutdown_name(unsigned reason)
{
    switch (reason) {
    case SHUTDOWN_poweroff: return "poweroff";
    case SHUTDOWN_reboot: return "reboot";
    case SHUTDOWN_suspend: return "suspend";
    case SHUTDOWN_crash: return "crash";
    case SHUTDOWN_watchdog: return "watchdog";
    case SHUTDOWN_soft_reset: return "soft_reset";
    default: return "unknown";
    }
}

/* One look at the domain's state; request_pending is left to the caller. */
static void look_domain(struct xen_dom *x, struct xen_suspend_obs *o)
{
    xc_domaininfo_t di;

    memset(o, 0, sizeof(*o));
    if (xc_domain_getinfolist(x->xch, x->domid, 1, &di) != 1 ||
        di.domain != x->domid || (di.flags & XEN_DOMINF_dying)) {
        o->gone = true;
        return;
    }
    o->shutdown = di.flags & XEN_DOMINF_shutdown;
    o->reason = (di.flags >> XEN_DOMINF_shutdownshift) &
                XEN_DOMINF_shutdownmask;
}

bool xen_suspend_is_suspended(struct xen_dom *x)
{
    struct xen_suspend_obs o;

    look_domain(x, &o);
    return !o.gone && o.shutdown && o.reason == SHUTDOWN_suspend;
}

static int open_store(struct xen_dom *x)
{
    if (x->xsh)
        return 0;
    x->xsh = xs_open(0);
    if (!x->xsh) {
        XCC_PERR(x->log, "xen", "dom%u: cannot open xenstore to ask the guest "
                 "to suspend (is xenstored running?)", x->domid);
        return -1;
    }
    return 0;
}

/* The value of path ("" for a missing node), malloc'd; NULL on ENOMEM. */
static char *read_node(struct xen_dom *x, xs_transaction_t t, const char *path)
{
    unsigned len;
    char *v = xs_read(x->xsh, t, path, &len);

    return v ? v : strdup("");
}

/*
 * Clears the request unless the guest has acknowledged it meanwhile.
 * Returns 1 when it was withdrawn, 0 when the guest had acknowledged it,
 * -1 when xenstore failed (logged).
 */
static int withdraw(struct xen_dom *x, const char *path)
{
    for (int i = 0; i < WITHDRAW_TRIES; i++) {
        xs_transaction_t t = xs_transaction_start(x->xsh);
        char *v;
        bool pending;

        if (t == XBT_NULL)
            break;
        v = read_node(x, t, path);
        pending = v && !strcmp(v, SUSPEND_REQUEST);
        free(v);
        if (!pending) {
            xs_transaction_end(x->xsh, t, true);
            return 0;
        }
        if (!xs_write(x->xsh, t, path, "", 0)) {
            xs_transaction_end(x->xsh, t, true);
            break;
        }
        if (xs_transaction_end(x->xsh, t, false))
            return 1;
        if (errno != EAGAIN)
            break;
    }
    XCC_PERR(x->log, "xen", "dom%u: cannot withdraw the suspend request in %s",
             x->domid, path);
    return -1;
}

/* Reads and discards queued watch events. */
static void drain_watches(struct xen_dom *x)
{
    char **ev;

    while ((ev = xs_check_watch(x->xsh)))
        free(ev);
}

/*
 * HVM without PV drivers (no callback irq): nothing in the guest watches
 * xenstore; Xen suspends it at once.
 */
static bool hvm_without_pv_drivers(struct xen_dom *x)
{
    uint64_t irq = 0;

    if (x->pv)
        return false;
    return xc_hvm_param_get(x->xch, x->domid, HVM_PARAM_CALLBACK_IRQ, &irq) ==
               0 && irq == 0;
}

/* Checks that a suspend request can be answered at all. */
static int check_before(struct xen_dom *x)
{
    xc_domaininfo_t di;
    unsigned reason;

    if (xc_domain_getinfolist(x->xch, x->domid, 1, &di) != 1 ||
        di.domain != x->domid || (di.flags & XEN_DOMINF_dying)) {
        XCC_ERR(x->log, "xen", "cannot suspend dom%u: it no longer exists",
                x->domid);
        errno = ENOENT;
        return -1;
    }
    reason = (di.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask;
    if (di.flags & XEN_DOMINF_shutdown) {
        XCC_ERR(x->log, "xen", "cannot suspend dom%u: it is already shut "
                "down (reason %s)%s", x->domid, shutdown_name(reason),
                reason == SHUTDOWN_suspend
                    ? ", suspended by another toolstack or an earlier save"
                    : "");
        errno = EBUSY;
        return -1;
    }
    if (di.flags & XEN_DOMINF_paused) {
        XCC_ERR(x->log, "xen", "cannot suspend dom%u: it is paused, and a "
                "paused guest cannot answer a suspend request (xl unpause "
                "it first)", x->domid);
        errno = EBUSY;
        return -1;
    }
    return 0;
}

int xen_suspend(xcc_domain *d, uint32_t timeout_ms)
{
    struct xen_dom *x = d->priv;
    struct xen_suspend_wait w;
    struct xen_suspend_obs o;
    char token[48], *dompath = NULL, *path = NULL, *feature = NULL, *v;
    bool watching = false, direct;
    int ret = -1, saved = 0, poll_fd = -1;

    if (x->suspended)
        return 0;
    if (check_before(x) < 0)
        return -1;
    direct = hvm_without_pv_drivers(x);
    xen_suspend_wait_init(&w, lib_now_ns(), timeout_ms);
    if (direct) {
        if (xc_domain_shutdown(x->xch, x->domid, SHUTDOWN_suspend) < 0) {
            XCC_PERR(d->log, "xen", "dom%u (HVM, no PV drivers): cannot "
                     "suspend it", x->domid);
            return -1;
        }
    } else {
        if (open_store(x) < 0)
            return -1;
        dompath = xs_get_domain_path(x->xsh, x->domid);
        if (!dompath || asprintf(&path, "%s/control/shutdown", dompath) < 0) {
            path = NULL;
            XCC_PERR(d->log, "xen", "dom%u: cannot find its xenstore path",
                     x->domid);
            goto out;
        }
        v = read_node(x, XBT_NULL, path);
        if (v && *v) {
            XCC_ERR(d->log, "xen", "cannot suspend dom%u: %s already holds a "
                    "request ('%s') the guest has not answered", x->domid,
                    path, v);
            free(v);
            errno = EBUSY;
            goto out;
        }
        free(v);
        snprintf(token, sizeof(token), "xc-colo-suspend-%u-%p", x->domid,
                 (void *)x);
        watching = true;
        if (!xs_watch(x->xsh, path, token) ||
            !xs_watch(x->xsh, "@releaseDomain", token)) {
            XCC_PERR(d->log, "xen", "dom%u: cannot watch %s and @releaseDomain",
                     x->domid, path);
            goto unwatch;
        }
        poll_fd = xs_fileno(x->xsh);
        w.t_request = lib_now_ns();
        w.deadline = w.t_request + w.timeout_ns;
        if (!xs_write(x->xsh, XBT_NULL, path, SUSPEND_REQUEST,
                      strlen(SUSPEND_REQUEST))) {
            XCC_PERR(d->log, "xen", "dom%u: cannot write the suspend request "
                     "to %s", x->domid, path);
            goto unwatch;
        }
        XCC_DBG(d->log, "xen", "dom%u: asked to suspend (%s), %" PRIu64
                " ms to answer", x->domid, path, w.timeout_ns / NS_PER_MS);
    }

    for (;;) {
        uint64_t now;
        enum xen_suspend_verdict verdict;

        look_domain(x, &o);
        if (!direct) {
            v = read_node(x, XBT_NULL, path);
            o.request_pending = v && !strcmp(v, SUSPEND_REQUEST);
            free(v);
        }
        now = lib_now_ns();
        verdict = xen_suspend_wait_step(&w, &o, now);
        if (verdict == XEN_SUSPEND_SUSPENDED) {
            x->suspended = true;
            ret = 0;
            XCC_INFO(d->log, "xen", "dom%u suspended: acknowledged after "
                     "%.1f ms, shut down for suspend after %.1f ms", x->domid,
                     (double)(w.t_ack - w.t_request) / NS_PER_MS,
                     (double)(w.t_done - w.t_request) / NS_PER_MS);
            break;
        }
        if (verdict == XEN_SUSPEND_WITHDRAW) {
            int rc = direct ? 1 : withdraw(x, path);

            if (rc == 0) {
                /* Acknowledged at the last moment: it is suspending. */
                xen_suspend_wait_late_ack(&w, lib_now_ns());
                continue;
            }
            if (!direct && asprintf(&v, "%s/control/feature-suspend",
                                    dompath) >= 0) {
                feature = read_node(x, XBT_NULL, v);
                free(v);
            }
            XCC_ERR(d->log, "xen", "dom%u did not answer the suspend request "
                    "within %" PRIu64 " ms (%s still read '" SUSPEND_REQUEST
                    "'%s); the request is %s and the guest runs on", x->domid,
                    w.timeout_ns / NS_PER_MS, direct ? "-" : path,
                    feature && strcmp(feature, "1")
                        ? "; the guest does not advertise "
                          "control/feature-suspend, it may have no suspend "
                          "handler"
                        : "",
                    rc == 1 ? "withdrawn" : "NOT withdrawn (xenstore failed)");
            errno = XCC_ENOSUSPEND;
            break;
        }
        if (verdict == XEN_SUSPEND_STUCK) {
            XCC_ERR(d->log, "xen", "dom%u acknowledged the suspend request "
                    "%.1f ms after it was made but did not shut down for "
                    "suspend within %" PRIu64 " ms", x->domid,
                    (double)(w.t_ack - w.t_request) / NS_PER_MS,
                    w.timeout_ns / NS_PER_MS);
            errno = XCC_ENOSUSPEND;
            break;
        }
        if (verdict == XEN_SUSPEND_GONE) {
            XCC_ERR(d->log, "xen", "dom%u went away while it was asked to "
                    "suspend", x->domid);
            errno = ENOENT;
            break;
        }
        if (verdict == XEN_SUSPEND_OTHER) {
            XCC_ERR(d->log, "xen", "dom%u shut down with reason %s while it "
                    "was asked to suspend", x->domid, shutdown_name(o.reason));
            errno = ESRCH;
            break;
        }
        if (poll_fd >= 0) {
            struct pollfd p = {.fd = poll_fd, .events = POLLIN};

            if (poll(&p, 1, xen_suspend_wait_poll_ms(&w, now)) > 0)
                drain_watches(x);
        } else {
            struct timespec ts = {
                .tv_nsec = (long)xen_suspend_wait_poll_ms(&w, now) *
                           (long)NS_PER_MS};
            nanosleep(&ts, NULL);
        }
    }
    if (ret < 0) {
        saved = errno;
        /* A request left behind by a failure other than the timeout. */
        if (!direct && saved != XCC_ENOSUSPEND && saved != ENOENT)
            withdraw(x, path);
    }
unwatch:
    if (ret < 0 && !saved)
        saved = errno;
    if (watching) {
        xs_unwatch(x->xsh, path, token);
        xs_unwatch(x->xsh, "@releaseDomain", token);
    }
out:
    if (ret < 0 && !saved)
        saved = errno;
    free(feature);
    free(path);
    free(dompath);
    if (ret < 0)
        errno = saved ? saved : EIO;
    return ret;
}

int xen_resume(xcc_domain *d)
{
    struct xen_dom *x = d->priv;

    if (!x->suspended && !xen_suspend_is_suspended(x))
        return 0;
    if (xc_domain_resume(x->xch, x->domid, 1) < 0) {
        XCC_PERR(d->log, "xen", "cannot resume dom%u after its suspend",
                 x->domid);
        return -1;
    }
    x->suspended = false;
    /* xenstored clears its note of the shutdown, so that the next one
     * fires @releaseDomain again. */
    if (open_store(x) == 0 && !xs_resume_domain(x->xsh, x->domid))
        XCC_WARN(d->log, "xen", "dom%u resumed, but xenstored was not told "
                 "(%s)", x->domid, strerror(errno));
    return 0;
}

void xen_suspend_close(struct xen_dom *x)
{
    if (x->xsh)
        xs_close(x->xsh);
    x->xsh = NULL;
}
