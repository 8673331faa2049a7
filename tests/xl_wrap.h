/*
 * xl_wrap.h - the check `xc-colo inspect` makes, applied to a libxl v2
 * stream (what the translator hands to libxl): the stream is put behind an
 * xl header, as stock `xl save` writes it, and read by xcc_image_inspect(),
 * the validator of the libxl and libxc formats that `inspect` runs.
 */
#ifndef XCC_TESTS_XL_WRAP_H
#define XCC_TESTS_XL_WRAP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xccolo.h"
#include "xl_format.h"

/* The libxl stream header and the LIBXC_CONTEXT record that follows it. */
#define XL_WRAP_LIBXL_START 24u

/*
 * 0 if inspect takes the libxl stream in fd (from offset 0) whole, -1 if it
 * refuses it (or the stream does not begin as a libxl stream that carries a
 * libxc one). err receives inspect's message.
 */
static inline int inspect_libxl_stream(int fd, xentoollog_logger *log,
                                       char *err, size_t errlen)
{
    struct xcc_inspect_totals t;
    size_t pro = xl_prologue_size(0);
    struct stat st;
    uint8_t *hdr, *b;
    int img, rc = -1;

    err[0] = '\0';
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < XL_WRAP_LIBXL_START) {
        snprintf(err, errlen, "shorter than a libxl header and LIBXC_CONTEXT");
        return -1;
    }
    b = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    hdr = malloc(pro);
    img = memfd_create("xl-wrap", 0);
    if (b == MAP_FAILED || !hdr || img < 0)
        abort();
    if (xl_encode_prologue(hdr, pro, NULL) != pro)
        abort();
    /* The prologue ends with the same 24 bytes a stream must begin with. */
    if (memcmp(b, hdr + pro - XL_WRAP_LIBXL_START, XL_WRAP_LIBXL_START)) {
        snprintf(err, errlen, "does not begin with a libxl v2 header and "
                 "LIBXC_CONTEXT");
    } else if (write(img, hdr, pro) != (ssize_t)pro ||
               write(img, b + XL_WRAP_LIBXL_START,
                     (size_t)st.st_size - XL_WRAP_LIBXL_START) !=
                   (ssize_t)((size_t)st.st_size - XL_WRAP_LIBXL_START)) {
        abort();
    } else {
        lseek(img, 0, SEEK_SET);
        rc = xcc_image_inspect(img, log, 0, NULL, NULL, NULL, &t);
        if (rc < 0)
            snprintf(err, errlen, "%s", t.error);
    }
    close(img);
    free(hdr);
    munmap(b, (size_t)st.st_size);
    return rc;
}

#endif /* XCC_TESTS_XL_WRAP_H */
