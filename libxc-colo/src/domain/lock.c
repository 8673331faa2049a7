/*
 * lock.c - the saver lock: one saver per domain.
 *
 * Two savers of one domain would each clean the other's dirty log, and
 * both would send images that miss pages. A save, a migration or a
 * checkpoint run therefore holds an exclusive flock on a lock file of the
 * domain for its whole run (the backend says where the file lives: the
 * guest's directory for sim, /run/xc-colo for Xen). flock, not fcntl
 * locks: two savers in one process conflict too, and closing another fd
 * of the file does not drop it. The holder writes its pid into the file so
 * that the refused saver can name it. A flock dies with its process, so a
 * killed saver leaves no stale lock.
 *
 * The file doubles as a liveness mark: when the guest is destroyed under
 * the save (`sim stop` removes its directory), the file's link count drops
 * to 0 and domain_lock_check fails the save instead of letting it report
 * success for a guest that no longer exists.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "domain.h"

#define CTX "lock"
/* A holder writes its pid right after taking the lock: give it this long
 * to appear before calling the holder unknown. */
#define HOLDER_READ_TRIES 20
#define HOLDER_READ_WAIT_NS 5000000L

/* The pid written in the lock file, 0 when there is none (yet). */
static pid_t read_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    long v;
    char *end;

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno || end == buf || v <= 0 || v > INT32_MAX)
        return 0;
    return (pid_t)v;
}

int domain_lockfile(int dirfd, const char *name, pid_t *holder)
{
    int fd = openat(dirfd, name,
                    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct stat st;
    char buf[32];
    int len, e;

    *holder = 0;
    errno = 0;
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        e = errno;
        close(fd);
        errno = e ? e : EINVAL;
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        e = errno;
        if (e == EWOULDBLOCK) {
            const struct timespec wait = {0, HOLDER_READ_WAIT_NS};
            for (int i = 0; i < HOLDER_READ_TRIES && !*holder; i++) {
                *holder = read_holder(fd);
                if (!*holder)
                    nanosleep(&wait, NULL);
            }
            e = EBUSY;
        }
        close(fd);
        errno = e;
        return -1;
    }
    len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
        e = errno ? errno : EIO;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int domain_lock(xcc_domain *d)
{
    pid_t holder = 0;
    int fd;

    if (d->locked || !d->ops->lock)
        return 0;
    fd = d->ops->lock(d, &holder);
    if (fd < 0) {
        if (errno == EBUSY && holder)
            XCC_ERR(d->log, CTX, "'%s' is being saved by process %ld: one "
                    "saver per domain", d->name, (long)holder);
        else if (errno == EBUSY)
            XCC_ERR(d->log, CTX, "'%s' is being saved by another process: "
                    "one saver per domain", d->name);
        else
            XCC_PERR(d->log, CTX, "cannot take the saver lock of '%s'",
                     d->name);
        return -1;
    }
    d->lock_fd = fd;
    d->locked = true;
    return 0;
}

int domain_lock_check(xcc_domain *d)
{
    struct stat st;

    if (!d->locked)
        return 0;
    if (fstat(d->lock_fd, &st) < 0) {
        XCC_PERR(d->log, CTX, "checking the saver lock of '%s'", d->name);
        return -1;
    }
    if (st.st_nlink == 0) {
        XCC_ERR(d->log, CTX, "'%s' was destroyed during the save (its lock "
                "file was removed)", d->name);
        errno = ENOENT;
        return -1;
    }
    return 0;
}

void domain_unlock(xcc_domain *d)
{
    if (!d->locked)
        return;
    /* The file stays: removing it would race with a saver that has it
     * open and is about to lock it. */
    if (ftruncate(d->lock_fd, 0) < 0) {
        /* Only the pid goes stale: the flock is what counts. */
    }
    close(d->lock_fd);
    d->locked = false;
}
