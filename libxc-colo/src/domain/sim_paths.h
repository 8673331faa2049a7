/*
 * sim_paths.h - the leaf under every sim module: guest names, the guest
 * root and each guest's directory (reached only through checked directory
 * fds), meta.json, and control of the guest process. It calls nothing else
 * of the sim code.
 *
 * The root (SIM_ROOT for root, SIM_ROOT-UID for another user, or
 * $XCC_SIM_ROOT) lives in world-writable /dev/shm, where anyone may have
 * made it first or put a symbolic link in its place. So the root and each
 * guest directory are opened with O_NOFOLLOW and accepted only as a real
 * directory owned by the caller and not writable by group or others; files
 * are opened with openat(dirfd, ..., O_NOFOLLOW) and removed with unlinkat
 * on the directory fd, never through a path.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_SIM_PATHS_H
#define XCC_SIM_PATHS_H

#include <limits.h>
#include <sys/types.h>

#include "domain.h"

#define SIM_ROOT "/dev/shm/xc-colo"
#define SIM_NAME_MAX XCC_SIM_NAME_MAX
#define SIM_WORKLOAD_MAX 256
/* Long enough for a few hundred ranges; meta.json stays small. */
#define SIM_HOLES_MAX 4096
#define SIM_TRACKING_MAX 16

/* A logger that drops every message (NULL means the default logger). */
xentoollog_logger *sim_quiet_logger(void);

/* ---- names and paths ---- */

/* True for a valid guest name ([A-Za-z0-9_.-]+, at most 64, not . or ..). */
bool sim_name_ok(const char *name);
/* The same, logging what is wrong (EINVAL). */
int sim_check_name(const char *name, xentoollog_logger *log);

/*
 * The directory of all guests: $XCC_SIM_ROOT when set (tests), else
 * SIM_ROOT for uid 0 and SIM_ROOT-UID for any other user.
 */
const char *sim_root(void);
/* ROOT/name[/file] into buf: for messages and tests, never to open. */
void sim_path(char *buf, size_t len, const char *name, const char *file);

/*
 * Opens the root, checked (see above). With create, makes it 0700 first
 * when it is missing. Returns a directory fd, or -1 with errno, logged,
 * except ENOENT when !create and log_missing is false.
 */
int sim_root_open(bool create, bool log_missing, xentoollog_logger *log);

/*
 * Opens guest name's directory, checked like the root. Each call gives a
 * new open file description, so a flock on it belongs to the caller. This
 * is the safe way to a guest's files (sim_file_open). Returns -1 with errno
 * (ENOENT: no such guest, logged as such).
 */
int sim_dir_open(const char *name, xentoollog_logger *log);
int sim_dir_openat(int rootfd, const char *name, xentoollog_logger *log);

/*
 * openat(dirfd, file, flags | O_NOFOLLOW | O_CLOEXEC, mode): a symbolic
 * link is refused, and a failure is logged with the path (name is the
 * guest's, for the message). log NULL: silent.
 */
int sim_file_open(int dirfd, const char *name, const char *file, int flags,
                  mode_t mode, xentoollog_logger *log);

/*
 * Removes every entry of guest name's directory with unlinkat on its fd,
 * then the directory itself from the root's fd. A symbolic link at name is
 * refused, not followed.
 */
int sim_dir_remove(int rootfd, const char *name, xentoollog_logger *log);

/* ---- meta.json ---- */
struct sim_meta {
    char name[SIM_NAME_MAX + 1];
    int64_t pid;        /* 0: no process */
    uint64_t pid_start; /* /proc/PID/stat starttime, against pid reuse */
    uint64_t mem_bytes;
    uint32_t page_size;
    char holes[SIM_HOLES_MAX];
    char workload[SIM_WORKLOAD_MAX];
    uint64_t seed;
    uint64_t ram_addr;
    char tracking[SIM_TRACKING_MAX]; /* pagemap, bitmap, auto, none */
    int incomplete;
};

/* Reads dirfd's meta.json (name is for messages). */
int sim_meta_readat(int dirfd, const char *name, struct sim_meta *m,
                    xentoollog_logger *log);
/* Writes meta.json atomically (temporary file + renameat). */
int sim_meta_writeat(int dirfd, const char *name, const struct sim_meta *m,
                     xentoollog_logger *log);
/* The same through sim_dir_open(name). */
int sim_meta_read(const char *name, struct sim_meta *m, xentoollog_logger *log);
int sim_meta_write(const char *name, const struct sim_meta *m,
                   xentoollog_logger *log);
/*
 * flock on the guest directory around read-modify-write of the meta.
 * Returns the locked directory fd (usable as the dirfd of the calls above)
 * or -1.
 */
int sim_meta_lock(const char *name);
/* The same for an open guest directory (a new fd, locked). */
int sim_meta_lockat(int dirfd);
void sim_meta_unlock(int fd);

/* ---- the guest process ---- */

/*
 * State of process pid if its starttime is `start` (0: any): 'R', 'S', 'D',
 * 'T' (stopped), 'Z', ..., or 0 when it is gone or is another process.
 */
char sim_proc_state(pid_t pid, uint64_t start);
/* starttime of pid (field 22 of /proc/PID/stat), 0 if gone. */
uint64_t sim_proc_starttime(pid_t pid);
/* True for a process that is there and not a zombie. */
static inline bool sim_proc_alive(char state)
{
    return state && state != 'Z' && state != 'X' && state != 'x';
}
static inline bool sim_proc_stopped(char state)
{
    return state == 'T' || state == 't';
}

/* SIGSTOP / SIGCONT and wait (up to a few seconds) for the state change. */
int sim_proc_stop(pid_t pid, uint64_t start, xentoollog_logger *log);
int sim_proc_cont(pid_t pid, uint64_t start, xentoollog_logger *log);
/* SIGKILL pid if it is still the process started at `start`, and wait
 * until it is gone or a zombie. */
void sim_proc_kill(pid_t pid, uint64_t start);

#endif /* XCC_SIM_PATHS_H */
