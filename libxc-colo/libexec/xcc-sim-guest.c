/*
 * xcc-sim-guest - the process of a simulated guest (sim:NAME). libxccolo
 * starts it with posix_spawn (xcc_sim_start, xcc_sim_resume); it is not
 * meant to be run by hand.
 *
 *   xcc-sim-guest NAME MEM_BYTES SEED fill|resume TRACKING WORKLOAD HOLES
 *
 * It starts with fd SIM_GUEST_READY_FD, the pipe its report goes to, and
 * SIM_GUEST_DIR_FD, the guest's directory as the starter opened and checked
 * it; stdin is /dev/null and stdout/stderr go to guest.log. It forks once,
 * so that the guest is not the starter's child, and exits; the guest
 * process runs sim_guest_main.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domain/sim_guest.h"

/* Reports a failure to the starter and exits. */
static void refuse(int err, const char *what)
{
    dprintf(SIM_GUEST_READY_FD, "ERR %d %s\n", err, what);
    fprintf(stderr, "%s: %s\n", SIM_GUEST_HELPER, what);
    exit(1);
}

static uint64_t number(const char *s, const char *what)
{
    char *end;
    uint64_t v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        refuse(EINVAL, what);
    return v;
}

int main(int argc, char **argv)
{
    struct sim_guest_args a;
    struct stat st;
    long psz = sysconf(_SC_PAGESIZE);
    uint64_t *holes;
    pid_t pid;

    if (fcntl(SIM_GUEST_READY_FD, F_GETFD) < 0) {
        fprintf(stderr,
                "%s: the process of a sim guest, started by xc-colo "
                "(xc-colo sim start); not to be run by hand\n",
                SIM_GUEST_HELPER);
        return 2;
    }
    if (argc != 8)
        refuse(EINVAL, "usage: " SIM_GUEST_HELPER " NAME MEM_BYTES SEED "
                       "fill|resume TRACKING WORKLOAD HOLES");
    if (fstat(SIM_GUEST_DIR_FD, &st) < 0 || !S_ISDIR(st.st_mode))
        refuse(EBADF, "fd 4 is not the guest's directory");
    memset(&a, 0, sizeof(a));
    a.name = argv[1];
    a.mem_bytes = number(argv[2], "bad MEM_BYTES");
    a.seed = number(argv[3], "bad SEED");
    if (strcmp(argv[4], "fill") && strcmp(argv[4], "resume"))
        refuse(EINVAL, "expected fill or resume");
    a.fill = !strcmp(argv[4], "fill");
    a.tracking = argv[5];
    a.workload = argv[6];
    a.page_size = (uint32_t)psz;
    if (!sim_name_ok(a.name) || !a.mem_bytes || a.mem_bytes % (uint64_t)psz)
        refuse(EINVAL, "bad NAME or MEM_BYTES");
    /* the starter checked both already; a failure here is logged to
     * guest.log by the library's default logger */
    holes = sim_holes_parse(argv[7], a.mem_bytes / (uint64_t)psz, NULL);
    if (!holes)
        refuse(errno, "bad HOLES");
    if (sim_workload_parse(a.workload, a.mem_bytes / (uint64_t)psz, holes,
                           &a.wl, NULL) < 0)
        refuse(errno, "bad WORKLOAD");
    a.holes = holes;
    /* a fresh process with one thread: fork is safe here */
    pid = fork();
    if (pid < 0)
        refuse(errno, "fork failed");
    if (pid == 0)
        sim_guest_main(&a);
    return 0;
}
