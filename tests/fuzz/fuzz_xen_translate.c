/*
 * fuzz_xen_translate.c - libFuzzer target for the translator of an xc-colo
 * stream into the stock libxl v2 stream a restore into a new Xen domain
 * hands to libxl (libxc-colo/src/xen_translate.c). Arbitrary bytes are the
 * stream; a sim guest's stream type stands in for x86 PV (test hook), so
 * that ZERO_PAGES, XBZRLE_PAGES and COMPRESSED_PAGES reach the decoder.
 *
 * Property (abort() when broken): whatever the translator emits, complete
 * or cut off by an error, is a stream that two validators take when the
 * translation succeeded, and refuse when it failed (libxl never sees a
 * whole stream from a bad one): the checker that feeds libxl
 * (tests/xen_feed.c), and the reader `xc-colo inspect` runs
 * (xcc_image_inspect, on the stream behind an xl header: tests/xl_wrap.h),
 * which checks every libxc record as the restore does. Crashes, leaks and
 * sanitizer reports are the other failures.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "../xen_feed.c"
#include "../xl_wrap.h"
#include "test_hooks.h"
#include "xccolo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int in = memfd_with(data, size), out = memfd_with(NULL, 0);
    int devnull = memfd_with(NULL, 0);
    struct xcc_restore_params p;
    struct xen_feed f;
    xcc_xen_translator *t;
    int rc, checked;

    xcc_restore_params_init(&p);
    p.progress = 0;
    t = xcc_xen_translator_new(in, &p, quiet_logger());
    if (!t)
        abort();
    xen_translate_allow_sim(t);
    rc = xcc_xen_translator_run(t, out);
    xcc_xen_translator_free(t);

    lseek(out, 0, SEEK_SET);
    xen_feed_init(&f, out, 0, devnull);
    checked = xen_feed_forward_libxl(&f);
    xen_feed_release(&f);
    if (rc == 0 && checked != 0)
        abort(); /* a translation libxl's checker refuses */
    if (rc != 0 && checked == 0)
        abort(); /* a failed translation that still ends the stream */
    char err[512];
    int inspected = inspect_libxl_stream(out, quiet_logger(), err, sizeof(err));
    if ((rc == 0) != (inspected == 0))
        abort(); /* inspect's verdict differs from the translator's */
    close(in);
    close(out);
    close(devnull);
    return 0;
}
