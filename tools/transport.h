/*
 * transport.h - the fds a stream travels over: files, stdin/stdout, an
 * inherited fd, TCP (connect or listen) and a shell command's pipe.
 */
#ifndef XCC_TRANSPORT_H
#define XCC_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A shorter key is too easy to guess; a longer one is not a key file. */
#define TRANSPORT_KEY_MIN 16
#define TRANSPORT_KEY_MAX 4096
/* How long a peer has for its stream header or its half of the
 * authentication, and the sender for the receiver's half. */
#define TRANSPORT_HANDSHAKE_MS 10000u
/* The permission bits of a stream FILE: guest memory is private. */
#define TRANSPORT_FILE_MODE 0600

struct transport {
    int fd;          /* -1 when closed */
    pid_t child;     /* exec: the shell, 0 otherwise */
    bool owns_fd;    /* close fd in transport_close (not for - and fd:N) */
    char desc[128];  /* for messages: "file x", "tcp:h:p", ... */
};

/* The shared secret of --auth-key-file: the file's bytes, never sent. */
struct transport_key {
    size_t len;
    uint8_t bytes[TRANSPORT_KEY_MAX];
};

/* How a transport opens (transport_opts_init gives the defaults). */
struct transport_opts {
    const struct transport_key *key; /* tcp: authenticate; NULL: do not */
    unsigned handshake_timeout_ms;   /* each peer's header/authentication */
    unsigned listen_timeout_ms;      /* --listen: 0 waits for ever */
    unsigned file_mode;              /* FILE destination's permission bits */
    bool quiet;                      /* --listen: no "listening on" line */
    bool back_channel;               /* exec: the command's stdin is a
                                        socket it may answer on, not a
                                        pipe (migrate's handover) */
};

/* What a spec is used for: each one allows a different form of port. */
enum transport_role {
    TRANSPORT_DEST,   /* written to: save, migrate, checkpoint */
    TRANSPORT_SRC,    /* read from: restore FILE */
    TRANSPORT_LISTEN, /* restore --listen: port 0 asks for any free port */
};

/* No authentication, TRANSPORT_HANDSHAKE_MS, no listen timeout, 0600. */
void transport_opts_init(struct transport_opts *o);

/*
 * Checks spec's syntax without opening anything: a tcp: host and a port in
 * 1..65535 (0..65535 to listen; a listening HOST may be left out, meaning
 * 127.0.0.1), fd:N a number, exec: a command. Returns 0, or -1 after an
 * error naming spec (bad usage).
 */
int transport_check_spec(const char *spec, enum transport_role role);

/*
 * Reads the key for --auth-key-file from path: a regular file neither
 * readable nor writable by other users, TRANSPORT_KEY_MIN to
 * TRANSPORT_KEY_MAX bytes. Returns 0, or -1 after an error naming path.
 */
int transport_load_key(const char *path, struct transport_key *k);

/*
 * Opens a destination for writing a stream:
 *   FILE            created or truncated, its mode set to o->file_mode
 *                   (a regular file; the umask does not apply)
 *   -               standard output
 *   fd:N            an inherited file descriptor
 *   tcp:HOST:PORT   connects (retrying for connect_timeout_ms while the
 *                   peer refuses, so `restore --listen` may start late),
 *                   then, with o->key, runs the sender's half of the
 *                   authentication before any stream byte
 *   exec:COMMAND    /bin/sh -c COMMAND with the stream on its stdin
 * o may be NULL (the defaults). Returns 0, or -1 after printing an error.
 */
int transport_open_dest(const char *dest, unsigned connect_timeout_ms,
                        const struct transport_opts *o, struct transport *t);

/*
 * Opens a source for reading a stream: FILE, -, fd:N, tcp:HOST:PORT
 * (connects), exec:COMMAND (its stdout). Returns 0, or -1 after an error.
 */
int transport_open_src(const char *src, struct transport *t);

/*
 * Listens on tcp:[HOST:]PORT (HOST default: 127.0.0.1; every address only
 * as tcp:0.0.0.0:PORT or tcp:[::]:PORT) and prints "xc-colo: listening on
 * tcp:ADDR:PORT" to stderr with the port bound (unless o->quiet and a port
 * was given). Accepts peers until one proves itself: without o->key, by
 * sending the 12 bytes that begin every stream; with it, by the mutual
 * HMAC-SHA256 challenge-response. A peer that has not done so within
 * o->handshake_timeout_ms, sends anything else or fails authentication is
 * dropped with a message and the listener goes on; several peers are
 * served at once. Returns 0 with the stream's first byte next on t->fd,
 * or -1 after an error (o->listen_timeout_ms passed without a valid peer).
 */
int transport_listen(const char *spec, const struct transport_opts *o,
                     struct transport *t);

/*
 * Closes the fd (if owned) and reaps an exec child. Returns 0, or -1 after
 * printing an error when the close failed or the command did not exit 0.
 */
int transport_close(struct transport *t);

/* True when spec names a transport rather than a plain file. */
bool transport_is_special(const char *spec);

#endif /* XCC_TRANSPORT_H */
