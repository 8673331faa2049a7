/*
 * sim_paths.c - guest names, the checked guest root and guest directories,
 * meta.json (json-c) and the guest process's control. See sim_paths.h for
 * why every path goes through a directory fd.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "sim_paths.h"

/* How long pause/unpause/stop wait for the process to change state. */
#define PROC_WAIT_MS 5000
#define PROC_POLL_US 500
/* The first poll interval of proc_wait, which doubles up to PROC_POLL_US. */
#define PROC_POLL_MIN_US 10
/* meta.json is a few hundred bytes plus the holes list. */
#define META_MAX_BYTES (SIM_HOLES_MAX + 4096)

/* ---- a logger that drops everything ---- */

static void quiet_vmessage(xentoollog_logger *l, xentoollog_level level,
                           int errnoval, const char *context,
                           const char *format, va_list al)
{
}

static void quiet_progress(xentoollog_logger *l, const char *context,
                           const char *doing_what, int percent,
                           unsigned long done, unsigned long total)
{
}

static void quiet_destroy(xentoollog_logger *l)
{
}

static xentoollog_logger quiet_logger = {quiet_vmessage, quiet_progress,
                                         quiet_destroy};

xentoollog_logger *sim_quiet_logger(void)
{
    return &quiet_logger;
}

/* ---- names and paths ---- */

bool sim_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > SIM_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];

        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return true;
}

int sim_check_name(const char *name, xentoollog_logger *log)
{
    size_t n = name ? strlen(name) : 0;

    if (sim_name_ok(name))
        return 0;
    errno = EINVAL;
    for (size_t i = 0; i < n && n <= SIM_NAME_MAX; i++) {
        unsigned char c = (unsigned char)name[i];

        if (!isalnum(c) && c != '_' && c != '.' && c != '-') {
            XCC_ERR(log, "sim",
                    "bad guest name '%s': character '%c' not in "
                    "[A-Za-z0-9_.-]",
                    name, isprint(c) ? c : '?');
            return -1;
        }
    }
    XCC_ERR(log, "sim",
            "bad guest name '%s': 1 to %d characters of [A-Za-z0-9_.-]",
            name ? name : "", SIM_NAME_MAX);
    return -1;
}

const char *sim_root(void)
{
    static __thread char buf[sizeof(SIM_ROOT) + 16];
    const char *r = secure_getenv("XCC_SIM_ROOT");
    uid_t uid = geteuid();

    if (r && *r)
        return r;
    if (uid == 0)
        return SIM_ROOT;
    snprintf(buf, sizeof(buf), SIM_ROOT "-%u", (unsigned)uid);
    return buf;
}

void sim_path(char *buf, size_t len, const char *name, const char *file)
{
    if (file)
        snprintf(buf, len, "%s/%s/%s", sim_root(), name, file);
    else
        snprintf(buf, len, "%s/%s", sim_root(), name);
}

/* ---- checked directories ---- */

/*
 * Says why path (a failed O_NOFOLLOW open at parent_fd/base with errno e)
 * was refused, and sets errno.
 */
static void log_open_failure(int parent_fd, const char *base, const char *path,
                             int e, xentoollog_logger *log)
{
    struct stat st;

    if ((e == ELOOP || e == ENOTDIR || e == EMLINK) &&
        fstatat(parent_fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
            XCC_ERR(log, "sim",
                    "%s is a symbolic link; refusing to follow it (it may "
                    "have been planted to redirect xc-colo)",
                    path);
            errno = ELOOP;
            return;
        }
        if (e != ENOTDIR) {
            XCC_ERR(log, "sim", "%s: %s", path, strerror(e));
            errno = e;
            return;
        }
        XCC_ERR(log, "sim", "%s is not a directory; refusing it", path);
        errno = ENOTDIR;
        return;
    }
    XCC_ERR(log, "sim", "cannot open %s: %s", path, strerror(e));
    errno = e;
}

/* Accepts an open directory only if it is the caller's and only the
 * caller's to write. */
static int check_dir(int fd, const char *path, xentoollog_logger *log)
{
    struct stat st;
    uid_t uid = geteuid();

    if (fstat(fd, &st) < 0) {
        XCC_PERR(log, "sim", "cannot stat %s", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        XCC_ERR(log, "sim", "%s is not a directory; refusing it", path);
        errno = ENOTDIR;
        return -1;
    }
    if (st.st_uid != uid) {
        XCC_ERR(log, "sim",
                "%s is owned by uid %u, not by this user (uid %u); refusing "
                "it: another user could redirect or remove the guests in it. "
                "Remove it, or name another directory in XCC_SIM_ROOT",
                path, (unsigned)st.st_uid, (unsigned)uid);
        errno = EPERM;
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        XCC_ERR(log, "sim",
                "%s is writable by group or others (mode %04o); refusing it "
                "('chmod 700 %s' if it is yours)",
                path, (unsigned)(st.st_mode & 07777), path);
        errno = EPERM;
        return -1;
    }
    return 0;
}

/*
 * Opens directory `name` relative to at (never through a symlink) and
 * checks it with check_dir. A missing directory is logged only when
 * log_missing; errno stays ENOENT for the caller. Returns the fd or -1.
 */
static int open_dir_checked(int at, const char *name, const char *path,
                            bool log_missing, xentoollog_logger *log)
{
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        int e = errno;

        if (e != ENOENT || log_missing)
            log_open_failure(at, name, path, e, log); /* sets errno */
        else
            errno = e;
        return -1;
    }
    if (check_dir(fd, path, log) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int sim_root_open(bool create, bool log_missing, xentoollog_logger *log)
{
    const char *root = sim_root();

    if (create && mkdir(root, 0700) < 0 && errno != EEXIST) {
        XCC_PERR(log, "sim", "cannot create %s", root);
        return -1;
    }
    return open_dir_checked(AT_FDCWD, root, root, log_missing, log);
}

static void log_no_guest(const char *name, const char *path,
                         xentoollog_logger *log)
{
    XCC_ERR(log, "sim", "no simulated guest '%s' (%s is missing)", name, path);
    errno = ENOENT;
}

int sim_dir_openat(int rootfd, const char *name, xentoollog_logger *log)
{
    char path[PATH_MAX];
    int fd;

    if (sim_check_name(name, log) < 0)
        return -1;
    sim_path(path, sizeof(path), name, NULL);
    fd = open_dir_checked(rootfd, name, path, false, log);
    if (fd < 0 && errno == ENOENT)
        log_no_guest(name, path, log);
    return fd;
}

int sim_dir_open(const char *name, xentoollog_logger *log)
{
    char path[PATH_MAX];
    int rootfd, fd, e;

    if (sim_check_name(name, log) < 0)
        return -1;
    rootfd = sim_root_open(false, false, log);
    if (rootfd < 0) {
        if (errno == ENOENT) {
            sim_path(path, sizeof(path), name, NULL);
            log_no_guest(name, path, log);
        }
        return -1;
    }
    fd = sim_dir_openat(rootfd, name, log);
    e = errno;
    close(rootfd);
    errno = e;
    return fd;
}

int sim_file_open(int dirfd, const char *name, const char *file, int flags,
                  mode_t mode, xentoollog_logger *log)
{
    char path[PATH_MAX];
    int fd = openat(dirfd, file, flags | O_NOFOLLOW | O_CLOEXEC, mode);

    if (fd < 0) {
        int e = errno;

        if (log) {
            sim_path(path, sizeof(path), name, file);
            log_open_failure(dirfd, file, path, e, log);
        }
        errno = e;
    }
    return fd;
}

int sim_dir_remove(int rootfd, const char *name, xentoollog_logger *log)
{
    char path[PATH_MAX];
    DIR *dp;
    struct dirent *de;
    int dfd, lfd, rc = 0;

    dfd = sim_dir_openat(rootfd, name, log);
    if (dfd < 0)
        return -1;
    sim_path(path, sizeof(path), name, NULL);
    lfd = dup(dfd);
    dp = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (!dp) {
        XCC_PERR(log, "sim", "cannot list %s", path);
        if (lfd >= 0)
            close(lfd);
        close(dfd);
        return -1;
    }
    while ((de = readdir(dp))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        /* unlinkat removes a symbolic link itself, never its target */
        if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT) {
            XCC_PERR(log, "sim", "cannot remove %s/%s", path, de->d_name);
            rc = -1;
        }
    }
    closedir(dp);
    close(dfd);
    if (unlinkat(rootfd, name, AT_REMOVEDIR) < 0) {
        XCC_PERR(log, "sim", "cannot remove %s", path);
        rc = -1;
    }
    return rc;
}

/* ---- meta.json ---- */

static json_object *meta_to_json(const struct sim_meta *m)
{
    json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    if (json_object_object_add(o, "name", json_object_new_string(m->name)) ||
        json_object_object_add(o, "pid", json_object_new_int64(m->pid)) ||
        json_object_object_add(o, "pid_start",
                               json_object_new_uint64(m->pid_start)) ||
        json_object_object_add(o, "mem_bytes",
                               json_object_new_uint64(m->mem_bytes)) ||
        json_object_object_add(o, "page_size",
                               json_object_new_uint64(m->page_size)) ||
        json_object_object_add(o, "holes", json_object_new_string(m->holes)) ||
        json_object_object_add(o, "workload",
                               json_object_new_string(m->workload)) ||
        json_object_object_add(o, "seed", json_object_new_uint64(m->seed)) ||
        json_object_object_add(o, "ram_addr",
                               json_object_new_uint64(m->ram_addr)) ||
        json_object_object_add(o, "tracking",
                               json_object_new_string(m->tracking)) ||
        json_object_object_add(o, "incomplete",
                               json_object_new_int(m->incomplete))) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

int sim_meta_writeat(int dirfd, const char *name, const struct sim_meta *m,
                     xentoollog_logger *log)
{
    char path[PATH_MAX];
    json_object *o = meta_to_json(m);
    const char *text;
    size_t len;
    int fd;

    sim_path(path, sizeof(path), name, "meta.json.tmp");
    if (!o) {
        XCC_ERR(log, "sim", "cannot build %s: out of memory", path);
        errno = ENOMEM;
        return -1;
    }
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                 JSON_C_TO_STRING_SPACED |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    len = text ? strlen(text) : 0;
    /* a temporary file left by a crash is ours to replace */
    if (unlinkat(dirfd, "meta.json.tmp", 0) < 0 && errno != ENOENT) {
        XCC_PERR(log, "sim", "cannot remove %s", path);
        json_object_put(o);
        return -1;
    }
    fd = sim_file_open(dirfd, name, "meta.json.tmp",
                       O_WRONLY | O_CREAT | O_EXCL, 0600, log);
    if (fd < 0) {
        json_object_put(o);
        return -1;
    }
    if (!text || write(fd, text, len) != (ssize_t)len ||
        write(fd, "\n", 1) != 1) {
        XCC_PERR(log, "sim", "cannot write %s", path);
        json_object_put(o);
        close(fd);
        unlinkat(dirfd, "meta.json.tmp", 0);
        return -1;
    }
    json_object_put(o);
    close(fd);
    if (renameat(dirfd, "meta.json.tmp", dirfd, "meta.json") < 0) {
        XCC_PERR(log, "sim", "cannot rename %s", path);
        unlinkat(dirfd, "meta.json.tmp", 0);
        return -1;
    }
    return 0;
}

/* Copies string member key of o into buf; 0, or -1 with *why set. */
static int get_str(json_object *o, const char *key, char *buf, size_t len,
                   const char **why)
{
    json_object *v;

    buf[0] = '\0';
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_string)) {
        *why = "is not a string";
        return -1;
    }
    if ((size_t)json_object_get_string_len(v) >= len) {
        *why = "is too long";
        return -1;
    }
    memcpy(buf, json_object_get_string(v),
           (size_t)json_object_get_string_len(v) + 1);
    return 0;
}

/* Reads integer member key of o (absent: 0); 0, or -1 with *why set. */
static int get_u64(json_object *o, const char *key, uint64_t *out,
                   bool allow_negative, const char **why)
{
    json_object *v;

    *out = 0;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int)) {
        *why = "is not an integer";
        return -1;
    }
    errno = 0;
    if (json_object_get_int64(v) < 0) {
        if (!allow_negative) {
            *why = "is negative";
            return -1;
        }
        *out = (uint64_t)json_object_get_int64(v);
        return 0;
    }
    *out = json_object_get_uint64(v);
    return 0;
}

static int meta_from_json(json_object *o, struct sim_meta *m,
                          const char **bad_key, const char **why)
{
    const struct {
        const char *key;
        char *buf;
        size_t len;
    } strs[] = {
        {"name", m->name, sizeof(m->name)},
        {"holes", m->holes, sizeof(m->holes)},
        {"workload", m->workload, sizeof(m->workload)},
        {"tracking", m->tracking, sizeof(m->tracking)},
    };
    uint64_t pid, page_size, incomplete;

    memset(m, 0, sizeof(*m));
    if (!json_object_is_type(o, json_type_object)) {
        *bad_key = "(top level)";
        *why = "is not an object";
        return -1;
    }
    for (size_t i = 0; i < XCC_ARRAY_SIZE(strs); i++) {
        *bad_key = strs[i].key;
        if (get_str(o, strs[i].key, strs[i].buf, strs[i].len, why) < 0)
            return -1;
    }
#define U64(k, dst, neg)                                                       \
    do {                                                                       \
        *bad_key = k;                                                          \
        if (get_u64(o, k, dst, neg, why) < 0)                                  \
            return -1;                                                         \
    } while (0)
    U64("pid", &pid, true);
    U64("pid_start", &m->pid_start, false);
    U64("mem_bytes", &m->mem_bytes, false);
    U64("page_size", &page_size, false);
    U64("seed", &m->seed, false);
    U64("ram_addr", &m->ram_addr, false);
    U64("incomplete", &incomplete, false);
#undef U64
    m->pid = (int64_t)pid;
    if (m->pid > INT32_MAX || m->pid < 0) {
        *bad_key = "pid";
        *why = "is not a process id";
        return -1;
    }
    if (page_size > UINT32_MAX) {
        *bad_key = "page_size";
        *why = "is out of range";
        return -1;
    }
    m->page_size = (uint32_t)page_size;
    m->incomplete = incomplete != 0;
    if (!m->mem_bytes || !m->page_size) {
        *bad_key = !m->mem_bytes ? "mem_bytes" : "page_size";
        *why = "is missing or zero";
        return -1;
    }
    return 0;
}

int sim_meta_readat(int dirfd, const char *name, struct sim_meta *m,
                    xentoollog_logger *log)
{
    char path[PATH_MAX], *text;
    const char *bad_key = NULL, *why = NULL;
    json_tokener *tok;
    json_object *o;
    ssize_t n;
    int fd, rc;

    sim_path(path, sizeof(path), name, "meta.json");
    fd = sim_file_open(dirfd, name, "meta.json", O_RDONLY, 0, log);
    if (fd < 0)
        return -1;
    text = malloc(META_MAX_BYTES + 1);
    if (!text) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    n = read(fd, text, META_MAX_BYTES + 1);
    close(fd);
    if (n < 0) {
        XCC_PERR(log, "sim", "cannot read %s", path);
        free(text);
        return -1;
    }
    if (n > META_MAX_BYTES) {
        XCC_ERR(log, "sim", "%s is malformed: longer than %d bytes", path,
                META_MAX_BYTES);
        free(text);
        errno = EINVAL;
        return -1;
    }
    tok = json_tokener_new();
    if (!tok) {
        free(text);
        errno = ENOMEM;
        return -1;
    }
    o = json_tokener_parse_ex(tok, text, (int)n);
    if (!o || json_tokener_get_error(tok) != json_tokener_success) {
        enum json_tokener_error je = json_tokener_get_error(tok);

        XCC_ERR(log, "sim", "%s is malformed: %s at byte %zu", path,
                je == json_tokener_continue ? "unexpected end"
                                            : json_tokener_error_desc(je),
                json_tokener_get_parse_end(tok));
        rc = -1;
    } else {
        size_t end = json_tokener_get_parse_end(tok);

        while (end < (size_t)n && isspace((unsigned char)text[end]))
            end++;
        if (end < (size_t)n) {
            XCC_ERR(log, "sim", "%s is malformed: trailing data at byte %zu",
                    path, end);
            rc = -1;
        } else if (meta_from_json(o, m, &bad_key, &why) < 0) {
            XCC_ERR(log, "sim", "%s is malformed: '%s' %s", path, bad_key, why);
            rc = -1;
        } else {
            rc = 0;
        }
    }
    json_object_put(o);
    json_tokener_free(tok);
    free(text);
    if (rc < 0)
        errno = EINVAL;
    return rc;
}

int sim_meta_read(const char *name, struct sim_meta *m, xentoollog_logger *log)
{
    int dfd = sim_dir_open(name, log), rc, e;

    if (dfd < 0)
        return -1;
    rc = sim_meta_readat(dfd, name, m, log);
    e = errno;
    close(dfd);
    errno = e;
    return rc;
}

int sim_meta_write(const char *name, const struct sim_meta *m,
                   xentoollog_logger *log)
{
    int dfd = sim_dir_open(name, log), rc, e;

    if (dfd < 0)
        return -1;
    rc = sim_meta_writeat(dfd, name, m, log);
    e = errno;
    close(dfd);
    errno = e;
    return rc;
}

static int lock_fd(int fd)
{
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

int sim_meta_lock(const char *name)
{
    return lock_fd(sim_dir_open(name, &quiet_logger));
}

int sim_meta_lockat(int dirfd)
{
    /* a new open file description: the flock is this caller's own */
    return lock_fd(openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

void sim_meta_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* ---- processes ---- */

/* Reads /proc/PID/stat; returns the state and sets *start, or 0. */
static char proc_stat(pid_t pid, uint64_t *start)
{
    char path[64], buf[1024], *p;
    ssize_t n;
    int fd;
    char state;

    if (pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: the state follows the last ')' */
    p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return 0;
    state = p[2];
    p += 2;
    /* starttime is field 22; state is field 3 */
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (start)
        *start = p ? strtoull(p, NULL, 10) : 0;
    return state;
}

uint64_t sim_proc_starttime(pid_t pid)
{
    uint64_t start = 0;

    return proc_stat(pid, &start) ? start : 0;
}

char sim_proc_state(pid_t pid, uint64_t start)
{
    uint64_t s = 0;
    char state = proc_stat(pid, &s);

    if (!state || (start && s != start))
        return 0;
    return state;
}

static void sleep_us(unsigned us)
{
    struct timespec ts = {0, (long)us * 1000};

    nanosleep(&ts, NULL);
}

/*
 * Waits until pid is stopped (or running); true if it got there. A
 * stop or continue usually lands within microseconds (a checkpoint's pause
 * is measured up to this confirmation), so the polls start tight and back
 * off to PROC_POLL_US: a fixed 500 us poll added up to 500 us to each.
 */
static bool proc_wait(pid_t pid, uint64_t start, bool stopped)
{
    const uint64_t deadline = lib_now_ns() + PROC_WAIT_MS * 1000000ull;
    unsigned poll_us = PROC_POLL_MIN_US;

    for (;;) {
        char st = sim_proc_state(pid, start);

        if (!sim_proc_alive(st))
            return true; /* gone: nothing left to wait for */
        if (sim_proc_stopped(st) == stopped)
            return true;
        if (lib_now_ns() >= deadline)
            return false;
        sleep_us(poll_us);
        poll_us = poll_us * 2 > PROC_POLL_US ? PROC_POLL_US : poll_us * 2;
    }
}

/* Sends SIGSTOP (stop) or SIGCONT (!stop) and waits until pid is in that
 * state; a process already gone counts as done. */
static int proc_set_stopped(pid_t pid, uint64_t start, bool stop,
                            xentoollog_logger *log)
{
    if (kill(pid, stop ? SIGSTOP : SIGCONT) < 0)
        return errno == ESRCH ? 0 : -1;
    if (!proc_wait(pid, start, stop)) {
        XCC_ERR(log, "sim", "process %d did not %s", (int)pid,
                stop ? "stop" : "continue");
        errno = ETIMEDOUT;
        return -1;
    }
    return 0;
}

int sim_proc_stop(pid_t pid, uint64_t start, xentoollog_logger *log)
{
    return proc_set_stopped(pid, start, true, log);
}

int sim_proc_cont(pid_t pid, uint64_t start, xentoollog_logger *log)
{
    return proc_set_stopped(pid, start, false, log);
}

void sim_proc_kill(pid_t pid, uint64_t start)
{
    char st = sim_proc_state(pid, start);

    if (!sim_proc_alive(st))
        return;
    kill(pid, SIGKILL);
    for (unsigned waited = 0; waited < PROC_WAIT_MS * 1000;
         waited += PROC_POLL_US) {
        if (!sim_proc_alive(sim_proc_state(pid, start)))
            return;
        sleep_us(PROC_POLL_US);
    }
}
