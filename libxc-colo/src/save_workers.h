/*
 * save_workers.h - a small pool of threads that run one function together,
 * for the save loop's parallel page encoding (--threads N).
 *
 * The pool has n workers: worker 0 is the calling thread, workers 1..n-1
 * are threads started once, in save_workers_new, and parked on a condition
 * variable between runs. save_workers_run(fn, arg, ntasks) calls
 * fn(arg, task) once for every task 0..ntasks-1, on whichever worker claims
 * it first, and returns when every task has returned: a fork and a join per
 * call, nothing left running. The caller works too, so a run never waits
 * for a thread that has not been scheduled yet: if the machine is busy and
 * a thread wakes late, the caller has claimed its tasks and the late thread
 * finds none (the run is then no slower than one thread). What a task does
 * is the caller's business; the save loop makes one task per page-cache
 * shard (save.c, page_cache.h), so tasks share no mutable state and take no
 * lock while they work.
 *
 * The pool threads block every signal: a SIGINT meant to cancel a save
 * must land on a thread whose blocking write it can interrupt.
 *
 * Internal API: names start save_workers_.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_SAVE_WORKERS_H
#define XCC_SAVE_WORKERS_H

#include <stddef.h>
#include <stdint.h>

#include "private.h"

struct save_workers;

/* One task of a run, task in 0..ntasks-1. */
typedef void save_work_fn(void *arg, unsigned task);

/*
 * A pool of n workers (2..XCC_SAVE_MAX_THREADS; the caller counts as one):
 * starts n - 1 threads. NULL with errno (EINVAL for n, or pthread_create's
 * error, logged on log).
 */
struct save_workers *save_workers_new(unsigned n, xentoollog_logger *log);

/* Stops and joins the threads (none may be in a run). NULL is a no-op. */
void save_workers_free(struct save_workers *w);

/* The number of workers, the caller included. */
unsigned save_workers_count(const struct save_workers *w);

/*
 * Calls fn(arg, task) once for each task 0..ntasks-1 (at most
 * SAVE_WORKERS_MAX_TASKS), spread over the workers as they claim them, the
 * caller included, and returns when every call has returned. Everything
 * the tasks wrote is visible to the caller afterwards. One run at a time,
 * from one thread.
 */
#define SAVE_WORKERS_MAX_TASKS 65535u
void save_workers_run(struct save_workers *w, save_work_fn *fn, void *arg,
                      unsigned ntasks);

/* Nanoseconds worker k (0: the caller) has spent in tasks, over all runs. */
uint64_t save_workers_busy_ns(const struct save_workers *w, unsigned k);

/*
 * Groups the items 0..n-1 by key (each key[i] < nbins), keeping their order
 * within a group (a counting sort): order[start[b] .. start[b + 1]) lists
 * the items of group b, for b in 0..nbins-1. order holds n entries, start
 * nbins + 1.
 */
void save_workers_partition(const uint8_t *key, size_t n, unsigned nbins,
                            uint32_t *order, size_t *start);

#endif /* XCC_SAVE_WORKERS_H */
