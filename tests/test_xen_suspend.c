/*
 * test_xen_suspend.c - cooperative suspend without Xen.
 *
 * 1. The wait's state machine (xen_suspend.c): acknowledgement, shutdown
 *    for suspend, the deadline, a withdrawal that finds a last-minute
 *    acknowledgement, a domain that goes away or shuts down otherwise, and
 *    how long each sleep is. The clock is passed in, so the timing is exact.
 * 2. The saver's use of a backend's suspend op (save.c, checkpoint.c): a
 *    real sim guest behind a copy of the sim ops table whose suspend and
 *    resume stop and continue it as pause and unpause do, and count. A
 *    suspend that fails (a guest that does not answer) must fail the save
 *    with its errno and leave the guest running. The Xen side itself is
 *    proved in scripts/xen-vm/dom0-suspend-test.sh (make xen-test).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "domain/xen_priv.h"

#define MS 1000000ull
#define T0 (1000 * MS) /* an arbitrary start on the caller's clock */

static const struct xen_suspend_obs running_pending = {
    .request_pending = true};
static const struct xen_suspend_obs running_acked = {0};
static const struct xen_suspend_obs suspended = {.shutdown = true,
                                                 .reason = SHUTDOWN_suspend};

Test(suspend_wait, zero_timeout_means_the_default)
{
    struct xen_suspend_wait w;

    xen_suspend_wait_init(&w, T0, 0);
    cr_expect_eq(w.deadline, T0 + XEN_SUSPEND_DEFAULT_TIMEOUT_MS * MS);
    xen_suspend_wait_init(&w, T0, 250);
    cr_expect_eq(w.deadline, T0 + 250 * MS);
    cr_expect_eq(w.state, XEN_SUSPEND_REQUESTED);
}

Test(suspend_wait, acknowledged_then_suspended)
{
    struct xen_suspend_wait w;

    xen_suspend_wait_init(&w, T0, 1000);
    cr_expect_eq(xen_suspend_wait_step(&w, &running_pending, T0 + 1 * MS),
                 XEN_SUSPEND_WAIT);
    cr_expect_eq(w.state, XEN_SUSPEND_REQUESTED);
    cr_expect_eq(xen_suspend_wait_step(&w, &running_acked, T0 + 5 * MS),
                 XEN_SUSPEND_WAIT);
    cr_expect_eq(w.state, XEN_SUSPEND_ACKED);
    cr_expect_eq(w.t_ack, T0 + 5 * MS);
    cr_expect_eq(xen_suspend_wait_step(&w, &suspended, T0 + 40 * MS),
                 XEN_SUSPEND_SUSPENDED);
    cr_expect_eq(w.state, XEN_SUSPEND_DONE);
    cr_expect_eq(w.t_done, T0 + 40 * MS);
    cr_expect_eq(w.t_ack, T0 + 5 * MS, "the acknowledgement time is kept");
}

Test(suspend_wait, suspended_before_the_acknowledgement_was_seen)
{
    struct xen_suspend_wait w;

    xen_suspend_wait_init(&w, T0, 1000);
    /* The node reads "suspend" no more, but Xen already reports it: a
     * shutdown counts whatever the node says. */
    struct xen_suspend_obs o = suspended;
    o.request_pending = true;
    cr_expect_eq(xen_suspend_wait_step(&w, &o, T0 + 3 * MS),
                 XEN_SUSPEND_SUSPENDED);
    cr_expect_eq(w.t_ack, T0 + 3 * MS);
    cr_expect_eq(w.t_done, T0 + 3 * MS);
}

Test(suspend_wait, a_suspend_at_the_deadline_still_counts)
{
    struct xen_suspend_wait w;

    xen_suspend_wait_init(&w, T0, 100);
    cr_expect_eq(xen_suspend_wait_step(&w, &suspended, T0 + 500 * MS),
                 XEN_SUSPEND_SUSPENDED);
}

Test(suspend_wait, no_answer_is_withdrawn_exactly_at_the_deadline)
{
    struct xen_suspend_wait w;

    xen_suspend_wait_init(&w, T0, 100);
    for (uint64_t t = 0; t < 100 * MS; t += 7 * MS)
        cr_assert_eq(xen_suspend_wait_step(&w, &running_pending, T0 + t),
                     XEN_SUSPEND_WAIT, "at %llu ms", (unsigned long long)(t / MS));
    cr_expect_eq(xen_suspend_wait_step(&w, &running_pending,
                                       T0 + 100 * MS - 1),
                 XEN_SUSPEND_WAIT);
    cr_expect_eq(xen_suspend_wait_step(&w, &running_pending, T0 + 100 * MS),
                 XEN_SUSPEND_WITHDRAW);
    cr_expect_eq(w.state, XEN_SUSPEND_REQUESTED);
}

Test(suspend_wait, last_minute_acknowledgement_waits_as_long_again)
{
    struct xen_suspend_wait w;

    xen_suspend_wait_init(&w, T0, 100);
    cr_assert_eq(xen_suspend_wait_step(&w, &running_pending, T0 + 100 * MS),
                 XEN_SUSPEND_WITHDRAW);
    /* The withdrawal's transaction found the node cleared. */
    xen_suspend_wait_late_ack(&w, T0 + 101 * MS);
    cr_expect_eq(w.state, XEN_SUSPEND_ACKED);
    cr_expect_eq(w.deadline, T0 + 201 * MS);
    cr_expect_eq(xen_suspend_wait_step(&w, &running_acked, T0 + 150 * MS),
                 XEN_SUSPEND_WAIT);
    cr_expect_eq(xen_suspend_wait_step(&w, &suspended, T0 + 160 * MS),
                 XEN_SUSPEND_SUSPENDED);
}

Test(suspend_wait, acknowledged_but_never_suspended_is_stuck)
{
    struct xen_suspend_wait w;

    xen_suspend_wait_init(&w, T0, 100);
    cr_expect_eq(xen_suspend_wait_step(&w, &running_acked, T0 + 10 * MS),
                 XEN_SUSPEND_WAIT);
    cr_expect_eq(xen_suspend_wait_step(&w, &running_acked, T0 + 100 * MS),
                 XEN_SUSPEND_STUCK);
    cr_expect_eq(w.state, XEN_SUSPEND_FAILED);
}

Test(suspend_wait, gone_or_another_shutdown_fails_at_once)
{
    struct xen_suspend_wait w;
    const struct xen_suspend_obs gone = {.gone = true};
    const struct xen_suspend_obs poweroff = {.shutdown = true,
                                             .reason = SHUTDOWN_poweroff};
    const struct xen_suspend_obs crash = {.shutdown = true,
                                          .reason = SHUTDOWN_crash};

    xen_suspend_wait_init(&w, T0, 100);
    cr_expect_eq(xen_suspend_wait_step(&w, &gone, T0 + MS), XEN_SUSPEND_GONE);
    cr_expect_eq(w.state, XEN_SUSPEND_FAILED);
    xen_suspend_wait_init(&w, T0, 100);
    cr_expect_eq(xen_suspend_wait_step(&w, &poweroff, T0 + MS),
                 XEN_SUSPEND_OTHER);
    xen_suspend_wait_init(&w, T0, 100);
    cr_expect_eq(xen_suspend_wait_step(&w, &running_acked, T0 + MS),
                 XEN_SUSPEND_WAIT);
    cr_expect_eq(xen_suspend_wait_step(&w, &crash, T0 + 2 * MS),
                 XEN_SUSPEND_OTHER);
}

Test(suspend_wait, sleeps_are_short_and_end_at_the_deadline)
{
    struct xen_suspend_wait w;

    xen_suspend_wait_init(&w, T0, 100);
    cr_expect_eq(xen_suspend_wait_poll_ms(&w, T0), XEN_SUSPEND_POLL_MS);
    /* 3.5 ms left: sleep 4 (rounded up, so the next look is at or past
     * the deadline), never past XEN_SUSPEND_POLL_MS. */
    cr_expect_eq(xen_suspend_wait_poll_ms(&w, T0 + 96 * MS + MS / 2), 4);
    cr_expect_eq(xen_suspend_wait_poll_ms(&w, T0 + 100 * MS), 0);
    cr_expect_eq(xen_suspend_wait_poll_ms(&w, T0 + 900 * MS), 0);
}

/* ---- The saver with a backend that suspends --------------------------------- */

static char guest[64];
static xentoollog_logger *quiet;
static struct xcc_domain_ops ops; /* sim's, with suspend and resume */
static const struct xcc_domain_ops *sim_ops;
static int suspends, resumes, fail_suspend_errno;
static xcc_saver *cancel_when_suspended;

static int counting_suspend(xcc_domain *d, uint32_t timeout_ms)
{
    (void)timeout_ms;
    if (fail_suspend_errno) {
        /* As a Xen guest that does not answer: it runs on. */
        errno = fail_suspend_errno;
        return -1;
    }
    if (sim_ops->pause(d) < 0)
        return -1;
    suspends++;
    /* As SIGINT during the final pass would. */
    if (cancel_when_suspended)
        xcc_saver_cancel(cancel_when_suspended);
    return 0;
}

static int counting_resume(xcc_domain *d)
{
    resumes++;
    return sim_ops->unpause(d);
}

static void setup(void)
{
    snprintf(guest, sizeof(guest), "susp%d", (int)getpid());
    quiet = (xentoollog_logger *)xtl_createlogger_stdiostream(
        stderr, XTL_CRITICAL, 0);
    cr_assert_eq(xcc_sim_start(guest, 8u << 20, "random:2000:0.5", 3, NULL,
                               NULL, quiet),
                 0);
    suspends = resumes = fail_suspend_errno = 0;
}

static void teardown(void)
{
    xcc_sim_stop(guest, quiet);
    xtl_logger_destroy(quiet);
}

static int guest_state(void)
{
    struct xcc_sim_info info;

    cr_assert_eq(xcc_sim_get_info(guest, &info, NULL), 0);
    return info.state;
}

/* The sim guest behind the suspending ops table. */
static xcc_domain *open_suspending(void)
{
    char dn[80];
    xcc_domain *d;

    snprintf(dn, sizeof(dn), "sim:%s", guest);
    d = xcc_domain_open(dn, quiet, 0);
    cr_assert_not_null(d);
    cr_assert_null(d->ops->suspend, "the sim backend pauses");
    sim_ops = d->ops;
    ops = *d->ops;
    ops.suspend = counting_suspend;
    ops.resume = counting_resume;
    d->ops = &ops;
    return d;
}

static xcc_saver *new_saver(xcc_domain *d, int fd, bool live)
{
    struct xcc_save_params p;
    xcc_saver *s;

    xcc_save_params_init(&p);
    p.progress = 0;
    p.live = live;
    p.suspend_timeout_ms = 1234;
    s = xcc_saver_new(d, fd, &p, quiet);
    cr_assert_not_null(s);
    return s;
}

TestSuite(suspend_saver, .init = setup, .fini = teardown, .timeout = 60);

Test(suspend_saver, final_pass_runs_suspended_and_the_guest_stays_so)
{
    int fd = open("/dev/null", O_WRONLY);
    xcc_domain *d = open_suspending();
    xcc_saver *s = new_saver(d, fd, true);
    const char *json;

    cr_assert_eq(xcc_saver_run(s), 0, "save: %s", xcc_strerror(errno));
    cr_expect_eq(suspends, 1);
    cr_expect_eq(resumes, 0, "a save leaves the guest suspended");
    cr_expect_eq(guest_state(), XCC_SIM_PAUSED);
    json = xcc_saver_stats_json(s);
    cr_assert_not_null(json);
    cr_expect(strstr(json, "\"suspended\": true"), "%s", json);
    cr_expect(strstr(json, "\"suspends\": 1"), "%s", json);
    cr_expect(strstr(json, "\"suspended-ms\": "), "%s", json);
    xcc_saver_free(s);
    /* -c: continuing is the backend's unpause. */
    cr_expect_eq(xcc_domain_unpause(d), 0);
    cr_expect_eq(guest_state(), XCC_SIM_RUNNING);
    xcc_domain_close(d);
    close(fd);
}

Test(suspend_saver, a_guest_that_does_not_suspend_fails_the_save_and_runs_on)
{
    int fd = open("/dev/null", O_WRONLY);
    xcc_domain *d = open_suspending();
    xcc_saver *s = new_saver(d, fd, true);
    const char *json;

    fail_suspend_errno = XCC_ENOSUSPEND;
    cr_expect_eq(xcc_saver_run(s), -1);
    cr_expect_eq(errno, XCC_ENOSUSPEND, "errno %d (%s)", errno, strerror(errno));
    cr_expect_eq(resumes, 0, "nothing was suspended, nothing to resume");
    cr_expect_eq(guest_state(), XCC_SIM_RUNNING, "the guest is %s",
                 xcc_sim_state_name(guest_state()));
    json = xcc_saver_stats_json(s);
    cr_expect(strstr(json, "\"status\": \"failed\""), "%s", json);
    cr_expect(strstr(json, "\"suspended\": false"), "%s", json);
    xcc_saver_free(s);
    xcc_domain_close(d);
    close(fd);
}

Test(suspend_saver, a_cancel_after_the_suspend_resumes_the_guest)
{
    int fd = open("/dev/null", O_WRONLY);
    xcc_domain *d = open_suspending();
    xcc_saver *s = new_saver(d, fd, false);

    cancel_when_suspended = s;
    cr_expect_eq(xcc_saver_run(s), -1);
    cr_expect_eq(errno, ECANCELED, "errno %d (%s)", errno, strerror(errno));
    cr_expect_eq(suspends, 1);
    cr_expect_eq(resumes, 1, "the saver resumes what it suspended");
    cr_expect_eq(guest_state(), XCC_SIM_RUNNING, "the guest is %s",
                 xcc_sim_state_name(guest_state()));
    cr_expect(strstr(xcc_saver_stats_json(s), "\"status\": \"cancelled\""));
    cancel_when_suspended = NULL;
    xcc_saver_free(s);
    xcc_domain_close(d);
    close(fd);
}

Test(suspend_saver, each_checkpoint_suspends_and_resumes)
{
    struct xcc_save_params sp;
    struct xcc_checkpoint_params cp;
    int fd = open("/dev/null", O_WRONLY);
    xcc_domain *d = open_suspending();
    xcc_checkpointer *c;

    xcc_save_params_init(&sp);
    sp.progress = 0;
    xcc_checkpoint_params_init(&cp);
    cp.count = 4;
    cp.interval_ms = 0;
    c = xcc_checkpointer_new(d, fd, &sp, &cp, quiet);
    cr_assert_not_null(c);
    cr_assert_eq(xcc_checkpointer_run(c), 0, "%s", xcc_strerror(errno));
    cr_expect_eq(suspends, 4);
    cr_expect_eq(resumes, 3, "the last checkpoint leaves it suspended");
    cr_expect_eq(guest_state(), XCC_SIM_PAUSED);
    cr_expect(strstr(xcc_checkpointer_stats_json(c), "\"suspends\": 4"));
    xcc_checkpointer_free(c);
    xcc_domain_close(d);
    close(fd);
}
