/*
 * transport.h - the fds a stream travels over: files, stdin/stdout, an
 * inherited fd, TCP (connect or listen) and a shell command's pipe.
 */
#ifndef XCC_TRANSPORT_H
#define XCC_TRANSPORT_H

#include <stdbool.h>
#include <sys/types.h>

struct transport {
    int fd;          /* -1 when closed */
    pid_t child;     /* exec: the shell, 0 otherwise */
    bool owns_fd;    /* close fd in transport_close (not for - and fd:N) */
    char desc[128];  /* for messages: "file x", "tcp:h:p", ... */
};

/*
 * Opens a destination for writing a stream:
 *   FILE            created or truncated
 *   -               standard output
 *   fd:N            an inherited file descriptor
 *   tcp:HOST:PORT   connects (retrying for connect_timeout_ms while the
 *                   peer refuses, so `restore --listen` may start late)
 *   exec:COMMAND    /bin/sh -c COMMAND with the stream on its stdin
 * Returns 0, or -1 after printing an error.
 */
int transport_open_dest(const char *dest, unsigned connect_timeout_ms,
                        struct transport *t);

/*
 * Opens a source for reading a stream: FILE, -, fd:N, tcp:HOST:PORT
 * (connects), exec:COMMAND (its stdout). Returns 0, or -1 after an error.
 */
int transport_open_src(const char *src, struct transport *t);

/*
 * Listens on tcp:[HOST:]PORT (HOST default: every address) and accepts
 * one connection; prints "listening on ..." to stderr unless quiet.
 * Returns 0, or -1 after an error.
 */
int transport_listen(const char *spec, bool quiet, struct transport *t);

/*
 * Closes the fd (if owned) and reaps an exec child. Returns 0, or -1 after
 * printing an error when the close failed or the command did not exit 0.
 */
int transport_close(struct transport *t);

/* True when spec names a transport rather than a plain file. */
bool transport_is_special(const char *spec);

#endif /* XCC_TRANSPORT_H */
