/* placeholder until the xen backend lands */
#include "domain.h"
int xen_domain_open(xcc_domain *d, const char *s, unsigned flags)
{
    XCC_ERR(d->log, "xen", "backend not built yet");
    errno = ENOSYS;
    return -1;
}
