/* model/version.h -- the version of mnistd: MNISTD_VERSION (the VERSION
 * file) and MNISTD_GITREV (the commit), which the Makefile passes to the
 * compiler. This is the one fallback for a build that does not. */
#ifndef MNISTD_VERSION_H
#define MNISTD_VERSION_H

#ifndef MNISTD_VERSION
#define MNISTD_VERSION "0.0.0"
#endif
#ifndef MNISTD_GITREV
#define MNISTD_GITREV "unknown"
#endif

#endif
