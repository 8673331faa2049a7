/*
 * xen_receive.c - `xc-colo restore FILE|- xen:`: a new Xen domain that
 * runs, made by Xen's own code.
 *
 * The route, as `xl restore` takes it (Xen 4.17 tools/xl/xl_vmcontrol.c,
 * create_domain): read the xl header and the domain config it carries (or
 * take --config), turn the config into a libxl_domain_config, then call
 * libxl_domain_create_restore with stream_version 2, which creates the
 * domain, runs libxenguest's restore (in libxl-save-helper) on the libxc
 * stream, introduces the domain to xenstore and attaches its devices; then
 * unpause. The difference: libxl reads the libxl v2 stream from a pipe that
 * a feeding thread here writes with the library's translator
 * (xcc_xen_translator_*): an xc-colo stream, its ZERO_PAGES, XBZRLE_PAGES
 * and COMPRESSED_PAGES decoded into whole pages, or a stock xl image, every
 * record checked first as `restore` checks it.
 *
 * Only this file (with xl_config.c) makes the CLI link libxenlight.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libxl.h>
#include <libxl_utils.h>

#include "cli.h"
#include "progress.h"
#include "save_opts.h"
#include "transport.h"
#include "xen_receive.h"
#include "xl_config.h"

extern char **environ;

/* xl's lock (xl.conf's lockfile default): xl takes it around a domain's
 * creation, so that two toolstacks do not build domains at once. */
#define XL_LOCK_FILE "/var/lock/xl"
/* A config file is a few KiB; refuse anything absurd before reading it. */
#define CONFIG_MAX (1u << 20)
/* A pipe of 1 MiB lets the feeder run a few batches ahead of libxenguest. */
#define FEED_PIPE_SIZE (1 << 20)


static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads a whole small file (NUL-terminated). NULL after a message. */
static char *read_config_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t n;

    if (!fp) {
        cli_error("cannot open --config %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(CONFIG_MAX + 1);
    if (!buf) {
        fclose(fp);
        return NULL;
    }
    n = fread(buf, 1, CONFIG_MAX + 1, fp);
    if (ferror(fp) || n > CONFIG_MAX) {
        cli_error("cannot read --config %s: %s", path,
                  ferror(fp) ? strerror(errno) : "larger than 1 MiB");
        fclose(fp);
        free(buf);
        return NULL;
    }
    fclose(fp);
    buf[n] = 0;
    return buf;
}

static bool looks_json(const char *s)
{
    s += strspn(s, " \t\r\n");
    return *s == '{';
}

/*
 * An xl config file (xl's own syntax, not JSON) as libxl JSON: xl parses
 * it (`xl create -n FILE` prints the libxl_domain_config it would create,
 * as JSON, and creates nothing), so its thousands of lines of parsing stay
 * Xen's. NULL after a message.
 */
static char *xl_cfg_to_json(const char *path)
{
    char *argv[] = {"xl", "create", "-q", "-n", (char *)path, NULL};
    posix_spawn_file_actions_t fa;
    int p[2], status;
    pid_t pid;
    char *out = NULL;
    size_t len = 0, cap = 0;

    if (pipe2(p, O_CLOEXEC) < 0) {
        cli_error("cannot make a pipe for xl: %s", strerror(errno));
        return NULL;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    errno = posix_spawnp(&pid, "xl", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (errno) {
        cli_error("cannot run 'xl create -n %s' to parse the config: %s",
                  path, strerror(errno));
        close(p[0]);
        return NULL;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *nb = cap < CONFIG_MAX ? realloc(out, cap + 65536) : NULL;
            if (!nb)
                break;
            out = nb;
            cap += 65536;
        }
        ssize_t r = read(p[0], out + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) || !out || !len) {
        cli_error("xl could not parse the config %s ('xl create -n' %s %d)",
                  path, WIFEXITED(status) ? "exit" : "signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        free(out);
        return NULL;
    }
    out[len] = 0;
    return out;
}

/* The image's legacy (text) config through xl_cfg_to_json, via a file. */
static char *xl_text_to_json(const char *text)
{
    char path[] = "/tmp/xc-colo-config-XXXXXX";
    int fd = mkstemp(path);
    char *json = NULL;

    if (fd < 0) {
        cli_error("cannot write the image's config to a file: %s",
                  strerror(errno));
        return NULL;
    }
    if (write(fd, text, strlen(text)) == (ssize_t)strlen(text))
        json = xl_cfg_to_json(path);
    else
        cli_error("cannot write the image's config to %s", path);
    close(fd);
    unlink(path);
    return json;
}

/* Takes xl's creation lock; -1 (and a warning) if it cannot be had. */
static int xl_lock(void)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int fd = open(XL_LOCK_FILE, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0) {
        cli_error("warning: cannot open xl's lock %s (%s): creating the "
                  "domain without it", XL_LOCK_FILE, strerror(errno));
        return -1;
    }
    while (fcntl(fd, F_SETLKW, &fl) < 0) {
        if (errno == EINTR)
            continue;
        cli_error("warning: cannot take xl's lock %s (%s)", XL_LOCK_FILE,
                  strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* The feeding thread: the stream, checked and translated, into libxl's
 * pipe. */
struct feeder {
    xcc_xen_translator *t;
    int out_fd;
    bool checkpointed;
    int back_fd;       /* checkpoint mode: acknowledgements; -1 none */
    uint64_t kept;     /* checkpoint mode: checkpoints libxl has */
    int rc, err;
};

static void *feeder_main(void *arg)
{
    struct feeder *fd = arg;

    fd->rc = fd->checkpointed
                 ? xcc_xen_translator_run_checkpointed(fd->t, fd->out_fd,
                                                       fd->back_fd, &fd->kept)
                 : xcc_xen_translator_run(fd->t, fd->out_fd);
    fd->err = fd->rc < 0 ? errno : 0;
    /* libxl sees the end of the stream now, whatever happened. */
    close(fd->out_fd);
    fd->out_fd = -1;
    return NULL;
}

/* A migration's sender waits for one line on the connection (xen_receive.h).
 * Returns true once told (or when there is nobody to tell). */
static bool tell_sender(int fd, const char *what, uint32_t domid)
{
    struct stat st;
    char line[64];
    int n;

    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return true;
    n = strcmp(what, "failed") ? snprintf(line, sizeof(line), "%s %u\n", what, domid)
                               : snprintf(line, sizeof(line), "failed\n");
    /* Best effort: a sender that went away learns nothing. */
    (void)!send(fd, line, (size_t)n, MSG_NOSIGNAL);
    return true;
}

/* Pages that reached libxl, from the translator's figures. */
static unsigned long long feeder_pages(xcc_xen_translator *t)
{
    json_object *j = json_tokener_parse(xcc_xen_translator_stats_json(t)), *o, *v;
    unsigned long long n = 0;

    if (j && json_object_object_get_ex(j, "out", &o) &&
        json_object_object_get_ex(o, "pages", &v))
        n = (unsigned long long)json_object_get_int64(v);
    json_object_put(j);
    return n;
}

static const char *shutdown_reason_name(int r)
{
    switch (r) {
    case LIBXL_SHUTDOWN_REASON_POWEROFF: return "poweroff";
    case LIBXL_SHUTDOWN_REASON_REBOOT: return "reboot";
    case LIBXL_SHUTDOWN_REASON_SUSPEND: return "suspend";
    case LIBXL_SHUTDOWN_REASON_CRASH: return "crash";
    case LIBXL_SHUTDOWN_REASON_WATCHDOG: return "watchdog";
    case LIBXL_SHUTDOWN_REASON_SOFT_RESET: return "soft_reset";
    default: return "unknown";
    }
}

/*
 * Without -e: stays until the domain dies or shuts down. A shutdown whose
 * configured action is destroy destroys it, as xl would; xc-colo does not
 * restart, rename or preserve domains (xl's other actions): it leaves the
 * domain as it is and says so. A suspend (a save of the domain) is not an
 * end: the wait goes on.
 */
static int wait_for_domain(libxl_ctx *ctx, uint32_t domid,
                           const libxl_domain_config *cfg, bool quiet)
{
    libxl_evgen_domain_death *deathw = NULL;
    int rc = EXIT_FAIL;

    if (libxl_evenable_domain_death(ctx, domid, 0, &deathw)) {
        cli_error("cannot watch domain %u", domid);
        return EXIT_FAIL;
    }
    if (!quiet)
        fprintf(stderr, "xc-colo: waiting for domain %u to die (-e: do not "
                "wait)\n", domid);
    for (;;) {
        libxl_event *ev = NULL;

        if (libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0)) {
            cli_error("cannot wait for domain %u's events", domid);
            break;
        }
        if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_DEATH) {
            if (!quiet)
                fprintf(stderr, "xc-colo: domain %u was destroyed\n", domid);
            libxl_event_free(ctx, ev);
            rc = EXIT_OK;
            break;
        }
        if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN) {
            int reason = ev->u.domain_shutdown.shutdown_reason;
            libxl_action_on_shutdown act =
                reason == LIBXL_SHUTDOWN_REASON_POWEROFF ? cfg->on_poweroff
                : reason == LIBXL_SHUTDOWN_REASON_REBOOT ? cfg->on_reboot
                : reason == LIBXL_SHUTDOWN_REASON_WATCHDOG ? cfg->on_watchdog
                : cfg->on_crash;

            libxl_event_free(ctx, ev);
            if (reason == LIBXL_SHUTDOWN_REASON_SUSPEND)
                continue;
            if (act == LIBXL_ACTION_ON_SHUTDOWN_DESTROY) {
                if (!quiet)
                    fprintf(stderr, "xc-colo: domain %u shut down (%s): "
                            "destroying it, as its config says\n", domid,
                            shutdown_reason_name(reason));
                libxl_domain_destroy(ctx, domid, NULL);
            } else if (!quiet) {
                fprintf(stderr, "xc-colo: domain %u shut down (%s); its "
                        "config asks for %s, which xc-colo leaves to xl: the "
                        "domain stays as it is\n", domid,
                        shutdown_reason_name(reason),
                        libxl_action_on_shutdown_to_string(act));
            }
            rc = EXIT_OK;
            break;
        }
        libxl_event_free(ctx, ev);
    }
    libxl_evdisable_domain_death(ctx, deathw);
    return rc;
}

static int write_stats(const char *path, uint32_t domid, const char *name,
                       const struct xen_receive_opts *o,
                       xcc_xen_translator *t, double t_created,
                       double t_running)
{
    struct rusage self, children;
    json_object *j = json_object_new_object();
    int rc;

    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    json_object_object_add(j, "target", json_object_new_string("xen-new"));
    json_object_object_add(j, "domid", json_object_new_int64(domid));
    json_object_object_add(j, "name", json_object_new_string(name ? name : ""));
    json_object_object_add(j, "paused", json_object_new_boolean(o->paused));
    json_object_object_add(j, "seconds_to_created",
                           json_object_new_double(t_created));
    json_object_object_add(j, "seconds_to_running",
                           o->paused ? NULL : json_object_new_double(t_running));
    /* The translator's figures: bytes in and out, pages by kind, the
     * decode copy's size. */
    json_object_object_add(j, "stream",
                           json_tokener_parse(xcc_xen_translator_stats_json(t)));
    /* ru_maxrss is in KiB on Linux. The children are libxl's: the
     * libxl-save-helper that ran libxenguest's restore, and hotplug
     * scripts; their figure is the largest of them. */
    json_object_object_add(j, "receiver_peak_rss_kib",
                           json_object_new_int64(self.ru_maxrss));
    json_object_object_add(j, "helper_peak_rss_kib",
                           json_object_new_int64(children.ru_maxrss));
    rc = cli_write_stats_json(path, json_object_to_json_string_ext(
                                        j, JSON_C_TO_STRING_PRETTY));
    json_object_put(j);
    return rc;
}

int xen_receive(int src_fd, const char *desc, const struct xen_receive_opts *o,
                xentoollog_logger *log)
{
    libxl_ctx *ctx = NULL;
    libxl_domain_config cfg;
    libxl_domain_restore_params params;
    struct feeder feeder;
    bool feeder_started = false;
    char *json = NULL;
    const char *config_from;
    uint32_t domid = INVALID_DOMID;
    int p[2] = {-1, -1}, lock = -1, lrc, rc = EXIT_FAIL;
    bool told = false, failover = false;
    double t0 = now_s(), t_created = 0, t_running = 0;
    pthread_t thread;
    sigset_t block, old;

    libxl_domain_config_init(&cfg);
    libxl_domain_restore_params_init(&params);
    const char *stream_config = NULL;
    int stream_config_json = 0;
    struct xcc_restore_params rp;

    memset(&feeder, 0, sizeof(feeder));
    feeder.out_fd = -1;
    xcc_restore_params_init(&rp);
    rp.verify = o->verify;
    rp.progress = 0;
    feeder.t = xcc_xen_translator_new(src_fd, &rp, log);
    if (!feeder.t) {
        cli_error("cannot start reading %s: %s", desc, strerror(errno));
        goto out;
    }
    feeder.checkpointed = o->checkpointed;
    feeder.back_fd = -1;
    if (o->checkpointed) {
        struct stat st;
        xcc_xen_translator_set_checkpointed(feeder.t);
        /* The sender's acknowledgements go back on its connection. */
        if (fstat(src_fd, &st) == 0 && S_ISSOCK(st.st_mode))
            feeder.back_fd = src_fd;
    }
    /* The headers, and the config the stream carries (xl header or
     * XL_CONFIG): the domain is made from it. */
    if (xcc_xen_translator_begin(feeder.t, &stream_config,
                                 &stream_config_json) < 0) {
        cli_error("%s cannot be restored into a new domain: %s", desc,
                  xcc_strerror(errno));
        goto out;
    }

    /* The config: --config overrides the image's, as for xl restore. */
    if (o->config_file) {
        char *text = read_config_file(o->config_file);
        if (!text)
            goto out;
        if (looks_json(text))
            json = text;
        else {
            free(text);
            json = xl_cfg_to_json(o->config_file);
        }
        config_from = o->config_file;
    } else if (stream_config) {
        if (stream_config_json)
            json = strdup(stream_config);
        else
            json = xl_text_to_json(stream_config);
        config_from = desc;
    } else {
        cli_error("%s carries no domain config: give --config FILE", desc);
        goto out;
    }
    if (!json)
        goto out;

    if (xl_ctx_alloc(&ctx, log) < 0) {
        cli_error("cannot open libxl (is this dom0, with xenstored running?)");
        goto out;
    }
    lrc = libxl_domain_config_from_json(ctx, &cfg, json);
    if (lrc) {
        cli_error("the domain config from %s is not one libxl takes (libxl "
                  "error %d: %s)", config_from, lrc,
                  lrc == ERROR_INVAL ? "invalid" : "see above");
        goto out;
    }
    if (o->name) {
        free(cfg.c_info.name);
        cfg.c_info.name = strdup(o->name);
        if (!cfg.c_info.name)
            goto out;
    }
    if (!cfg.c_info.name || !*cfg.c_info.name) {
        cli_error("the domain config from %s names no domain: give --name",
                  config_from);
        goto out;
    }
    uint32_t existing;
    if (!libxl_name_to_domid(ctx, cfg.c_info.name, &existing)) {
        cli_error("a domain named '%s' exists (domain %u): give --name, or "
                  "destroy it first", cfg.c_info.name, existing);
        goto out;
    }

    if (pipe2(p, O_CLOEXEC) < 0) {
        cli_error("cannot make libxl's pipe: %s", strerror(errno));
        goto out;
    }
    (void)fcntl(p[1], F_SETPIPE_SZ, FEED_PIPE_SIZE); /* only a speed-up */
    feeder.out_fd = p[1];
    /* libxl owns SIGCHLD while its children run: keep it off the feeder. */
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    errno = pthread_create(&thread, NULL, feeder_main, &feeder);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (errno) {
        cli_error("cannot start the feeding thread: %s", strerror(errno));
        goto out;
    }
    feeder_started = true;
    p[1] = -1; /* the feeder closes it */

    lock = xl_lock();
    /* Remus: libxl keeps the domain paused while checkpoints come, and
     * builds it from the last whole one when the stream ends or breaks. */
    params.checkpointed_stream = o->checkpointed
                                     ? LIBXL_CHECKPOINTED_STREAM_REMUS
                                     : LIBXL_CHECKPOINTED_STREAM_NONE;
    params.stream_version = 2;
    lrc = libxl_domain_create_restore(ctx, &cfg, &domid, p[0], -1, &params,
                                      NULL, NULL);
    if (lock >= 0)
        close(lock); /* releases it */
    t_created = now_s() - t0;
    /* Unblocks a feeder still writing: libxl reads no more. */
    close(p[0]);
    p[0] = -1;
    pthread_join(thread, NULL);
    feeder_started = false;

    failover = o->checkpointed && feeder.rc && feeder.err == XCC_EFAILOVER &&
               feeder.kept > 0;
    if (lrc || (feeder.rc && !failover)) {
        libxl_dominfo info;
        bool exists;

        /* EPIPE: libxl stopped reading, and says why above. */
        if (feeder.rc && feeder.err != EPIPE)
            cli_error("the stream from %s broke off: %s (above)", desc,
                      xcc_strerror(feeder.err));
        if (lrc)
            cli_error("libxl could not restore the domain '%s' from %s "
                      "(libxl error %d; its messages are above)",
                      cfg.c_info.name, desc, lrc);
        else
            cli_error("libxl restored the domain but the stream was bad: "
                      "not trusting it");
        libxl_dominfo_init(&info);
        exists = libxl_domid_valid_guest(domid) &&
                 libxl_domain_info(ctx, &info, domid) == 0;
        libxl_dominfo_dispose(&info);
        if (exists) {
            if (libxl_domain_destroy(ctx, domid, NULL))
                cli_error("could not destroy the half-made domain %u: "
                          "'xl destroy %u' it", domid, domid);
            else
                cli_error("destroyed the half-made domain %u", domid);
        } else {
            cli_error("no domain was left behind");
        }
        goto out;
    }
    if (!o->paused) {
        lrc = libxl_domain_unpause(ctx, domid, NULL);
        if (lrc) {
            cli_error("domain %u was restored but cannot be unpaused (libxl "
                      "error %d): it is left paused", domid, lrc);
            goto out;
        }
    }
    t_running = now_s() - t0;
    if (o->verbosity >= 0)
        fprintf(stderr, "xc-colo: restored %s into new domain %u '%s'%s in "
                "%.2f s (%llu pages)\n", desc, domid, cfg.c_info.name,
                o->paused ? ", paused" : ", running",
                o->paused ? t_created : t_running,
                (unsigned long long)feeder_pages(feeder.t));
    /* The domid on stdout, for scripts (as `xl domid` prints it). */
    printf("%u\n", domid);
    fflush(stdout);
    told = o->checkpointed ||
           tell_sender(src_fd, o->paused ? "paused" : "running", domid);
    rc = EXIT_OK;
    if (failover) {
        /* The Remus secondary takes over. */
        printf("failover: kept checkpoint %llu, domain %u %s\n",
               (unsigned long long)feeder.kept, domid,
               o->paused ? "paused" : "running");
        fflush(stdout);
        rc = EXIT_FAILOVER;
    }
    if (o->stats_json && write_stats(o->stats_json, domid, cfg.c_info.name, o,
                                     feeder.t, t_created, t_running) < 0)
        rc = EXIT_FAIL;
    if (rc != EXIT_FAIL && !o->no_wait) {
        int wrc = wait_for_domain(ctx, domid, &cfg, o->verbosity < 0);
        if (wrc != EXIT_OK)
            rc = wrc;
    }
out:
    if (!told)
        tell_sender(src_fd, "failed", domid);
    if (feeder_started) {
        close(p[0]);
        p[0] = -1;
        pthread_join(thread, NULL);
    }
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    xcc_xen_translator_free(feeder.t);
    libxl_domain_restore_params_dispose(&params);
    libxl_domain_config_dispose(&cfg);
    libxl_ctx_free(ctx);
    free(json);
    return rc;
}

int xen_receive_cmd(const char *src, const char *listen,
                    const struct transport_opts *topts,
                    const struct xen_receive_opts *o, bool progress)
{
    struct transport t = {.fd = -1};
    xentoollog_logger *log;
    int rc = EXIT_FAIL;

    log = progress_logger(o->verbosity, progress);
    if (!log)
        return EXIT_FAIL;
    if (listen ? transport_listen(listen, topts, &t) < 0
               : transport_open_src(src, &t) < 0)
        goto out;
    if (!listen && !strcmp(src, "-") && isatty(STDIN_FILENO)) {
        cli_error("refusing to read a stream from a terminal");
        goto out;
    }
    rc = xen_receive(t.fd, t.desc, o, log);
out:
    if (transport_close(&t) < 0)
        rc = EXIT_FAIL;
    xtl_logger_destroy(log);
    return rc;
}
