/*
 * sim_admin.c - life cycle of simulated guests: the guest directory and its
 * meta.json, starting the detached guest process, pause, stop, list and
 * verify. The backend ops are in sim.c, the workloads in sim_guest.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"
#include "sim_workload.h"

/* make install's directory of the guest helper (the Makefile sets it). */
#ifndef XCC_LIBEXECDIR
#define XCC_LIBEXECDIR "/usr/local/libexec/xc-colo"
#endif
/* fds handed to the guest helper are moved up here first (see high_fd). */
#define SPAWN_FD_MIN 10

/* What the guest helper is told (its command line). */
struct spawn_args {
    const char *name;
    const char *workload;
    uint64_t seed;
    uint64_t mem_bytes;
    const char *holes; /* the spec, "" for none */
    const char *tracking;
    bool fill; /* fresh start: fill RAM first */
};

/* The guest must be ready within this, plus PER_GIB per GiB filled. */
/* Start-up may take this long, plus so much per GiB, and a guest that
 * reports progress (PROGRESS lines while it fills its RAM) gets
 * READY_TIMEOUT_MS again from each report. */
#define READY_TIMEOUT_MS 30000
#define READY_TIMEOUT_PER_GIB_MS 10000
/* Largest guest accepted: far beyond any tmpfs here, catches typos. */
#define SIM_MEM_MAX (1ull << 40)

/* ---- directories ---- */

/* Removes guest name's directory and everything in it (sim_dir_remove);
 * -1 with errno, logged. */
static int remove_guest_dir(const char *name, xentoollog_logger *log)
{
    int rootfd = sim_root_open(false, true, log), rc, e;

    if (rootfd < 0)
        return -1;
    rc = sim_dir_remove(rootfd, name, log);
    e = errno;
    close(rootfd);
    errno = e;
    return rc;
}

static int create_file(int dfd, const char *name, const char *file,
                       uint64_t size, xentoollog_logger *log)
{
    char path[PATH_MAX];
    int fd;

    fd = sim_file_open(dfd, name, file, O_RDWR | O_CREAT | O_EXCL, 0600, log);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)size) < 0) {
        sim_path(path, sizeof(path), name, file);
        XCC_PERR(log, "sim", "cannot size %s to %" PRIu64 " bytes", path, size);
        close(fd);
        return -1;
    }
    return fd;
}

static int write_dirty_header(int fd, uint64_t nr_pfns, xentoollog_logger *log)
{
    struct sim_dirty_hdr h;

    memset(&h, 0, sizeof(h));
    h.magic = SIM_DIRTY_MAGIC;
    h.nr_pfns = nr_pfns;
    if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        XCC_PERR(log, "sim", "cannot write the dirty bitmap header");
        return -1;
    }
    return 0;
}

static bool tracking_valid(const char *t)
{
    return !strcmp(t, "auto") || !strcmp(t, "pagemap") || !strcmp(t, "bitmap");
}

/*
 * Makes SIM_ROOT/name with ram, dirty and meta.json (no process). On
 * failure removes whatever it made.
 */
static int make_guest_dir(const char *name, uint64_t mem_bytes,
                          const char *holes, const char *workload,
                          uint64_t seed, const char *tracking,
                          xentoollog_logger *log)
{
    long psz = sysconf(_SC_PAGESIZE);
    char dir[PATH_MAX];
    struct sim_meta m;
    int rootfd, dfd = -1, fd;

    rootfd = sim_root_open(true, true, log);
    if (rootfd < 0)
        return -1;
    sim_path(dir, sizeof(dir), name, NULL);
    if (mkdirat(rootfd, name, 0700) < 0) {
        int e = errno;
        if (e == EEXIST)
            XCC_ERR(log, "sim",
                    "guest name '%s' is in use (%s exists; 'xc-colo sim "
                    "stop %s' removes it)",
                    name, dir, name);
        else
            XCC_PERR(log, "sim", "cannot create %s", dir);
        close(rootfd);
        errno = e;
        return -1;
    }
    dfd = sim_dir_openat(rootfd, name, log);
    if (dfd < 0)
        goto fail;
    fd = create_file(dfd, name, "ram", mem_bytes, log);
    if (fd < 0)
        goto fail;
    close(fd);
    fd = create_file(dfd, name, "dirty", sim_dirty_file_size(mem_bytes / psz),
                     log);
    if (fd < 0)
        goto fail;
    if (write_dirty_header(fd, mem_bytes / psz, log) < 0) {
        close(fd);
        goto fail;
    }
    close(fd);

    memset(&m, 0, sizeof(m));
    snprintf(m.name, sizeof(m.name), "%s", name);
    m.mem_bytes = mem_bytes;
    m.page_size = (uint32_t)psz;
    snprintf(m.holes, sizeof(m.holes), "%s", holes ? holes : "");
    snprintf(m.workload, sizeof(m.workload), "%s", workload ? workload : "");
    m.seed = seed;
    snprintf(m.tracking, sizeof(m.tracking), "%s", tracking);
    if (sim_meta_writeat(dfd, name, &m, log) < 0)
        goto fail;
    close(dfd);
    close(rootfd);
    return 0;
fail : {
    int e = errno;
    if (dfd >= 0) {
        close(dfd);
        sim_dir_remove(rootfd, name, NULL);
    }
    close(rootfd);
    errno = e;
    return -1;
}
}

/* The RAM file is sparse, but a fill or a restore writes all of it: a
 * tmpfs that runs out of room would kill the guest with SIGBUS. */
static int check_space(uint64_t mem_bytes, xentoollog_logger *log)
{
    struct statvfs sv;
    uint64_t avail;

    if (statvfs(sim_root(), &sv) < 0 && statvfs("/dev/shm", &sv) < 0)
        return 0; /* cannot tell: let mkdir report */
    avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    if (mem_bytes > avail) {
        XCC_ERR(log, "sim",
                "not enough room in /dev/shm for %" PRIu64
                " bytes of guest RAM (%" PRIu64 " bytes free)",
                mem_bytes, avail);
        errno = ENOSPC;
        return -1;
    }
    return 0;
}

static int check_mem(uint64_t mem_bytes, xentoollog_logger *log)
{
    long psz = sysconf(_SC_PAGESIZE);

    if (mem_bytes == 0 || mem_bytes % (uint64_t)psz ||
        mem_bytes > SIM_MEM_MAX) {
        XCC_ERR(log, "sim",
                "bad memory size %" PRIu64
                ": must be a non-zero multiple of the page size (%ld) and "
                "at most 1 TiB",
                mem_bytes, psz);
        errno = EINVAL;
        return -1;
    }
    return check_space(mem_bytes, log);
}

/* ---- starting the guest process ---- */

/* Parses the child's report; returns 0 on "OK", else -1 with errno. */
static int read_ready(int fd, uint64_t mem_bytes, pid_t *child, bool *said_why,
                      xentoollog_logger *log)
{
    char buf[4096];
    size_t used = 0;
    int timeout =
        READY_TIMEOUT_MS + (int)(mem_bytes >> 30) * READY_TIMEOUT_PER_GIB_MS;
    uint64_t deadline = lib_now_ns() + (uint64_t)timeout * 1000000ull;
    bool ok = false;
    int err = EIO;
    char errmsg[1024] = "guest process died before it was ready (killed by "
                        "a signal?)";

    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        uint64_t now = lib_now_ns();
        ssize_t n;

        if (now >= deadline) {
            snprintf(errmsg, sizeof(errmsg),
                     "guest process not ready after %d ms", timeout);
            err = ETIMEDOUT;
            break;
        }
        if (poll(&pfd, 1, (int)((deadline - now) / 1000000 + 1)) < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            break;
        }
        if (!pfd.revents)
            continue;
        n = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
        buf[used] = '\0';
        /* consume whole lines */
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            if (!strncmp(line, "PID ", 4)) {
                *child = (pid_t)atoi(line + 4);
            } else if (!strncmp(line, "PROGRESS ", 9)) {
                uint64_t more = lib_now_ns() + READY_TIMEOUT_MS * 1000000ull;

                if (more > deadline) {
                    timeout += (int)((more - deadline) / 1000000);
                    deadline = more;
                }
            } else if (!strncmp(line, "WARN ", 5)) {
                XCC_WARN(log, "sim", "%s", line + 5);
            } else if (!strcmp(line, "OK")) {
                ok = true;
            } else if (!strncmp(line, "ERR ", 4)) {
                char *msg;
                err = (int)strtol(line + 4, &msg, 10);
                *said_why = true;
                snprintf(errmsg, sizeof(errmsg), "%s",
                         *msg == ' ' ? msg + 1 : msg);
            }
            line = nl + 1;
        }
        used = strlen(line);
        memmove(buf, line, used + 1);
        if (used == sizeof(buf) - 1)
            used = 0; /* an over-long line: drop it */
    }
    if (ok)
        return 0;
    XCC_ERR(log, "sim", "%s", errmsg);
    errno = err ? err : EIO;
    return -1;
}

/* A guest that died without a word may have said something in guest.log
 * (or been killed by a signal, which the log then lacks). */
static void log_guest_log_tail(const char *name, xentoollog_logger *log)
{
    char buf[512];
    ssize_t n;
    off_t size;
    int dfd, fd;

    dfd = sim_dir_open(name, NULL);
    if (dfd < 0)
        return;
    fd = sim_file_open(dfd, name, "guest.log", O_RDONLY, 0, NULL);
    close(dfd);
    if (fd < 0)
        return;
    size = lseek(fd, 0, SEEK_END);
    n = pread(fd, buf, sizeof(buf) - 1,
              size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1
                                            : 0);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    XCC_ERR(log, "sim", "guest '%s' log ends: %s", name,
            strrchr(buf, '\n') ? strrchr(buf, '\n') + 1 : buf);
}

/*
 * The guest helper, xcc-sim-guest: $XCC_SIM_GUEST_HELPER when set (tests),
 * else ../libexec/xc-colo/ beside the library that holds this code (the
 * shared library, or the program it is linked into), else beside the
 * running program, else XCC_LIBEXECDIR (make install's). The first that is
 * an executable file wins.
 */
static int helper_path(char *buf, size_t len, xentoollog_logger *log)
{
    static const char rel[] = "/../libexec/xc-colo/" SIM_GUEST_HELPER;
    const char *env = secure_getenv("XCC_SIM_GUEST_HELPER");
    char exe[PATH_MAX];
    Dl_info info;
    ssize_t n;

    if (env && *env) {
        snprintf(buf, len, "%s", env);
        if (access(buf, X_OK) == 0)
            return 0;
        XCC_PERR(log, "sim", "XCC_SIM_GUEST_HELPER=%s is not executable", env);
        return -1;
    }
    if (dladdr((void *)helper_path, &info) && info.dli_fname &&
        info.dli_fname[0] == '/') {
        int dirlen = (int)(strrchr(info.dli_fname, '/') - info.dli_fname);

        snprintf(buf, len, "%.*s%s", dirlen, info.dli_fname, rel);
        if (access(buf, X_OK) == 0)
            return 0;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        if (strrchr(exe, '/')) {
            *strrchr(exe, '/') = '\0';
            snprintf(buf, len, "%s%s", exe, rel);
            if (access(buf, X_OK) == 0)
                return 0;
        }
    }
    snprintf(buf, len, "%s/%s", XCC_LIBEXECDIR, SIM_GUEST_HELPER);
    if (access(buf, X_OK) == 0)
        return 0;
    XCC_ERR(log, "sim",
            "cannot find the guest helper %s (looked in ../libexec/xc-colo "
            "beside the library and the program, and in %s; "
            "XCC_SIM_GUEST_HELPER names it)",
            SIM_GUEST_HELPER, XCC_LIBEXECDIR);
    errno = ENOENT;
    return -1;
}

/* fd, moved to SPAWN_FD_MIN or above (close-on-exec), so that the spawn's
 * dup2 actions onto 0..4 never overwrite one another. */
static int high_fd(int fd)
{
    int h = fcntl(fd, F_DUPFD_CLOEXEC, SPAWN_FD_MIN);

    close(fd);
    return h;
}

/*
 * Starts the guest helper with posix_spawn (never a bare fork of the
 * caller, which may have threads) and waits for its report. The helper
 * forks once so the guest is not the caller's child. On failure the guest
 * process is gone when this returns.
 */
static int spawn_guest(const struct spawn_args *a, xentoollog_logger *log)
{
    char helper[PATH_MAX], mem[24], seed[24];
    char *argv[] = {(char *)SIM_GUEST_HELPER,
                    (char *)a->name,
                    mem,
                    seed,
                    (char *)(a->fill ? "fill" : "resume"),
                    (char *)a->tracking,
                    (char *)a->workload,
                    (char *)(a->holes ? a->holes : ""),
                    NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int fds[2] = {-1, -1}, dfd, logfd = -1, status, rc = -1, e = 0;
    pid_t helper_pid, child = 0;
    bool said_why = false;

    if (helper_path(helper, sizeof(helper), log) < 0)
        return -1;
    snprintf(mem, sizeof(mem), "%" PRIu64, a->mem_bytes);
    snprintf(seed, sizeof(seed), "%" PRIu64, a->seed);
    dfd = sim_dir_open(a->name, log);
    if (dfd < 0)
        return -1;
    logfd = sim_file_open(dfd, a->name, "guest.log",
                          O_WRONLY | O_CREAT | O_APPEND, 0600, log);
    if (logfd < 0) {
        e = errno;
        goto out;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        e = errno;
        XCC_PERR(log, "sim", "pipe");
        goto out;
    }
    dfd = high_fd(dfd);
    logfd = high_fd(logfd);
    fds[1] = high_fd(fds[1]);
    if (dfd < 0 || logfd < 0 || fds[1] < 0) {
        e = errno;
        XCC_PERR(log, "sim", "cannot move an fd for the guest helper");
        goto out;
    }
    sigemptyset(&none);
    sigfillset(&all);
    if ((e = posix_spawn_file_actions_init(&fa)) != 0)
        goto out;
    if ((e = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        goto out;
    }
    if (!(e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
                                               0)) &&
        !(e = posix_spawn_file_actions_adddup2(&fa, logfd, 1)) &&
        !(e = posix_spawn_file_actions_adddup2(&fa, logfd, 2)) &&
        !(e = posix_spawn_file_actions_adddup2(&fa, fds[1],
                                               SIM_GUEST_READY_FD)) &&
        !(e = posix_spawn_file_actions_adddup2(&fa, dfd, SIM_GUEST_DIR_FD)) &&
        !(e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
                                                  POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF)) &&
        !(e = posix_spawnattr_setsigmask(&attr, &none)) &&
        !(e = posix_spawnattr_setsigdefault(&attr, &all)))
        e = posix_spawn(&helper_pid, helper, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (e != 0) {
        XCC_ERR(log, "sim", "cannot start the guest helper %s: %s", helper,
                strerror(e));
        goto out;
    }
    close(fds[1]);
    fds[1] = -1;
    /* the helper forks the guest and exits at once */
    while (waitpid(helper_pid, &status, 0) < 0 && errno == EINTR)
        ;
    rc = read_ready(fds[0], a->fill ? a->mem_bytes : 0, &child, &said_why, log);
    e = errno;
    if (rc < 0) {
        if (child > 0)
            sim_proc_kill(child, 0);
        if (!said_why)
            log_guest_log_tail(a->name, log);
    }
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (logfd >= 0)
        close(logfd);
    if (dfd >= 0)
        close(dfd);
    errno = e;
    return rc;
}

/* Checks what the helper will be told: the workload parses and fits RAM
 * with its holes. */
static int spawn_args_init(struct spawn_args *a, const char *name,
                           uint64_t mem_bytes, const char *workload,
                           uint64_t seed, const char *holes,
                           const char *tracking, xentoollog_logger *log)
{
    long psz = sysconf(_SC_PAGESIZE);
    uint64_t nr = mem_bytes / (uint64_t)psz;
    struct sim_workload wl;
    uint64_t *holes_bm;
    int rc;

    memset(a, 0, sizeof(*a));
    if (!workload || !*workload) {
        XCC_ERR(log, "sim", "no workload given for guest '%s'", name);
        errno = EINVAL;
        return -1;
    }
    if (strlen(workload) >= SIM_WORKLOAD_MAX) {
        XCC_ERR(log, "sim", "workload spec longer than %d characters",
                SIM_WORKLOAD_MAX - 1);
        errno = EINVAL;
        return -1;
    }
    holes_bm = sim_holes_parse(holes, nr, log);
    if (!holes_bm)
        return -1;
    rc = sim_workload_parse(workload, nr, holes_bm, &wl, log);
    free(holes_bm);
    if (rc < 0)
        return -1;
    a->name = name;
    a->workload = workload;
    a->seed = seed;
    a->mem_bytes = mem_bytes;
    a->holes = holes;
    a->tracking = tracking;
    return 0;
}

int xcc_sim_start(const char *name, uint64_t mem_bytes, const char *workload,
                  uint64_t seed, const char *holes, const char *tracking,
                  xentoollog_logger *log)
{
    struct spawn_args a;
    int rc;

    if (!log)
        log = lib_default_logger();
    if (!tracking)
        tracking = "auto";
    if (sim_check_name(name, log) < 0 || check_mem(mem_bytes, log) < 0)
        return -1;
    if (!tracking_valid(tracking)) {
        XCC_ERR(log, "sim",
                "bad tracking mode '%s': expected auto, pagemap or bitmap",
                tracking);
        errno = EINVAL;
        return -1;
    }
    if (holes && strlen(holes) >= SIM_HOLES_MAX) {
        XCC_ERR(log, "sim", "holes list longer than %d characters",
                SIM_HOLES_MAX - 1);
        errno = EINVAL;
        return -1;
    }
    if (spawn_args_init(&a, name, mem_bytes, workload, seed, holes, tracking,
                        log) < 0)
        return -1;
    a.fill = true;
    rc = make_guest_dir(name, mem_bytes, holes, workload, seed, tracking, log);
    if (rc == 0) {
        rc = spawn_guest(&a, log);
        if (rc < 0) {
            int e = errno;
            XCC_ERR(log, "sim", "guest '%s' did not start; removed it", name);
            remove_guest_dir(name, NULL);
            errno = e;
        }
    }
    return rc;
}

int xcc_sim_create(const char *name, uint64_t mem_bytes, xentoollog_logger *log)
{
    if (!log)
        log = lib_default_logger();
    if (sim_check_name(name, log) < 0 || check_mem(mem_bytes, log) < 0)
        return -1;
    return make_guest_dir(name, mem_bytes, NULL, NULL, 0, "none", log);
}

/* Reads the meta and fails if a live process owns the guest. */
static int meta_read_idle(const char *name, struct sim_meta *m,
                          xentoollog_logger *log)
{
    if (sim_meta_read(name, m, log) < 0)
        return -1;
    if (m->pid > 0 &&
        sim_proc_alive(sim_proc_state((pid_t)m->pid, m->pid_start))) {
        XCC_ERR(log, "sim", "guest '%s' is already running (pid %" PRId64 ")",
                name, m->pid);
        errno = EBUSY;
        return -1;
    }
    return 0;
}

int xcc_sim_resume(const char *name, const char *workload, uint64_t seed,
                   xentoollog_logger *log)
{
    struct spawn_args a;
    struct sim_meta m;
    char wl[SIM_WORKLOAD_MAX];
    int rc, lock;

    if (!log)
        log = lib_default_logger();
    if (sim_check_name(name, log) < 0 || meta_read_idle(name, &m, log) < 0)
        return -1;
    if (m.page_size != (uint32_t)sysconf(_SC_PAGESIZE)) {
        XCC_ERR(log, "sim",
                "guest '%s' has page size %" PRIu32 ", this machine %ld", name,
                m.page_size, sysconf(_SC_PAGESIZE));
        errno = EINVAL;
        return -1;
    }
    if (m.incomplete) {
        XCC_ERR(log, "sim",
                "guest '%s' is marked incomplete (a restore into it did "
                "not finish); not resuming",
                name);
        errno = EINVAL;
        return -1;
    }
    snprintf(wl, sizeof(wl), "%s", workload ? workload : m.workload);
    if (!*wl) {
        XCC_ERR(log, "sim", "guest '%s' has no workload: give one", name);
        errno = EINVAL;
        return -1;
    }
    if (spawn_args_init(&a, name, m.mem_bytes, wl, seed, m.holes,
                        tracking_valid(m.tracking) ? m.tracking : "auto",
                        log) < 0)
        return -1;
    a.fill = false;
    rc = spawn_guest(&a, log);
    if (rc < 0) {
        int e = errno;
        /* the child writes its pid only when ready; make sure of it */
        lock = sim_meta_lock(name);
        if (sim_meta_read(name, &m, NULL) == 0 && m.pid > 0 &&
            !sim_proc_alive(sim_proc_state((pid_t)m.pid, m.pid_start))) {
            m.pid = 0;
            m.pid_start = 0;
            sim_meta_write(name, &m, NULL);
        }
        sim_meta_unlock(lock);
        errno = e;
    }
    return rc;
}

int xcc_sim_set_tracking(const char *name, const char *tracking,
                         xentoollog_logger *log)
{
    struct sim_meta m;
    int lock, rc = -1;

    if (!log)
        log = lib_default_logger();
    if (sim_check_name(name, log) < 0)
        return -1;
    if (!tracking || !tracking_valid(tracking)) {
        XCC_ERR(log, "sim",
                "bad tracking mode '%s': expected auto, pagemap or bitmap",
                tracking ? tracking : "");
        errno = EINVAL;
        return -1;
    }
    lock = sim_meta_lock(name);
    if (meta_read_idle(name, &m, log) == 0) {
        snprintf(m.tracking, sizeof(m.tracking), "%s", tracking);
        rc = sim_meta_write(name, &m, log);
    }
    sim_meta_unlock(lock);
    return rc;
}

int xcc_sim_stop(const char *name, xentoollog_logger *log)
{
    struct sim_meta m;
    int rootfd, dfd, rc, e;

    if (!log)
        log = lib_default_logger();
    if (sim_check_name(name, log) < 0)
        return -1;
    rootfd = sim_root_open(false, false, log);
    if (rootfd < 0) {
        if (errno == ENOENT) {
            char dir[PATH_MAX];

            sim_path(dir, sizeof(dir), name, NULL);
            XCC_ERR(log, "sim", "no simulated guest '%s' (%s is missing)", name,
                    dir);
            errno = ENOENT;
        }
        return -1;
    }
    dfd = sim_dir_openat(rootfd, name, log);
    if (dfd < 0) {
        e = errno;
        close(rootfd);
        errno = e;
        return -1;
    }
    if (sim_meta_readat(dfd, name, &m, sim_quiet_logger()) == 0 && m.pid > 0)
        sim_proc_kill((pid_t)m.pid, m.pid_start);
    close(dfd);
    rc = sim_dir_remove(rootfd, name, log);
    e = errno;
    close(rootfd);
    errno = e;
    return rc;
}

/* Reads the meta and checks that a live process runs the guest. */
static int meta_read_live(const char *name, struct sim_meta *m,
                          xentoollog_logger *log)
{
    if (sim_check_name(name, log) < 0 || sim_meta_read(name, m, log) < 0)
        return -1;
    if (m->pid <= 0) {
        XCC_ERR(log, "sim",
                "guest '%s' has no process (created as a "
                "restore target; 'xc-colo sim resume' starts one)",
                name);
        errno = ESRCH;
        return -1;
    }
    if (!sim_proc_alive(sim_proc_state((pid_t)m->pid, m->pid_start))) {
        XCC_ERR(log, "sim",
                "guest '%s' is dead: its process %" PRId64 " is gone", name,
                m->pid);
        errno = ESRCH;
        return -1;
    }
    return 0;
}

/* Stops (pause) or continues (!pause) the live process of guest name. */
static int guest_set_paused(const char *name, bool pause,
                            xentoollog_logger *log)
{
    struct sim_meta m;

    if (!log)
        log = lib_default_logger();
    if (meta_read_live(name, &m, log) < 0)
        return -1;
    return pause ? sim_proc_stop((pid_t)m.pid, m.pid_start, log)
                 : sim_proc_cont((pid_t)m.pid, m.pid_start, log);
}

int xcc_sim_pause(const char *name, xentoollog_logger *log)
{
    return guest_set_paused(name, true, log);
}

int xcc_sim_unpause(const char *name, xentoollog_logger *log)
{
    return guest_set_paused(name, false, log);
}

int xcc_sim_set_incomplete(const char *name, int incomplete,
                           xentoollog_logger *log)
{
    struct sim_meta m;
    int lock, rc = -1;

    if (!log)
        log = lib_default_logger();
    if (sim_check_name(name, log) < 0)
        return -1;
    lock = sim_meta_lock(name);
    if (sim_meta_read(name, &m, log) == 0) {
        m.incomplete = incomplete != 0;
        rc = sim_meta_write(name, &m, log);
    }
    sim_meta_unlock(lock);
    return rc;
}

int xcc_sim_verify(const char *name, xentoollog_logger *log, char *report,
                   size_t report_len)
{
    struct sim_meta m;
    char path[PATH_MAX], dummy[8];
    bool paused = false;
    uint8_t *ram;
    struct stat st;
    int dfd, fd, rc;

    if (!log)
        log = lib_default_logger();
    if (!report || !report_len) {
        report = dummy;
        report_len = sizeof(dummy);
    }
    report[0] = '\0';
    if (sim_check_name(name, log) < 0 || sim_meta_read(name, &m, log) < 0)
        return -1;
    if (m.page_size != (uint32_t)sysconf(_SC_PAGESIZE)) {
        XCC_ERR(log, "sim",
                "guest '%s' has page size %" PRIu32 ", this machine %ld", name,
                m.page_size, sysconf(_SC_PAGESIZE));
        errno = EINVAL;
        return -1;
    }
    sim_path(path, sizeof(path), name, "ram");
    dfd = sim_dir_open(name, log);
    if (dfd < 0)
        return -1;
    fd = sim_file_open(dfd, name, "ram", O_RDONLY, 0, log);
    close(dfd);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < m.mem_bytes) {
        XCC_ERR(log, "sim", "%s is shorter than the guest's %" PRIu64 " bytes",
                path, m.mem_bytes);
        close(fd);
        errno = EINVAL;
        return -1;
    }
    ram = mmap(NULL, m.mem_bytes, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (ram == MAP_FAILED) {
        XCC_PERR(log, "sim", "cannot map %s", path);
        return -1;
    }
    /* a running ledger changes under us: look at it stopped */
    char ps = m.pid > 0 ? sim_proc_state((pid_t)m.pid, m.pid_start) : 0;
    if (sim_proc_alive(ps) && !sim_proc_stopped(ps)) {
        if (sim_proc_stop((pid_t)m.pid, m.pid_start, log) < 0) {
            munmap(ram, m.mem_bytes);
            return -1;
        }
        paused = true;
    }
    rc = sim_ledger_check(ram, m.mem_bytes / m.page_size, m.page_size, report,
                          report_len, NULL);
    if (paused)
        sim_proc_cont((pid_t)m.pid, m.pid_start, log);
    munmap(ram, m.mem_bytes);
    if (rc < 0) {
        XCC_ERR(log, "sim", "%s", report);
        return -1;
    }
    return rc == SIM_LEDGER_OK ? 0 : 1;
}

/* ---- listing ---- */

const char *xcc_sim_state_name(int state)
{
    static const char *const names[] = {"none", "running",    "paused",
                                        "dead", "incomplete", "invalid"};

    if (state < 0 || (size_t)state >= XCC_ARRAY_SIZE(names))
        return "unknown";
    return names[state];
}

static void read_progress(int dfd, const char *name, struct xcc_sim_info *info)
{
    struct sim_dirty_hdr h;
    int fd;

    fd = sim_file_open(dfd, name, "dirty", O_RDONLY, 0, NULL);
    if (fd < 0)
        return;
    if (pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
        h.magic == SIM_DIRTY_MAGIC) {
        info->ticks = atomic_load(&h.ticks);
        info->sweeps = atomic_load(&h.sweeps);
    }
    close(fd);
}

int xcc_sim_get_info(const char *name, struct xcc_sim_info *info,
                     xentoollog_logger *log)
{
    struct sim_meta m;
    int dfd;

    if (!log)
        log = lib_default_logger();
    memset(info, 0, sizeof(*info));
    if (sim_check_name(name, log) < 0)
        return -1;
    dfd = sim_dir_open(name, log);
    if (dfd < 0)
        return -1;
    snprintf(info->name, sizeof(info->name), "%s", name);
    if (sim_meta_readat(dfd, name, &m, NULL) < 0) {
        close(dfd);
        info->state = XCC_SIM_INVALID;
        return 0;
    }
    info->pid = m.pid;
    info->mem_bytes = m.mem_bytes;
    info->page_size = m.page_size;
    info->seed = m.seed;
    snprintf(info->workload, sizeof(info->workload), "%s", m.workload);
    snprintf(info->tracking, sizeof(info->tracking), "%s",
             m.pid > 0 ? m.tracking : "none");
    {
        size_t hl = strlen(m.holes), cap = sizeof(info->holes);

        if (hl < cap) {
            memcpy(info->holes, m.holes, hl + 1);
        } else { /* too long for the struct: cut, and say so */
            memcpy(info->holes, m.holes, cap - 4);
            memcpy(info->holes + cap - 4, "...", 4);
        }
    }
    read_progress(dfd, name, info);
    close(dfd);
    if (m.incomplete) {
        info->state = XCC_SIM_INCOMPLETE;
    } else if (m.pid <= 0) {
        info->state = XCC_SIM_NONE;
    } else {
        char s = sim_proc_state((pid_t)m.pid, m.pid_start);

        if (!sim_proc_alive(s))
            info->state = XCC_SIM_DEAD;
        else if (sim_proc_stopped(s))
            info->state = XCC_SIM_PAUSED;
        else
            info->state = XCC_SIM_RUNNING;
    }
    return 0;
}

static int info_cmp(const void *a, const void *b)
{
    return strcmp(((const struct xcc_sim_info *)a)->name,
                  ((const struct xcc_sim_info *)b)->name);
}

int xcc_sim_list(struct xcc_sim_info **list, size_t *count,
                 xentoollog_logger *log)
{
    struct xcc_sim_info *out = NULL;
    size_t n = 0, cap = 0;
    DIR *dp;
    struct dirent *de;
    int rootfd;

    if (!log)
        log = lib_default_logger();
    *list = NULL;
    *count = 0;
    rootfd = sim_root_open(false, false, log);
    if (rootfd < 0)
        return errno == ENOENT ? 0 : -1;
    dp = fdopendir(rootfd);
    if (!dp) {
        XCC_PERR(log, "sim", "cannot list %s", sim_root());
        close(rootfd);
        return -1;
    }
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.' || !sim_name_ok(de->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            struct xcc_sim_info *p = realloc(out, ncap * sizeof(*out));
            if (!p) {
                free(out);
                closedir(dp);
                errno = ENOMEM;
                return -1;
            }
            out = p;
            cap = ncap;
        }
        if (xcc_sim_get_info(de->d_name, &out[n], log) == 0)
            n++;
    }
    closedir(dp);
    if (n)
        qsort(out, n, sizeof(*out), info_cmp);
    *list = out;
    *count = n;
    return 0;
}
