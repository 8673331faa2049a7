/*
 * xcc_count.c - a counting relay for the harness's streams: copies standard
 * input to standard output (or, with -n, reads and drops it), and when the
 * input ends, or on SIGTERM, writes "BYTES SECONDS" to COUNTFILE (seconds
 * from the first byte to the last). Every byte is read into user memory, so
 * a save timed into it pays for the copy a real sink pays.
 *
 *   xcc-count [-n] [-p PIDFILE] COUNTFILE
 *
 * Built static on the host: gcc -static -O2.
 */
#define _GNU_SOURCE     /* F_SETPIPE_SZ */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static char buf[1 << 16];
    bool drop = false;
    const char *pidfile = NULL;
    uint64_t total = 0;
    double first = 0, last = 0;
    int opt, rc = 0;

    while ((opt = getopt(argc, argv, "np:")) != -1) {
        if (opt == 'n')
            drop = true;
        else if (opt == 'p')
            pidfile = optarg;
        else
            return 2;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: xcc-count [-n] [-p PIDFILE] COUNTFILE\n");
        return 2;
    }
    if (pidfile) {
        FILE *f = fopen(pidfile, "w");
        if (f) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;   /* no SA_RESTART: read() returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Larger pipes, fewer wake-ups of writer and reader (a context switch
     * is dear in a PV dom0 under TCG); not a pipe: nothing happens. */
    fcntl(0, F_SETPIPE_SZ, 1 << 20);
    if (!drop)
        fcntl(1, F_SETPIPE_SZ, 1 << 20);

    while (!stop) {
        ssize_t n = read(0, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("xcc-count: read");
            rc = 1;
            break;
        }
        if (n == 0)
            break;
        if (!total)
            first = now_s();
        total += (uint64_t)n;
        last = now_s();
        for (ssize_t off = 0; !drop && off < n;) {
            ssize_t w = write(1, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR && !stop)
                continue;
            if (w <= 0) {
                perror("xcc-count: write");
                rc = 1;
                stop = 1;
                break;
            }
            off += w;
        }
    }
    FILE *f = fopen(argv[optind], "w");
    if (!f) {
        perror(argv[optind]);
        return 1;
    }
    fprintf(f, "%llu %.3f\n", (unsigned long long)total, last - first);
    fclose(f);
    return rc;
}
