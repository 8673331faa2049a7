/*
 * fuzz_xbzrle_decode.c - xcc_xbzrle_decode() on arbitrary input.
 *
 * Input: byte 0 picks the page length, the rest is the delta. The page sits
 * between guard areas; decoding must never touch them, must return -1 or a
 * covered length within the page, and every decoder path must give the
 * same verdict and the same page.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xccolo.h"

#define GUARD 64
#define GUARD_BYTE 0xa5
#define MAX_PAGE 65536

static const size_t page_lens[] = {8, 16, 24, 64, 72, 128, 4096, 16384, 65536};
static const char *const impls[] = {"scalar", "avx2", "avx512"};
#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

static uint8_t area[NIMPLS][GUARD + MAX_PAGE + GUARD];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    int ref = 0, have_ref = 0;

    if (size < 1)
        return 0;
    len = page_lens[data[0] % (sizeof(page_lens) / sizeof(page_lens[0]))];
    data++;
    size--;
    for (size_t i = 0; i < NIMPLS; i++) {
        uint8_t *page = area[i] + GUARD;
        if (xcc_xbzrle_set_impl(impls[i]) < 0)
            continue;
        memset(area[i], GUARD_BYTE, GUARD);
        memset(page + len, GUARD_BYTE, GUARD);
        /* The old page: a pattern the delta's bytes rarely repeat. */
        for (size_t k = 0; k < len; k++)
            page[k] = (uint8_t)(k * 37 + 11);
        int r = xcc_xbzrle_decode(data, size, page, len);
        for (size_t k = 0; k < GUARD; k++)
            if (area[i][k] != GUARD_BYTE || page[len + k] != GUARD_BYTE)
                abort(); /* wrote outside the page */
        if (r < -1 || r > (int)len)
            abort();
        if (r == -1 && size == 0)
            abort(); /* an empty delta is valid */
        if (!have_ref) {
            ref = r;
            have_ref = 1;
            continue;
        }
        if (r != ref || memcmp(page, area[0] + GUARD, len) != 0)
            abort(); /* paths disagree */
    }
    xcc_xbzrle_set_impl("auto");
    return 0;
}
