/*
 * transport.c - files, fds, TCP and command pipes for the stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
/* Peers a listener serves at once while they prove themselves; more are
 * turned away, so idle connections cannot exhaust its fds. */
#define MAX_PENDING_PEERS 16

/*
 * Every stream, xc-colo's or Xen's, begins with the image header's marker
 * (eight 0xFF bytes) and id "XENF" (DESIGN.md, stream format): a listener
 * without a key takes the first peer whose first 12 bytes are these.
 */
#define STREAM_MAGIC_LEN 12
static const uint8_t stream_magic[STREAM_MAGIC_LEN] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'X', 'E', 'N', 'F'};
/* An xl save image (`save --xen-compat` of a Xen domain) starts with xl's
 * magic instead (stream-format.md, section 7). */
static const uint8_t xl_image_magic[STREAM_MAGIC_LEN] = {
    'X', 'e', 'n', ' ', 's', 'a', 'v', 'e', 'd', ' ', 'd', 'o'};

/*
 * The authentication (--auth-key-file), before any stream byte; K is the
 * key file's bytes, S the connecting sender, R the listening receiver:
 *   S -> R  "XCCAUTH1" nS                        (nS: 32 random bytes)
 *   R -> S  nR HMAC-SHA256(K, RECEIVER_LABEL nS nR)
 *   S -> R  HMAC-SHA256(K, SENDER_LABEL nS nR)   (after checking R's)
 *   R -> S  "XCCAUTOK"                           (after checking S's)
 * Each side proves the key over a nonce the other chose; the two labels
 * keep one side's proof from being replayed as the other's. The key never
 * travels and the stream itself is neither encrypted nor authenticated.
 */
#define AUTH_MAGIC "XCCAUTH1"
#define AUTH_OK "XCCAUTOK"
#define AUTH_MAGIC_LEN 8
#define AUTH_NONCE_LEN 32
#define AUTH_MAC_LEN crypto_auth_hmacsha256_BYTES
#define AUTH_HELLO_LEN (AUTH_MAGIC_LEN + AUTH_NONCE_LEN)
#define AUTH_REPLY_LEN (AUTH_NONCE_LEN + AUTH_MAC_LEN)
#define RECEIVER_LABEL "xc-colo auth v1: receiver"
#define SENDER_LABEL "xc-colo auth v1: sender"

void transport_opts_init(struct transport_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->handshake_timeout_ms = TRANSPORT_HANDSHAKE_MS;
    o->file_mode = TRANSPORT_FILE_MODE;
}

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

/* The fd:N number, without checking that it is open. -1 after an error. */
static int fd_number(const char *spec)
{
    uint64_t n;

    if (cli_parse_u64(spec + 3, spec, &n) < 0)
        return -1;
    if (n > INT32_MAX) {
        cli_error("%s: not a file descriptor number", spec);
        return -1;
    }
    return (int)n;
}

static int parse_fd(const char *spec, struct transport *t)
{
    int n = fd_number(spec);

    if (n < 0)
        return -1;
    if (fcntl(n, F_GETFD) < 0) {
        cli_error("%s: not an open file descriptor", spec);
        return -1;
    }
    t->fd = n;
    t->owns_fd = false;
    return 0;
}

/*
 * Splits tcp:HOST:PORT (HOST may be [v6]) into host and port. To listen,
 * tcp:PORT means 127.0.0.1 and port 0 asks the kernel for a free one;
 * otherwise the port is 1..65535.
 */
static int split_host_port(const char *spec, enum transport_role role,
                           char *host, size_t hlen, char port[6])
{
    const char *hp = spec + 4, *colon = strrchr(hp, ':'), *h = hp, *ps;
    const char *opt = role == TRANSPORT_LISTEN ? "--listen " : "";
    size_t n;
    unsigned long v;

    if (!colon) {
        if (role != TRANSPORT_LISTEN) {
            cli_error("%s: expected tcp:HOST:PORT", spec);
            return -1;
        }
        snprintf(host, hlen, "127.0.0.1");
        ps = hp;
    } else {
        n = (size_t)(colon - h);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
            h++;
            n -= 2;
        }
        if (!n) {
            cli_error("%s%s: empty host (every interface: tcp:0.0.0.0:PORT "
                      "or tcp:[::]:PORT)", opt, spec);
            return -1;
        }
        if (n >= hlen) {
            cli_error("%s%s: host name too long", opt, spec);
            return -1;
        }
        memcpy(host, h, n);
        host[n] = 0;
        ps = colon + 1;
    }
    n = strlen(ps);
    if (!n || strspn(ps, "0123456789") != n) {
        cli_error("%s%s: bad port '%s' (a number, 1..65535)", opt, spec, ps);
        return -1;
    }
    /* Leading zeros aside, more than 5 digits is out of range anyway. */
    ps += strspn(ps, "0");
    v = strlen(ps) > 5 ? 65536 : strtoul(ps, NULL, 10);
    if (v > 65535 || (!v && role != TRANSPORT_LISTEN)) {
        cli_error("%s%s: port out of range (1..65535%s)", opt, spec,
                  role == TRANSPORT_LISTEN ? "; 0 picks a free port" : "");
        return -1;
    }
    snprintf(port, 6, "%lu", v);
    return 0;
}

int transport_check_spec(const char *spec, enum transport_role role)
{
    char host[256], port[6];

    if (role == TRANSPORT_LISTEN) {
        if (strncmp(spec, "tcp:", 4)) {
            cli_error("--listen %s: expected tcp:[HOST:]PORT", spec);
            return -1;
        }
        return split_host_port(spec, role, host, sizeof(host), port);
    }
    if (!strncmp(spec, "tcp:", 4))
        return split_host_port(spec, role, host, sizeof(host), port);
    if (!strncmp(spec, "fd:", 3))
        return fd_number(spec) < 0 ? -1 : 0;
    if (!strncmp(spec, "exec:", 5) && !spec[5]) {
        cli_error("%s: empty command", spec);
        return -1;
    }
    return 0;
}

int transport_load_key(const char *path, struct transport_key *k)
{
    struct stat st;
    ssize_t n;
    size_t have = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    k->len = 0;
    if (fd < 0) {
        cli_error("--auth-key-file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        cli_error("--auth-key-file %s: not a regular file", path);
        goto fail;
    }
    /* Anyone who can read the key can pass for either side. */
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        cli_error("--auth-key-file %s: %s by every user (mode %04o); make "
                  "it private first (chmod 600)", path,
                  st.st_mode & S_IROTH ? "readable" : "writable",
                  (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    /* One byte more than the most a key may have tells a too long file. */
    while (have <= TRANSPORT_KEY_MAX) {
        uint8_t extra;
        void *at = have < TRANSPORT_KEY_MAX ? (void *)(k->bytes + have)
                                            : (void *)&extra;
        size_t want = have < TRANSPORT_KEY_MAX ? TRANSPORT_KEY_MAX - have : 1;
        n = read(fd, at, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cli_error("--auth-key-file %s: %s", path, strerror(errno));
            goto fail;
        }
        if (!n)
            break;
        have += (size_t)n;
    }
    if (have > TRANSPORT_KEY_MAX || have < TRANSPORT_KEY_MIN) {
        cli_error("--auth-key-file %s: %s%zu bytes; a key has %d to %d "
                  "(e.g. head -c 32 /dev/urandom > FILE)", path,
                  have > TRANSPORT_KEY_MAX ? "more than " : "",
                  have > TRANSPORT_KEY_MAX ? (size_t)TRANSPORT_KEY_MAX : have,
                  TRANSPORT_KEY_MIN, TRANSPORT_KEY_MAX);
        goto fail;
    }
    k->len = have;
    close(fd);
    return 0;
fail:
    sodium_memzero(k->bytes, sizeof(k->bytes));
    close(fd);
    return -1;
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

/* HMAC-SHA256(key, label nS nR): one side's proof of the key. */
static void auth_mac(const struct transport_key *k, const char *label,
                     const uint8_t *sender_nonce, const uint8_t *receiver_nonce,
                     uint8_t mac[AUTH_MAC_LEN])
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, k->bytes, k->len);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, strlen(label));
    crypto_auth_hmacsha256_update(&st, sender_nonce, AUTH_NONCE_LEN);
    crypto_auth_hmacsha256_update(&st, receiver_nonce, AUTH_NONCE_LEN);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

static int auth_init(const char *spec)
{
    if (sodium_init() < 0) {
        cli_error("%s: cannot initialise libsodium", spec);
        return -1;
    }
    return 0;
}

/* Reads len bytes by deadline: 0, -1 (errno), 1 end of file, 2 timeout. */
static int read_full_by(int fd, void *buf, size_t len, uint64_t deadline)
{
    uint8_t *p = buf;

    while (len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        uint64_t now = now_ms();
        ssize_t n;
        int rc;

        if (now >= deadline)
            return 2;
        rc = poll(&pfd, 1, (int)(deadline - now));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (!rc)
            continue;
        n = recv(fd, p, len, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        /* A receiver that closes with our bytes unread resets. */
        if (n < 0)
            return errno == ECONNRESET ? 1 : -1;
        if (!n)
            return 1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The sender's half of the authentication, on a connected socket. */
static int auth_as_sender(const char *spec, int fd,
                          const struct transport_opts *o)
{
    uint8_t hello[AUTH_HELLO_LEN], reply[AUTH_REPLY_LEN], mac[AUTH_MAC_LEN];
    uint8_t ok[AUTH_MAGIC_LEN];
    const uint8_t *sender_nonce = hello + AUTH_MAGIC_LEN;
    uint64_t deadline = now_ms() + o->handshake_timeout_ms;
    int rc;

    if (auth_init(spec) < 0)
        return -1;
    memcpy(hello, AUTH_MAGIC, AUTH_MAGIC_LEN);
    randombytes_buf(hello + AUTH_MAGIC_LEN, AUTH_NONCE_LEN);
    if (cli_write_all(fd, hello, sizeof(hello)) < 0) {
        cli_error("%s: sending the authentication: %s", spec, strerror(errno));
        return -1;
    }
    rc = read_full_by(fd, reply, sizeof(reply), deadline);
    if (rc == 0) {
        auth_mac(o->key, RECEIVER_LABEL, sender_nonce, reply, mac);
        if (sodium_memcmp(mac, reply + AUTH_NONCE_LEN, AUTH_MAC_LEN)) {
            cli_error("%s: authentication failed: the receiver does not hold "
                      "the key in --auth-key-file (the two keys differ?)",
                      spec);
            return -1;
        }
        auth_mac(o->key, SENDER_LABEL, sender_nonce, reply, mac);
        if (cli_write_all(fd, mac, sizeof(mac)) < 0) {
            cli_error("%s: sending the authentication: %s", spec,
                      strerror(errno));
            return -1;
        }
        rc = read_full_by(fd, ok, sizeof(ok), deadline);
        if (rc == 0 && memcmp(ok, AUTH_OK, AUTH_MAGIC_LEN)) {
            cli_error("%s: authentication failed: unexpected answer from "
                      "the receiver", spec);
            return -1;
        }
        if (rc == 1) {
            cli_error("%s: authentication failed: the receiver refused this "
                      "side's proof of the key", spec);
            return -1;
        }
    }
    if (rc == 1)
        cli_error("%s: authentication failed: the receiver closed the "
                  "connection (does its 'restore --listen' have "
                  "--auth-key-file?)", spec);
    else if (rc == 2)
        cli_error("%s: authentication failed: no answer from the receiver "
                  "within %u ms", spec, o->handshake_timeout_ms);
    else if (rc < 0)
        cli_error("%s: authentication: %s", spec, strerror(errno));
    return rc ? -1 : 0;
}

static int tcp_connect(const char *spec, unsigned timeout_ms,
                       const struct transport_opts *o, struct transport *t)
{
    char host[256], port[6];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    uint64_t deadline = now_ms() + timeout_ms;
    int rc, last = 0;

    if (split_host_port(spec, TRANSPORT_DEST, host, sizeof(host), port) < 0)
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
                if (o && o->key && auth_as_sender(spec, fd, o) < 0)
                    return -1;
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

/* "ADDR:PORT" ("[ADDR]:PORT" for IPv6) of a socket address. */
static void format_addr(const struct sockaddr *sa, socklen_t len, char *out,
                        size_t outlen)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];

    if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV)) {
        snprintf(out, outlen, "?");
        return;
    }
    snprintf(out, outlen, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
             host, serv);
}

/* A connection that has not proved itself yet. */
struct peer {
    int fd;
    uint64_t deadline;
    bool proving; /* with a key: nR sent, the sender's proof is due */
    size_t have;  /* bytes of the current message in buf */
    uint8_t buf[AUTH_HELLO_LEN];
    uint8_t sender_nonce[AUTH_NONCE_LEN], receiver_nonce[AUTH_NONCE_LEN];
    char name[NI_MAXHOST + 16];
};

/* Wake poll only once the next message is whole (or the peer is gone). */
static void set_lowat(int fd, int bytes)
{
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof(bytes));
}

/* Without a key: the stream's first bytes, peeked, left for the restorer. */
static int check_stream_start(struct peer *p, short revents, const char **why)
{
    uint8_t b[STREAM_MAGIC_LEN];
    ssize_t n = recv(p->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n < 0) {
        *why = strerror(errno);
        return -1;
    }
    if (!n) {
        *why = "closed the connection before a stream header";
        return -1;
    }
    if (memcmp(b, stream_magic, (size_t)n) &&
        memcmp(b, xl_image_magic, (size_t)n)) {
        *why = (size_t)n >= AUTH_MAGIC_LEN && !memcmp(b, AUTH_MAGIC, AUTH_MAGIC_LEN)
                   ? "asks for authentication: give restore the same "
                     "--auth-key-file as the sender"
                   : "sent something that is not a stream header";
        return -1;
    }
    if ((size_t)n < STREAM_MAGIC_LEN) {
        if (revents & (POLLRDHUP | POLLHUP)) {
            *why = "closed the connection inside the stream header";
            return -1;
        }
        return 0;
    }
    return 1;
}

/* With a key: one step of the receiver's half of the authentication. */
static int authenticate_peer(struct peer *p, const struct transport_key *k,
                             const char **why)
{
    size_t need = p->proving ? AUTH_MAC_LEN : AUTH_HELLO_LEN;
    uint8_t reply[AUTH_REPLY_LEN], mac[AUTH_MAC_LEN];
    ssize_t n = recv(p->fd, p->buf + p->have, need - p->have, MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n < 0) {
        *why = strerror(errno);
        return -1;
    }
    if (!n) {
        *why = p->proving ? "closed the connection during authentication: it "
                            "did not accept this side's proof of the key "
                            "(the two --auth-key-file keys differ?)"
                          : "closed the connection without authenticating";
        return -1;
    }
    p->have += (size_t)n;
    if (!p->proving &&
        memcmp(p->buf, AUTH_MAGIC,
               p->have < AUTH_MAGIC_LEN ? p->have : AUTH_MAGIC_LEN)) {
        *why = p->buf[0] == stream_magic[0]
                   ? "sent a stream without authenticating (the sender needs "
                     "--auth-key-file too)"
                   : "sent something that is not an authentication";
        return -1;
    }
    if (p->have < need)
        return 0;
    if (!p->proving) {
        memcpy(p->sender_nonce, p->buf + AUTH_MAGIC_LEN, AUTH_NONCE_LEN);
        randombytes_buf(p->receiver_nonce, AUTH_NONCE_LEN);
        memcpy(reply, p->receiver_nonce, AUTH_NONCE_LEN);
        auth_mac(k, RECEIVER_LABEL, p->sender_nonce, p->receiver_nonce,
                 reply + AUTH_NONCE_LEN);
        /* A fresh socket's buffer takes 64 bytes at once. */
        if (send(p->fd, reply, sizeof(reply), MSG_DONTWAIT | MSG_NOSIGNAL) !=
            (ssize_t)sizeof(reply)) {
            *why = "cannot be answered";
            return -1;
        }
        p->proving = true;
        p->have = 0;
        set_lowat(p->fd, AUTH_MAC_LEN);
        return 0;
    }
    auth_mac(k, SENDER_LABEL, p->sender_nonce, p->receiver_nonce, mac);
    if (sodium_memcmp(mac, p->buf, AUTH_MAC_LEN)) {
        *why = "failed authentication: its proof does not match the key in "
               "--auth-key-file";
        return -1;
    }
    if (send(p->fd, AUTH_OK, AUTH_MAGIC_LEN, MSG_DONTWAIT | MSG_NOSIGNAL) !=
        AUTH_MAGIC_LEN) {
        *why = "cannot be answered";
        return -1;
    }
    return 1;
}

/*
 * Binds and listens; the address bound goes to bound ("ADDR:PORT"), and
 * *any_port tells whether the kernel chose the port. The fd, or -1.
 */
static int listen_socket(const char *spec, char *bound, size_t blen,
                         bool *any_port)
{
    char host[256], port[6];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE},
                    *res, *ai;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int lfd = -1, rc, one = 1;

    if (transport_check_spec(spec, TRANSPORT_LISTEN) < 0 ||
        split_host_port(spec, TRANSPORT_LISTEN, host, sizeof(host), port) < 0)
        return -1;
    *any_port = !strcmp(port, "0");
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        cli_error("--listen %s: %s", spec, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        lfd = socket(ai->ai_family,
                     ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                     ai->ai_protocol);
        if (lfd < 0)
            continue;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(lfd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(lfd, MAX_PENDING_PEERS) == 0)
            break;
        rc = errno;
        close(lfd);
        lfd = -1;
        errno = rc;
    }
    freeaddrinfo(res);
    if (lfd < 0) {
        cli_error("--listen %s: cannot listen: %s", spec, strerror(errno));
        return -1;
    }
    if (getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0) {
        cli_error("--listen %s: %s", spec, strerror(errno));
        close(lfd);
        return -1;
    }
    format_addr((struct sockaddr *)&ss, sl, bound, blen);
    return lfd;
}

/* Accepts what is waiting on lfd into peers[]; returns the new count. */
static int accept_peers(int lfd, const char *desc, struct peer *peers,
                        int npeers, const struct transport_opts *o)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        struct peer *p;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

        if (fd < 0)
            return npeers; /* EAGAIN, or a connection gone already */
        if (npeers == MAX_PENDING_PEERS) {
            char name[NI_MAXHOST + 16];
            format_addr((struct sockaddr *)&ss, sl, name, sizeof(name));
            cli_error("%s: turned away %s: %d peers are already being "
                      "checked", desc, name, MAX_PENDING_PEERS);
            close(fd);
            continue;
        }
        p = &peers[npeers++];
        memset(p, 0, sizeof(*p));
        p->fd = fd;
        p->deadline = now_ms() + o->handshake_timeout_ms;
        format_addr((struct sockaddr *)&ss, sl, p->name, sizeof(p->name));
        set_lowat(fd, o->key ? AUTH_HELLO_LEN : STREAM_MAGIC_LEN);
    }
}

int transport_listen(const char *spec, const struct transport_opts *opts,
                     struct transport *t)
{
    struct transport_opts defaults;
    const struct transport_opts *o = opts;
    struct peer peers[MAX_PENDING_PEERS];
    struct pollfd pfd[MAX_PENDING_PEERS + 1];
    char bound[96], refused[512] = "";
    uint64_t give_up;
    int lfd, npeers = 0, winner = -1;
    bool any_port;

    transport_init(t, spec);
    if (!o) {
        transport_opts_init(&defaults);
        o = &defaults;
    }
    if (o->key && auth_init(spec) < 0)
        return -1;
    lfd = listen_socket(spec, bound, sizeof(bound), &any_port);
    if (lfd < 0)
        return -1;
    snprintf(t->desc, sizeof(t->desc), "tcp:%s", bound);
    /* Port 0: the caller cannot know the port unless it is printed. */
    if (!o->quiet || any_port) {
        fprintf(stderr, "xc-colo: listening on %s\n", t->desc);
        fflush(stderr);
    }
    give_up = o->listen_timeout_ms ? now_ms() + o->listen_timeout_ms : 0;
    while (winner < 0) {
        uint64_t now = now_ms(), wake = give_up;
        int n, i, kept;

        for (i = 0, kept = 0; i < npeers; i++) {
            if (now >= peers[i].deadline) {
                snprintf(refused, sizeof(refused), "%s: sent %s within %u ms",
                         peers[i].name,
                         o->key ? "no authentication" : "no stream header",
                         o->handshake_timeout_ms);
                cli_error("%s: dropped %s", t->desc, refused);
                close(peers[i].fd);
                continue;
            }
            if (!wake || peers[i].deadline < wake)
                wake = peers[i].deadline;
            peers[kept++] = peers[i];
        }
        npeers = kept;
        if (give_up && now >= give_up) {
            cli_error("%s: no %s peer within %u ms%s%s", t->desc,
                      o->key ? "authenticated" : "valid",
                      o->listen_timeout_ms, refused[0] ? "; last refused: " : "",
                      refused);
            break;
        }
        pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (i = 0; i < npeers; i++)
            pfd[i + 1] = (struct pollfd){.fd = peers[i].fd,
                                         .events = POLLIN | POLLRDHUP};
        n = poll(pfd, (nfds_t)npeers + 1, wake ? (int)(wake - now) : -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cli_error("%s: poll: %s", t->desc, strerror(errno));
            break;
        }
        for (i = 0; i < npeers && winner < 0; i++) {
            const char *why = NULL;
            int rc;

            if (!pfd[i + 1].revents)
                continue;
            rc = o->key ? authenticate_peer(&peers[i], o->key, &why)
                        : check_stream_start(&peers[i], pfd[i + 1].revents,
                                             &why);
            if (rc > 0) {
                winner = i;
            } else if (rc < 0) {
                snprintf(refused, sizeof(refused), "%s: %s", peers[i].name,
                         why);
                cli_error("%s: dropped %s", t->desc, refused);
                close(peers[i].fd);
                peers[i].fd = -1;
            }
        }
        if (winner >= 0)
            break;
        for (i = 0, kept = 0; i < npeers; i++)
            if (peers[i].fd >= 0)
                peers[kept++] = peers[i];
        npeers = kept;
        if (pfd[0].revents & POLLIN)
            npeers = accept_peers(lfd, t->desc, peers, npeers, o);
    }
    close(lfd);
    for (int i = 0; i < npeers; i++)
        if (i != winner && peers[i].fd >= 0)
            close(peers[i].fd);
    if (winner < 0)
        return -1;
    t->fd = peers[winner].fd;
    set_lowat(t->fd, 1);
    tune_socket(t->fd);
    if (!o->quiet)
        fprintf(stderr, "xc-colo: %s: reading the stream from %s%s\n", t->desc,
                peers[winner].name, o->key ? " (authenticated)" : "");
    return 0;
}

/* /bin/sh -c cmd with one end of a pipe as its stdin (to_child) or stdout. */
static int spawn(const char *spec, bool to_child, bool both_ways,
                 struct transport *t)
{
    int p[2];
    pid_t pid;

    if (!spec[5]) {
        cli_error("%s: empty command", spec);
        return -1;
    }
    if (both_ways ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0
                  : pipe2(p, O_CLOEXEC) < 0) {
        cli_error("%s: %s: %s", spec, both_ways ? "socketpair" : "pipe",
                  strerror(errno));
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

/* Creates or truncates a FILE, then gives it exactly the mode asked. */
static int open_file_dest(const char *dest, unsigned mode, struct transport *t)
{
    struct stat st;

    t->fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (t->fd < 0) {
        cli_error("cannot create '%s': %s", dest, strerror(errno));
        return -1;
    }
    /* An existing file keeps its old mode through O_TRUNC, and a new one
     * has the umask's: set it before the first byte of guest memory. */
    if (fstat(t->fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (st.st_mode & 07777) != mode && fchmod(t->fd, mode) < 0) {
        cli_error("cannot set the mode of '%s' to %04o: %s", dest, mode,
                  strerror(errno));
        close(t->fd);
        t->fd = -1;
        return -1;
    }
    return 0;
}

int transport_open_dest(const char *dest, unsigned connect_timeout_ms,
                        const struct transport_opts *o, struct transport *t)
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
        return tcp_connect(dest, connect_timeout_ms, o, t);
    if (!strncmp(dest, "exec:", 5))
        return spawn(dest, true, o && o->back_channel, t);
    return open_file_dest(dest, o ? o->file_mode : TRANSPORT_FILE_MODE, t);
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
        return tcp_connect(src, 0, NULL, t);
    if (!strncmp(src, "exec:", 5))
        return spawn(src, false, false, t);
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
