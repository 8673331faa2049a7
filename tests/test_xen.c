/*
 * test_xen.c - the Xen backend where no hypervisor runs: names are parsed
 * and refused clearly, and xen: domains fail at once with XCC_ENOXEN. The
 * backend against a real Xen is scripts/xen-vm/ (make xen-test).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "domain/domain.h"

static xentoollog_logger *quiet(void)
{
    return (xentoollog_logger *)xtl_createlogger_stdiostream(
        stderr, XTL_NUM_LEVELS, XTL_STDIOSTREAM_HIDE_PROGRESS);
}

static int open_errno(const char *name)
{
    xentoollog_logger *log = quiet();
    xcc_domain *d;
    int e;

    errno = 0;
    d = xcc_domain_open(name, log, 0);
    e = errno;
    xcc_domain_close(d);
    xtl_logger_destroy(log);
    return d ? 0 : e;
}

static bool have_xen(void)
{
    if (access("/dev/xen/privcmd", F_OK) == 0) {
        fprintf(stderr, "skipped: this host runs on Xen\n");
        return true;
    }
    return false;
}

/* Every test ends within this unless it sets its own .timeout. */
TestSuite(xen, .timeout = 60);

Test(xen, no_hypervisor_fails_at_once)
{
    if (have_xen())
        cr_skip_test("this host runs on Xen");
    cr_assert_eq(open_errno("xen:1"), XCC_ENOXEN);
    cr_assert_eq(open_errno("7"), XCC_ENOXEN);
    cr_assert_str_eq(xcc_strerror(XCC_ENOXEN),
                     "no Xen hypervisor: /dev/xen/privcmd not found");
}

Test(xen, malformed_ids_are_refused)
{
    const char *bad[] = {"xen:", "xen:abc", "xen:-1", "xen:+3", "xen:1x",
                         "xen:32752", "xen:99999999999999999999"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(open_errno(bad[i]), XCC_EBADDOMAIN, "%s", bad[i]);
}

Test(xen, dom0_is_refused)
{
    cr_assert_eq(open_errno("xen:0"), XCC_EBADDOMAIN);
    cr_assert_eq(open_errno("0"), XCC_EBADDOMAIN);
}
