/* placeholder until the sim backend lands */
#include "domain.h"
int sim_domain_open(xcc_domain *d, const char *s, unsigned flags)
{
    XCC_ERR(d->log, "sim", "backend not built yet");
    errno = ENOSYS;
    return -1;
}
