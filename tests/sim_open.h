/*
 * sim_open.h - opens the sim guest NAME as a domain, or fails the test.
 */
#ifndef XCC_TESTS_SIM_OPEN_H
#define XCC_TESTS_SIM_OPEN_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>

#include "xccolo.h"

static inline xcc_domain *open_sim(const char *name)
{
    char d[96];

    snprintf(d, sizeof(d), "sim:%s", name);
    xcc_domain *dom = xcc_domain_open(d, NULL, 0);
    cr_assert(dom, "open %s: %s", d, xcc_strerror(errno));
    return dom;
}

#endif /* XCC_TESTS_SIM_OPEN_H */
