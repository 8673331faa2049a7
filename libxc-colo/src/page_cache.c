/*
 * page_cache.c - the XBZRLE page cache: pfn -> copy of the page as last sent.
 *
 * Why this shape. QEMU's cache is direct mapped (pfn modulo the slot count)
 * and refuses to replace a slot used in the current or previous dirty-log
 * generation. The age rule is what keeps hot pages; the direct mapping is
 * what loses: two hot pfns that share a slot fight forever while other slots
 * hold cold pages. Here the same age rule runs over a fully associative
 * table, so a page is only refused when *every* slot is hot, which is the
 * situation where Belady's optimum keeps the old pages too.
 *
 * The age rule alone admits anything into a slot that has gone cold, so a
 * burst of pages sent once (a first pass, a big memset in the guest) would
 * wash out the pages that are about to come back. A full cache therefore
 * admits a pfn only if a small history says it was seen recently without
 * being cached (declined, evicted or dropped): the page has proven to be
 * re-dirtied. The history is a set-associative table of 32-bit pfn
 * fingerprints with FIFO replacement per set; a false positive only costs an
 * admission, never correctness.
 *
 * Two generations of protection are right when pages have locality, and
 * wrong when they are dirtied at random: then every eviction only loses (the
 * victim may still be dirtied in this generation, the newcomer is no likelier
 * to come back), and the best a policy can do is to hold still. So the cache
 * watches its own evictions (adapt_protect_age) and lengthens the protection
 * while victims come back before the newcomers get a hit.
 *
 * Victims are found by a clock hand over the slots. Per-generation counts of
 * recently used entries tell in O(1) whether any victim exists, so the hand
 * never spins over a fully hot table. See the header for the amortised cost
 * argument.
 *
 * For threads, a cache can be cut into shards (page_cache.h): independent
 * caches behind one handle, every pfn in the shard its hash picks.
 *
 * Depends on nothing else in the project, so it can be fuzzed and benchmarked
 * alone.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "page_cache.h"
#include "xccolo.h"

/* The codec's limit: XBZRLE lengths are 14-bit ULEB128, pages <= 64 KiB. */
#define PAGE_CACHE_MAX_PAGE_SIZE 65536u
/* The codec works in 8-byte words. */
#define PAGE_CACHE_PAGE_ALIGN 8u
/* Slot indices are u32 with one value kept for "none". */
#define PAGE_CACHE_MAX_SLOTS (UINT32_C(1) << 31)
#define NO_SLOT UINT32_MAX
/* An entry used in the last protect_age generations is kept: at least the
 * current and the previous one (QEMU's rule), more while evictions lose. */
#define MIN_PROTECT_AGE 2u
/* Beyond this a page is cold by any measure; bounds the clock's skips. */
#define MAX_PROTECT_AGE 8u
/* Entries are counted per generation for the last AGE_RING generations. */
#define AGE_RING 16u
/* Keeps tiny caches' hash tables from degenerating; costs 64 bytes. */
#define MIN_BUCKETS 16u
/* One history set per slot, 8 remembered pfns: enough to carry most
 * re-dirtied pages across a generation that declines 4x the cache. */
#define HISTORY_SETS_PER_SLOT 1u
/* A set is 32 bytes, in LRU order: 32-bit fingerprints make a
 * false "seen before" a 2^-28 event per miss, not a routine one. */
#define HISTORY_WAYS 8u

struct slot {
    uint64_t pfn;
    uint32_t next;     /* hash chain while in use, free list otherwise */
    uint32_t buf;      /* index of this slot's page buffer in data */
    uint32_t used_gen; /* generation of the last hit or store */
    uint8_t flags;     /* SLOT_* */
};

#define SLOT_IN_USE 1u
#define SLOT_ON_TRIAL 2u /* let in by an eviction, no hit yet */

struct history_set {
    uint32_t fp[HISTORY_WAYS]; /* newest first; 0 is an empty way */
};

/* A history way: a 31-bit fingerprint and whether the pfn was our victim. */
#define HISTORY_FP_MASK 0x7fffffffu
#define HISTORY_EVICTED 0x80000000u

/* The header promises at most 64 bytes of bookkeeping per slot. */
_Static_assert(sizeof(struct slot) == 24, "slot record grew");
_Static_assert(sizeof(struct history_set) == 32, "history set grew");

struct xcc_page_cache {
    size_t page_size;
    size_t budget;
    uint32_t nslots;
    uint32_t bucket_mask;
    uint32_t nhistory;
    uint32_t *buckets;
    struct slot *slots;
    struct history_set *history;
    uint8_t *data; /* nslots + 1 page buffers, one mapping */
    size_t data_len;
    uint32_t stage_buf;
    uint32_t free_head;
    uint32_t hand;
    uint32_t entries;
    uint32_t gen;
    uint32_t protect_age;
    uint64_t admit_gain;          /* trial entries hit (decaying) */
    uint64_t admit_loss;          /* victims that came back (decaying) */
    uint32_t gen_count[AGE_RING]; /* entries by used_gen, recent ones */
    uint64_t hits, misses, inserts, declined, evictions;
    uint32_t prefault_next;       /* buffers [0, prefault_next) touched */
    /* A sharded handle (page_cache.h) holds no pages itself: it routes. */
    uint32_t nshards;             /* 0: a plain cache */
    xcc_page_cache **shards;
    /* page_cache_journal_start: pfns that entered or left the cache. */
    bool journal_on;
    bool journal_lost;            /* an entry could not be recorded */
    uint64_t *journal;
    size_t journal_n, journal_cap;
};

/* A shard's header on its own cache lines: the threads write them all the
 * time (counters, clock hand), and a shared line would bounce. */
#define SHARD_ALIGN 64u

/* A zeroed header, alone on its cache lines. */
static xcc_page_cache *header_alloc(void)
{
    size_t n = (sizeof(xcc_page_cache) + SHARD_ALIGN - 1) / SHARD_ALIGN *
               SHARD_ALIGN;
    xcc_page_cache *c = aligned_alloc(SHARD_ALIGN, n);

    if (c)
        memset(c, 0, n);
    return c;
}

/* The shard of a pfn. A multiplicative hash of its own, not pfn_hash: the
 * shard's pfns must spread over all of that shard's buckets and history
 * sets, which pfn_hash's bits choose. */
static uint32_t shard_index(uint32_t nshards, uint64_t pfn)
{
    uint32_t h = (uint32_t)(((pfn + 1) * UINT64_C(0xD1B54A32D192ED03)) >> 32);
    return (uint32_t)(((uint64_t)h * nshards) >> 32);
}

/* The cache that holds pfn: c itself, or c's shard for pfn. */
static xcc_page_cache *route(xcc_page_cache *c, uint64_t pfn)
{
    return c->nshards ? c->shards[shard_index(c->nshards, pfn)] : c;
}

/* A 64-bit mix (multiply, xor-shift) so that both contiguous and strided
 * pfns spread over buckets and history sets. */
static uint64_t pfn_hash(uint64_t pfn)
{
    uint64_t h = pfn * UINT64_C(0x9E3779B97F4A7C15);
    h ^= h >> 29;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 32;
    return h;
}

static uint32_t bucket_of(const xcc_page_cache *c, uint64_t h)
{
    return (uint32_t)(h >> 32) & c->bucket_mask;
}

static uint8_t *buf_ptr(const xcc_page_cache *c, uint32_t buf)
{
    return c->data + (size_t)buf * c->page_size;
}

/* Records that pfn entered or left the cache (page_cache_journal). */
static void journal_add(xcc_page_cache *c, uint64_t pfn)
{
    if (!c->journal_on)
        return;
    if (c->journal_n == c->journal_cap) {
        size_t cap = c->journal_cap ? 2 * c->journal_cap : 1024;
        uint64_t *j = realloc(c->journal, cap * sizeof(*j));

        if (!j) {
            c->journal_lost = true;
            return;
        }
        c->journal = j;
        c->journal_cap = cap;
    }
    c->journal[c->journal_n++] = pfn;
}

/* ---- history of recently seen, uncached pfns ---- */

static struct history_set *history_set_of(const xcc_page_cache *c, uint64_t h,
                                          uint32_t *fp)
{
    /* Fingerprint from the high word, set from the low word: independent. */
    uint32_t f = (uint32_t)(h >> 32) & HISTORY_FP_MASK;
    *fp = f ? f : 1; /* 0 marks an empty way */
    return &c->history[((h & UINT32_MAX) * c->nhistory) >> 32];
}

static int history_find(const struct history_set *set, uint32_t fp)
{
    for (unsigned w = 0; w < HISTORY_WAYS; w++)
        if ((set->fp[w] & HISTORY_FP_MASK) == fp)
            return (int)w;
    return -1;
}

/* Remembers pfn as most recently seen; evicted marks a victim of ours. */
static void history_add(xcc_page_cache *c, uint64_t pfn, bool evicted)
{
    uint32_t fp;
    struct history_set *set = history_set_of(c, pfn_hash(pfn), &fp);
    int w = history_find(set, fp);
    /* Most recently seen first, so a page that keeps coming back (and keeps
     * being declined while the cache is hot) outlives pages seen once. The
     * least recently seen way falls off the end. */
    unsigned shift = w >= 0 ? (unsigned)w : HISTORY_WAYS - 1;
    memmove(&set->fp[1], &set->fp[0], shift * sizeof(fp));
    /* A returning victim is counted once: seeing it again clears the mark. */
    set->fp[0] = fp | (evicted ? HISTORY_EVICTED : 0);
}

/* Removes pfn from the history. Returns 0 when absent, else the way's
 * value (non-zero; HISTORY_EVICTED set if we evicted it). */
static uint32_t history_take(xcc_page_cache *c, uint64_t h)
{
    uint32_t fp;
    struct history_set *set = history_set_of(c, h, &fp);
    int w = history_find(set, fp);
    if (w < 0)
        return 0;
    uint32_t val = set->fp[w];
    memmove(&set->fp[w], &set->fp[w + 1],
            (HISTORY_WAYS - 1 - (unsigned)w) * sizeof(fp));
    set->fp[HISTORY_WAYS - 1] = 0;
    return val;
}

/* Whether pfn is in the history, and was evicted by us, without moving it. */
static uint32_t history_peek(const xcc_page_cache *c, uint64_t h)
{
    uint32_t fp;
    const struct history_set *set = history_set_of(c, h, &fp);
    int w = history_find(set, fp);
    return w < 0 ? 0 : set->fp[w];
}

/* ---- generations ---- */

static uint32_t age_of(const xcc_page_cache *c, const struct slot *s)
{
    return c->gen - s->used_gen; /* unsigned: correct across wrap, see rebase */
}

static uint32_t *gen_count(xcc_page_cache *c, uint32_t gen)
{
    return &c->gen_count[gen % AGE_RING];
}

static void touch(xcc_page_cache *c, struct slot *s)
{
    uint32_t age = age_of(c, s);
    if (age == 0)
        return;
    if (age < AGE_RING)
        (*gen_count(c, s->used_gen))--;
    (*gen_count(c, c->gen))++;
    s->used_gen = c->gen;
}

/* Takes s out of the per-generation counts before it leaves the table. */
static void untrack(xcc_page_cache *c, const struct slot *s)
{
    if (age_of(c, s) < AGE_RING)
        (*gen_count(c, s->used_gen))--;
}

/* Entries old enough to evict: O(protect_age), a small constant. */
static uint32_t evictable(xcc_page_cache *c)
{
    uint32_t protected_entries = 0;
    for (uint32_t a = 0; a < c->protect_age; a++)
        protected_entries += *gen_count(c, c->gen - a);
    return c->entries - protected_entries;
}

/*
 * Moves the generation to new_gen keeping every entry's age, ages of
 * AGE_RING and more being all alike. Ages are u32 differences, so they stay
 * exact as long as no entry is older than 2^32 generations; a rebase before
 * the counter wraps clamps them all.
 */
static void rebase(xcc_page_cache *c, uint32_t new_gen)
{
    memset(c->gen_count, 0, sizeof(c->gen_count));
    for (uint32_t i = 0; i < c->nslots; i++) {
        struct slot *s = &c->slots[i];
        if (!(s->flags & SLOT_IN_USE))
            continue;
        uint32_t age = age_of(c, s);
        if (age >= AGE_RING)
            age = AGE_RING;
        s->used_gen = new_gen - age;
        if (age < AGE_RING)
            (*gen_count(c, s->used_gen))++;
    }
    c->gen = new_gen;
}

/* Internal test hook (not exported): jump to a generation, e.g. near wrap. */
void page_cache_set_generation(xcc_page_cache *c, uint32_t gen);
void page_cache_set_generation(xcc_page_cache *c, uint32_t gen)
{
    rebase(c, gen);
}

/*
 * Adapts the protection age once per generation. An eviction pays when the
 * page let in gets a hit before the page pushed out comes back; it loses
 * when the victim comes back first. Pages dirtied at random (no locality)
 * make evictions a loss: each victim might still have been dirtied in this
 * generation, and the newcomer is no likelier to return than the victim.
 * Then the age rises and the cache settles. With locality (a hot set, a
 * working set that moves) victims stay away, evictions pay, and the age
 * falls back to QEMU's two generations.
 */
static void adapt_protect_age(xcc_page_cache *c)
{
    uint64_t gain = c->admit_gain, loss = c->admit_loss;
    if (loss > gain) {
        if (c->protect_age < MAX_PROTECT_AGE)
            c->protect_age++;
    } else if (gain > 2 * loss || (gain == 0 && loss == 0)) {
        /* Paying well, or no evidence at all: probe a shorter age. */
        if (c->protect_age > MIN_PROTECT_AGE)
            c->protect_age--;
    }
    /* Halve: evidence fades over a few generations. */
    c->admit_gain = gain / 2;
    c->admit_loss = loss / 2;
}

/* ---- the table ---- */

/* The link (bucket head or chain pointer) that holds pfn's slot, or the
 * chain's terminating link when pfn is absent (*link == NO_SLOT then). */
static uint32_t *find_link(xcc_page_cache *c, uint64_t h, uint64_t pfn)
{
    uint32_t *link = &c->buckets[bucket_of(c, h)];
    while (*link != NO_SLOT && c->slots[*link].pfn != pfn)
        link = &c->slots[*link].next;
    return link;
}

static void unlink_slot(xcc_page_cache *c, uint32_t idx)
{
    struct slot *s = &c->slots[idx];
    uint32_t *link = find_link(c, pfn_hash(s->pfn), s->pfn);
    *link = s->next;
    untrack(c, s);
    s->flags = 0;
    c->entries--;
}

/* The clock. Only called when evictable() > 0, which bounds the loop; all
 * slots are in use then (the free list is empty). */
static uint32_t take_victim(xcc_page_cache *c)
{
    for (;;) {
        uint32_t i = c->hand;
        c->hand = i + 1 == c->nslots ? 0 : i + 1;
        struct slot *s = &c->slots[i];
        if ((s->flags & SLOT_IN_USE) && age_of(c, s) >= c->protect_age) {
            uint64_t pfn = s->pfn;
            unlink_slot(c, i);
            history_add(c, pfn, true);
            journal_add(c, pfn);
            c->evictions++;
            return i;
        }
    }
}

/*
 * The policy. Returns the slot that now belongs to pfn (touched in this
 * generation), or NO_SLOT when declined; pfn is then absent.
 */
static uint32_t claim_slot(xcc_page_cache *c, uint64_t pfn)
{
    uint64_t h = pfn_hash(pfn);
    uint32_t *link = find_link(c, h, pfn);
    if (*link != NO_SLOT) {
        touch(c, &c->slots[*link]);
        return *link;
    }

    uint32_t idx;
    uint8_t flags = SLOT_IN_USE;
    uint32_t seen = history_peek(c, h);
    if (seen & HISTORY_EVICTED)
        c->admit_loss++; /* a victim of ours came back */
    if (c->free_head != NO_SLOT) {
        idx = c->free_head;
        c->free_head = c->slots[idx].next;
        if (seen)
            history_take(c, h); /* resident now: free its history way */
    } else if (seen && evictable(c) > 0) {
        history_take(c, h);
        idx = take_victim(c);
        flags |= SLOT_ON_TRIAL;
    } else {
        history_add(c, pfn, false);
        c->declined++;
        return NO_SLOT;
    }

    struct slot *s = &c->slots[idx];
    uint32_t b = bucket_of(c, h);
    s->pfn = pfn;
    s->next = c->buckets[b];
    c->buckets[b] = idx;
    s->flags = flags;
    s->used_gen = c->gen;
    (*gen_count(c, c->gen))++;
    c->entries++;
    journal_add(c, pfn);
    return idx;
}

xcc_page_cache *xcc_page_cache_new(size_t budget_bytes, size_t page_size)
{
    if (page_size == 0 || page_size > PAGE_CACHE_MAX_PAGE_SIZE ||
        page_size % PAGE_CACHE_PAGE_ALIGN != 0 || budget_bytes < page_size ||
        budget_bytes / page_size >= PAGE_CACHE_MAX_SLOTS) {
        errno = EINVAL;
        return NULL;
    }
    size_t nslots = budget_bytes / page_size;
    if (nslots + 1 > SIZE_MAX / page_size) {
        errno = ENOMEM;
        return NULL;
    }

    xcc_page_cache *c = header_alloc();
    if (!c)
        return NULL;
    c->page_size = page_size;
    c->budget = budget_bytes;
    c->nslots = (uint32_t)nslots;

    uint32_t nbuckets = MIN_BUCKETS;
    while (nbuckets < c->nslots)
        nbuckets <<= 1;
    c->bucket_mask = nbuckets - 1;
    c->nhistory = c->nslots * HISTORY_SETS_PER_SLOT;

    c->buckets = malloc((size_t)nbuckets * sizeof(*c->buckets));
    c->slots = malloc(nslots * sizeof(*c->slots));
    c->history = calloc(c->nhistory, sizeof(*c->history));
    /* Page data is populated up front: a first touch of each slot would
     * otherwise fault inside the save loop, and where faults are dear (a
     * dom0 is itself a guest) filling the cache cost ~14 us a page in a
     * checkpoint's pause. MAP_POPULATE pays for it once, at setup. */
    c->data_len = (nslots + 1) * page_size;
    void *data = mmap(NULL, c->data_len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    c->data = data == MAP_FAILED ? NULL : data;
    if (!c->buckets || !c->slots || !c->history || !c->data) {
        xcc_page_cache_free(c);
        errno = ENOMEM;
        return NULL;
    }

    memset(c->buckets, 0xff, (size_t)nbuckets * sizeof(*c->buckets));
    for (uint32_t i = 0; i < c->nslots; i++) {
        c->slots[i] = (struct slot){
            .next = i + 1 < c->nslots ? i + 1 : NO_SLOT,
            .buf = i,
        };
    }
    c->free_head = 0;
    c->stage_buf = c->nslots;
    c->protect_age = MIN_PROTECT_AGE;
    c->gen = AGE_RING;
    return c;
}

void xcc_page_cache_free(xcc_page_cache *c)
{
    if (!c)
        return;
    if (c->shards) {
        for (uint32_t k = 0; k < c->nshards; k++)
            xcc_page_cache_free(c->shards[k]);
        free(c->shards);
    }
    free(c->buckets);
    free(c->slots);
    free(c->history);
    free(c->journal);
    if (c->data)
        munmap(c->data, c->data_len);
    free(c);
}

const uint8_t *xcc_page_cache_lookup(xcc_page_cache *c, uint64_t pfn)
{
    if (!c)
        return NULL;
    c = route(c, pfn);
    uint32_t idx = *find_link(c, pfn_hash(pfn), pfn);
    if (idx == NO_SLOT) {
        c->misses++;
        return NULL;
    }
    struct slot *s = &c->slots[idx];
    touch(c, s);
    if (s->flags & SLOT_ON_TRIAL) {
        s->flags &= (uint8_t)~SLOT_ON_TRIAL;
        c->admit_gain++; /* the eviction that let it in paid */
    }
    c->hits++;
    return buf_ptr(c, s->buf);
}

const uint8_t *xcc_page_cache_update(xcc_page_cache *c, uint64_t pfn,
                                     const uint8_t *page)
{
    if (!c || !page) {
        errno = EINVAL;
        return NULL;
    }
    c = route(c, pfn);
    uint32_t idx = claim_slot(c, pfn);
    if (idx == NO_SLOT)
        return NULL;
    uint8_t *dst = buf_ptr(c, c->slots[idx].buf);
    /* page may be a pointer into the cache itself (even this very entry, or
     * the victim just reused): memmove keeps that well defined. */
    memmove(dst, page, c->page_size);
    c->inserts++;
    return dst;
}

int xcc_page_cache_insert(xcc_page_cache *c, uint64_t pfn, const uint8_t *page)
{
    if (!c || !page) {
        errno = EINVAL;
        return -1;
    }
    return xcc_page_cache_update(c, pfn, page) ? 0 : 1;
}

uint8_t *xcc_page_cache_stage(xcc_page_cache *c)
{
    if (!c || c->nshards) { /* a sharded handle: stage on the shard */
        errno = EINVAL;
        return NULL;
    }
    return buf_ptr(c, c->stage_buf);
}

const uint8_t *xcc_page_cache_commit(xcc_page_cache *c, uint64_t pfn)
{
    if (!c) {
        errno = EINVAL;
        return NULL;
    }
    c = route(c, pfn);
    uint32_t idx = claim_slot(c, pfn);
    if (idx == NO_SLOT)
        return NULL;
    /* The staged buffer becomes the entry; the entry's old buffer (or the
     * free or evicted slot's) becomes the next stage buffer. */
    struct slot *s = &c->slots[idx];
    uint32_t staged = c->stage_buf;
    c->stage_buf = s->buf;
    s->buf = staged;
    c->inserts++;
    return buf_ptr(c, staged);
}

size_t page_cache_prefault(xcc_page_cache *c, size_t n)
{
    size_t done = 0;

    if (c && c->nshards) {
        for (uint32_t k = 0; k < c->nshards && done < n; k++)
            done += page_cache_prefault(c->shards[k], n - done);
        return done;
    }
    while (c && done < n && c->prefault_next <= c->nslots) {
        /* Rewrites one byte with itself: the contents stay as they are. */
        volatile uint8_t *p = buf_ptr(c, c->prefault_next++);
        *p = *p;
        done++;
    }
    return done;
}

void xcc_page_cache_drop(xcc_page_cache *c, uint64_t pfn)
{
    if (!c)
        return;
    c = route(c, pfn);
    uint32_t idx = *find_link(c, pfn_hash(pfn), pfn);
    if (idx == NO_SLOT)
        return;
    unlink_slot(c, idx);
    c->slots[idx].next = c->free_head;
    c->free_head = idx;
    history_add(c, pfn, false);
    journal_add(c, pfn);
}

void xcc_page_cache_next_generation(xcc_page_cache *c)
{
    if (!c)
        return;
    if (c->nshards) {
        for (uint32_t k = 0; k < c->nshards; k++)
            xcc_page_cache_next_generation(c->shards[k]);
        return;
    }
    if (c->gen == UINT32_MAX)
        rebase(c, AGE_RING); /* once per 2^32 harvests: O(n) is fine */
    c->gen++;
    /* Entries last used AGE_RING generations ago leave the counts. */
    *gen_count(c, c->gen) = 0;
    adapt_protect_age(c);
}

void xcc_page_cache_get_stats(const xcc_page_cache *c,
                              struct xcc_page_cache_stats *st)
{
    if (!c || !st)
        return;
    if (c->nshards) {
        struct xcc_page_cache_stats one;
        *st = (struct xcc_page_cache_stats){
            .overhead_bytes = sizeof(*c) + c->nshards * sizeof(*c->shards),
        };
        for (uint32_t k = 0; k < c->nshards; k++) {
            xcc_page_cache_get_stats(c->shards[k], &one);
            st->hits += one.hits;
            st->misses += one.misses;
            st->inserts += one.inserts;
            st->declined += one.declined;
            st->evictions += one.evictions;
            st->entries += one.entries;
            st->capacity_pages += one.capacity_pages;
            st->budget_bytes += one.budget_bytes;
            st->overhead_bytes += one.overhead_bytes;
        }
        return;
    }
    size_t nbuckets = (size_t)c->bucket_mask + 1;
    *st = (struct xcc_page_cache_stats){
        .hits = c->hits,
        .misses = c->misses,
        .inserts = c->inserts,
        .declined = c->declined,
        .evictions = c->evictions,
        .entries = c->entries,
        .capacity_pages = c->nslots,
        .budget_bytes = c->budget,
        .overhead_bytes = sizeof(*c) + (size_t)c->nslots * sizeof(*c->slots) +
                          nbuckets * sizeof(*c->buckets) +
                          (size_t)c->nhistory * sizeof(*c->history) +
                          c->page_size,
    };
}

/* ---- shards (page_cache.h) ---- */

unsigned page_cache_max_shards(size_t budget_bytes, size_t page_size,
                               unsigned want)
{
    size_t pages = page_size ? budget_bytes / page_size : 0;

    if (want > PAGE_CACHE_MAX_SHARDS)
        want = PAGE_CACHE_MAX_SHARDS;
    return pages < want ? (unsigned)pages : want;
}

xcc_page_cache *page_cache_new_sharded(size_t budget_bytes, size_t page_size,
                                       unsigned nshards)
{
    if (nshards == 1)
        return xcc_page_cache_new(budget_bytes, page_size);
    if (nshards < 1 || nshards > PAGE_CACHE_MAX_SHARDS ||
        page_cache_max_shards(budget_bytes, page_size, nshards) < nshards) {
        errno = EINVAL;
        return NULL;
    }
    /* Rounded down to whole pages per shard: never above the budget. */
    size_t per = budget_bytes / page_size / nshards * page_size;
    xcc_page_cache *c = header_alloc();

    if (!c)
        return NULL;
    c->page_size = page_size;
    c->budget = per * nshards;
    c->shards = calloc(nshards, sizeof(*c->shards));
    if (!c->shards) {
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->nshards = nshards;
    for (unsigned k = 0; k < nshards; k++) {
        c->shards[k] = xcc_page_cache_new(per, page_size);
        if (!c->shards[k]) {
            int saved = errno;
            xcc_page_cache_free(c);
            errno = saved;
            return NULL;
        }
    }
    return c;
}

unsigned page_cache_nshards(const xcc_page_cache *c)
{
    return c && c->nshards ? c->nshards : 1;
}

unsigned page_cache_shard_of(const xcc_page_cache *c, uint64_t pfn)
{
    return c && c->nshards ? shard_index(c->nshards, pfn) : 0;
}

xcc_page_cache *page_cache_shard(xcc_page_cache *c, unsigned k)
{
    if (!c || !c->nshards)
        return c;
    return k < c->nshards ? c->shards[k] : NULL;
}

/* ---- the journal (page_cache.h) ---- */

void page_cache_journal_start(xcc_page_cache *c)
{
    if (!c)
        return;
    for (uint32_t k = 0; k < c->nshards; k++)
        page_cache_journal_start(c->shards[k]);
    c->journal_on = true;
}

int page_cache_journal(const xcc_page_cache *c, const uint64_t **pfns,
                       size_t *n)
{
    if (c->journal_lost) {
        errno = ENOMEM;
        return -1;
    }
    *pfns = c->journal;
    *n = c->journal_n;
    return 0;
}

void page_cache_journal_clear(xcc_page_cache *c)
{
    c->journal_n = 0;
}

bool page_cache_contains(xcc_page_cache *c, uint64_t pfn)
{
    if (!c)
        return false;
    c = route(c, pfn);
    return *find_link(c, pfn_hash(pfn), pfn) != NO_SLOT;
}
