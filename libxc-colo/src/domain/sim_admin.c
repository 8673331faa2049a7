/*
 * sim_admin.c - life cycle of simulated guests: the guest directory and its
 * meta.json, starting the detached guest process, pause, stop, list and
 * verify. The backend ops are in sim.c, the workloads in sim_guest.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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

/* How long pause/unpause/stop wait for the process to change state. */
#define PROC_WAIT_MS 5000
#define PROC_POLL_US 500
/* The first poll interval of proc_wait, which doubles up to PROC_POLL_US. */
#define PROC_POLL_MIN_US 10
/* The guest must be ready within this, plus PER_GIB per GiB filled. */
#define READY_TIMEOUT_MS 30000
#define READY_TIMEOUT_PER_GIB_MS 10000
/* Largest guest accepted: far beyond any tmpfs here, catches typos. */
#define SIM_MEM_MAX (1ull << 40)

/* ---- names and paths ---- */

static bool name_ok(const char *name)
{
    size_t n = strlen(name);

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

    if (n == 0 || n > SIM_NAME_MAX || !strcmp(name, ".") ||
        !strcmp(name, "..")) {
        XCC_ERR(log, "sim",
                "bad guest name '%s': 1 to %d characters of [A-Za-z0-9_.-]",
                name ? name : "", SIM_NAME_MAX);
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];

        if (!isalnum(c) && c != '_' && c != '.' && c != '-') {
            XCC_ERR(log, "sim",
                    "bad guest name '%s': character '%c' not in "
                    "[A-Za-z0-9_.-]",
                    name, isprint(c) ? c : '?');
            errno = EINVAL;
            return -1;
        }
    }
    return 0;
}

const char *sim_root(void)
{
    const char *r = secure_getenv("XCC_SIM_ROOT");

    return r && *r ? r : SIM_ROOT;
}

void sim_path(char *buf, size_t len, const char *name, const char *file)
{
    if (file)
        snprintf(buf, len, "%s/%s/%s", sim_root(), name, file);
    else
        snprintf(buf, len, "%s/%s", sim_root(), name);
}

/* ---- meta.json: a flat object of strings and integers ---- */

static void json_str(FILE *f, const char *key, const char *val, bool last)
{
    fprintf(f, "  \"%s\": \"", key);
    for (const char *p = val; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', f);
        if ((unsigned char)*p >= 0x20)
            fputc(*p, f);
    }
    fprintf(f, "\"%s\n", last ? "" : ",");
}

int sim_meta_write(const char *name, const struct sim_meta *m,
                   xentoollog_logger *log)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    FILE *f;

    sim_path(tmp, sizeof(tmp), name, "meta.json.tmp");
    sim_path(path, sizeof(path), name, "meta.json");
    f = fopen(tmp, "w");
    if (!f) {
        XCC_PERR(log, "sim", "cannot write %s", tmp);
        return -1;
    }
    fprintf(f, "{\n");
    json_str(f, "name", m->name, false);
    fprintf(f, "  \"pid\": %" PRId64 ",\n", m->pid);
    fprintf(f, "  \"pid_start\": %" PRIu64 ",\n", m->pid_start);
    fprintf(f, "  \"mem_bytes\": %" PRIu64 ",\n", m->mem_bytes);
    fprintf(f, "  \"page_size\": %" PRIu32 ",\n", m->page_size);
    json_str(f, "holes", m->holes, false);
    json_str(f, "workload", m->workload, false);
    fprintf(f, "  \"seed\": %" PRIu64 ",\n", m->seed);
    fprintf(f, "  \"ram_addr\": %" PRIu64 ",\n", m->ram_addr);
    json_str(f, "tracking", m->tracking, false);
    fprintf(f, "  \"incomplete\": %d\n}\n", m->incomplete);
    if (fflush(f) != 0 || ferror(f)) {
        XCC_PERR(log, "sim", "cannot write %s", tmp);
        fclose(f);
        unlink(tmp);
        return -1;
    }
    fclose(f);
    if (rename(tmp, path) < 0) {
        XCC_PERR(log, "sim", "cannot rename %s", tmp);
        unlink(tmp);
        return -1;
    }
    return 0;
}

static const char *json_skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

/* Parses a JSON string at p (after the quote) into out; returns the
 * position after the closing quote or NULL. */
static const char *json_parse_str(const char *p, char *out, size_t len)
{
    size_t n = 0;

    for (; *p && *p != '"'; p++) {
        if (*p == '\\') {
            p++;
            if (*p != '"' && *p != '\\' && *p != '/')
                return NULL;
        }
        if (n + 1 >= len)
            return NULL;
        out[n++] = *p;
    }
    if (*p != '"')
        return NULL;
    out[n] = '\0';
    return p + 1;
}

static int meta_set(struct sim_meta *m, const char *key, const char *sval,
                    bool is_str, long long ival)
{
    struct {
        const char *key;
        char *buf;
        size_t len;
    } strs[] = {
        {"name", m->name, sizeof(m->name)},
        {"holes", m->holes, sizeof(m->holes)},
        {"workload", m->workload, sizeof(m->workload)},
        {"tracking", m->tracking, sizeof(m->tracking)},
    };

    for (size_t i = 0; i < XCC_ARRAY_SIZE(strs); i++) {
        if (strcmp(key, strs[i].key))
            continue;
        if (!is_str || strlen(sval) >= strs[i].len)
            return -1;
        strcpy(strs[i].buf, sval);
        return 0;
    }
    if (is_str)
        return 0; /* unknown keys are ignored */
    if (!strcmp(key, "pid"))
        m->pid = ival;
    else if (!strcmp(key, "pid_start"))
        m->pid_start = (uint64_t)ival;
    else if (!strcmp(key, "mem_bytes"))
        m->mem_bytes = (uint64_t)ival;
    else if (!strcmp(key, "page_size"))
        m->page_size = (uint32_t)ival;
    else if (!strcmp(key, "seed"))
        m->seed = (uint64_t)ival;
    else if (!strcmp(key, "ram_addr"))
        m->ram_addr = (uint64_t)ival;
    else if (!strcmp(key, "incomplete"))
        m->incomplete = ival != 0;
    return 0;
}

static int meta_parse(const char *text, struct sim_meta *m)
{
    const char *p = json_skip_ws(text);
    char key[32], sval[SIM_HOLES_MAX];

    memset(m, 0, sizeof(*m));
    if (*p++ != '{')
        return -1;
    for (;;) {
        p = json_skip_ws(p);
        if (*p == '}')
            break;
        if (*p++ != '"' || !(p = json_parse_str(p, key, sizeof(key))))
            return -1;
        p = json_skip_ws(p);
        if (*p++ != ':')
            return -1;
        p = json_skip_ws(p);
        if (*p == '"') {
            if (!(p = json_parse_str(p + 1, sval, sizeof(sval))) ||
                meta_set(m, key, sval, true, 0) < 0)
                return -1;
        } else {
            char *end;
            unsigned long long v;
            bool neg = *p == '-';

            errno = 0;
            v = strtoull(p + neg, &end, 10);
            if (errno || end == p + neg)
                return -1;
            meta_set(m, key, NULL, false, neg ? -(long long)v : (long long)v);
            p = end;
        }
        p = json_skip_ws(p);
        if (*p == ',')
            p++;
        else if (*p != '}')
            return -1;
    }
    if (!m->mem_bytes || !m->page_size)
        return -1;
    return 0;
}

int sim_meta_read(const char *name, struct sim_meta *m, xentoollog_logger *log)
{
    char path[PATH_MAX], text[SIM_HOLES_MAX + 2048];
    ssize_t n;
    int fd;

    sim_path(path, sizeof(path), name, "meta.json");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        char dir[PATH_MAX];

        sim_path(dir, sizeof(dir), name, NULL);
        if (e == ENOENT && access(dir, F_OK) < 0)
            XCC_ERR(log, "sim", "no simulated guest '%s' (%s is missing)", name,
                    dir);
        else
            XCC_PERR(log, "sim", "cannot open %s", path);
        errno = e;
        return -1;
    }
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n < 0) {
        XCC_PERR(log, "sim", "cannot read %s", path);
        return -1;
    }
    text[n] = '\0';
    if (meta_parse(text, m) < 0) {
        XCC_ERR(log, "sim", "%s is malformed", path);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int sim_meta_lock(const char *name)
{
    char dir[PATH_MAX];
    int fd;

    sim_path(dir, sizeof(dir), name, NULL);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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

void sim_meta_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* ---- holes ---- */

uint64_t *sim_holes_parse(const char *spec, uint64_t nr_pfns,
                          xentoollog_logger *log)
{
    uint64_t *bm = calloc((nr_pfns + 63) / 64 ? (nr_pfns + 63) / 64 : 1, 8);
    const char *p = spec;

    if (!bm)
        return NULL;
    while (p && *p) {
        const char *item = p;
        size_t itemlen = strcspn(p, ",");
        char *end;
        uint64_t first, last;

        errno = 0;
        if (!isdigit((unsigned char)*p))
            goto bad;
        first = strtoull(p, &end, 0);
        last = first;
        if (errno)
            goto bad;
        if (*end == '-') {
            if (!isdigit((unsigned char)end[1]))
                goto bad;
            last = strtoull(end + 1, &end, 0);
            if (errno)
                goto bad;
        }
        if (*end != ',' && *end != '\0')
            goto bad;
        if (last < first || last >= nr_pfns) {
            XCC_ERR(log, "sim",
                    "holes: '%.*s' is outside pfns 0-%" PRIu64 " (or reversed)",
                    (int)itemlen, item, nr_pfns - 1);
            free(bm);
            errno = EINVAL;
            return NULL;
        }
        for (uint64_t i = first; i <= last; i++)
            bm[i / 64] |= 1ull << (i % 64);
        p = *end ? end + 1 : end;
        continue;
    bad:
        XCC_ERR(log, "sim",
                "holes: bad item '%.*s' in '%s': expected PFN or FIRST-LAST, "
                "comma-separated",
                (int)itemlen, item, spec);
        free(bm);
        errno = EINVAL;
        return NULL;
    }
    return bm;
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

static bool is_stopped(char st)
{
    return st == 'T' || st == 't';
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
        if (is_stopped(st) == stopped)
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

/* Kills pid (if it is still the process started at `start`) and waits
 * until it is gone or a zombie. */
static void proc_kill(pid_t pid, uint64_t start)
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

/* ---- directories ---- */

/* Removes every file in the guest directory, then the directory. */
static int remove_guest_dir(const char *name)
{
    char dir[PATH_MAX];
    DIR *dp;
    struct dirent *de;
    int dfd, rc = 0;

    sim_path(dir, sizeof(dir), name, NULL);
    dp = opendir(dir);
    if (!dp)
        return -1;
    dfd = dirfd(dp);
    while ((de = readdir(dp))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT)
            rc = -1;
    }
    closedir(dp);
    if (rmdir(dir) < 0)
        rc = -1;
    return rc;
}

static int create_file(const char *name, const char *file, uint64_t size,
                       xentoollog_logger *log)
{
    char path[PATH_MAX];
    int fd;

    sim_path(path, sizeof(path), name, file);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        XCC_PERR(log, "sim", "cannot create %s", path);
        return -1;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
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
    int fd;

    if (mkdir(sim_root(), 0755) < 0 && errno != EEXIST) {
        XCC_PERR(log, "sim", "cannot create %s", sim_root());
        return -1;
    }
    sim_path(dir, sizeof(dir), name, NULL);
    if (mkdir(dir, 0700) < 0) {
        int e = errno;
        if (e == EEXIST)
            XCC_ERR(log, "sim",
                    "guest name '%s' is in use (%s exists; 'xc-colo sim "
                    "stop %s' removes it)",
                    name, dir, name);
        else
            XCC_PERR(log, "sim", "cannot create %s", dir);
        errno = e;
        return -1;
    }
    fd = create_file(name, "ram", mem_bytes, log);
    if (fd < 0)
        goto fail;
    close(fd);
    fd = create_file(name, "dirty", sim_dirty_file_size(mem_bytes / psz), log);
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
    if (sim_meta_write(name, &m, log) < 0)
        goto fail;
    return 0;
fail : {
    int e = errno;
    remove_guest_dir(name);
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
    char path[PATH_MAX], buf[512];
    ssize_t n;
    off_t size;
    int fd;

    sim_path(path, sizeof(path), name, "guest.log");
    fd = open(path, O_RDONLY | O_CLOEXEC);
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
 * Forks the detached guest (double fork + setsid) and waits for its report.
 * On failure the process is gone when this returns.
 */
static int spawn_guest(const struct sim_guest_args *a, xentoollog_logger *log)
{
    int fds[2], status, rc;
    pid_t c1, child = 0;
    bool said_why = false;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        XCC_PERR(log, "sim", "pipe");
        return -1;
    }
    c1 = fork();
    if (c1 < 0) {
        XCC_PERR(log, "sim", "fork");
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (c1 == 0) {
        pid_t c2;

        close(fds[0]);
        setsid();
        c2 = fork();
        if (c2 == 0)
            sim_guest_main(a, fds[1]);
        _exit(c2 < 0 ? 1 : 0);
    }
    close(fds[1]);
    while (waitpid(c1, &status, 0) < 0 && errno == EINTR)
        ;
    rc = read_ready(fds[0], a->fill ? a->mem_bytes : 0, &child, &said_why, log);
    close(fds[0]);
    if (rc < 0) {
        int e = errno;
        if (child > 0)
            proc_kill(child, 0);
        if (!said_why)
            log_guest_log_tail(a->name, log);
        errno = e;
    }
    return rc;
}

static int guest_args_init(struct sim_guest_args *a, const char *name,
                           uint64_t mem_bytes, const char *workload,
                           uint64_t seed, const char *holes,
                           const char *tracking, uint64_t **holes_bm,
                           xentoollog_logger *log)
{
    long psz = sysconf(_SC_PAGESIZE);
    uint64_t nr = mem_bytes / (uint64_t)psz;

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
    *holes_bm = sim_holes_parse(holes, nr, log);
    if (!*holes_bm)
        return -1;
    if (sim_workload_parse(workload, nr, *holes_bm, &a->wl, log) < 0) {
        free(*holes_bm);
        *holes_bm = NULL;
        return -1;
    }
    a->name = name;
    a->workload = workload;
    a->seed = seed;
    a->mem_bytes = mem_bytes;
    a->page_size = (uint32_t)psz;
    a->holes = *holes_bm;
    a->tracking = tracking;
    return 0;
}

int xcc_sim_start(const char *name, uint64_t mem_bytes, const char *workload,
                  uint64_t seed, const char *holes, const char *tracking,
                  xentoollog_logger *log)
{
    struct sim_guest_args a;
    uint64_t *holes_bm = NULL;
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
    if (guest_args_init(&a, name, mem_bytes, workload, seed, holes, tracking,
                        &holes_bm, log) < 0)
        return -1;
    a.fill = true;
    rc = make_guest_dir(name, mem_bytes, holes, workload, seed, tracking, log);
    if (rc == 0) {
        rc = spawn_guest(&a, log);
        if (rc < 0) {
            int e = errno;
            XCC_ERR(log, "sim", "guest '%s' did not start; removed it", name);
            remove_guest_dir(name);
            errno = e;
        }
    }
    free(holes_bm);
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
    struct sim_guest_args a;
    struct sim_meta m;
    uint64_t *holes_bm = NULL;
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
    if (guest_args_init(&a, name, m.mem_bytes, wl, seed, m.holes,
                        tracking_valid(m.tracking) ? m.tracking : "auto",
                        &holes_bm, log) < 0)
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
    free(holes_bm);
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
    char dir[PATH_MAX];
    struct stat st;

    if (!log)
        log = lib_default_logger();
    if (sim_check_name(name, log) < 0)
        return -1;
    sim_path(dir, sizeof(dir), name, NULL);
    if (stat(dir, &st) < 0) {
        XCC_ERR(log, "sim", "no simulated guest '%s' (%s is missing)", name,
                dir);
        errno = ENOENT;
        return -1;
    }
    if (sim_meta_read(name, &m, NULL) == 0 && m.pid > 0)
        proc_kill((pid_t)m.pid, m.pid_start);
    if (remove_guest_dir(name) < 0) {
        XCC_PERR(log, "sim", "cannot remove %s", dir);
        return -1;
    }
    return 0;
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
    return proc_set_stopped((pid_t)m.pid, m.pid_start, pause, log);
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
    int fd, rc;

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
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        XCC_PERR(log, "sim", "cannot open %s", path);
        return -1;
    }
    ram = mmap(NULL, m.mem_bytes, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (ram == MAP_FAILED) {
        XCC_PERR(log, "sim", "cannot map %s", path);
        return -1;
    }
    /* a running ledger changes under us: look at it stopped */
    char st = m.pid > 0 ? sim_proc_state((pid_t)m.pid, m.pid_start) : 0;
    if (sim_proc_alive(st) && !is_stopped(st)) {
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

static void read_progress(const char *name, struct xcc_sim_info *info)
{
    char path[PATH_MAX];
    struct sim_dirty_hdr h;
    int fd;

    sim_path(path, sizeof(path), name, "dirty");
    fd = open(path, O_RDONLY | O_CLOEXEC);
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
    char dir[PATH_MAX];
    struct stat st;

    if (!log)
        log = lib_default_logger();
    memset(info, 0, sizeof(*info));
    if (sim_check_name(name, log) < 0)
        return -1;
    sim_path(dir, sizeof(dir), name, NULL);
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        XCC_ERR(log, "sim", "no simulated guest '%s' (%s is missing)", name,
                dir);
        errno = ENOENT;
        return -1;
    }
    snprintf(info->name, sizeof(info->name), "%s", name);
    if (sim_meta_read(name, &m, NULL) < 0) {
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
    read_progress(name, info);
    if (m.incomplete) {
        info->state = XCC_SIM_INCOMPLETE;
    } else if (m.pid <= 0) {
        info->state = XCC_SIM_NONE;
    } else {
        char s = sim_proc_state((pid_t)m.pid, m.pid_start);

        if (!sim_proc_alive(s))
            info->state = XCC_SIM_DEAD;
        else if (is_stopped(s))
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

    if (!log)
        log = lib_default_logger();
    *list = NULL;
    *count = 0;
    dp = opendir(sim_root());
    if (!dp)
        return errno == ENOENT ? 0 : -1;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.' || !name_ok(de->d_name))
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
