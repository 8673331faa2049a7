/*
 * transport.c - files, fds, TCP and command pipes for the stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "transport.h"

/* Pause between connection attempts while the listener is not up yet. */
#define CONNECT_RETRY_MS 50
/* A socket buffer this large keeps a fast sender from stalling on every
 * record; the kernel clamps it to net.core.wmem_max/rmem_max. */
#define SOCKET_BUFFER_BYTES (4 << 20)

static void transport_init(struct transport *t, const char *desc)
{
    t->fd = -1;
    t->child = 0;
    t->owns_fd = true;
    snprintf(t->desc, sizeof(t->desc), "%s", desc);
}

bool transport_is_special(const char *spec)
{
    return !strcmp(spec, "-") || !strncmp(spec, "fd:", 3) ||
           !strncmp(spec, "tcp:", 4) || !strncmp(spec, "exec:", 5);
}

static int parse_fd(const char *spec, struct transport *t)
{
    uint64_t n;

    if (cli_parse_u64(spec + 3, "fd:N", &n) < 0)
        return -1;
    if (n > INT32_MAX || fcntl((int)n, F_GETFD) < 0) {
        cli_error("%s: not an open file descriptor", spec);
        return -1;
    }
    t->fd = (int)n;
    t->owns_fd = false;
    return 0;
}

/* Splits "HOST:PORT" (HOST may be [v6]) into host and port strings. */
static int split_host_port(const char *spec, const char *hp, char *host,
                           size_t hlen, char *port, size_t plen,
                           bool host_optional)
{
    const char *colon = strrchr(hp, ':');
    const char *h = hp;
    size_t n;

    if (!colon) {
        if (!host_optional) {
            cli_error("%s: expected tcp:HOST:PORT", spec);
            return -1;
        }
        host[0] = 0;
        colon = hp - 1;
    } else {
        n = (size_t)(colon - h);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
            h++;
            n -= 2;
        }
        if (n >= hlen || (!n && !host_optional)) {
            cli_error("%s: bad host", spec);
            return -1;
        }
        memcpy(host, h, n);
        host[n] = 0;
    }
    if (!colon[1] || strlen(colon + 1) >= plen ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        cli_error("%s: bad port", spec);
        return -1;
    }
    strcpy(port, colon + 1);
    return 0;
}

static void tune_socket(int fd)
{
    int one = 1, buf = SOCKET_BUFFER_BYTES;

    /* END must not wait for Nagle: it closes the downtime. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int tcp_connect(const char *spec, unsigned timeout_ms,
                       struct transport *t)
{
    char host[256], port[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    uint64_t deadline = now_ms() + timeout_ms;
    int rc, last = 0;

    if (split_host_port(spec, spec + 4, host, sizeof(host), port,
                        sizeof(port), false) < 0)
        return -1;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        cli_error("%s: %s", spec, gai_strerror(rc));
        return -1;
    }
    for (;;) {
        for (ai = res; ai; ai = ai->ai_next) {
            int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                            ai->ai_protocol);
            if (fd < 0) {
                last = errno;
                continue;
            }
            tune_socket(fd);
            if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
                freeaddrinfo(res);
                t->fd = fd;
                return 0;
            }
            last = errno;
            close(fd);
        }
        if (last != ECONNREFUSED || now_ms() >= deadline)
            break;
        usleep(CONNECT_RETRY_MS * 1000);
    }
    freeaddrinfo(res);
    cli_error("%s: cannot connect: %s", spec, strerror(last));
    return -1;
}

int transport_listen(const char *spec, bool quiet, struct transport *t)
{
    char host[256], port[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE},
                    *res, *ai;
    int lfd = -1, rc, one = 1;

    transport_init(t, spec);
    if (strncmp(spec, "tcp:", 4)) {
        cli_error("--listen %s: expected tcp:[HOST:]PORT", spec);
        return -1;
    }
    if (split_host_port(spec, spec + 4, host, sizeof(host), port,
                        sizeof(port), true) < 0)
        return -1;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc) {
        cli_error("%s: %s", spec, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        lfd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                     ai->ai_protocol);
        if (lfd < 0)
            continue;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(lfd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(lfd, 1) == 0)
            break;
        rc = errno;
        close(lfd);
        lfd = -1;
        errno = rc;
    }
    freeaddrinfo(res);
    if (lfd < 0) {
        cli_error("%s: cannot listen: %s", spec, strerror(errno));
        return -1;
    }
    if (!quiet)
        fprintf(stderr, "xc-colo: listening on %s\n", spec);
    for (;;) {
        t->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (t->fd >= 0 || errno != EINTR)
            break;
    }
    rc = errno;
    close(lfd);
    if (t->fd < 0) {
        cli_error("%s: accept: %s", spec, strerror(rc));
        return -1;
    }
    tune_socket(t->fd);
    return 0;
}

/* /bin/sh -c cmd with one end of a pipe as its stdin (to_child) or stdout. */
static int spawn(const char *spec, bool to_child, struct transport *t)
{
    int p[2];
    pid_t pid;

    if (!spec[5]) {
        cli_error("%s: empty command", spec);
        return -1;
    }
    if (pipe2(p, O_CLOEXEC) < 0) {
        cli_error("%s: pipe: %s", spec, strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        cli_error("%s: fork: %s", spec, strerror(errno));
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        int want = to_child ? STDIN_FILENO : STDOUT_FILENO;
        int have = to_child ? p[0] : p[1];
        signal(SIGPIPE, SIG_DFL);
        if (dup2(have, want) < 0)
            _exit(127);
        execl("/bin/sh", "sh", "-c", spec + 5, (char *)NULL);
        _exit(127);
    }
    t->child = pid;
    if (to_child) {
        close(p[0]);
        t->fd = p[1];
    } else {
        close(p[1]);
        t->fd = p[0];
    }
    return 0;
}

int transport_open_dest(const char *dest, unsigned connect_timeout_ms,
                        struct transport *t)
{
    transport_init(t, dest);
    if (!strcmp(dest, "-")) {
        t->fd = STDOUT_FILENO;
        t->owns_fd = false;
        return 0;
    }
    if (!strncmp(dest, "fd:", 3))
        return parse_fd(dest, t);
    if (!strncmp(dest, "tcp:", 4))
        return tcp_connect(dest, connect_timeout_ms, t);
    if (!strncmp(dest, "exec:", 5))
        return spawn(dest, true, t);
    t->fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (t->fd < 0) {
        cli_error("cannot create '%s': %s", dest, strerror(errno));
        return -1;
    }
    return 0;
}

int transport_open_src(const char *src, struct transport *t)
{
    transport_init(t, src);
    if (!strcmp(src, "-")) {
        t->fd = STDIN_FILENO;
        t->owns_fd = false;
        return 0;
    }
    if (!strncmp(src, "fd:", 3))
        return parse_fd(src, t);
    if (!strncmp(src, "tcp:", 4))
        return tcp_connect(src, 0, t);
    if (!strncmp(src, "exec:", 5))
        return spawn(src, false, t);
    t->fd = open(src, O_RDONLY | O_CLOEXEC);
    if (t->fd < 0) {
        cli_error("cannot open '%s': %s", src, strerror(errno));
        return -1;
    }
    return 0;
}

int transport_close(struct transport *t)
{
    int rc = 0;

    if (t->fd >= 0 && t->owns_fd && close(t->fd) < 0) {
        cli_error("%s: close: %s", t->desc, strerror(errno));
        rc = -1;
    }
    t->fd = -1;
    if (t->child > 0) {
        int status;
        while (waitpid(t->child, &status, 0) < 0) {
            if (errno != EINTR) {
                status = -1;
                break;
            }
        }
        if (status != 0) {
            if (status > 0 && WIFEXITED(status))
                cli_error("%s: command exited with status %d", t->desc,
                          WEXITSTATUS(status));
            else if (status > 0 && WIFSIGNALED(status))
                cli_error("%s: command killed by signal %d", t->desc,
                          WTERMSIG(status));
            else
                cli_error("%s: cannot wait for the command", t->desc);
            rc = -1;
        }
        t->child = 0;
    }
    return rc;
}
