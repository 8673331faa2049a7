/*
 * fuzz_xbzrle_roundtrip.c - encode then decode, on pages built from input.
 *
 * Input: byte 0 picks the page length, bytes 1-2 the output room (from
 * nothing to more than any delta needs), byte 3 the old page's seed; the
 * rest are edits "position (2 bytes), count, value" making the new page
 * (a count over 127 repeats the edit into a run up to a few KiB, so long
 * runs and 14-bit limits come up). Checks: encode never writes past
 * dst_len (guard bytes); every encoder path gives the same result and
 * bytes; 0 only for equal pages; a delta decodes back to the new page; -1
 * only when the exact delta would not fit (or cannot be expressed).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xccolo.h"

#define GUARD 64
#define GUARD_BYTE 0xa5
#define MAX_PAGE 65536
#define ROOMY (MAX_PAGE + MAX_PAGE / 2 + 64) /* more than any delta */

static const size_t page_lens[] = {8, 16, 24, 64, 72, 128, 200, 4096, 16384,
                                   65536};
static const char *const impls[] = {"scalar", "avx2", "avx512"};
#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

static uint8_t old_page[MAX_PAGE], new_page[MAX_PAGE], work[MAX_PAGE];
static uint8_t out[NIMPLS][ROOMY + GUARD], roomy[ROOMY];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len, dst_len;
    int ref = 0, have_ref = 0, exact;

    if (size < 4)
        return 0;
    len = page_lens[data[0] % (sizeof(page_lens) / sizeof(page_lens[0]))];
    dst_len = ((size_t)data[1] << 8 | data[2]) * 2; /* 0 .. 131070 */
    if (dst_len > ROOMY)
        dst_len = ROOMY;
    for (size_t k = 0; k < len; k++)
        old_page[k] = data[3] & 1 ? 0 : (uint8_t)(k * data[3] + (k >> 8));
    memcpy(new_page, old_page, len);
    for (size_t at = 4; at + 4 <= size; at += 4) {
        size_t pos = ((size_t)data[at] << 8 | data[at + 1]) * 8 % len;
        size_t count = data[at + 2];
        if (count > 127)
            count = (count - 127) * 64; /* long runs, up to 8 KiB */
        for (size_t k = pos; k < len && k < pos + count + 1; k++)
            new_page[k] = (uint8_t)(data[at + 3] + k);
    }

    /* The exact size, with room to spare, for the -1 check below. */
    xcc_xbzrle_set_impl("scalar");
    exact = xcc_xbzrle_encode(old_page, new_page, len, roomy, ROOMY);
    if (exact < 0 && errno != ERANGE)
        abort(); /* a roomy buffer only fails for inexpressible deltas */

    for (size_t i = 0; i < NIMPLS; i++) {
        if (xcc_xbzrle_set_impl(impls[i]) < 0)
            continue;
        memset(out[i], GUARD_BYTE, dst_len + GUARD);
        int r = xcc_xbzrle_encode(old_page, new_page, len, out[i], dst_len);
        for (size_t k = 0; k < GUARD; k++)
            if (out[i][dst_len + k] != GUARD_BYTE)
                abort(); /* wrote past dst + dst_len */
        if (r > 0 && (size_t)r > dst_len)
            abort();
        if (r == -1 && exact >= 0 && (size_t)exact <= dst_len)
            abort(); /* said it did not fit, but it does */
        if (r >= 0 && r != exact)
            abort();
        if (r == 0 && memcmp(old_page, new_page, len) != 0)
            abort();
        if (r > 0) {
            memcpy(work, old_page, len);
            if (xcc_xbzrle_decode(out[i], (size_t)r, work, len) < 0 ||
                memcmp(work, new_page, len) != 0)
                abort(); /* the round trip lost bytes */
        }
        if (!have_ref) {
            ref = r;
            have_ref = 1;
            continue;
        }
        if (r != ref || (r > 0 && memcmp(out[i], out[0], (size_t)r) != 0))
            abort(); /* paths disagree */
    }
    xcc_xbzrle_set_impl("auto");
    return 0;
}
